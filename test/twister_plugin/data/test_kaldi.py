"""Kaldi data dirs: round trips on real data, and every refused input named by file and line."""
from __future__ import annotations

from pathlib import Path

import pytest

from twister_plugin.data.kaldi import (
    DataDir, DataError, Segment, read_ids, read_kaldi_dir, read_text, write_kaldi_dir,
)
from twister_plugin.data.manifest import read_manifest
from twister_plugin.testing.data import kaldi_files, write_files

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
S0150 = SHARED / "zh" / "aishell_sample_S0150" / "manifest.tsv"
needs_shared = pytest.mark.skipif(not S0150.is_file(), reason="shared/data absent")


def make_dir(tmp_path: Path, **changes: str | bytes | None) -> Path:
    """A valid 3-utterance dir with some files replaced (None removes a file)."""
    files = kaldi_files(3)
    for name, content in changes.items():
        name = name.replace("wav_scp", "wav.scp")
        if content is None:
            files.pop(name)
        else:
            files[name] = content
    return write_files(tmp_path / "d", files)


@needs_shared
def test_real_manifest_round_trip(tmp_path):
    dd = read_manifest(S0150)
    write_kaldi_dir(dd, tmp_path / "s0150")
    back = read_kaldi_dir(tmp_path / "s0150", check_audio=True)
    assert back == dd
    assert len(back.utt_ids) == 500
    wav_lines = (tmp_path / "s0150" / "wav.scp").read_text().splitlines()
    assert wav_lines == sorted(wav_lines)  # LC_ALL=C order
    assert (tmp_path / "s0150" / "spk2utt").read_text().split()[:2] == ["S0150", "BAC009S0150W0001"]
    assert back.text["BAC009S0150W0277"] == "苹果表配apple pay"


def test_valid_small_dir_with_segments(tmp_path):
    d = make_dir(tmp_path, wav_scp="rec1 a.flac\n",
                 segments="u1 rec1 0 1.5\nu2 rec1 1.5 3.25\nu3 rec1 3.25 4\n")
    dd = read_kaldi_dir(d)
    assert dd.utt_ids == ["u1", "u2", "u3"]
    assert dd.segments["u2"] == Segment("rec1", 1.5, 3.25)
    assert dd.audio("u2") == ("a.flac", 1.5, 3.25)
    assert dd.spk2utt() == {"s1": ["u1", "u2", "u3"]}
    sub = dd.subset(["u2"])
    assert sub.utt_ids == ["u2"] and sub.wav_scp == {"rec1": "a.flac"}
    write_kaldi_dir(dd, tmp_path / "copy")
    assert read_kaldi_dir(tmp_path / "copy") == dd
    assert (tmp_path / "copy" / "segments").read_text().splitlines()[1] == "u2 rec1 1.5 3.25"


@pytest.mark.parametrize("changes, message", [
    ({"text": b"u1 ok\nu2 caf\xff\nu3 x\n"}, "text:2: not valid UTF-8 (byte 0xff at column 7)"),
    ({"wav_scp": "u1 a.flac\nu1 b.flac\nu3 c.flac\n"}, "wav.scp:2: duplicate id 'u1' (first on line 1)"),
    ({"utt2spk": "u1 s1\nu2 s1\nu2 s1\n"}, "utt2spk:3: duplicate id 'u2'"),
    ({"wav_scp": "u1 a.flac\nu2;rm a.flac\nu3 a.flac\n"}, "wav.scp:2: bad id 'u2;rm': character ';'"),
    ({"wav_scp": "u1 a.flac\nu$2 a.flac\nu3 a.flac\n"}, "wav.scp:2: bad id 'u$2'"),
    ({"utt2spk": "u1 s1\nu2 s*1\nu3 s1\n"}, "utt2spk:2: bad id 's*1'"),
    ({"utt2spk": "-u1 s1\nu2 s1\nu3 s1\n"}, "utt2spk:1: bad id '-u1'"),
    ({"text": "u1 a\nu2 b\nu3\n"}, "text:3: empty transcript"),
    ({"wav_scp": "u2 a.flac\nu1 a.flac\nu3 a.flac\n"}, "wav.scp:2: not sorted: 'u1' comes after 'u2'"),
    ({"text": "u1 a\nu2 b\nu3 c\nu4 d\n"}, "text:4: utterance 'u4' is not in wav.scp"),
    ({"text": "u1 a\nu2 b\n"}, "wav.scp:3: utterance 'u3' has no line in text"),
    ({"utt2lang": "u1 zh\nu3 zh\n"}, "wav.scp:2: utterance 'u2' has no line in utt2lang"),
    ({"utt2spk": "u1 s1 s2\nu2 s1\nu3 s1\n"}, "utt2spk:1: want exactly one speaker id"),
    ({"wav_scp": "u1 a.flac\nu2\nu3 a.flac\n"}, "wav.scp:2: no audio path after the id"),
    ({"wav_scp": "u1 a.flac\n u2 a.flac\nu3 a.flac\n"}, "wav.scp:2: malformed line"),
    ({"wav_scp": "u1 a.flac\n\nu3 a.flac\n"}, "wav.scp:2: blank line"),
    ({"wav_scp": "u1 a.flac\r\nu2 a.flac\r\nu3 a.flac\r\n"}, "wav.scp:1: Windows line ending"),
    ({"text": "\ufeffu1 a\nu2 b\nu3 c\n"}, "text:1: starts with a byte-order mark"),
    ({"wav_scp": "u1 a.flac\nu2 sox b.wav -t wav - |\nu3 a.flac\n"}, "wav.scp:2: pipe command"),
    ({"utt2lang": "u1 zh\nu2 Chinese!\nu3 zh\n"}, "utt2lang:2: bad language 'Chinese!'"),
    ({"utt2dur": "u1 1.0\nu2 -2\nu3 1\n"}, "utt2dur:2: duration -2.0 is not positive"),
    ({"utt2dur": "u1 1.0\nu2 abc\nu3 1\n"}, "utt2dur:2: duration 'abc' is not a number"),
    ({"wav_scp": None}, "wav.scp: missing"),
    ({"text": None}, "text: missing"),
    ({"wav_scp": ""}, "wav.scp: no recordings"),
])
def test_refused(tmp_path, changes, message):
    d = make_dir(tmp_path, **changes)
    with pytest.raises(DataError) as err:
        read_kaldi_dir(d)
    assert str(d / message.split(":")[0]) in str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize("segments, message", [
    ("u1 r 0 1\nu2 r 2 1\nu3 r 3 4\n", "segments:2: end 1.0 is not after start 2.0"),
    ("u1 r -1 1\nu2 r 1 2\nu3 r 3 4\n", "segments:1: start -1.0 is negative"),
    ("u1 r 0 1\nu2 r 1 nan\nu3 r 3 4\n", "segments:2: end 'nan' is not finite"),
    ("u1 r 0 1\nu2 r 1 x\nu3 r 3 4\n", "segments:2: end 'x' is not a number"),
    ("u1 r 0 1\nu2 r 1\nu3 r 3 4\n", "segments:2: want '<utt> <recording> <start> <end>', got 3"),
    ("u1 r 0 1\nu2 q 1 2\nu3 r 3 4\n", "segments:2: recording 'q' of 'u2' is not in wav.scp"),
    ("u1 r 0 1\nu3 r 3 4\n", "utt2spk:2: utterance 'u2' is not in segments"),
])
def test_refused_segments(tmp_path, segments, message):
    d = make_dir(tmp_path, wav_scp="r a.flac\n", segments=segments)
    with pytest.raises(DataError, match="segments") as err:
        read_kaldi_dir(d)
    assert message in str(err.value)


def test_options_accept_what_defaults_refuse(tmp_path):
    d = make_dir(tmp_path, text="u1 a\nu2\nu3 c\n",
                 wav_scp="u1 a.flac\nu3 a.flac\nu2 cat b.flac |\n", utt2spk="u2 s1\nu1 s1\nu3 s1\n")
    dd = read_kaldi_dir(d, allow_empty_text=True, allow_pipes=True, fix_sort=True)
    assert list(dd.wav_scp) == ["u1", "u2", "u3"] and dd.wav_scp["u2"] == "cat b.flac |"
    assert dd.text["u2"] == ""
    write_kaldi_dir(dd, tmp_path / "w", allow_pipes=True, allow_empty_text=True)
    assert (tmp_path / "w" / "text").read_text() == "u1 a\nu2\nu3 c\n"
    assert (tmp_path / "w" / "utt2spk").read_text() == "u1 s1\nu2 s1\nu3 s1\n"
    with pytest.raises(DataError, match=r"wav.scp \(id 'u2'\): pipe command"):
        write_kaldi_dir(dd, tmp_path / "w2", allow_empty_text=True)


def test_unlabeled_dir_without_text(tmp_path):
    d = make_dir(tmp_path, text=None)
    dd = read_kaldi_dir(d, require_text=False)
    assert dd.text is None and len(dd.utt_ids) == 3


def test_check_audio_names_missing_file(tmp_path):
    d = make_dir(tmp_path)
    with pytest.raises(DataError, match=r"wav.scp:1: audio file 'a.flac' of 'u1' does not exist"):
        read_kaldi_dir(d, check_audio=True)


def test_write_refuses_bad_in_memory_dir(tmp_path):
    good = dict(wav_scp={"u1": "a.flac"}, utt2spk={"u1": "s1"}, text={"u1": "hi"})
    with pytest.raises(DataError, match=r"text \(id 'u1'\): value 'two\\nlines' is not a one-line"):
        write_kaldi_dir(DataDir(**{**good, "text": {"u1": "two\nlines"}}), tmp_path / "a")
    with pytest.raises(DataError, match=r"wav.scp \(id 'u 1'\): bad id"):
        write_kaldi_dir(DataDir(**{**good, "wav_scp": {"u 1": "a.flac"}}), tmp_path / "b")
    with pytest.raises(DataError, match=r"utt2spk \(id 'u2'\): utterance 'u2' is not in wav.scp"):
        write_kaldi_dir(DataDir(**{**good, "utt2spk": {"u1": "s", "u2": "s"}}), tmp_path / "c")
    assert not (tmp_path / "a" / "text").exists()


def test_rewrite_removes_stale_optional_files(tmp_path):
    seg = DataDir(wav_scp={"r": "a.flac"}, utt2spk={"u1": "s"}, text={"u1": "x"},
                  segments={"u1": Segment("r", 0.0, 1.0)})
    write_kaldi_dir(seg, tmp_path / "d")
    assert (tmp_path / "d" / "segments").exists()
    write_kaldi_dir(DataDir(wav_scp={"u1": "a.flac"}, utt2spk={"u1": "s"}, text={"u1": "x"}),
                    tmp_path / "d")
    assert not (tmp_path / "d" / "segments").exists()
    assert read_kaldi_dir(tmp_path / "d").segments is None


def test_read_text_and_ids(tmp_path):
    write_files(tmp_path, {"hyp": "b 二\na 一\nc\n", "ids": "a\nb extra columns\n",
                           "dup": "a\nb\na\n", "bad": "a\nb|c\n"})
    assert read_text(tmp_path / "hyp") == {"a": "一", "b": "二", "c": ""}
    assert read_ids(tmp_path / "ids") == {"a": 1, "b": 2}
    with pytest.raises(DataError, match=r"dup:3: duplicate id 'a' \(first on line 1\)"):
        read_ids(tmp_path / "dup")
    with pytest.raises(DataError, match=r"bad:2: bad id 'b\|c'"):
        read_ids(tmp_path / "bad")
    with pytest.raises(DataError, match="hyp:2: not sorted"):
        read_text(tmp_path / "hyp", fix_sort=False)
