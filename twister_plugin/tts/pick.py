"""Pick the TTS checkpoint that Whisper understands best: the round trip, not a training loss.

Every epoch file a TTS run kept (``*epoch.pth``: the n-best by the config's criterion and the
latest) speaks the same held-out sentences; Whisper transcribes them; the checkpoint with the
lowest round-trip MER becomes ``valid.roundtrip.best.pth`` (a link), which synthesis then loads
first (``synthesize.MODEL_FILES``). A report lists every candidate's MER, sentences spoken
and seconds of audio.
Training losses can't rank this: the mel loss is teacher-forced (true durations), and on 0.5 h
of speech the losses of the epochs that speak best and worst differ little (session 3).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from twister_plugin.bin.roundtrip_filter import token_cap
from twister_plugin.decode import BatchedDecoder
from twister_plugin.scoring.metrics import get_metric
from twister_plugin.scoring.score import score
from twister_plugin.tts.synthesize import SynthConfig, Synthesizer
from twister_plugin.utils.fileio import atomic_write_text

log = logging.getLogger(__name__)
LINK = "valid.roundtrip.best.pth"
MAX_ERR = 30.0  # token caps of the round trip as roundtrip_filter --max_err 30 (the GPU profile's)


@dataclass
class Candidate:
    checkpoint: str  # file name in the model dir
    mer: float  # round-trip MER (percent) over the sentences
    spoken: int  # sentences spoken (others too long / no phones)
    seconds: float  # audio produced


def candidates(model_dir: Path) -> list[Path]:
    """The distinct epoch files of a tts_train output dir, oldest epoch first."""
    files = {p.resolve() for p in model_dir.glob("*epoch.pth")}
    return sorted(files, key=lambda p: int(p.name.split("epoch")[0]))


def round_trip(synth: Synthesizer, sentences: list[str], decoder: BatchedDecoder,
               batch_size: int) -> Candidate:
    jobs = [j for j in synth.plan(list(enumerate(sentences, 1)), where="tts_pick")
            if j.phones and len(j.phones) <= synth.config.max_phones]
    jobs.sort(key=lambda j: len(j.phones))
    refs, hyps, seconds = {}, {}, 0.0
    for i in range(0, len(jobs), batch_size):
        batch = jobs[i: i + batch_size]
        torch.manual_seed(i)
        wavs = synth.speak(batch)
        kept = [(j, w) for j, w in zip(batch, wavs) if w is not None]
        if not kept:
            continue
        cap = max(token_cap(decoder, j.text, MAX_ERR) for j, _ in kept)  # as the round-trip filter
        res = decoder.decode_batch([w for _, w in kept], [j.lang for j, _ in kept], max_new_tokens=cap)
        for (j, w), r in zip(kept, res):
            refs[j.utt], hyps[j.utt] = j.text, r.text
            seconds += len(w) / synth.fs
    rate = score(refs, hyps, get_metric("mer"))[1].rate if refs else None
    return Candidate("", 100.0 if rate is None else float(rate), len(refs), round(seconds, 1))


def pick(model_dir: str | Path, sentences: list[str], decoder: BatchedDecoder, config: SynthConfig,
         batch_size: int = 32) -> dict:
    """Score every candidate, link the best as ``LINK``; the report (also ``tts_pick.json``)."""
    model_dir = Path(model_dir)
    files = candidates(model_dir)
    if not files:
        raise FileNotFoundError(f"{model_dir}: no *epoch.pth files to pick from")
    rows = []
    for f in files:
        c = round_trip(Synthesizer(model_dir, config, str(f)), sentences, decoder, batch_size)
        c.checkpoint = f.name
        log.info("%s: round-trip MER %.2f%% over %d sentences (%.1f s)", f.name, c.mer, c.spoken, c.seconds)
        rows.append(c)
    best = min(rows, key=lambda c: (c.mer, -int(c.checkpoint.split("epoch")[0])))  # ties: later epoch
    link = model_dir / LINK
    tmp = model_dir / f".{LINK}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(best.checkpoint, tmp)
    os.replace(tmp, link)
    report = dict(best=best.checkpoint, best_mer=best.mer, sentences=len(sentences),
                  candidates=[c.__dict__ for c in rows])
    atomic_write_text(model_dir / "tts_pick.json", json.dumps(report, indent=1) + "\n")
    return report
