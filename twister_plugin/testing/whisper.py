"""Test helpers: tiny random Whisper models written as CTranslate2 / Hugging Face / .pt files.

The writers spell out every target name themselves (they do not reuse the readers' tables),
so a naming or fusing mistake in a reader is not mirrored here. The CTranslate2 writer
follows ``ctranslate2.specs.model_spec`` (binary version 6, ``_quantize`` for int8/int16),
and tests load its output with CTranslate2 itself to check it.
"""
from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import torch
from whisper.model import ModelDimensions, Whisper

_CT2_DTYPE_IDS = {torch.float32: 0, torch.int8: 1, torch.int16: 2, torch.int32: 3,
                  torch.float16: 4, torch.bfloat16: 5}
# float storage dtype of the non-quantised variables for each CTranslate2 quantisation
_CT2_FLOAT = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
              "int8": torch.float32, "int8_float16": torch.float16, "int16": torch.float32}


def tiny_dims(n_mels: int = 80, n_vocab: int = 51865, n_layer: int = 2) -> ModelDimensions:
    """Small but real-shaped dims (1500 audio frames so CTranslate2 accepts 3000 mel frames)."""
    return ModelDimensions(
        n_mels=n_mels, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2,
        n_audio_layer=n_layer, n_vocab=n_vocab, n_text_ctx=448, n_text_state=64,
        n_text_head=4, n_text_layer=n_layer,
    )


def random_whisper(dims: ModelDimensions | None = None, seed: int = 0) -> Whisper:
    """Whisper with every parameter and persistent buffer random (no ones/zeros left)."""
    torch.manual_seed(seed)
    model = Whisper(dims or tiny_dims())
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.randn_like(t) * (0.5 if "ln" in name else 0.05) + ("ln" in name))
    heads = torch.zeros(model.dims.n_text_layer, model.dims.n_text_head, dtype=torch.bool)
    heads[0, 1] = heads[-1, 0] = True
    model.register_buffer("alignment_heads", heads.to_sparse(), persistent=False)
    return model.eval()


def random_mel(dims: ModelDimensions, seed: int = 0) -> torch.Tensor:
    """Log-mel-like input [1, n_mels, 2 * n_audio_ctx]."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, dims.n_mels, 2 * dims.n_audio_ctx, generator=g) * 2 - 1


# ---------------------------------------------------------------- CTranslate2 writer

def ct2_variables(model: Whisper, quantization: str = "float32") -> dict[str, torch.Tensor]:
    """CTranslate2 ``WhisperSpec`` variables (quantised as CTranslate2 would) of ``model``."""
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    d = model.dims
    v: dict[str, torch.Tensor] = {
        "encoder/num_heads": torch.tensor(d.n_audio_head, dtype=torch.int16),
        "decoder/num_heads": torch.tensor(d.n_text_head, dtype=torch.int16),
        "decoder/activation": torch.tensor(3, dtype=torch.int8),
        "decoder/pre_norm": torch.tensor(1, dtype=torch.int8),
        "decoder/scale_embeddings": torch.tensor(0, dtype=torch.int8),
        "decoder/start_from_zero_embedding": torch.tensor(0, dtype=torch.int8),
        "decoder/alibi": torch.tensor(0, dtype=torch.int8),
        "decoder/alignment_layer": torch.tensor(-1, dtype=torch.int16),
        "decoder/alignment_heads": torch.tensor(1, dtype=torch.int16),
    }
    for conv in ("conv1", "conv2"):
        v[f"encoder/{conv}/weight"] = sd[f"encoder.{conv}.weight"]
        v[f"encoder/{conv}/bias"] = sd[f"encoder.{conv}.bias"]
    v["encoder/position_encodings/encodings"] = sd["encoder.positional_embedding"]
    v["encoder/layer_norm/gamma"] = sd["encoder.ln_post.weight"]
    v["encoder/layer_norm/beta"] = sd["encoder.ln_post.bias"]
    for i in range(d.n_audio_layer):
        _ct2_block(v, sd, f"encoder/layer_{i}", f"encoder.blocks.{i}", cross=False)
    v["decoder/embeddings/weight"] = sd["decoder.token_embedding.weight"]
    v["decoder/position_encodings/encodings"] = sd["decoder.positional_embedding"]
    v["decoder/layer_norm/gamma"] = sd["decoder.ln.weight"]
    v["decoder/layer_norm/beta"] = sd["decoder.ln.bias"]
    for i in range(d.n_text_layer):
        _ct2_block(v, sd, f"decoder/layer_{i}", f"decoder.blocks.{i}", cross=True)
    return _ct2_quantise(v, quantization)


def _ct2_block(v: dict, sd: dict, dst: str, src: str, cross: bool) -> None:
    a = f"{src}.attn"
    zero_k = torch.zeros_like(sd[f"{a}.query.bias"])
    v[f"{dst}/self_attention/linear_0/weight"] = torch.cat(
        [sd[f"{a}.query.weight"], sd[f"{a}.key.weight"], sd[f"{a}.value.weight"]])
    v[f"{dst}/self_attention/linear_0/bias"] = torch.cat(
        [sd[f"{a}.query.bias"], zero_k, sd[f"{a}.value.bias"]])
    v[f"{dst}/self_attention/linear_1/weight"] = sd[f"{a}.out.weight"]
    v[f"{dst}/self_attention/linear_1/bias"] = sd[f"{a}.out.bias"]
    v[f"{dst}/self_attention/layer_norm/gamma"] = sd[f"{src}.attn_ln.weight"]
    v[f"{dst}/self_attention/layer_norm/beta"] = sd[f"{src}.attn_ln.bias"]
    if cross:
        c = f"{src}.cross_attn"
        v[f"{dst}/attention/linear_0/weight"] = sd[f"{c}.query.weight"]
        v[f"{dst}/attention/linear_0/bias"] = sd[f"{c}.query.bias"]
        v[f"{dst}/attention/linear_1/weight"] = torch.cat(
            [sd[f"{c}.key.weight"], sd[f"{c}.value.weight"]])
        v[f"{dst}/attention/linear_1/bias"] = torch.cat([zero_k, sd[f"{c}.value.bias"]])
        v[f"{dst}/attention/linear_2/weight"] = sd[f"{c}.out.weight"]
        v[f"{dst}/attention/linear_2/bias"] = sd[f"{c}.out.bias"]
        v[f"{dst}/attention/layer_norm/gamma"] = sd[f"{src}.cross_attn_ln.weight"]
        v[f"{dst}/attention/layer_norm/beta"] = sd[f"{src}.cross_attn_ln.bias"]
    v[f"{dst}/ffn/linear_0/weight"] = sd[f"{src}.mlp.0.weight"]
    v[f"{dst}/ffn/linear_0/bias"] = sd[f"{src}.mlp.0.bias"]
    v[f"{dst}/ffn/linear_1/weight"] = sd[f"{src}.mlp.2.weight"]
    v[f"{dst}/ffn/linear_1/bias"] = sd[f"{src}.mlp.2.bias"]
    v[f"{dst}/ffn/layer_norm/gamma"] = sd[f"{src}.mlp_ln.weight"]
    v[f"{dst}/ffn/layer_norm/beta"] = sd[f"{src}.mlp_ln.bias"]


def _ct2_quantise(v: dict[str, torch.Tensor], quantization: str) -> dict[str, torch.Tensor]:
    """CTranslate2's ``_quantize``: weights of linear/conv/embedding layers get a scale."""
    out = {}
    for name, t in v.items():
        if not t.is_floating_point():
            out[name] = t
        elif name.endswith("/weight") and quantization in ("int8", "int8_float16"):
            flat = t.reshape(t.shape[0], -1).numpy()  # conv [out, in, k] -> [out, in*k]
            amax = np.abs(flat).max(axis=1)
            amax[amax == 0] = 127.0
            scale = (127.0 / amax).astype(np.float32)
            q = np.rint(flat * scale[:, None]).astype(np.int8).reshape(t.shape)
            out[name], out[name + "_scale"] = torch.from_numpy(q), torch.from_numpy(scale)
        elif name.endswith("/weight") and quantization == "int16":
            scale = np.float32(2**10 / np.abs(t.numpy()).max())
            q = np.clip(np.rint(t.numpy() * scale), -32768, 32767).astype(np.int16)
            out[name], out[name + "_scale"] = torch.from_numpy(q), torch.tensor(scale)
        else:
            out[name] = t.to(_CT2_FLOAT[quantization])
    return out


def ct2_binary_bytes(variables: dict[str, torch.Tensor], aliases: dict[str, str] | None = None,
                     spec: str = "WhisperSpec", revision: int = 3, version: int = 6) -> bytes:
    """Serialise like ``ModelSpec._serialize`` (sorted names, little-endian)."""
    def string(s: str) -> bytes:
        raw = s.encode("utf-8") + b"\0"
        return struct.pack("<H", len(raw)) + raw

    chunks = [struct.pack("<I", version), string(spec),
              struct.pack("<II", revision, len(variables))]
    for name in sorted(variables):
        t = variables[name].contiguous()
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes()
        chunks += [string(name), struct.pack(f"<B{t.dim()}I", t.dim(), *t.shape),
                   struct.pack("<BI", _CT2_DTYPE_IDS[t.dtype], len(data)), data]
    aliases = aliases or {}
    chunks.append(struct.pack("<I", len(aliases)))
    for alias in sorted(aliases):
        chunks += [string(alias), string(aliases[alias])]
    return b"".join(chunks)


def write_ct2_dir(model: Whisper, out_dir: Path, quantization: str = "float32",
                  n_parts: int = 0) -> Path:
    """A CTranslate2 Whisper folder; ``n_parts`` > 1 splits model.bin into model.bin.partN."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    blob = ct2_binary_bytes(ct2_variables(model, quantization),
                            {"decoder/projection/weight": "decoder/embeddings/weight"})
    if n_parts > 1:
        step = -(-len(blob) // n_parts)
        for i in range(n_parts):
            (out_dir / f"model.bin.part{i + 1}").write_bytes(blob[i * step:(i + 1) * step])
    else:
        (out_dir / "model.bin").write_bytes(blob)
    heads = _heads_pairs(model)
    config = {"alignment_heads": heads, "lang_ids": [], "suppress_ids": [],
              "suppress_ids_begin": []}
    (out_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    tokens = [f"tok{i}" for i in range(model.dims.n_vocab)]
    (out_dir / "vocabulary.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return out_dir


def _heads_pairs(model: Whisper) -> list[list[int]]:
    heads = model.alignment_heads
    dense = heads.to_dense() if heads.is_sparse else heads
    return [[int(i), int(j)] for i, j in dense.nonzero().tolist()]


# ---------------------------------------------------------------- Hugging Face writer

def hf_state_dict(model: Whisper) -> dict[str, torch.Tensor]:
    """``WhisperForConditionalGeneration`` names for ``model`` (proj_out tied, not stored)."""
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    d = model.dims
    out = {
        "model.encoder.conv1.weight": sd["encoder.conv1.weight"],
        "model.encoder.conv1.bias": sd["encoder.conv1.bias"],
        "model.encoder.conv2.weight": sd["encoder.conv2.weight"],
        "model.encoder.conv2.bias": sd["encoder.conv2.bias"],
        "model.encoder.embed_positions.weight": sd["encoder.positional_embedding"],
        "model.encoder.layer_norm.weight": sd["encoder.ln_post.weight"],
        "model.encoder.layer_norm.bias": sd["encoder.ln_post.bias"],
        "model.decoder.embed_tokens.weight": sd["decoder.token_embedding.weight"],
        "model.decoder.embed_positions.weight": sd["decoder.positional_embedding"],
        "model.decoder.layer_norm.weight": sd["decoder.ln.weight"],
        "model.decoder.layer_norm.bias": sd["decoder.ln.bias"],
    }
    pairs = {"attn": "self_attn", "cross_attn": "encoder_attn"}
    projs = {"query": "q_proj", "key": "k_proj", "value": "v_proj", "out": "out_proj"}
    lns = {"attn_ln": "self_attn_layer_norm", "cross_attn_ln": "encoder_attn_layer_norm",
           "mlp_ln": "final_layer_norm", "mlp.0": "fc1", "mlp.2": "fc2"}
    for side, n in (("encoder", d.n_audio_layer), ("decoder", d.n_text_layer)):
        for i in range(n):
            src, dst = f"{side}.blocks.{i}", f"model.{side}.layers.{i}"
            for ours, theirs in pairs.items():
                for p_ours, p_theirs in projs.items():
                    for kind in ("weight", "bias"):
                        key = f"{src}.{ours}.{p_ours}.{kind}"
                        if key in sd:
                            out[f"{dst}.{theirs}.{p_theirs}.{kind}"] = sd[key]
            for ours, theirs in lns.items():
                for kind in ("weight", "bias"):
                    if f"{src}.{ours}.{kind}" in sd:
                        out[f"{dst}.{theirs}.{kind}"] = sd[f"{src}.{ours}.{kind}"]
    return out


def hf_config(dims: ModelDimensions) -> dict:
    return {
        "architectures": ["WhisperForConditionalGeneration"], "model_type": "whisper",
        "d_model": dims.n_audio_state, "encoder_layers": dims.n_audio_layer,
        "encoder_attention_heads": dims.n_audio_head, "decoder_layers": dims.n_text_layer,
        "decoder_attention_heads": dims.n_text_head, "num_mel_bins": dims.n_mels,
        "max_source_positions": dims.n_audio_ctx, "max_target_positions": dims.n_text_ctx,
        "vocab_size": dims.n_vocab, "encoder_ffn_dim": 4 * dims.n_audio_state,
        "decoder_ffn_dim": 4 * dims.n_text_state, "activation_function": "gelu",
    }


def write_hf_dir(model: Whisper, out_dir: Path, n_shards: int = 1) -> Path:
    """A Hugging Face Whisper folder: config.json, generation_config.json, safetensors."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(hf_config(model.dims)), encoding="utf-8")
    gen = {"alignment_heads": _heads_pairs(model)}
    (out_dir / "generation_config.json").write_text(json.dumps(gen), encoding="utf-8")
    tensors = hf_state_dict(model)
    if n_shards <= 1:
        save_file(tensors, str(out_dir / "model.safetensors"))
        return out_dir
    names = sorted(tensors)
    weight_map = {}
    for s in range(n_shards):
        shard = f"model-{s + 1:05d}-of-{n_shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[s::n_shards]}
        save_file(part, str(out_dir / shard))
        weight_map.update({n: shard for n in part})
    index = {"metadata": {}, "weight_map": weight_map}
    (out_dir / "model.safetensors.index.json").write_text(json.dumps(index), encoding="utf-8")
    return out_dir


# ---------------------------------------------------------------- hostile checkpoint

class FileCreatingPayload:
    """Unpickling this calls ``open(marker, "w")``: proof that a loader ran stored code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_hostile_checkpoint(path: Path, marker: Path, style: str = "zip") -> Path:
    """A checkpoint whose unpickling would create ``marker``; style: zip | legacy | raw."""
    obj = {"dims": {}, "model_state_dict": {}, "payload": FileCreatingPayload(marker)}
    if style == "raw":
        Path(path).write_bytes(pickle.dumps(obj))
    else:
        torch.save(obj, path, _use_new_zipfile_serialization=(style == "zip"))
    return Path(path)
