"""Test helpers: tiny random Whisper models written as CTranslate2 / Hugging Face / .pt files.

The writers spell out every target name themselves (they do not reuse the readers' tables),
so a naming or fusing mistake in a reader is not mirrored here. CTranslate2 files come from the
exporter's writer (``twister_plugin.whisper.ct2_writer``, which follows
``ctranslate2.specs.model_spec``: binary version 6, ``_quantize`` for int8/int16); tests load
its output with CTranslate2 itself to check it. ``write_ct2_dir`` takes any vocabulary size
(placeholder ``vocabulary.txt``), so it can also build the malformed models readers refuse.
"""
from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import torch
from whisper.model import ModelDimensions, Whisper

from twister_plugin.whisper import ct2_writer


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
    """CTranslate2 ``WhisperSpec`` variables (quantised as CTranslate2 would) of ``model``,
    without the aliased ``decoder/projection/weight``."""
    return ct2_writer.ct2_variables(model, quantization)[0]


def ct2_binary_bytes(variables: dict[str, torch.Tensor], aliases: dict[str, str] | None = None,
                     spec: str = "WhisperSpec", revision: int = 3, version: int = 6) -> bytes:
    """Serialise like ``ModelSpec._serialize`` (sorted names, little-endian)."""
    buf = io.BytesIO()
    ct2_writer.write_ct2_binary(buf, variables, aliases, spec, revision, version)
    return buf.getvalue()


def write_ct2_dir(model: Whisper, out_dir: Path, quantization: str = "float32",
                  n_parts: int = 0) -> Path:
    """A CTranslate2 Whisper folder; ``n_parts`` > 1 splits model.bin into model.bin.partN."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    blob = ct2_binary_bytes(*ct2_writer.ct2_variables(model, quantization))
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
