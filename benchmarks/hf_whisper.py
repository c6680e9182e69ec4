"""openai-whisper model -> Hugging Face ``WhisperForConditionalGeneration`` in memory (needs
``transformers``), for side-by-side benchmarks; tensors named by the exporter's ``hf_tensors``."""
from __future__ import annotations

import torch

from twister_plugin.whisper.hf_writer import hf_tensors

def to_hf(model, language: str = "zh"):
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration
    from whisper.tokenizer import get_tokenizer

    d = model.dims
    cfg = WhisperConfig(
        vocab_size=d.n_vocab, num_mel_bins=d.n_mels, d_model=d.n_audio_state,
        encoder_layers=d.n_audio_layer, encoder_attention_heads=d.n_audio_head,
        decoder_layers=d.n_text_layer, decoder_attention_heads=d.n_text_head,
        encoder_ffn_dim=4 * d.n_audio_state, decoder_ffn_dim=4 * d.n_text_state,
        max_source_positions=d.n_audio_ctx, max_target_positions=d.n_text_ctx,
        decoder_start_token_id=50258, bos_token_id=50257, eos_token_id=50257, pad_token_id=50257,
        attn_implementation="sdpa",
    )
    hf = WhisperForConditionalGeneration(cfg)
    state = hf_tensors(model, torch.float32)
    missing, unexpected = hf.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if "proj_out" not in m]:
        raise RuntimeError(f"HF conversion: missing {missing}, unexpected {unexpected}")
    tok = get_tokenizer(model.is_multilingual, num_languages=model.num_languages)
    lang_to_id = {f"<|{c}|>": tok.special_tokens[f"<|{c}|>"] for c in tok.all_language_codes}
    hf.generation_config = GenerationConfig(
        decoder_start_token_id=tok.sot, eos_token_id=tok.eot, pad_token_id=tok.eot,
        bos_token_id=tok.eot, no_timestamps_token_id=tok.no_timestamps, lang_to_id=lang_to_id,
        task_to_id={"transcribe": tok.transcribe, "translate": tok.translate},
        is_multilingual=model.is_multilingual, max_length=d.n_text_ctx,
        suppress_tokens=list(tok.non_speech_tokens), begin_suppress_tokens=[220, tok.eot],
        return_timestamps=False,
    )
    return hf


def check_logits(model, hf, mel: torch.Tensor, prompt: list[int]) -> float:
    """Max |logit difference| between the two models on one prompt (conversion check)."""
    with torch.no_grad():
        ids = torch.tensor([prompt], device=mel.device)
        a = model.logits(ids, model.embed_audio(mel[:1]))
        b = hf(input_features=mel[:1], decoder_input_ids=ids).logits
    return (a.float() - b.float()).abs().max().item()
