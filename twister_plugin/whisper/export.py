"""Export an openai-whisper model as a ``.pt`` checkpoint, a Hugging Face or a CTranslate2 folder.

    from twister_plugin.whisper.export import export_whisper
    export_whisper(model, "exp/round1/ct2", "ct2", dtype="int8")   # faster-whisper folder
    export_whisper(model, "exp/round1/hf", "hf")                   # WhisperForConditionalGeneration
    export_whisper(model, "exp/round1/model.pt", "pt", dtype="float32")

Every target reads back with ``twister_plugin.whisper.load_whisper`` (float32 and float16:
the same tensors; int8: within half a quantisation step per row). Requests are checked before
any work (``check_request``): unknown format or dtype, an existing output without ``force``,
an output folder that could not be written. A folder is built in a hidden staging folder beside
the output and renamed into place when complete, so a crash never leaves a half-written model
that looks finished; ``force`` replaces an earlier export only (a folder holding a config.json
and model weights, or an empty one), never an unrelated folder.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from whisper.model import Whisper

from twister_plugin.utils.fileio import OutputError
from twister_plugin.whisper.checkpoint import save_checkpoint
from twister_plugin.whisper.ct2_writer import QUANTIZATIONS, write_ct2_files
from twister_plugin.whisper.hf_writer import write_hf_files
from twister_plugin.whisper.vocab import whisper_vocab
from twister_plugin.whisper.weights import set_alignment_mask

FLOAT_DTYPES = {"float16": torch.float16, "float32": torch.float32, "bfloat16": torch.bfloat16}
_MODEL_FILES = ("model.bin", "model.bin.part1", "model.safetensors", "model.safetensors.index.json")


class ExportError(ValueError):
    """An export that cannot be done; the message names the path or option and says why."""


@dataclass(frozen=True)
class Target:
    name: str  # --format value
    description: str  # for help texts and logs
    dtypes: tuple[str, ...]  # accepted --dtype values
    folder: bool  # the output is a folder (staged, then renamed into place)
    write: Callable[[Whisper, Path, str], None]  # (model, output path, dtype)


def _write_pt(model: Whisper, out: Path, dtype: str) -> None:
    save_checkpoint(model, out, dtype=FLOAT_DTYPES[dtype])


def _write_hf(model: Whisper, out: Path, dtype: str) -> None:
    write_hf_files(model, out, FLOAT_DTYPES[dtype])


TARGETS: dict[str, Target] = {
    "pt": Target("pt", "openai-whisper checkpoint file", tuple(FLOAT_DTYPES), False, _write_pt),
    "hf": Target("hf", "Hugging Face WhisperForConditionalGeneration folder",
                 tuple(FLOAT_DTYPES), True, _write_hf),
    "ct2": Target("ct2", "CTranslate2 / faster-whisper folder", tuple(QUANTIZATIONS), True,
                  write_ct2_files),
}
ALL_DTYPES = tuple(dict.fromkeys(d for t in TARGETS.values() for d in t.dtypes))


def check_request(out: str | os.PathLike, fmt: str, dtype: str, force: bool = False) -> Target:
    """The target for ``fmt`` if ``out`` can be written as one; else ``ExportError``."""
    out = Path(out)
    if fmt not in TARGETS:
        raise ExportError(f"unknown export format {fmt!r}: choose one of {', '.join(TARGETS)}")
    target = TARGETS[fmt]
    if dtype not in target.dtypes:
        raise ExportError(
            f"dtype {dtype!r} is not available for {fmt} ({target.description}); "
            f"choose one of {', '.join(target.dtypes)}"
        )
    if out.exists() or out.is_symlink():
        _check_replaceable(out, target, force)
    _check_writable(out)
    return target


def _check_replaceable(out: Path, target: Target, force: bool) -> None:
    if not force:
        raise ExportError(f"{out}: already exists; pass --force to replace it")
    if target.folder != out.is_dir():
        have = "a folder" if out.is_dir() else "a file"
        raise ExportError(f"{out}: is {have}, but a {target.name} export writes "
                          f"{'a folder' if target.folder else 'a file'}; not replacing it")
    if target.folder and any(out.iterdir()):
        looks_exported = (out / "config.json").is_file() and any(
            (out / name).is_file() for name in _MODEL_FILES)
        if not looks_exported:
            raise ExportError(f"{out}: not an exported model folder (no config.json + model "
                              f"weights); refusing to replace it even with --force")


def _check_writable(out: Path) -> None:
    """The nearest existing ancestor of ``out`` must be a folder we may write in."""
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ExportError(f"{out}: cannot write here: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"{out}: cannot write here: no write permission in {parent}")


def export_whisper(model: Whisper, out: str | os.PathLike, fmt: str, dtype: str = "float16",
                   force: bool = False) -> Path:
    """Write ``model`` to ``out`` as ``fmt`` (pt | hf | ct2) with weights in ``dtype``."""
    out = Path(out)
    target = check_request(out, fmt, dtype, force)
    if target.folder:  # hf and ct2 folders carry the tokenizer of the model's vocabulary
        try:
            whisper_vocab(model.dims.n_vocab)
        except ValueError as e:
            raise ExportError(f"{out}: cannot write the {fmt} tokenizer: {e}") from e
    try:
        if target.folder:
            _write_folder(target, model, out, dtype)
        else:
            target.write(model, out, dtype)
    except (OSError, OutputError) as e:
        raise ExportError(f"{out}: cannot write the {fmt} export ({_reason(e)})") from e
    return out


def _write_folder(target: Target, model: Whisper, out: Path, dtype: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp makes 0700; outputs get the usual mode
        target.write(model, staging, dtype)
        _replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _replace_folder(new: Path, out: Path) -> None:
    """Rename ``new`` to ``out``; an older ``out`` is moved aside first and then deleted."""
    if not (out.exists() or out.is_symlink()):
        os.rename(new, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.rename(out, old / out.name)
    os.rename(new, out)
    shutil.rmtree(old, ignore_errors=True)


def _reason(e: BaseException) -> str:
    return e.strerror if isinstance(e, OSError) and e.strerror else str(e)


def adopt_alignment_heads(model: Whisper, base: Whisper, base_path: str | os.PathLike) -> None:
    """Give ``model`` the alignment heads of the Whisper it was fine-tuned from.

    An ESPnet exp dir does not store them (its model gets openai's default: every head of the
    last half of the decoder layers); word timings are better with the released heads.
    """
    if base.dims != model.dims:
        raise ExportError(f"{base_path}: dims {base.dims} differ from the model's {model.dims}; "
                          f"not the Whisper it was fine-tuned from")
    heads = base.alignment_heads
    set_alignment_mask(model, heads.to_dense() if heads.is_sparse else heads)


def readback_error(model: Whisper, out: str | os.PathLike, dtype: str) -> float:
    """Max |weight read back from ``out`` - weight of ``model`` rounded to ``dtype``|.

    0.0 for float exports (pt, hf, ct2 float16/float32/bfloat16); for integer CTranslate2
    exports, the quantisation error (up to half a step, max|row| / 254 for int8).
    """
    from twister_plugin.whisper.loader import load_whisper

    back = load_whisper(out).state_dict()
    cast = FLOAT_DTYPES.get(dtype, torch.float32)
    worst = 0.0
    for name, t in model.state_dict().items():
        expected = t.detach().to("cpu", cast).float()
        worst = max(worst, (back[name] - expected).abs().max().item())
    return worst
