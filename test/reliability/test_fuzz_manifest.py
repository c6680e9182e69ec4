"""Fuzz the text readers (hypothesis, bounded): manifest.tsv rows, Kaldi text lines, wav.scp and
utt2spk lines, raw bytes. Any input is read or refused with DataError; nothing else escapes."""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from twister_plugin.data import DataError, read_kaldi_dir, read_manifest, read_text
from twister_plugin.data.kaldi import read_ids
from twister_plugin.data.manifest import COLUMNS

FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
TMP = Path(tempfile.mkdtemp(prefix="twister_fuzz_"))  # hypothesis reuses it across examples
atexit.register(shutil.rmtree, TMP, True)

# ids, paths and transcripts near the edges: spaces, tabs, metacharacters, CJK, controls, pipes
ALPHABET = st.sampled_from(list("ab1_.-+ \t|;$`'\"()*?\\/:你好\x00\x1b\u3000\u00a0\ufeff\r"))
TOKEN = st.one_of(st.from_regex(r"[a-z0-9_]{1,6}", fullmatch=True), st.text(ALPHABET, max_size=12))
FIELD = st.one_of(TOKEN, st.text(max_size=12), st.sampled_from(["", "nan", "inf", "-1", "0",
                                                                 "1e309", "16000", "zh", "en"]))
LINE = st.one_of(st.builds(lambda a, b: f"{a} {b}", TOKEN, TOKEN), st.text(max_size=30))


def _write(name: str, data: str | bytes) -> Path:
    path = TMP / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def _only_data_error(read, *args, **kwargs) -> None:
    try:
        read(*args, **kwargs)
    except DataError as e:
        assert str(e).startswith(str(TMP)), e  # every message names the file
        event(f"{read.__name__}: refused")
    else:
        event(f"{read.__name__}: read")  # --hypothesis-show-statistics: both outcomes occur


@FUZZ
@given(rows=st.lists(st.one_of(st.lists(FIELD, min_size=5, max_size=8), st.tuples(
    TOKEN, TOKEN, TOKEN, st.sampled_from(["1.5", "0", "nan"]), st.sampled_from(["16000", "x"]),
    st.sampled_from(["zh", "en", "Chinese"]), LINE)), max_size=4))
def test_manifest_rows(rows):
    body = "".join("\t".join(r) + "\n" for r in rows)
    text = "\t".join(COLUMNS) + "\n" + body
    _only_data_error(read_manifest, _write("m/manifest.tsv", text),
                     check_audio=False)


@FUZZ
@given(lines=st.lists(LINE, max_size=6))
def test_kaldi_text_lines(lines):
    data = "".join(line + "\n" for line in lines)
    _only_data_error(read_text, _write("t/text", data))
    _only_data_error(read_ids, _write("t/ids", data))


@FUZZ
@given(scp=st.lists(LINE, max_size=5), spk=st.lists(LINE, max_size=5), pipes=st.booleans())
def test_wav_scp_and_utt2spk_lines(scp, spk, pipes):
    d = TMP / "d"
    _write("d/wav.scp", "".join(x + "\n" for x in scp))
    _write("d/utt2spk", "".join(x + "\n" for x in spk))
    _only_data_error(read_kaldi_dir, d, require_text=False, allow_pipes=pipes)


@FUZZ
@given(data=st.binary(max_size=200))
def test_raw_bytes(data):
    _only_data_error(read_text, _write("b/text", data))
    _only_data_error(read_manifest, _write("b/manifest.tsv", data), check_audio=False)
