"""Every shipped config is one its task accepts, and every profile names files that exist: a
typo in a GPU-only config (never run in CI) would otherwise surface only on the GPU machine."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[2] / "egs2" / "twister" / "asr1"
CONF = RECIPE / "conf"


def _parses(task, config: Path):
    return task.get_parser().parse_args(["--config", str(config), "--output_dir", "/nonexistent"])


@pytest.mark.parametrize("config", sorted((CONF / "asr").glob("*.yaml")), ids=lambda p: p.name)
def test_asr_configs_parse(config):
    from twister_plugin.asr.task import TwisterASRTask

    args = _parses(TwisterASRTask, config)
    assert args.encoder == args.decoder == "twister_whisper" and args.max_epoch >= 1


@pytest.mark.parametrize("config", sorted((CONF / "lm").glob("*.yaml")), ids=lambda p: p.name)
def test_lm_configs_parse(config):
    from twister_plugin.lm.task import TwisterLMTask

    assert _parses(TwisterLMTask, config).max_epoch >= 1


@pytest.mark.parametrize("profile", sorted((CONF / "profiles").glob("*.sh")), ids=lambda p: p.name)
def test_profiles_name_existing_configs(profile):
    show = ('. "$1"; for f in "$pseudo_conf" "$tts_conf" "$asr_conf" "${lm_conf:-}"; do '
            '[ -z "$f" ] || [ -f "$f" ] || { echo "missing $f"; exit 1; }; done; echo "$asr_conf"')
    p = subprocess.run(["bash", "-c", show, "_", str(profile.relative_to(RECIPE))], cwd=RECIPE,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip().endswith(".yaml")
