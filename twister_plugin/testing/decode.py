"""Test helpers for decoding and pseudo-labelling: tiny random Whisper models, real clips,
and the reference decode with openai-whisper's own ``whisper.decode``.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import whisper
from whisper.model import ModelDimensions, Whisper
from whisper.tokenizer import get_tokenizer


REPO = Path(__file__).resolve().parents[2]
TINY_DIMS = dict(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=2,
                 n_vocab=51865, n_text_ctx=448, n_text_state=64, n_text_head=2, n_text_layer=2)


def tiny_model(seed: int = 0, **dims: int) -> Whisper:
    """A random Whisper with tiny widths (multilingual vocabulary unless ``n_vocab`` says else).

    Whisper leaves the decoder's positional embedding uninitialised; it is filled here so that a
    seed gives the same model every time.
    """
    torch.manual_seed(seed)
    model = Whisper(ModelDimensions(**{**TINY_DIMS, **dims}))
    with torch.no_grad():
        model.decoder.positional_embedding.normal_(0.0, 0.02)
        model.decoder.token_embedding.weight.normal_(0.0, 0.2)  # softer logits than N(0, 1)
    return model.eval()


def ending_model(seed: int = 0) -> Whisper:
    """A tiny random Whisper whose decodes end at different steps for different audio.

    Plain random weights repeat one token forever whatever the audio. Here the EOT embedding
    gets a component along a direction ``u`` that the decoder's positional embedding grows
    along (so P(EOT) rises with the position), and the cross-attention keys and outputs are
    scaled up (sharp attention on a few frames, so the audio changes the text and with it the
    step at which EOT wins). Used to test batches whose sequences finish at different steps.
    """
    model = tiny_model(seed)
    gen = torch.Generator().manual_seed(seed + 5)
    u = torch.randn(model.dims.n_text_state, generator=gen)
    u /= u.norm()
    eot = get_tokenizer(model.is_multilingual, num_languages=model.num_languages).eot
    with torch.no_grad():
        pos = torch.arange(model.dims.n_text_ctx, dtype=torch.float32)[:, None]
        model.decoder.positional_embedding += 0.05 * pos * u  # [n_ctx, S]
        model.decoder.token_embedding.weight[eot] += 4.0 * u
        for block in model.decoder.blocks:
            block.cross_attn.key.weight *= 30.0
            block.cross_attn.out.weight *= 2.0
    return model


def tones(n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` sine tones of random length (1-10 s), pitch and loudness, 16 kHz float32."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        t = np.arange(int(rng.uniform(1, 10) * 16000)) / 16000
        freq, amp = rng.uniform(100, 3000), 0.3 * rng.uniform(0.2, 1)
        out.append((amp * np.sin(2 * np.pi * freq * t)).astype(np.float32))
    return out


def save_model(model: Whisper, path: str | Path) -> Path:
    """Write ``model`` in openai-whisper's checkpoint format (float32)."""
    path = Path(path)
    torch.save({"dims": asdict(model.dims), "model_state_dict": model.state_dict()}, path)
    return path


def base_checkpoint() -> Path | None:
    """tools/whisper/base.pt when it has been fetched, else None."""
    path = REPO / "tools" / "whisper" / "base.pt"
    return path if path.is_file() else None


def load_base() -> Whisper:
    path = base_checkpoint()
    if path is None:
        raise FileNotFoundError(f"{REPO}/tools/whisper/base.pt: run tools/get_whisper.sh base")
    return whisper.load_model(str(path), device="cpu")


def real_clips(set_name: str, n: int, max_seconds: float = 30.0,
               ) -> list[tuple[str, np.ndarray, str]]:
    """The first ``n`` utterances (id, 16-kHz waveform, language) of a shared set, at most
    ``max_seconds`` long each; None-safe callers should check :func:`shared_data` first."""
    from twister_plugin.data import load_audio, read_manifest
    from twister_plugin.testing.data import shared_data

    root = shared_data()
    if root is None:
        raise FileNotFoundError("shared/data is not beside the repository")
    dd = read_manifest(root / set_name / "manifest.tsv", fix_speaker_ids=True)
    out = []
    for utt in dd.utt_ids:
        if dd.utt2dur[utt] <= max_seconds:
            out.append((utt, load_audio(dd.wav_scp[utt], 16000), dd.utt2lang[utt]))
        if len(out) == n:
            break
    return out


def whisper_reference(model: Whisper, wave: np.ndarray, language: str | None,
                      **options) -> whisper.DecodingResult:
    """openai-whisper's own decode of one utterance (float32, no timestamps, temperature 0)."""
    audio = whisper.pad_or_trim(torch.as_tensor(wave, dtype=torch.float32))
    mel = whisper.log_mel_spectrogram(audio, model.dims.n_mels)
    opts = whisper.DecodingOptions(language=language, without_timestamps=True, fp16=False,
                                   temperature=0.0, **options)
    return whisper.decode(model, mel, opts)


def noise_and_silence(seconds: float = 5.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Digital silence and white noise (std 0.1) at 16 kHz: audio with no speech in it."""
    n = int(seconds * 16000)
    rng = np.random.default_rng(seed)
    return {"silence": np.zeros(n, np.float32),
            "noise": (0.1 * rng.standard_normal(n)).astype(np.float32)}


def write_wave_dir(out_dir: str | Path, waves: dict[str, np.ndarray],
                   utt2lang: dict[str, str] | None = None) -> Path:
    """A Kaldi dir (wav.scp, utt2spk, optional utt2lang) of 16-kHz FLAC files, one per id;
    an id whose wave is None gets a wav.scp path that does not exist."""
    import soundfile as sf

    out = Path(out_dir)
    (out / "wav").mkdir(parents=True, exist_ok=True)
    scp, spk = [], []
    for utt in sorted(waves):
        path = out / "wav" / f"{utt}.flac"
        if waves[utt] is not None:
            sf.write(path, waves[utt], 16000)
        scp.append(f"{utt} {path}\n")
        spk.append(f"{utt} spk{utt[:2]}\n")
    (out / "wav.scp").write_text("".join(scp), encoding="utf-8")
    (out / "utt2spk").write_text("".join(spk), encoding="utf-8")
    if utt2lang:
        (out / "utt2lang").write_text("".join(f"{u} {utt2lang[u]}\n" for u in sorted(utt2lang)),
                                      encoding="utf-8")
    return out


def write_segments_dir(out_dir: str | Path, waves: list[np.ndarray], gap_s: float = 0.5) -> Path:
    """One recording ``rec1`` holding ``waves`` separated by silence, with a ``segments`` file
    (utterances rec1-000, rec1-001, ...)."""
    import soundfile as sf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gap = np.zeros(int(gap_s * 16000), np.float32)
    parts, segs, t = [], [], 0.0
    for i, w in enumerate(waves):
        parts += [w, gap]
        segs.append(f"rec1-{i:03d} rec1 {t:.4f} {t + len(w) / 16000:.4f}\n")
        t += (len(w) + len(gap)) / 16000
    sf.write(out / "rec1.flac", np.concatenate(parts), 16000)
    (out / "wav.scp").write_text(f"rec1 {out / 'rec1.flac'}\n", encoding="utf-8")
    (out / "segments").write_text("".join(segs), encoding="utf-8")
    (out / "utt2spk").write_text("".join(f"rec1-{i:03d} rec1\n" for i in range(len(waves))),
                                 encoding="utf-8")
    return out


def loose_pseudo_label_conf(batch_size: int = 2, block_size: int | None = None) -> str:
    """pseudo_label YAML for the tiny random models: they loop, and these thresholds let some
    of their output through the filters (zh prompts, 40 tokens at most)."""
    block = "" if block_size is None else f"block_size: {block_size}\n"
    return (f"language: zh\nbatch_size: {batch_size}\n{block}"
            "decode:\n  max_new_tokens: 40\n"
            "filters:\n  logprob_threshold: -100\n  min_language_prob: 0.0\n"
            "  compression_ratio_threshold: 1000\n  ngram_max_count: 1000\n"
            "  suffix_min_units: 100000\n  allowed_languages: [zh, en, my]\n"
            "  zh_min_rate: 0.0\n  zh_max_rate: 1000\n")
