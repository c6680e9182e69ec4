"""Reader for CTranslate2's ``model.bin`` (one file or ``model.bin.part1``, ``part2``, ...).

Layout (little-endian, binary version 6, as written by ``ModelSpec._serialize``)::

    uint32 binary_version | string spec_name | uint32 spec_revision | uint32 num_variables
    num_variables x (string name | uint8 rank | uint32 dims[rank] | uint8 dtype_id
                     | uint32 num_bytes | num_bytes raw bytes)
    uint32 num_aliases | num_aliases x (string alias | string target)

where a string is ``uint16 n`` + ``n`` bytes of UTF-8 ending in NUL. A split model is the
byte-wise concatenation of its parts; the parts are read as one stream, never joined on disk.
"""
from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import torch

from twister_plugin.whisper.errors import WhisperFormatError

SUPPORTED_BINARY_VERSIONS = (6,)
# dtype ids in CTranslate2's DataType enum (include/ctranslate2/types.h).
DTYPES: dict[int, torch.dtype] = {
    0: torch.float32,
    1: torch.int8,
    2: torch.int16,
    3: torch.int32,
    4: torch.float16,
    5: torch.bfloat16,
}
DTYPE_IDS = {dtype: i for i, dtype in DTYPES.items()}
_MAX_RANK = 8
_MAX_VARIABLES = 1_000_000
_PART_RE = re.compile(r"^model\.bin\.part(\d+)$")


@dataclass
class Ct2Binary:
    spec: str  # e.g. "WhisperSpec"
    revision: int  # spec revision
    variables: dict[str, torch.Tensor]  # name -> tensor (scalars have shape ())
    aliases: dict[str, str] = field(default_factory=dict)  # alias name -> target name
    label: str = ""  # the file(s) read, for messages


def model_files(model_dir: Path) -> list[Path]:
    """``[model.bin]`` or the contiguous ``model.bin.part1..N``; refuse gaps and ambiguity."""
    single = model_dir / "model.bin"
    parts: dict[int, Path] = {}
    for p in model_dir.iterdir() if model_dir.is_dir() else ():
        m = _PART_RE.match(p.name)
        if m:
            parts[int(m.group(1))] = p
    if single.is_file() and parts:
        raise WhisperFormatError(
            f"{single}: both model.bin and model.bin.part* exist in {model_dir}; keep one"
        )
    if single.is_file():
        return [single]
    if not parts:
        raise WhisperFormatError(f"{single}: missing (no model.bin or model.bin.part1.. here)")
    for i in range(1, max(parts) + 1):
        if i not in parts:
            found = ", ".join(f"part{k}" for k in sorted(parts))
            raise WhisperFormatError(
                f"{model_dir / f'model.bin.part{i}'}: missing part {i} of the split model.bin "
                f"(found {found})"
            )
    return [parts[i] for i in sorted(parts)]


class _PartStream:
    """Read consecutive files as one byte stream; say which file ran short."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.index = 0
        self.offset = 0  # offset in the joined stream
        self.handle: BinaryIO = open(paths[0], "rb")

    def close(self) -> None:
        self.handle.close()

    def read_into(self, buf: memoryview, what: str) -> None:
        done = 0
        while done < len(buf):
            n = self.handle.readinto(buf[done:])
            if n:
                done += n
                continue
            if self.index + 1 >= len(self.paths):
                raise WhisperFormatError(
                    f"{self.label()}: truncated: needs {len(buf) - done} more bytes for "
                    f"{what} at byte {self.offset + done} of the model{self._hint()}"
                )
            self.handle.close()
            self.index += 1
            self.handle = open(self.paths[self.index], "rb")
        self.offset += done

    def read(self, n: int, what: str) -> bytes:
        buf = bytearray(n)
        self.read_into(memoryview(buf), what)
        return bytes(buf)

    def at_end(self) -> bool:
        if self.handle.read(1):
            return False
        for path in self.paths[self.index + 1 :]:
            if path.stat().st_size:
                return False
        return True

    def _hint(self) -> str:
        last = self.paths[-1]
        m = _PART_RE.match(last.name)
        if not m:
            return ""
        return f" (is {last.with_name(f'model.bin.part{int(m.group(1)) + 1}')} missing?)"

    def label(self) -> str:
        if len(self.paths) == 1:
            return str(self.paths[0])
        return f"{self.paths[self.index]} (part {self.index + 1} of {len(self.paths)})"


def read_ct2_binary(model_dir: Path) -> Ct2Binary:
    """Parse every variable and alias of the CTranslate2 model in ``model_dir``."""
    stream = _PartStream(model_files(model_dir))
    try:
        return _parse(stream)
    finally:
        stream.close()


def _parse(s: _PartStream) -> Ct2Binary:
    version = _u(s, "<I", "binary version")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise WhisperFormatError(
            f"{s.label()}: not a CTranslate2 model.bin this reader knows (binary version "
            f"{version}, expected {' or '.join(map(str, SUPPORTED_BINARY_VERSIONS))})"
        )
    spec = _string(s, "spec name")
    revision = _u(s, "<I", "spec revision")
    count = _u(s, "<I", "variable count")
    if count > _MAX_VARIABLES:
        raise WhisperFormatError(f"{s.label()}: implausible variable count {count}")
    variables = {}
    for _ in range(count):
        name, tensor = _variable(s)
        variables[name] = tensor
    aliases = {}
    for _ in range(_u(s, "<I", "alias count")):
        alias = _string(s, "alias name")
        aliases[alias] = _string(s, f"target of alias {alias}")
    if not s.at_end():
        raise WhisperFormatError(f"{s.label()}: unexpected bytes after the last alias")
    return Ct2Binary(spec, revision, variables, aliases, label=s.label())


def _variable(s: _PartStream) -> tuple[str, torch.Tensor]:
    name = _string(s, "variable name")
    rank = _u(s, "<B", f"rank of {name}")
    if rank > _MAX_RANK:
        raise WhisperFormatError(f"{s.label()}: variable {name} has implausible rank {rank}")
    dims = [_u(s, "<I", f"shape of {name}") for _ in range(rank)]
    dtype_id = _u(s, "<B", f"dtype of {name}")
    if dtype_id not in DTYPES:
        raise WhisperFormatError(f"{s.label()}: variable {name} has unknown dtype id {dtype_id}")
    dtype = DTYPES[dtype_id]
    num_bytes = _u(s, "<I", f"size of {name}")
    expected = math.prod(dims) * dtype.itemsize
    if num_bytes != expected:
        raise WhisperFormatError(
            f"{s.label()}: variable {name} {dims} {dtype} declares {num_bytes} bytes, "
            f"expected {expected}"
        )
    buf = bytearray(num_bytes)
    s.read_into(memoryview(buf), f"variable {name}")
    if num_bytes == 0:
        return name, torch.empty(dims, dtype=dtype)
    # CTranslate2 files are little-endian, like every platform torch runs on here.
    return name, torch.frombuffer(buf, dtype=dtype).reshape(dims)


def _u(s: _PartStream, fmt: str, what: str) -> int:
    return struct.unpack(fmt, s.read(struct.calcsize(fmt), what))[0]


def _string(s: _PartStream, what: str) -> str:
    n = _u(s, "<H", f"length of {what}")
    raw = s.read(n, what)
    if n == 0 or raw[-1] != 0:
        raise WhisperFormatError(f"{s.label()}: {what} is not a NUL-terminated string")
    try:
        return raw[:-1].decode("utf-8")
    except UnicodeDecodeError as e:
        raise WhisperFormatError(f"{s.label()}: {what} is not UTF-8") from e
