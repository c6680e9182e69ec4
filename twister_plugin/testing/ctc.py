"""Real tiny data for the CTC tests: S0150 clips, their transcripts, and CTC emissions built so
the alignment answer is known."""
from __future__ import annotations

import numpy as np
import torch

from twister_plugin.data import load_utt
from twister_plugin.data.manifest import read_manifest
from twister_plugin.testing.asr import SHARED

S0150 = SHARED / "zh" / "aishell_sample_S0150" / "manifest.tsv"


def s0150_texts() -> dict[str, str]:
    """Every S0150 transcript by utterance id (audio not loaded)."""
    dd = read_manifest(S0150)
    return {u: dd.text[u] for u in dd.utt_ids}


def s0150_clips(n: int, first: int = 121) -> tuple[list[str], list[np.ndarray], list[str]]:
    """ids, 16-kHz waveforms and transcripts of ``n`` S0150 news utterances from W0121 on."""
    dd = read_manifest(S0150)
    ids = [u for u in dd.utt_ids if int(u[-4:]) >= first][:n]
    return ids, [load_utt(dd, u, 16000) for u in ids], [dd.text[u] for u in ids]


def spiky_emissions(ids: list[int], spans: list[tuple[int, int]], n_frames: int, n_classes: int,
                    peak: float = 0.97) -> torch.Tensor:
    """(F, V) log-probs: unit ``ids[k]`` has probability ``peak`` on frames ``spans[k]`` =
    [start, end), blank (class 0) has it everywhere else; the rest is spread evenly."""
    probs = torch.full((n_frames, n_classes), (1 - peak) / (n_classes - 1))
    probs[:, 0] = peak
    for unit, (s, e) in zip(ids, spans):
        probs[s:e, 0] = (1 - peak) / (n_classes - 1)
        probs[s:e, unit] = peak
    return probs.log()
