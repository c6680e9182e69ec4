"""exclusive(): one holder at a time across processes; a missing lock folder is made, and a lock
file that cannot be made is an OutputError naming it."""
from __future__ import annotations

import multiprocessing as mp
import time

import pytest

from twister_plugin.utils.fileio import OutputError, exclusive


def _hold(lock: str, log: str, tag: str) -> None:
    for _ in range(5):
        with exclusive(lock):
            with open(log, "a") as f:
                f.write(f"{tag}+\n")
            time.sleep(0.01)
            with open(log, "a") as f:
                f.write(f"{tag}-\n")


def test_holders_never_overlap(tmp_path):
    lock, log = tmp_path / "sub" / ".merge.lock", tmp_path / "log"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_hold, args=(str(lock), str(log), t)) for t in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    lines = log.read_text().split()
    assert len(lines) == 20
    for start, end in zip(lines[::2], lines[1::2]):  # every enter is followed by its own exit
        assert start.endswith("+") and end == start[0] + "-"


def test_a_lock_that_cannot_be_made_is_named(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="file/x.lock: cannot create the lock file"):
        with exclusive(tmp_path / "file" / "x.lock"):
            pass


@pytest.mark.parametrize("durable", [True, False])
def test_atomic_open_fsyncs_only_when_durable(tmp_path, monkeypatch, durable):
    import os

    from twister_plugin.utils.fileio import atomic_open

    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(KeyError):  # a failed write keeps the old file either way
        with atomic_open(target, "wb", durable=durable) as f:
            f.write(b"half")
            raise KeyError("stop")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
    with atomic_open(target, "wb", durable=durable) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new" and len(calls) == int(durable)
