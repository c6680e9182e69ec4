"""python -m twister_plugin.bin.prepare_data: manifest / Kaldi / lhotse in, validated dir out."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lhotse import CutSet

from twister_plugin.bin.prepare_data import main
from twister_plugin.data.kaldi import read_kaldi_dir
from twister_plugin.testing.data import write_files

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
S0150 = SHARED / "zh" / "aishell_sample_S0150" / "manifest.tsv"
pytestmark = pytest.mark.skipif(not S0150.is_file(), reason="shared/data absent")
IDS = ["BAC009S0150W0011", "BAC009S0150W0277", "BAC009S0150W0280", "BAC009S0150W0300"]


@pytest.fixture
def ids_file(tmp_path) -> Path:
    return write_files(tmp_path, {"ids": "\n".join(IDS) + "\n"}) / "ids"


def test_manifest_to_dir_then_skip_then_force(tmp_path, ids_file):
    out = tmp_path / "data" / "s0150"
    assert main(["--manifest", str(S0150), "--out", str(out), "--ids-file", str(ids_file),
                 "--lang", "zh"]) == 0
    dd = read_kaldi_dir(out, check_audio=True)
    assert dd.utt_ids == IDS and dd.text["BAC009S0150W0280"] == "和苹果的apple pay相似"
    cuts = CutSet.from_file(out / "cuts.jsonl.gz")
    assert sorted(cuts.ids) == IDS
    assert (out / ".done").exists() and not list(out.glob(".*tmp*"))
    (out / "wav.scp").unlink()
    assert main(["--manifest", str(S0150), "--out", str(out)]) == 0
    assert not (out / "wav.scp").exists()  # .done: skipped
    assert main(["--manifest", str(S0150), "--out", str(out), "--ids-file", str(ids_file),
                 "--force"]) == 0
    assert read_kaldi_dir(out) == dd


def test_kaldi_and_lhotse_inputs(tmp_path, ids_file):
    first = tmp_path / "first"
    assert main(["--manifest", str(S0150), "--out", str(first), "--ids-file", str(ids_file)]) == 0
    assert main(["--kaldi-dir", str(first), "--out", str(tmp_path / "copy")]) == 0
    assert read_kaldi_dir(tmp_path / "copy") == read_kaldi_dir(first)
    assert main(["--lhotse", str(first / "cuts.jsonl.gz"), "--out", str(tmp_path / "cuts")]) == 0
    back, orig = read_kaldi_dir(tmp_path / "cuts"), read_kaldi_dir(first)
    assert (back.wav_scp, back.text, back.utt2spk, back.utt2lang) == \
        (orig.wav_scp, orig.text, orig.utt2spk, orig.utt2lang)


def test_errors_exit_1_naming_file_and_line(tmp_path, capsys):
    bad_ids = write_files(tmp_path, {"ids": "BAC009S0150W0001\nnope\n"}) / "ids"
    assert main(["--manifest", str(S0150), "--out", str(tmp_path / "o"), "--ids-file",
                 str(bad_ids)]) == 1
    assert f"{bad_ids}:2: id 'nope' is not in" in capsys.readouterr().err
    assert main(["--manifest", str(S0150), "--out", str(tmp_path / "o"), "--lang", "en"]) == 1
    assert "no utterance has language 'en'" in capsys.readouterr().err
    assert not (tmp_path / "o" / ".done").exists()
    unsorted = write_files(tmp_path / "k", {"wav.scp": f"b {S0150}\na {S0150}\n", "text": "a x\nb y\n",
                                            "utt2spk": "a s\nb s\n"})
    assert main(["--kaldi-dir", str(unsorted), "--out", str(tmp_path / "o2")]) == 1
    assert f"{unsorted}/wav.scp:2: not sorted" in capsys.readouterr().err


def test_module_entry_point(tmp_path, ids_file):
    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "twister_plugin.bin.prepare_data", "--manifest",
                           str(S0150), "--out", str(out), "--ids-file", str(ids_file)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "prepare_data config:" in proc.stderr and (out / ".done").exists()
