"""Test helpers for the TTS frontend and task: real shared data in Kaldi form, a tiny Whisper.

Nothing here fabricates audio: data dirs point at the FLAC files of ../shared/data.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

S0150 = "zh/aishell_sample_S0150"


def read_manifest(data_root: Path, subset: str) -> list[dict[str, str]]:
    """Rows of ``<data_root>/<subset>/manifest.tsv`` with ``audio`` made absolute."""
    folder = data_root / subset
    with open(folder / "manifest.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    for row in rows:
        row["audio"] = str((folder / row["audio"]).resolve())
    return rows


def code_switched(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Rows whose transcript has Latin letters (Mandarin-English code-switching)."""
    return [r for r in rows if re.search(r"[A-Za-z]", r["text"])]


def rows_to_kaldi_dir(rows: list[dict[str, str]], out: Path, speaker_of=None) -> Path:
    """wav.scp, text, utt2spk, spk2utt for ``rows`` (pseudo-label stand-ins); sorted by utt."""
    out.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda r: r["utt_id"])
    spk = {r["utt_id"]: (speaker_of(r) if speaker_of else r["speaker"]) for r in rows}
    (out / "wav.scp").write_text("".join(f"{r['utt_id']} {r['audio']}\n" for r in rows))
    (out / "text").write_text("".join(f"{r['utt_id']} {r['text']}\n" for r in rows))
    (out / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in spk.items()))
    spk2utt: dict[str, list[str]] = {}
    for u, s in spk.items():
        spk2utt.setdefault(s, []).append(u)
    (out / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in spk2utt.items()))
    return out


def tiny_whisper_checkpoint(path: Path, seed: int = 0) -> Path:
    """Save a random tiny multilingual Whisper in openai-whisper checkpoint format."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2,
                           n_audio_layer=2, n_vocab=51865, n_text_ctx=448, n_text_state=64,
                           n_text_head=2, n_text_layer=2)
    torch.manual_seed(seed)
    model = Whisper(dims)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": dims.__dict__, "model_state_dict": model.state_dict()}, path)
    return path
