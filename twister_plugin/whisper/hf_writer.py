"""openai-whisper model -> Hugging Face ``WhisperForConditionalGeneration`` folder (offline).

Files: ``config.json`` (``WhisperConfig``), ``generation_config.json`` (language / task ids,
suppressed tokens, alignment heads), ``model.safetensors`` (HF names, ``proj_out.weight`` left
out: ``tie_word_embeddings`` makes it the token embedding), the ``WhisperTokenizer`` files and
``preprocessor_config.json`` (``twister_plugin.whisper.tokenizer_files``). Nothing here imports
transformers; the folder loads with ``from_pretrained(dir)`` and with our ``load_whisper``.

Names are the inverse of ``twister_plugin.whisper.hf.hf_to_openai_name`` (per layer i)::

    encoder.conv{1,2}.*              -> model.encoder.conv{1,2}.*
    encoder.positional_embedding     -> model.encoder.embed_positions.weight
    {encoder,decoder}.blocks.i.attn.{query,key,value,out}
                                     -> model.*.layers.i.self_attn.{q,k,v,out}_proj
    decoder.blocks.i.cross_attn.*    -> model.decoder.layers.i.encoder_attn.*
    attn_ln / cross_attn_ln / mlp_ln -> self_attn_layer_norm / encoder_attn_layer_norm /
                                        final_layer_norm;  mlp.0 / mlp.2 -> fc1 / fc2
    encoder.ln_post / decoder.ln     -> model.encoder.layer_norm / model.decoder.layer_norm
    decoder.token_embedding / positional_embedding -> model.decoder.embed_tokens / embed_positions
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import save_file
from whisper.model import Whisper

from twister_plugin.whisper.ct2_writer import alignment_pairs
from twister_plugin.whisper.tokenizer_files import hf_tokenizer_files, preprocessor_config
from twister_plugin.whisper.vocab import WhisperVocab, whisper_vocab

MAX_INITIAL_TIMESTAMP_INDEX = 50  # openai-whisper's max_initial_timestamp = 1.0 s / 0.02 s

# (openai name pattern, HF replacement), applied in order; the result gets the "model." prefix.
_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^encoder\.positional_embedding$", "encoder.embed_positions.weight"),
    (r"^decoder\.positional_embedding$", "decoder.embed_positions.weight"),
    (r"^decoder\.token_embedding\.", "decoder.embed_tokens."),
    (r"^encoder\.ln_post\.", "encoder.layer_norm."),
    (r"^decoder\.ln\.", "decoder.layer_norm."),
    (r"\.blocks\.(\d+)\.", r".layers.\1."),
    (r"\.attn_ln\.", ".self_attn_layer_norm."),
    (r"\.cross_attn_ln\.", ".encoder_attn_layer_norm."),
    (r"\.mlp_ln\.", ".final_layer_norm."),
    (r"\.attn\.", ".self_attn."),
    (r"\.cross_attn\.", ".encoder_attn."),
    (r"\.query\.", ".q_proj."),
    (r"\.key\.", ".k_proj."),
    (r"\.value\.", ".v_proj."),
    (r"\.out\.", ".out_proj."),
    (r"\.mlp\.0\.", ".fc1."),
    (r"\.mlp\.2\.", ".fc2."),
)


def openai_to_hf_name(name: str) -> str:
    for pattern, repl in _RENAMES:
        name = re.sub(pattern, repl, name)
    return "model." + name


def hf_tensors(model: Whisper, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """HF-named, contiguous CPU tensors of ``model`` (floats cast to ``dtype``)."""
    return {openai_to_hf_name(k): v.detach().to("cpu", dtype).contiguous()
            for k, v in model.state_dict().items()}


def hf_config(model: Whisper, vocab: WhisperVocab, dtype: torch.dtype) -> dict:
    """``WhisperConfig`` of ``model`` (all sizes; dropout off; the tokenizer's special ids)."""
    d = model.dims
    return {
        "architectures": ["WhisperForConditionalGeneration"],
        "model_type": "whisper",
        "activation_function": "gelu",
        "d_model": d.n_audio_state,
        "encoder_layers": d.n_audio_layer,
        "encoder_attention_heads": d.n_audio_head,
        "encoder_ffn_dim": 4 * d.n_audio_state,
        "decoder_layers": d.n_text_layer,
        "decoder_attention_heads": d.n_text_head,
        "decoder_ffn_dim": 4 * d.n_text_state,
        "num_mel_bins": d.n_mels,
        "max_source_positions": d.n_audio_ctx,
        "max_target_positions": d.n_text_ctx,
        "vocab_size": d.n_vocab,
        "num_hidden_layers": d.n_audio_layer,
        "scale_embedding": False,
        "tie_word_embeddings": True,
        "is_encoder_decoder": True,
        "use_cache": True,
        "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0,
        "encoder_layerdrop": 0.0, "decoder_layerdrop": 0.0,
        "init_std": 0.02,
        "apply_spec_augment": False,
        "use_weighted_layer_sum": False,
        "median_filter_width": 7,
        "bos_token_id": vocab.eot,
        "eos_token_id": vocab.eot,
        "pad_token_id": vocab.eot,
        "decoder_start_token_id": vocab.sot,
        "suppress_tokens": vocab.suppress_tokens,
        "begin_suppress_tokens": vocab.begin_suppress_tokens,
        "torch_dtype": str(dtype).removeprefix("torch."),
    }


def generation_config(model: Whisper, vocab: WhisperVocab) -> dict:
    """``GenerationConfig`` with everything ``WhisperForConditionalGeneration.generate`` reads."""
    out = {
        "alignment_heads": alignment_pairs(model),
        "begin_suppress_tokens": vocab.begin_suppress_tokens,
        "bos_token_id": vocab.eot,
        "decoder_start_token_id": vocab.sot,
        "eos_token_id": vocab.eot,
        "pad_token_id": vocab.eot,
        "forced_decoder_ids": None,
        "is_multilingual": vocab.multilingual,
        "max_initial_timestamp_index": MAX_INITIAL_TIMESTAMP_INDEX,
        "max_length": model.dims.n_text_ctx,
        "no_timestamps_token_id": vocab.no_timestamps,
        "prev_sot_token_id": vocab.id("<|startofprev|>"),
        "return_timestamps": False,
        "suppress_tokens": vocab.suppress_tokens,
    }
    if vocab.multilingual:
        out["lang_to_id"] = {f"<|{code}|>": i for code, i in vocab.language_ids.items()}
        out["task_to_id"] = {task: vocab.id(f"<|{task}|>") for task in ("transcribe", "translate")}
    return out


def write_hf_files(model: Whisper, out_dir: Path, dtype: torch.dtype = torch.float16) -> None:
    """Write the whole Hugging Face folder into the existing ``out_dir``."""
    vocab = whisper_vocab(model.dims.n_vocab)
    save_file(hf_tensors(model, dtype), str(out_dir / "model.safetensors"),
              metadata={"format": "pt"})
    files = {
        "config.json": _dumps(hf_config(model, vocab, dtype)),
        "generation_config.json": _dumps(generation_config(model, vocab)),
        "preprocessor_config.json": preprocessor_config(model.dims.n_mels),
        **hf_tokenizer_files(vocab),
    }
    for name, text in files.items():
        (out_dir / name).write_text(text, encoding="utf-8")


def _dumps(obj: object) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"
