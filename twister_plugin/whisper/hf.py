"""Hugging Face ``WhisperForConditionalGeneration`` folder -> openai-whisper weights.

Folder contract: ``config.json`` (d_model, encoder_layers, encoder_attention_heads,
decoder_layers, decoder_attention_heads, num_mel_bins, max_source_positions,
max_target_positions, vocab_size) and ``model.safetensors`` or ``model.safetensors.index.json``
+ its shards; optional ``generation_config.json`` (``alignment_heads``: [[layer, head], ...]).
Read with ``safetensors`` only (no ``transformers``).

Names (per layer i; a leading ``model.`` is optional, ``proj_out.weight`` is the tied embedding):
  model.encoder.conv{1,2}                       -> encoder.conv{1,2}
  model.encoder.embed_positions.weight          -> encoder.positional_embedding
  model.{enc,dec}oder.layers.i.self_attn.{q,k,v,out}_proj -> blocks.i.attn.{query,key,value,out}
  model.decoder.layers.i.encoder_attn.*         -> blocks.i.cross_attn.*
  *.self_attn_layer_norm / encoder_attn_layer_norm / final_layer_norm
                                                -> attn_ln / cross_attn_ln / mlp_ln
  *.fc1 / fc2                                   -> mlp.0 / mlp.2
  model.encoder.layer_norm / model.decoder.layer_norm -> encoder.ln_post / decoder.ln
  model.decoder.embed_tokens / embed_positions  -> decoder.token_embedding / positional_embedding
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from whisper.model import ModelDimensions

from twister_plugin.whisper.errors import WhisperFormatError
from twister_plugin.whisper.weights import WhisperWeights, check_vocab_size, heads_from_pairs

# (HF name fragment, openai name fragment), applied in order to the name after the prefix.
_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^encoder\.embed_positions\.weight$", "encoder.positional_embedding"),
    (r"^decoder\.embed_positions\.weight$", "decoder.positional_embedding"),
    (r"^decoder\.embed_tokens\.", "decoder.token_embedding."),
    (r"^encoder\.layer_norm\.", "encoder.ln_post."),
    (r"^decoder\.layer_norm\.", "decoder.ln."),
    (r"\.layers\.(\d+)\.", r".blocks.\1."),
    (r"\.self_attn_layer_norm\.", ".attn_ln."),
    (r"\.encoder_attn_layer_norm\.", ".cross_attn_ln."),
    (r"\.final_layer_norm\.", ".mlp_ln."),
    (r"\.self_attn\.", ".attn."),
    (r"\.encoder_attn\.", ".cross_attn."),
    (r"\.q_proj\.", ".query."),
    (r"\.k_proj\.", ".key."),
    (r"\.v_proj\.", ".value."),
    (r"\.out_proj\.", ".out."),
    (r"\.fc1\.", ".mlp.0."),
    (r"\.fc2\.", ".mlp.2."),
)
_CONFIG_KEYS = {
    "n_mels": "num_mel_bins",
    "n_audio_ctx": "max_source_positions",
    "n_audio_state": "d_model",
    "n_audio_head": "encoder_attention_heads",
    "n_audio_layer": "encoder_layers",
    "n_vocab": "vocab_size",
    "n_text_ctx": "max_target_positions",
    "n_text_state": "d_model",
    "n_text_head": "decoder_attention_heads",
    "n_text_layer": "decoder_layers",
}


def is_hf_dir(path: Path) -> bool:
    return path.is_dir() and (
        (path / "model.safetensors").exists() or (path / "model.safetensors.index.json").exists()
    )


def hf_to_openai_name(name: str) -> str:
    name = name.removeprefix("model.")
    for pattern, repl in _RENAMES:
        name = re.sub(pattern, repl, name)
    return name


def load_hf_dir(model_dir: Path) -> WhisperWeights:
    """Read a Hugging Face Whisper folder into openai-whisper names."""
    model_dir = Path(model_dir)
    dims = _dims(model_dir / "config.json")
    tensors = _read_safetensors(model_dir)
    label = model_dir / "model.safetensors"
    state: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        if name in ("proj_out.weight", "model.proj_out.weight"):
            continue  # tied to the token embedding, checked below
        state[hf_to_openai_name(name)] = tensor
    embedding = state.get("decoder.token_embedding.weight")
    proj = tensors.get("proj_out.weight", tensors.get("model.proj_out.weight"))
    if proj is not None and (embedding is None or not torch.equal(proj, embedding)):
        raise WhisperFormatError(f"{label}: proj_out.weight is not tied to embed_tokens.weight")
    check_vocab_size(dims.n_vocab, model_dir / "config.json", model_dir / "vocabulary.txt")
    if embedding is not None and embedding.shape[0] != dims.n_vocab:
        raise WhisperFormatError(
            f"{label}: embed_tokens has {embedding.shape[0]} rows, config.json says "
            f"vocab_size={dims.n_vocab}"
        )
    heads = _generation_heads(model_dir / "generation_config.json", dims)
    return WhisperWeights(dims, state, heads, label)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise WhisperFormatError(f"{path}: missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WhisperFormatError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise WhisperFormatError(f"{path}: expected a JSON object")
    return data


def _dims(config_path: Path) -> ModelDimensions:
    config = _read_json(config_path)
    arch = config.get("architectures") or []
    if config.get("model_type", "whisper") != "whisper" or any("Whisper" not in a for a in arch):
        raise WhisperFormatError(
            f"{config_path}: not a Whisper config (model_type={config.get('model_type')!r}, "
            f"architectures={arch})"
        )
    values = {}
    for ours, theirs in _CONFIG_KEYS.items():
        v = config.get(theirs)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise WhisperFormatError(
                f"{config_path}: {theirs} must be a positive integer, got {v!r}"
            )
        values[ours] = v
    return ModelDimensions(**values)


def _read_safetensors(model_dir: Path) -> dict[str, torch.Tensor]:
    single = model_dir / "model.safetensors"
    if single.is_file():
        return _load(single)
    index_path = model_dir / "model.safetensors.index.json"
    if not index_path.is_file():
        raise WhisperFormatError(f"{single}: missing (no model.safetensors or its index)")
    weight_map = _read_json(index_path).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise WhisperFormatError(f"{index_path}: weight_map missing or empty")
    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        tensors.update(_load(model_dir / str(shard)))
    absent = sorted(set(weight_map) - set(tensors))
    if absent:
        raise WhisperFormatError(f"{index_path}: tensors listed but not in shards: {absent[:5]}")
    return tensors


def _load(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WhisperFormatError(f"{path}: missing")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise WhisperFormatError(f"{path}: not a readable safetensors file ({e})") from e


def _generation_heads(path: Path, dims: ModelDimensions) -> torch.Tensor | None:
    if not path.is_file():
        return None
    pairs = _read_json(path).get("alignment_heads")
    return None if pairs is None else heads_from_pairs(pairs, dims, path)
