"""Bad text files through the stages' entry points (the readers' own unit tests are in
test/twister_plugin/data/): every refusal is a DataError naming the file and the line."""
from __future__ import annotations

import pytest

from twister_plugin.bin import prepare_data, prepare_text, score
from twister_plugin.bin import pseudo_label as pseudo_label_bin
from twister_plugin.data import DataError
from twister_plugin.testing.data import write_audio_cases, write_files

GOOD = {"wav.scp": "u1 {a}\nu2 {a}\nu3 {a}\n", "text": "u1 你好\nu2 hello\nu3 好 ok\n",
        "utt2spk": "u1 s1\nu2 s1\nu3 s1\n"}


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    return write_audio_cases(tmp_path_factory.mktemp("a"), long_seconds=None)["good"]


def kaldi_dir(tmp_path, audio, **changes: str | bytes):
    files = {k: v.format(a=audio) for k, v in GOOD.items()}
    files.update({k.replace("_", "."): v for k, v in changes.items()})
    return write_files(tmp_path / "in", files)


CASES = [  # (changed file, content, message after "<dir>/")
    ("text", b"u1 \xe4\xbd\xa0\nu2 caf\xe9\nu3 x\n",
     "text:2: not valid UTF-8 (byte 0xe9 at column 7)"),
    ("wav_scp", b"u1 /a.flac\nu2 /b\xff.flac\nu3 /c.flac\n",
     "wav.scp:2: not valid UTF-8 (byte 0xff"),
    ("text", "u1 你好\nu2   \nu3 ok\n", "text:2: empty transcript"),
    ("utt2spk", "u1 s1\nu2 s1\nu2 s2\n", "utt2spk:3: duplicate id 'u2' (first on line 2)"),
    ("utt2spk", "u1 s1\nu 2 s1\nu3 s1\n", "utt2spk:2: want exactly one speaker id after the "
                                         "utterance id, got 2"),
    ("text", "u1 a\nu2 b\nu3;touch${IFS}pwned c\n", "text:3: bad id 'u3;touch${IFS}pwned': "
                                                  "character ';' not allowed"),
    ("utt2spk", "u1 s1\nu2 $(id)\nu3 s1\n", "utt2spk:2: bad id '$(id)': character '$' not allowed"),
    ("utt2spk", "u1 s1\nu2 `id`\nu3 s1\n", "utt2spk:2: bad id '`id`': character '`' not allowed"),
    ("text", "u2 b\nu1 a\nu3 c\n", "text:2: not sorted: 'u1' comes after 'u2'"),
    ("wav_scp", "u1 {a}\nu2 sox {a} -t wav - |\nu3 {a}\n", "wav.scp:2: pipe command 'sox "),
]


@pytest.mark.parametrize("fname, content, message", CASES, ids=[c[2][:28] for c in CASES])
def test_prepare_data_names_file_and_line(tmp_path, capsys, audio, fname, content, message):
    content = content.replace("{a}", str(audio)) if isinstance(content, str) else content
    src = kaldi_dir(tmp_path, audio, **{fname: content})
    assert prepare_data.main(["--kaldi-dir", str(src), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "ERROR [prepare_data.py:" in err and f"] {src}/{message}" in err
    assert not (tmp_path / "out" / "wav.scp").exists()


def test_pipes_pass_only_when_allowed(tmp_path, audio):
    src = kaldi_dir(tmp_path, audio, wav_scp=f"u1 {audio}\nu2 cat {audio} |\nu3 {audio}\n")
    prepare_data.main(["--kaldi-dir", str(src), "--out", str(tmp_path / "out"), "--allow-pipes"])
    assert f"u2 cat {audio} |" in (tmp_path / "out" / "wav.scp").read_text()


def test_unsorted_is_sorted_only_when_asked(tmp_path, audio):
    src = kaldi_dir(tmp_path, audio, text="u2 b\nu1 a\nu3 c\n")
    prepare_data.main(["--kaldi-dir", str(src), "--out", str(tmp_path / "out"), "--fix-sort"])
    assert (tmp_path / "out" / "text").read_text().splitlines()[0] == "u1 a"


def test_pseudo_label_refuses_bad_wav_scp_before_loading_a_model(tmp_path, audio):
    src = kaldi_dir(tmp_path, audio, wav_scp=f"u1 {audio}\nu2 rm -rf {tmp_path} |\nu3 {audio}\n")
    (src / "text").unlink()
    with pytest.raises(DataError, match=rf"{src}/wav.scp:2: pipe command 'rm -rf .*' refused"):
        pseudo_label_bin.main(["--data", str(src), "--model", "/nonexistent.pt",
                               "--out", str(tmp_path / "o"), "--device", "cpu"])
    assert tmp_path.exists()


def test_prepare_text_names_line_of_non_utf8_corpus(tmp_path):
    data = "第一句\n第二句\n".encode() + b"\xb5\xda\xc8\xfd\n"  # GBK bytes on line 3
    corpus = write_files(tmp_path, {"corpus.txt": data})
    with pytest.raises(DataError, match=r"corpus.txt:3: not valid UTF-8 \(byte 0xb5 at column 1\)"):
        prepare_text.main(["--text", str(corpus / "corpus.txt"), "--out", str(tmp_path / "o.txt")])


def test_score_names_file_and_line_of_bad_hypothesis(tmp_path, capsys):
    write_files(tmp_path, {"ref": "u1 你好\nu2 再见\n", "hyp": "u1 你好\nu1 再见\n"})
    assert score.main(["--ref", str(tmp_path / "ref"), "--hyp", str(tmp_path / "hyp"),
                       "--out", str(tmp_path / "s"), "--metric", "cer"]) == 1
    assert f"{tmp_path}/hyp:2: duplicate id 'u1' (first on line 1)" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_synthesis_corpus_non_utf8_names_file_and_line(tmp_path):
    from twister_plugin.tts.synthesize import read_corpus

    data = "第一句\n第二句\n".encode() + b"\xb5\xda\n"
    corpus = write_files(tmp_path, {"corpus.txt": data})
    with pytest.raises(DataError, match=r"corpus.txt:3: not valid UTF-8"):
        list(read_corpus(corpus / "corpus.txt", 1, 1))
