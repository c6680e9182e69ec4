"""ESPnet shape files for a Kaldi data dir, from audio headers (no decoding) and the tokenizer.

``speech_shape``: ``utt n_samples`` at 16 kHz; ``text_shape``: ``utt n_tokens`` (prompt included).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import soundfile as sf

from twister_plugin.asr.tokenizer import WhisperPrompt
from twister_plugin.utils.fileio import atomic_open


def _read_map(path: Path) -> Dict[str, str]:
    out: Dict[str, str] = {}
    if not path.exists():
        return out
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split(maxsplit=1)
            if not parts:
                raise ValueError(f"{path}:{n}: empty line")
            out[parts[0]] = parts[1] if len(parts) > 1 else ""
    return out


def write_shapes(data_dir: Path, out_dir: Path, n_vocab: int, default_lang: str = "zh") -> Dict[str, Path]:
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    wavs = _read_map(data_dir / "wav.scp")
    texts = _read_map(data_dir / "text")
    langs = _read_map(data_dir / "utt2lang")
    durs = {k: float(v) for k, v in _read_map(data_dir / "utt2dur").items()}
    prompt = WhisperPrompt(n_vocab)
    speech_shape, text_shape = out_dir / "speech_shape", out_dir / "text_shape"
    with atomic_open(speech_shape) as fs, atomic_open(text_shape) as ft:
        for utt in sorted(texts):
            if utt not in wavs:
                raise ValueError(f"{data_dir / 'text'}: utterance {utt} has no entry in wav.scp")
            dur = durs.get(utt)
            if dur is None:
                dur = sf.info(wavs[utt]).duration
            fs.write(f"{utt} {max(1, round(dur * 16000))}\n")
            n_tok = len(prompt.encode(texts[utt], langs.get(utt, default_lang)))
            ft.write(f"{utt} {n_tok}\n")
    return {"speech_shape": speech_shape, "text_shape": text_shape}
