"""Decode every utterance of a data dir with the batched decoder (shared by asr_inference and the
round-trip filter). Unreadable audio is logged and returned, never silently dropped."""
from __future__ import annotations

import logging
import time
from typing import NamedTuple

from tqdm import tqdm

from twister_plugin.data.audio import AudioError, load_utt
from twister_plugin.data.kaldi import DataDir
from twister_plugin.decode import BatchedDecoder, DecodeResult

logger = logging.getLogger(__name__)


class Decoded(NamedTuple):
    ids: list[str]  # decoded utterances, in data-dir order
    results: list[DecodeResult]  # one per id
    bad: list[str]  # utterances whose audio could not be read
    audio_s: float  # seconds of audio decoded
    wall_s: float  # seconds spent decoding (audio loading excluded)


def decode_dir(dd: DataDir, decoder: BatchedDecoder, batch_size: int, language: str | None = None,
               on_bad_audio: str = "skip", max_seconds: float = 30.0,
               max_new_tokens: dict[str, int] | None = None) -> Decoded:
    """``language``: force one language; None: utt2lang where given, else detect. Audio longer
    than ``max_seconds`` (Whisper hears 30 s) is refused like unreadable audio, never cut:
    segment long recordings first (``python -m twister_plugin.bin.segment``).
    ``max_new_tokens``: a token cap per utterance id (see ``BatchedDecoder.decode_all``)."""
    ids, waves, langs, bad = [], [], [], []
    for utt in tqdm(dd.utt_ids, desc="load audio", unit="utt"):
        try:
            waves.append(load_utt(dd, utt, max_seconds=max_seconds))
        except AudioError as e:
            if on_bad_audio == "error":
                raise
            logger.warning("skip %s", e)
            bad.append(utt)
            continue
        ids.append(utt)
        lang = language or (dd.utt2lang or {}).get(utt)
        langs.append(None if lang in (None, "auto") else lang)
    t0 = time.perf_counter()
    caps = [max_new_tokens[u] for u in ids] if max_new_tokens is not None else None
    results = (decoder.decode_all(waves, languages=langs, batch_size=batch_size, progress=True,
                                  max_new_tokens=caps) if waves else [])
    wall = time.perf_counter() - t0
    audio_s = sum(len(w) for w in waves) / 16000
    logger.info("decoded %d utts (%.1f s audio) in %.1f s = %.1fx real time; %d unreadable",
                len(ids), audio_s, wall, audio_s / max(wall, 1e-9), len(bad))
    return Decoded(ids, results, bad, audio_s, wall)
