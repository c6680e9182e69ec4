"""Crash-safe file writing: write to a temporary name in the same folder, then rename."""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


_UMASK = os.umask(0)
os.umask(_UMASK)


class OutputError(RuntimeError):
    """An output could not be written (read-only folder, disk full, ...)."""


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8",
                durable: bool = True) -> Iterator[IO]:
    """Open ``path`` for writing so that readers see either the old file or the whole new one.

    The data goes to a temporary file beside ``path``; on success it is flushed, fsync'ed
    (``durable``) and renamed over ``path``. On any error the temporary file is removed and
    ``path`` is untouched. ``durable=False`` skips the fsync: still atomic for readers and across
    a crash of the process, but after a power loss the file may be empty (ext4's default ordered
    mode never leaves it half-written); for many small outputs flushed together later. Their
    write-back to disk starts at once (without waiting), so that later flush finds little left
    and the page cache does not fill with them.
    """
    path = Path(path)
    if "b" in mode:
        encoding = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise OutputError(f"{path}: cannot write here ({_reason(e)})") from e
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
            else:
                _start_writeback(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual mode
        os.replace(tmp, path)
    except OSError as e:
        _unlink(tmp)
        raise OutputError(f"{path}: write failed ({_reason(e)}); previous file kept") from e
    except BaseException:
        _unlink(tmp)
        raise


def _start_writeback(fd: int) -> None:
    """Ask the kernel to write ``fd``'s dirty pages back now, without waiting for it (Linux: the
    fadvise starts an asynchronous write-back, then drops the pages once clean)."""
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except (AttributeError, OSError):  # not Linux, or a file system without it: left to the kernel
        pass


@contextlib.contextmanager
def exclusive(lock: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the file ``lock`` (created if missing) while the block runs: for
    work two jobs may start at once, such as the last two shards of a run both merging. Other
    processes wait at ``exclusive`` until the lock is released (also when its holder dies)."""
    import fcntl

    lock = Path(lock)
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
    except OSError as e:
        raise OutputError(f"{lock}: cannot create the lock file ({_reason(e)})") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def _unlink(p: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(p)


def _reason(e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return "disk full"
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "read-only or no permission"
    return e.strerror or str(e)
