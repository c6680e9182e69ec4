"""CTranslate2 / faster-whisper Whisper folder -> openai-whisper weights.

Folder contract: ``model.bin`` (or ``model.bin.part1..N``), optional ``config.json``
(``alignment_heads``: list of [layer, head]) and optional ``vocabulary.txt`` (one token a line).

Variable layout (``WhisperSpec``; S = state size, per layer i):
  encoder/conv{1,2}/{weight,bias}               -> encoder.conv{1,2}.*
  encoder/position_encodings/encodings [1500,S] -> encoder.positional_embedding
  encoder/layer_i/self_attention/linear_0 [3S,S] = fused query|key|value (key bias stored as 0)
  encoder/layer_i/self_attention/linear_1       -> attn.out;  .../layer_norm -> attn_ln
  encoder/layer_i/ffn/linear_{0,1}              -> mlp.{0,2}; ffn/layer_norm -> mlp_ln
  encoder/layer_norm                            -> encoder.ln_post
  decoder/embeddings/weight [V,S]               -> decoder.token_embedding.weight
  decoder/position_encodings/encodings [448,S]  -> decoder.positional_embedding
  decoder/layer_i/self_attention                -> like the encoder's, into blocks.i.attn
  decoder/layer_i/attention/linear_0            -> cross_attn.query
  decoder/layer_i/attention/linear_1 [2S,S]     = fused cross_attn.key|value; linear_2 -> out
  decoder/layer_norm                            -> decoder.ln
  decoder/projection/weight                     alias of decoder/embeddings/weight (tied)
Quantised weights (int8 / int16) come with ``<name>_scale``: float = integer / scale, one scale
per output row (int8) or one scalar (int16).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from whisper.model import ModelDimensions

from twister_plugin.whisper.ct2_binary import Ct2Binary, read_ct2_binary
from twister_plugin.whisper.errors import WhisperFormatError
from twister_plugin.whisper.weights import WhisperWeights, check_vocab_size, heads_from_pairs

SPEC_NAME = "WhisperSpec"
MAX_REVISION = 3
_GELU = 3  # common_spec.Activation.GELU
_LAYER_RE = re.compile(r"^(encoder|decoder)/layer_(\d+)/")


def is_ct2_dir(path: Path) -> bool:
    return path.is_dir() and (
        (path / "model.bin").exists() or any(path.glob("model.bin.part*"))
    )


def load_ct2_dir(model_dir: Path) -> WhisperWeights:
    """Read a CTranslate2 Whisper folder (fp32/fp16/bf16/int8/int16 weights)."""
    model_dir = Path(model_dir)
    binary = read_ct2_binary(model_dir)
    if binary.spec != SPEC_NAME or binary.revision > MAX_REVISION:
        raise WhisperFormatError(
            f"{binary.label}: holds a {binary.spec!r} revision {binary.revision} model; "
            f"expected {SPEC_NAME!r} revision <= {MAX_REVISION}"
        )
    take = _Taker(_dequantised(binary), binary.label)
    dims = _dims(take, binary.label)
    check_vocab_size(dims.n_vocab, Path(binary.label), model_dir / "vocabulary.txt")
    _check_flags(take)
    state = _openai_state(take, dims)
    take.finish()
    heads = _config_heads(model_dir / "config.json", dims)
    return WhisperWeights(dims, state, heads, model_dir)


class _Taker:
    """Hands out variables by name once each; leftovers mean a layout we do not understand."""

    def __init__(self, tensors: dict[str, torch.Tensor], label: str) -> None:
        self.tensors = dict(tensors)
        self.label = label

    def __call__(self, name: str) -> torch.Tensor:
        if name not in self.tensors:
            raise WhisperFormatError(f"{self.label}: missing variable {name}")
        return self.tensors.pop(name)

    def optional(self, name: str) -> torch.Tensor | None:
        return self.tensors.pop(name, None)

    def peek(self, name: str) -> torch.Tensor:
        if name not in self.tensors:
            raise WhisperFormatError(f"{self.label}: missing variable {name}")
        return self.tensors[name]

    def finish(self) -> None:
        left = sorted(n for n, t in self.tensors.items() if t.dim() > 0)
        if left:
            raise WhisperFormatError(
                f"{self.label}: variables not part of a Whisper model: {', '.join(left[:5])}"
            )


def _dequantised(binary: Ct2Binary) -> dict[str, torch.Tensor]:
    """Resolve aliases, turn integer weights + ``_scale`` into floats, drop the scales."""
    tensors = dict(binary.variables)
    for alias, target in binary.aliases.items():
        if target not in tensors:
            raise WhisperFormatError(f"{binary.label}: alias {alias} -> unknown {target}")
        tensors[alias] = tensors[target]
        if target + "_scale" in tensors:
            tensors[alias + "_scale"] = tensors[target + "_scale"]
    for name in [n for n in tensors if n.endswith("_zero")]:
        raise WhisperFormatError(f"{binary.label}: {name}: zero-point (AWQ) weights unsupported")
    for name in [n for n in tensors if n.endswith("_scale")]:
        scale = tensors.pop(name)
        base = name[: -len("_scale")]
        weight = tensors.get(base)
        if weight is None:
            raise WhisperFormatError(f"{binary.label}: {name} scales a missing {base}")
        tensors[base] = _dequantise(weight, scale, base, binary.label)
    for name, t in tensors.items():
        if t.dim() > 0 and not t.is_floating_point():
            raise WhisperFormatError(f"{binary.label}: {name} is {t.dtype} without a scale")
    return tensors


def _dequantise(weight: torch.Tensor, scale: torch.Tensor, name: str, label: str) -> torch.Tensor:
    if scale.dim() == 0:
        return weight.float() / scale.float()
    if scale.dim() != 1 or scale.shape[0] != weight.shape[0]:
        raise WhisperFormatError(
            f"{label}: {name}_scale has shape {tuple(scale.shape)}, expected ({weight.shape[0]},)"
        )
    # one scale per output row: [out] -> [out, 1, ...] to broadcast over the rest
    return weight.float() / scale.float().reshape(-1, *([1] * (weight.dim() - 1)))


def _dims(take: _Taker, label: str) -> ModelDimensions:
    names = list(take.tensors)
    n_layers = {side: 0 for side in ("encoder", "decoder")}
    for name in names:
        m = _LAYER_RE.match(name)
        if m:
            n_layers[m.group(1)] = max(n_layers[m.group(1)], int(m.group(2)) + 1)
    conv1 = take.peek("encoder/conv1/weight")
    audio_pos = take.peek("encoder/position_encodings/encodings")
    text_pos = take.peek("decoder/position_encodings/encodings")
    embedding = take.peek("decoder/embeddings/weight")
    if conv1.dim() != 3 or audio_pos.dim() != 2 or text_pos.dim() != 2 or embedding.dim() != 2:
        raise WhisperFormatError(f"{label}: conv1 / position encodings / embeddings have bad ranks")
    return ModelDimensions(
        n_mels=conv1.shape[1],
        n_audio_ctx=audio_pos.shape[0],
        n_audio_state=audio_pos.shape[1],
        n_audio_head=int(take("encoder/num_heads")),
        n_audio_layer=n_layers["encoder"],
        n_vocab=embedding.shape[0],
        n_text_ctx=text_pos.shape[0],
        n_text_state=text_pos.shape[1],
        n_text_head=int(take("decoder/num_heads")),
        n_text_layer=n_layers["decoder"],
    )


def _check_flags(take: _Taker) -> None:
    """Scalars that would change the maths must have Whisper's values."""
    want = {"decoder/activation": _GELU, "decoder/scale_embeddings": 0, "decoder/pre_norm": 1}
    for name, value in want.items():
        got = take.optional(name)
        if got is not None and int(got) != value:
            raise WhisperFormatError(f"{take.label}: {name} = {int(got)}, Whisper needs {value}")
    for name in ("encoder/queries_scale", "decoder/layernorm_embedding/gamma"):
        if name in take.tensors:
            raise WhisperFormatError(f"{take.label}: {name} is not part of a Whisper model")


def _openai_state(take: _Taker, dims: ModelDimensions) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for conv in ("conv1", "conv2"):
        _linear(take, out, f"encoder/{conv}", f"encoder.{conv}")
    out["encoder.positional_embedding"] = take("encoder/position_encodings/encodings")
    for i in range(dims.n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        _self_attention(take, out, f"{src}/self_attention", dst, dims.n_audio_state)
        _ffn(take, out, src, dst)
    _norm(take, out, "encoder/layer_norm", "encoder.ln_post")
    embedding = take("decoder/embeddings/weight")
    out["decoder.token_embedding.weight"] = embedding
    out["decoder.positional_embedding"] = take("decoder/position_encodings/encodings")
    for i in range(dims.n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        _self_attention(take, out, f"{src}/self_attention", dst, dims.n_text_state)
        _cross_attention(take, out, f"{src}/attention", dst, dims.n_text_state)
        _ffn(take, out, src, dst)
    _norm(take, out, "decoder/layer_norm", "decoder.ln")
    _check_tied_projection(take, embedding)
    return out


def _linear(take: _Taker, out: dict, src: str, dst: str, bias: bool = True) -> None:
    out[f"{dst}.weight"] = take(f"{src}/weight")
    if bias:
        out[f"{dst}.bias"] = take(f"{src}/bias")


def _norm(take: _Taker, out: dict, src: str, dst: str) -> None:
    out[f"{dst}.weight"] = take(f"{src}/gamma")
    out[f"{dst}.bias"] = take(f"{src}/beta")


def _ffn(take: _Taker, out: dict, src: str, dst: str) -> None:
    _linear(take, out, f"{src}/ffn/linear_0", f"{dst}.mlp.0")
    _linear(take, out, f"{src}/ffn/linear_1", f"{dst}.mlp.2")
    _norm(take, out, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")


def _split(take: _Taker, name: str, n_state: int, parts: int) -> tuple[torch.Tensor, ...]:
    t = take(name)
    if t.shape[0] != parts * n_state:
        raise WhisperFormatError(
            f"{take.label}: {name} has {t.shape[0]} rows, expected {parts} x {n_state} (fused)"
        )
    return t.split(n_state, dim=0)


def _self_attention(take: _Taker, out: dict, src: str, dst: str, n_state: int) -> None:
    q, k, v = _split(take, f"{src}/linear_0/weight", n_state, 3)
    qb, _kb, vb = _split(take, f"{src}/linear_0/bias", n_state, 3)
    # Whisper's key projection has no bias; a key bias only shifts every score of a query
    # row by the same amount, which softmax ignores, so dropping it is exact.
    out.update({f"{dst}.attn.query.weight": q, f"{dst}.attn.query.bias": qb})
    out.update({f"{dst}.attn.key.weight": k})
    out.update({f"{dst}.attn.value.weight": v, f"{dst}.attn.value.bias": vb})
    _linear(take, out, f"{src}/linear_1", f"{dst}.attn.out")
    _norm(take, out, f"{src}/layer_norm", f"{dst}.attn_ln")


def _cross_attention(take: _Taker, out: dict, src: str, dst: str, n_state: int) -> None:
    _linear(take, out, f"{src}/linear_0", f"{dst}.cross_attn.query")
    k, v = _split(take, f"{src}/linear_1/weight", n_state, 2)
    _kb, vb = _split(take, f"{src}/linear_1/bias", n_state, 2)
    out.update({f"{dst}.cross_attn.key.weight": k})
    out.update({f"{dst}.cross_attn.value.weight": v, f"{dst}.cross_attn.value.bias": vb})
    _linear(take, out, f"{src}/linear_2", f"{dst}.cross_attn.out")
    _norm(take, out, f"{src}/layer_norm", f"{dst}.cross_attn_ln")


def _check_tied_projection(take: _Taker, embedding: torch.Tensor) -> None:
    """Whisper's output layer is the token embedding; refuse an untied or biased one."""
    weight = take.optional("decoder/projection/weight")
    bias = take.optional("decoder/projection/bias")
    if weight is not None and weight is not embedding and not torch.equal(weight, embedding):
        raise WhisperFormatError(
            f"{take.label}: decoder/projection/weight differs from the token embedding"
        )
    if bias is not None and bool(bias.any()):
        raise WhisperFormatError(f"{take.label}: decoder/projection/bias is not zero")


def _config_heads(path: Path, dims: ModelDimensions) -> torch.Tensor | None:
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WhisperFormatError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(config, dict):
        raise WhisperFormatError(f"{path}: expected a JSON object")
    pairs = config.get("alignment_heads")
    return None if pairs is None else heads_from_pairs(pairs, dims, path)
