"""skip_espnet_typechecks: inference jobs import ESPnet without typeguard's recompiling of every
decorated class; TWISTER_TYPECHECK=1 or an ESPnet already imported keeps the checks."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("espnet2")

# UtteranceMVN.__init__ is @typechecked (norm_means: bool): a string is refused only when checked
PROBE = """
import sys
from twister_plugin.utils.fast_import import skip_espnet_typechecks
{before}
print("skipped" if skip_espnet_typechecks() else "kept")
from espnet2.layers.utterance_mvn import UtteranceMVN
UtteranceMVN(norm_means="yes")
print("constructed")
"""


def _probe(before: str = "", **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE.format(before=before)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})


def test_checks_are_skipped_for_a_job_that_loads_a_trained_model():
    p = _probe(TWISTER_TYPECHECK="0")
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split() == ["skipped", "constructed"]


def test_twister_typecheck_keeps_them():
    p = _probe(TWISTER_TYPECHECK="1")
    assert p.returncode != 0 and p.stdout.split() == ["kept"]
    assert "TypeCheckError" in p.stderr and "norm_means" in p.stderr


def test_espnet_imported_first_keeps_them():
    p = _probe(before="import espnet2.layers.utterance_mvn", TWISTER_TYPECHECK="0")
    assert p.returncode != 0 and p.stdout.split() == ["kept"]
    assert "TypeCheckError" in p.stderr


EXIT_PROBE = """
import atexit, logging, sys
from twister_plugin.utils.fast_import import fast_exit
from twister_plugin.utils.log import setup_logging
setup_logging()
atexit.register(lambda: print("teardown ran"))
print("buffered line")          # stdout is a pipe here: block-buffered until the flush
logging.getLogger("job").info("job log line")
fast_exit({code})
"""


@pytest.mark.parametrize("code, rc", [("3", 3), ("None", 0)])
def test_fast_exit_keeps_the_output_and_the_code_and_skips_the_teardown(code, rc):
    p = subprocess.run([sys.executable, "-c", EXIT_PROBE.format(code=code)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == rc
    assert p.stdout.splitlines() == ["buffered line"]  # flushed; the atexit handler never ran
    assert "job log line" in p.stderr
