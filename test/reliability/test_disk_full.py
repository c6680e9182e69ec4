"""Disk full and read-only outputs: the stage fails with a clear OutputError and the previous
output file is unchanged. A real 64-KiB tmpfs (and a read-only remount of it) where the sandbox
allows ``mount``; the in-process ENOSPC / EROFS cases (monkeypatched ``os.fsync`` / ``mkstemp``)
run everywhere."""
from __future__ import annotations

import errno
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from twister_plugin.bin import prepare_text
from twister_plugin.data import DataDir, read_kaldi_dir, write_kaldi_dir
from twister_plugin.testing.data import shared_data
from twister_plugin.utils.fileio import OutputError, atomic_write_text

OLD = "旧的输出\n"


def corpus(tmp: Path, n_lines: int = 3000) -> Path:
    """~150 KB of text: real news sentences when the shared data is there."""
    src = shared_data() / "text" / "zh_news_open.txt" if shared_data() else None
    if src is not None and src.is_file():
        lines = src.read_text(encoding="utf-8").splitlines()[:n_lines]
    else:
        lines = [f"第{i}句话用来填满这个很小的磁盘" for i in range(n_lines)]
    path = tmp / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert path.stat().st_size > 100_000
    return path


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def tiny_fs(tmp_path):
    """A 64-KiB tmpfs holding an earlier output ``out/corpus.txt``."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)):
        pytest.skip("cannot mount a tmpfs here (needs root and mount permission)")
    (mnt / "out").mkdir()
    (mnt / "out" / "corpus.txt").write_text(OLD, encoding="utf-8")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_disk_full_keeps_previous_output(tiny_fs, tmp_path):
    out = tiny_fs / "out" / "corpus.txt"
    with pytest.raises(OutputError) as err:
        prepare_text.main(["--text", str(corpus(tmp_path)), "--out", str(out)])
    assert str(err.value) == f"{out}: write failed (disk full); previous file kept"
    assert out.read_text(encoding="utf-8") == OLD
    assert os.listdir(tiny_fs / "out") == ["corpus.txt"]  # no temp file left behind


def test_read_only_folder_keeps_previous_output(tiny_fs, tmp_path):
    assert _mount("-o", "remount,ro", str(tiny_fs))
    out = tiny_fs / "out" / "corpus.txt"
    with pytest.raises(OutputError) as err:
        prepare_text.main(["--text", str(corpus(tmp_path)), "--out", str(out)])
    assert str(err.value) == f"{out}: cannot write here (read-only or no permission)"
    assert out.read_text(encoding="utf-8") == OLD


def _old_and_big(n: int) -> tuple[DataDir, DataDir]:
    old = DataDir(wav_scp={"u1": "/a.flac"}, utt2spk={"u1": "s1"}, text={"u1": "旧"})
    ids = [f"utt{i:05d}" for i in range(n)]
    big = DataDir(wav_scp={u: f"/audio/{u}.flac" for u in ids}, utt2spk={u: "s1" for u in ids},
                  text={u: "一句很长的转写" * 3 for u in ids})
    return old, big


def test_kaldi_dir_on_full_disk_fails_on_first_file(tiny_fs):
    old, big = _old_and_big(3000)  # wav.scp alone (90 KB) does not fit
    write_kaldi_dir(old, tiny_fs / "data")
    with pytest.raises(OutputError) as err:
        write_kaldi_dir(big, tiny_fs / "data")
    assert str(err.value) == f"{tiny_fs}/data/wav.scp: write failed (disk full); previous file kept"
    assert read_kaldi_dir(tiny_fs / "data") == old


def test_kaldi_dir_on_full_disk_keeps_previous_dir_whole(tiny_fs):
    old, big = _old_and_big(1500)  # wav.scp (45 KB) fits, utt2spk (18 KB) does not
    write_kaldi_dir(old, tiny_fs / "data")
    with pytest.raises(OutputError, match=r"data/utt2spk: write failed \(disk full\)"):
        write_kaldi_dir(big, tiny_fs / "data")
    assert read_kaldi_dir(tiny_fs / "data") == old


# ------------------------------------------------------------- in-process (no mount needed)
def test_enospc_in_fsync_is_reported_and_old_file_kept(tmp_path, monkeypatch):
    out = tmp_path / "x.txt"
    out.write_text(OLD, encoding="utf-8")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError, match=r"x.txt: write failed \(disk full\); previous file kept"):
        atomic_write_text(out, "new content\n")
    assert out.read_text(encoding="utf-8") == OLD
    assert os.listdir(tmp_path) == ["x.txt"]


def test_erofs_on_create_is_reported(tmp_path, monkeypatch):
    out = tmp_path / "x.txt"
    out.write_text(OLD, encoding="utf-8")

    def read_only(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(OutputError,
                       match=r"x.txt: cannot write here \(read-only or no permission\)"):
        atomic_write_text(out, "new content\n")
    assert out.read_text(encoding="utf-8") == OLD
