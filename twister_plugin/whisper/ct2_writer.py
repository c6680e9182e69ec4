"""openai-whisper model -> CTranslate2 ``WhisperSpec`` variables and ``model.bin``.

Written the way CTranslate2's own converter (``ctranslate2.specs``: ``WhisperSpec`` revision 3,
``ModelSpec._serialize`` binary version 6, ``LayerSpec.optimize``) writes it, so that the file is
byte-identical to ``ct2-transformers-converter`` on the same weights:

* variables (layout in ``twister_plugin.whisper.ct2``): fused self-attention query|key|value
  [3S, S] with a zero key bias (Whisper's key has none), fused cross-attention key|value [2S, S],
  scalars ``encoder/num_heads`` and ``decoder/{num_heads, activation=GELU, pre_norm, ...}``;
* aliasing: a variable equal (dtype, shape, values) to one earlier in name order is stored as an
  alias of it; for Whisper that is ``decoder/projection/weight`` -> ``decoder/embeddings/weight``;
* quantisation (``QUANTIZATIONS``): the weights of linear / conv / embedding layers (names ending
  ``/weight``) become int8 with one float32 scale per output row (``<name>_scale`` =
  127 / max|row|; conv weights [out, in, k] as rows of in*k) or int16 with one scale; every other
  float variable is cast to the float type of the scheme;
* binary: little-endian; ``uint32 version | str spec | uint32 revision | uint32 n`` then per
  variable (sorted by name) ``str name | uint8 rank | uint32 dims | uint8 dtype | uint32 bytes |
  data`` then ``uint32 n_aliases`` + ``str alias | str target``; str = uint16 length + UTF-8 + NUL.
"""
from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from whisper.model import Whisper

from twister_plugin.whisper.ct2_binary import DTYPE_IDS
from twister_plugin.whisper.tokenizer_files import (
    preprocessor_config, tokenizer_json, vocabulary_txt)
from twister_plugin.whisper.vocab import WhisperVocab, whisper_vocab
from twister_plugin.whisper.weights import alignment_mask

SPEC_NAME = "WhisperSpec"
SPEC_REVISION = 3
BINARY_VERSION = 6
GELU = 3  # ctranslate2.specs.common_spec.Activation.GELU

Scaled = tuple[torch.Tensor, "torch.Tensor | None"]  # (stored weight, scale or None)


def _cast(dtype: torch.dtype) -> Callable[[torch.Tensor], Scaled]:
    return lambda w: (w.to(dtype), None)


def _int8_rows(w: torch.Tensor) -> Scaled:
    """int8 with one scale per output row, computed as CTranslate2 does (numpy float32)."""
    flat = w.float().reshape(w.shape[0], -1).numpy()  # conv [out, in, k] -> [out, in * k]
    amax = np.abs(flat).max(axis=1)
    amax[amax == 0] = 127.0
    amax = np.maximum(amax, np.float32(127) / np.finfo(np.float32).max)  # scale stays finite
    scale = 127.0 / amax
    q = np.rint(flat * np.expand_dims(scale, 1)).astype(np.int8).reshape(w.shape)
    return torch.from_numpy(q), torch.from_numpy(scale)


def _int16_tensor(w: torch.Tensor) -> Scaled:
    """int16 with one scale for the tensor (10 bits of magnitude)."""
    x = w.float().numpy()
    scale = np.float32(2**10 / np.amax(np.absolute(x)))
    q = np.clip(np.rint(x * scale), -32768, 32767).astype(np.int16)
    return torch.from_numpy(q), torch.tensor(scale)


@dataclass(frozen=True)
class Quantization:
    weights: Callable[[torch.Tensor], Scaled]  # linear / conv / embedding weights
    floats: torch.dtype  # every other float variable


QUANTIZATIONS: dict[str, Quantization] = {
    "float32": Quantization(_cast(torch.float32), torch.float32),
    "float16": Quantization(_cast(torch.float16), torch.float16),
    "bfloat16": Quantization(_cast(torch.bfloat16), torch.bfloat16),
    "int8": Quantization(_int8_rows, torch.float32),  # CTranslate2 keeps the source floats
    "int8_float32": Quantization(_int8_rows, torch.float32),
    "int8_float16": Quantization(_int8_rows, torch.float16),
    "int8_bfloat16": Quantization(_int8_rows, torch.bfloat16),
    "int16": Quantization(_int16_tensor, torch.float32),
}


def _scalars(model: Whisper) -> dict[str, torch.Tensor]:
    """The non-weight settings ``WhisperSpec`` stores (bools as int8)."""
    d = model.dims
    i8 = lambda v: torch.tensor(v, dtype=torch.int8)  # noqa: E731
    i16 = lambda v: torch.tensor(v, dtype=torch.int16)  # noqa: E731
    return {
        "encoder/num_heads": i16(d.n_audio_head),
        "decoder/num_heads": i16(d.n_text_head),
        "decoder/activation": i8(GELU),
        "decoder/pre_norm": i8(1),
        "decoder/scale_embeddings": i8(0),
        "decoder/start_from_zero_embedding": i8(0),
        "decoder/alibi": i8(0),
        "decoder/alibi_use_positive_positions": i8(0),
        "decoder/scale_alibi": i8(0),
        "decoder/alignment_layer": i16(-1),
        "decoder/alignment_heads": i16(1),
    }


def float_variables(model: Whisper) -> dict[str, torch.Tensor]:
    """Every ``WhisperSpec`` variable of ``model`` in float32 (plus the scalars)."""
    sd = {k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()}
    d = model.dims
    v = _scalars(model)
    for conv in ("conv1", "conv2"):
        _linear(v, sd, f"encoder/{conv}", f"encoder.{conv}")
    v["encoder/position_encodings/encodings"] = sd["encoder.positional_embedding"]
    _norm(v, sd, "encoder/layer_norm", "encoder.ln_post")
    for i in range(d.n_audio_layer):
        _layer(v, sd, f"encoder/layer_{i}", f"encoder.blocks.{i}", cross=False)
    v["decoder/embeddings/weight"] = sd["decoder.token_embedding.weight"]
    v["decoder/projection/weight"] = sd["decoder.token_embedding.weight"]  # tied; aliased
    v["decoder/position_encodings/encodings"] = sd["decoder.positional_embedding"]
    _norm(v, sd, "decoder/layer_norm", "decoder.ln")
    for i in range(d.n_text_layer):
        _layer(v, sd, f"decoder/layer_{i}", f"decoder.blocks.{i}", cross=True)
    return v


def _linear(v: dict, sd: dict, dst: str, src: str) -> None:
    v[f"{dst}/weight"] = sd[f"{src}.weight"]
    v[f"{dst}/bias"] = sd[f"{src}.bias"]


def _norm(v: dict, sd: dict, dst: str, src: str) -> None:
    v[f"{dst}/gamma"] = sd[f"{src}.weight"]
    v[f"{dst}/beta"] = sd[f"{src}.bias"]


def _layer(v: dict, sd: dict, dst: str, src: str, cross: bool) -> None:
    a = f"{src}.attn"
    no_key_bias = torch.zeros_like(sd[f"{a}.query.bias"])
    qkv = [sd[f"{a}.{p}.weight"] for p in ("query", "key", "value")]
    v[f"{dst}/self_attention/linear_0/weight"] = torch.cat(qkv)  # [3S, S]
    v[f"{dst}/self_attention/linear_0/bias"] = torch.cat(
        [sd[f"{a}.query.bias"], no_key_bias, sd[f"{a}.value.bias"]])
    _linear(v, sd, f"{dst}/self_attention/linear_1", f"{a}.out")
    _norm(v, sd, f"{dst}/self_attention/layer_norm", f"{src}.attn_ln")
    if cross:
        c = f"{src}.cross_attn"
        _linear(v, sd, f"{dst}/attention/linear_0", f"{c}.query")
        v[f"{dst}/attention/linear_1/weight"] = torch.cat(
            [sd[f"{c}.key.weight"], sd[f"{c}.value.weight"]])  # [2S, S]
        v[f"{dst}/attention/linear_1/bias"] = torch.cat([no_key_bias, sd[f"{c}.value.bias"]])
        _linear(v, sd, f"{dst}/attention/linear_2", f"{c}.out")
        _norm(v, sd, f"{dst}/attention/layer_norm", f"{src}.cross_attn_ln")
    _linear(v, sd, f"{dst}/ffn/linear_0", f"{src}.mlp.0")
    _linear(v, sd, f"{dst}/ffn/linear_1", f"{src}.mlp.2")
    _norm(v, sd, f"{dst}/ffn/layer_norm", f"{src}.mlp_ln")


def find_aliases(variables: dict[str, torch.Tensor]) -> dict[str, str]:
    """alias -> target for every non-scalar variable equal to an earlier one (name order)."""
    first: dict[tuple, str] = {}
    aliases = {}
    for name in sorted(variables):
        t = variables[name]
        if t.dim() == 0:
            continue
        data = t.contiguous().reshape(-1).view(torch.uint8).numpy()  # a view, not a copy
        key = (t.dtype, tuple(t.shape), hashlib.sha256(data).digest())
        if key in first and torch.equal(variables[first[key]], t):
            aliases[name] = first[key]
        else:
            first.setdefault(key, name)
    return aliases


def quantize(variables: dict[str, torch.Tensor], quantization: str) -> dict[str, torch.Tensor]:
    """Apply a ``QUANTIZATIONS`` scheme; integer scalars are kept as they are."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"unknown CTranslate2 quantization {quantization!r}; use one of {sorted(QUANTIZATIONS)}"
        )
    scheme = QUANTIZATIONS[quantization]
    out = {}
    for name, t in variables.items():
        if not t.is_floating_point():
            out[name] = t
        elif name.endswith("/weight") and t.dim() > 0:
            out[name], scale = scheme.weights(t)
            if scale is not None:
                out[name + "_scale"] = scale
        else:
            out[name] = t.to(scheme.floats)
    return out


def ct2_variables(model: Whisper, quantization: str = "float16"
                  ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(variables to store, aliases) of ``model``, as CTranslate2's ``optimize`` leaves them."""
    variables = float_variables(model)
    aliases = find_aliases(variables)
    for alias in aliases:
        del variables[alias]
    return quantize(variables, quantization), aliases


def write_ct2_binary(f: BinaryIO, variables: dict[str, torch.Tensor],
                     aliases: dict[str, str] | None = None, spec: str = SPEC_NAME,
                     revision: int = SPEC_REVISION, version: int = BINARY_VERSION) -> None:
    """Serialise like ``ModelSpec._serialize`` (sorted names, little-endian) into ``f``."""
    def string(s: str) -> bytes:
        raw = s.encode("utf-8") + b"\0"
        return struct.pack("<H", len(raw)) + raw

    f.write(struct.pack("<I", version) + string(spec) + struct.pack("<II", revision,
                                                                      len(variables)))
    for name in sorted(variables):
        t = variables[name].detach().cpu().contiguous()
        data = t.reshape(-1).view(torch.uint8).numpy()
        f.write(string(name) + struct.pack(f"<B{t.dim()}I", t.dim(), *t.shape))
        f.write(struct.pack("<BI", DTYPE_IDS[t.dtype], data.nbytes))
        f.write(memoryview(data))
    aliases = aliases or {}
    f.write(struct.pack("<I", len(aliases)))
    for alias in sorted(aliases):
        f.write(string(alias) + string(aliases[alias]))


def alignment_pairs(model: Whisper) -> list[list[int]]:
    """The model's alignment heads as [[layer, head], ...] (config.json style)."""
    return [[int(i), int(j)] for i, j in alignment_mask(model).nonzero().tolist()]


def ct2_config(model: Whisper, vocab: WhisperVocab) -> dict:
    """CTranslate2's ``config.json`` for Whisper (``WhisperConfig`` fields, sorted)."""
    return {
        "alignment_heads": alignment_pairs(model),
        "lang_ids": sorted(vocab.language_ids.values()),
        "suppress_ids": vocab.suppress_tokens,
        "suppress_ids_begin": vocab.begin_suppress_tokens,
    }


def write_ct2_files(model: Whisper, out_dir: Path, quantization: str = "float16") -> None:
    """A faster-whisper folder: model.bin, config.json, vocabulary.txt, tokenizer.json and
    preprocessor_config.json (``out_dir`` must exist; files are written in place)."""
    vocab = whisper_vocab(model.dims.n_vocab)
    variables, aliases = ct2_variables(model, quantization)
    with open(out_dir / "model.bin", "wb") as f:
        write_ct2_binary(f, variables, aliases)
    files = {
        "config.json": json.dumps(ct2_config(model, vocab), indent=2, sort_keys=True) + "\n",
        "vocabulary.txt": vocabulary_txt(vocab),
        "tokenizer.json": json.dumps(tokenizer_json(vocab), ensure_ascii=False) + "\n",
        "preprocessor_config.json": preprocessor_config(model.dims.n_mels),
    }
    for name, text in files.items():
        (out_dir / name).write_text(text, encoding="utf-8")
