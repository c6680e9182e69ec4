"""Speak a text corpus with a trained Twister TTS: wavs + Kaldi dir + lhotse manifests.

Sharding: line i (1-based, non-empty) of the corpus belongs to shard ((i - 1) % N) + 1 of N.
Each line's voice and speed come from a generator seeded with (seed, i), so a sentence gets the
same voice whatever the sharding. Outputs under --out:
    wav/<utt>.wav                   16-bit PCM, written atomically; an existing readable wav is
                                    kept (resume), so a rerun only synthesises what is missing
    shards/<j>of<N>/{wav.scp,text,text.spoken,utt2spk,utt2lang,utt2dur,utt2frames,skipped,
                    recordings.jsonl.gz,supervisions.jsonl.gz} + .done (the lhotse parts are
                    made by each shard, so the merge only interleaves their lines)
    wav.scp text text.spoken utt2spk spk2utt utt2lang utt2dur recordings.jsonl.gz
    supervisions.jsonl.gz .done     merged once every shard is done
utt id = "<voice>-<line:08d>"; voice = "<prefix>-<training speaker>" (seen) or
"<prefix>-v<k:03d>" (sampled). text = the corpus line as written; text.spoken = read-out form.
"""
from __future__ import annotations

import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm import tqdm

from twister_plugin.data.kaldi import iter_lines
from twister_plugin.tts.frontend import Frontend, FrontendConfig
from twister_plugin.tts.speaker import VoiceBank
from twister_plugin.tts.symbols import SymbolTable
from twister_plugin.tts.text_norm import spoken_text
from twister_plugin.tts.synth_io import ShardWriter, merge_if_complete, wav_ok, write_wav
from twister_plugin.utils.timing import Stopwatch

log = logging.getLogger(__name__)
LOOKAHEAD = 2  # spoken batches that may wait for the writer threads (memory: ~3 batches of audio)

# first that exists is used: GAN configs rank by train.total_count (= the latest epoch), mel
# configs by valid.synth_loss (mel + duration loss, TwisterFastSpeech), older mel runs by
# valid.mel_loss. The mel loss alone is teacher-forced (true durations), so it cannot see the
# duration predictor. Session 3 (H200, 375 S0150 utterances, epochs 1-6): valid mel loss 0.81,
# 0.70, 0.68, 0.69, 0.70, 0.70 while valid duration loss 0.81, 0.69, 0.65, 0.31, 0.40, 0.50;
# synthesis from the mel-loss "best" (epoch 3) gave 3-5 voiced blobs per 15-20-syllable
# sentence (round-trip MER 107%); synth_loss picks epoch 4.
# A checkpoint picked by round trip (tts_pick: Whisper reads what each kept epoch says) comes first.
MODEL_FILES = ("valid.roundtrip.best.pth", "train.total_count.best.pth", "valid.synth_loss.best.pth",
               "valid.mel_loss.best.pth", "latest.pth")


def pick_model_file(model_dir: Path) -> Path:
    """The checkpoint synthesis uses by default: the first of MODEL_FILES in ``model_dir``."""
    found = next((model_dir / m for m in MODEL_FILES if (model_dir / m).exists()), None)
    if found is None:
        raise FileNotFoundError(f"{model_dir}: no model file ({' or '.join(MODEL_FILES)})")
    return found


@dataclass(frozen=True)
class SynthConfig:
    speakers: str = "seen"  # "seen": training voices; "sample": Gaussian-sampled unseen voices
    num_voices: int = 20  # size of the sampled voice pool (speakers="sample")
    speed_range: tuple[float, float] = (1.0, 1.0)  # speaking-rate factor drawn per sentence
    batch_size: int = 8  # sentences per generator call
    noise_scale: float = 0.667  # VITS flow noise (ESPnet default)
    noise_scale_dur: float = 0.8  # VITS stochastic duration noise (ESPnet default)
    gl_iters: int = 48  # Griffin-Lim iterations (mel models)
    max_phones: int = 400  # longer sentences are skipped and listed in "skipped"
    max_seconds: float = 30.0  # sentences predicted longer are skipped ("audio_too_long")
    seed: int = 0  # voices/speeds depend on (seed, line number) only
    prefix: str = "synth"  # speaker/utterance id prefix
    device: str = "cpu"  # torch device
    writers: int = 4  # threads writing wavs while the model speaks the next batch; 0: write in turn
    fsync: str = "shard"  # "shard": one flush of the disk before the shard is marked done; "wav": each wav

    def __post_init__(self):
        if self.fsync not in ("shard", "wav"):  # anything else would leave wavs never flushed
            raise ValueError(f"SynthConfig.fsync {self.fsync!r}: want 'shard' or 'wav'")


@dataclass
class Job:
    """One sentence to speak."""

    line: int  # 1-based line number in the corpus
    text: str  # as written in the corpus
    voice: str  # speaker label in utt2spk
    speed: float  # speaking-rate factor (> 1 faster)
    emb: np.ndarray  # (D,) speaker embedding
    sid: int  # training speaker index (nearest one for sampled voices)
    phones: list[str] = field(default_factory=list)
    spoken: str = ""
    lang: str = "zh"

    @property
    def utt(self) -> str:
        return f"{self.voice}-{self.line:08d}"


class SeenVoices:
    """A training speaker per line, with one of its kept utterance embeddings."""

    def __init__(self, bank: VoiceBank, prefix: str):
        self.bank, self.prefix = bank, prefix

    def pick(self, rng: np.random.Generator) -> tuple[str, np.ndarray, int]:
        sid = int(rng.integers(len(self.bank.speakers)))
        spk = str(self.bank.speakers[sid])
        return f"{self.prefix}-{spk}", self.bank.seen(spk, rng), sid


class SampledVoices:
    """A pool of unseen voices drawn from the bank's Gaussian; a line picks one of them."""

    def __init__(self, bank: VoiceBank, prefix: str, num_voices: int, seed: int):
        rng = np.random.default_rng([seed, 0x5EED])
        self.pool = [bank.sample(rng) for _ in range(num_voices)]
        self.sids = [bank.nearest_sid(e) for e in self.pool]
        self.prefix = prefix

    def pick(self, rng: np.random.Generator) -> tuple[str, np.ndarray, int]:
        k = int(rng.integers(len(self.pool)))
        return f"{self.prefix}-v{k:03d}", self.pool[k], self.sids[k]


def read_corpus(path: Path, shard: int, num_shards: int) -> Iterator[tuple[int, str]]:
    """(line number, text) of this shard's non-empty lines."""
    lines = [(n, line.strip()) for n, line in iter_lines(Path(path)) if line.strip()]  # file:line errors
    return (x for i, x in enumerate(lines) if i % num_shards == shard - 1)


class Synthesizer:
    """A trained model dir (config.yaml, *.pth, tokens.txt, frontend.yaml, voices.npz).

    The config's ``tts`` picks the task that loads the model and the engine that speaks
    (``synth_engines``: VITS waveforms, or TwisterFastSpeech log-mels + Griffin-Lim).
    """

    def __init__(self, model_dir: str | Path, config: SynthConfig, model_file: str | None = None):
        from twister_plugin.tts.loader import load_tts
        from twister_plugin.tts.synth_engines import engine_for

        self.dir, self.config = Path(model_dir), config
        if not (self.dir / "config.yaml").is_file():
            raise FileNotFoundError(f"{self.dir}: no config.yaml (not a tts_train --output_dir)")
        ckpt = Path(model_file) if model_file else pick_model_file(self.dir)
        if not ckpt.exists():
            raise FileNotFoundError(f"{ckpt}: no such model file")
        model, args = load_tts(self.dir / "config.yaml", ckpt, config.device)  # without ESPnet's task
        self.model = model.eval()
        self.engine = engine_for(self.model, args, config.noise_scale, config.noise_scale_dur,
                                 config.gl_iters)
        self.fs = self.engine.fs
        self.table = SymbolTable.from_list(args.token_list, where=str(self.dir / "config.yaml"))
        self.frontend = Frontend(FrontendConfig.from_dict(getattr(args, "frontend_conf", {})))
        bank = VoiceBank.load(self.dir / "voices.npz")
        self.voices = (SeenVoices(bank, config.prefix) if config.speakers == "seen" else
                       SampledVoices(bank, config.prefix, config.num_voices, config.seed))
        log.info("TTS %s (%s, %s), fs=%d, %d training speakers, voices=%s", ckpt,
                 type(self.engine).__name__, config.device, self.fs, len(bank.speakers),
                 config.speakers)

    def plan(self, lines: list[tuple[int, str]], where: str) -> list[Job]:
        jobs = []
        for line, text in lines:
            rng = np.random.default_rng([self.config.seed, line])
            voice, emb, sid = self.voices.pick(rng)
            lo, hi = self.config.speed_range
            jobs.append(Job(line, text, voice, float(rng.uniform(lo, hi)), emb, sid))
        phones = self.frontend.phonemize_batch([j.text for j in jobs], where=where,
                                               labels=[f"line {j.line}" for j in jobs])
        for job, ph in zip(jobs, phones, strict=True):
            chunks = self.frontend.chunks(job.text)
            job.phones, job.spoken = ph, spoken_text(chunks)
            job.lang = "zh" if any(c.kind == "zh" for c in chunks) else "en"
        missing = self.table.missing(p for j in jobs for p in j.phones)
        if missing:
            log.warning("%s: phones not in the model's token list (read as <unk>): %s",
                        self.dir, sorted(missing)[:20])
        return jobs

    def speak(self, jobs: list[Job]) -> list[np.ndarray | None]:
        """Waveforms (float32, at self.fs) of a batch of jobs; None = longer than max_seconds."""
        dev = torch.device(self.config.device)
        ids = [torch.tensor(self.table.ids(j.phones), dtype=torch.long) for j in jobs]
        text = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True).to(dev)  # (B, T_text)
        lengths = torch.tensor([len(x) for x in ids], device=dev)  # (B,)
        spembs = torch.from_numpy(np.stack([j.emb for j in jobs])).to(dev)  # (B, D)
        sids = torch.tensor([j.sid for j in jobs], device=dev)  # (B,)
        alpha = torch.tensor([1.0 / j.speed for j in jobs], device=dev)  # (B,)
        hop = self.engine.hop
        max_frames = int(self.config.max_seconds * self.fs / hop)
        wav, frames = self.engine.speak(text, lengths, spembs, sids, alpha,
                                        max_frames)  # wav (B, T_wav), frames (B,)
        wav, frames = wav.float().cpu().numpy(), frames.tolist()  # one copy back (batches are length-sorted)
        return [None if n > max_frames else wav[b, : n * hop] for b, n in enumerate(frames)]


def synthesize_shard(synth: Synthesizer, corpus: Path, out: Path, shard: int = 1,
                     num_shards: int = 1) -> dict:
    """Synthesise one shard (resumable); merge all shards when this was the last one."""
    if not 1 <= shard <= num_shards:
        raise ValueError(f"shard {shard}/{num_shards}: want 1 <= shard <= num_shards")
    clock = Stopwatch()
    with clock("plan_s"):  # g2p of the shard's lines (CPU)
        jobs = synth.plan(list(read_corpus(corpus, shard, num_shards)), where=str(corpus))
    writer = ShardWriter(out, shard, num_shards)
    eligible = []
    for job in jobs:
        if not job.phones or len(job.phones) > synth.config.max_phones:
            writer.skip(job, "no_phones" if not job.phones else "too_long")
        else:
            eligible.append(job)
    # Fixed batches over the whole shard (by length, then line), each with its own noise seed, so
    # a resumed run redoes unfinished batches exactly as an uninterrupted run would have.
    eligible.sort(key=lambda j: (len(j.phones), j.line))
    bs = synth.config.batch_size
    batches = [eligible[i: i + bs] for i in range(0, len(eligible), bs)]
    todo, resumed = [], 0
    for b, batch in enumerate(batches):
        paths = [out / "wav" / f"{job.utt}.wav" for job in batch]
        if all(wav_ok(p) for p in paths):
            for job, path in zip(batch, paths):
                writer.add(job, path)
            resumed += len(batch)
        else:
            todo.append((b, batch))
    with tqdm(total=sum(len(batch) for _, batch in todo), desc=f"synthesize {shard}/{num_shards}",
              unit="utt") as bar:
        _speak_and_write(synth, todo, writer, out, clock, bar)
    if synth.config.fsync == "shard":
        with clock("flush_s"):  # the shard's wavs on disk before its .done marker says so
            os.sync()
    stats = writer.finish(resumed=resumed)
    with clock("merge_s"):  # only the last shard to finish merges
        merge_if_complete(out, num_shards, synth.fs)
    return dict(stats, **clock.seconds())


def _speak_and_write(synth: Synthesizer, todo: list[tuple[int, list[Job]]], writer: ShardWriter,
                     out: Path, clock: Stopwatch, bar: tqdm) -> None:
    """Speak the batches in order; ``config.writers`` threads write a batch's wavs while the model
    speaks the next ones (at most LOOKAHEAD batches wait). Entries reach ``writer`` in batch order."""
    fs, nthreads = synth.fs, synth.config.writers
    durable = synth.config.fsync == "wav"
    pool = ThreadPoolExecutor(nthreads, thread_name_prefix="wav-writer") if nthreads > 0 else None
    pending: deque = deque()  # (batch, futures or results)

    def drain(keep: int) -> None:
        while len(pending) > keep:
            batch, results = pending.popleft()
            with clock("write_s"):  # with writer threads: the time spent waiting for them
                for job, r in zip(batch, results, strict=True):
                    _record(writer, job, *(r.result() if pool else r), fs)
            bar.update(len(batch))

    try:
        for b, batch in todo:
            torch.manual_seed(synth.config.seed * 1_000_003 + b)  # model noise: (seed, batch) only
            with clock("speak_s"):  # model + vocoder, waveforms back on the CPU
                wavs = synth.speak(batch)
            if pool:
                pending.append((batch, [pool.submit(_write_one, j, w, out, fs, durable) for j, w in zip(batch, wavs, strict=True)]))
            else:
                with clock("write_s"):
                    pending.append((batch, [_write_one(j, w, out, fs, durable) for j, w in zip(batch, wavs, strict=True)]))
            drain(LOOKAHEAD if pool else 0)
        drain(0)
    finally:  # on an error: wavs already written stay (atomic), the shard is not marked done
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)


def _write_one(job: Job, wav: np.ndarray | None, out: Path, fs: int,
               durable: bool = True) -> tuple[Path | None, int | str]:
    """(path, frames) of the wav written for ``job``, or (None, reason) when it is skipped."""
    if wav is None or len(wav) == 0 or not np.isfinite(wav).all():
        return None, ("audio_too_long" if wav is None else
                      "empty_audio" if len(wav) == 0 else "non_finite_audio")
    path = out / "wav" / f"{job.utt}.wav"
    return path, write_wav(path, wav, fs, durable)


def _record(writer: ShardWriter, job: Job, path: Path | None, frames_or_reason: int | str, fs: int) -> None:
    if path is None:
        writer.skip(job, str(frames_or_reason))
    else:
        writer.add(job, path, int(frames_or_reason), fs)
