"""Phone durations of pseudo-labelled speech from Whisper's own cross-attention (no aligner model).

The TTS must learn its alignment from scratch on 40 minutes of speech; session 3's H200 run (1,800
steps) never did: its durations spoke 3-5 blobs a sentence. Whisper, which wrote the labels,
already knows where each character is: openai-whisper's ``find_alignment`` (DTW over the
alignment heads' cross-attention, the machinery of its word timestamps) times each token of a
forced text. Here the forced text is the frontend's spoken form of the label, one unit per Han
character / English word / pause, so every unit gets a time span and every phone a share of it.

    aligner = WhisperAligner(model)                # language per sentence (zh if it has Han)
    spans = aligner(audio_16k, units)              # [(start_s, end_s)] per unit
    durs = phone_durations(units, spans, n_frames, frame_s=256 / 16000)   # frames per phone

The durations are a prior for the TTS's own alignment search (``durations_prior``) or its
hard durations (``teacher_durations``), see ``twister_plugin.tts.fastspeech``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from twister_plugin.tts.frontend import Unit


class AlignError(ValueError):
    """Audio or text that cannot be aligned (empty, longer than Whisper's 30-s window)."""


def spoken_string(units: Sequence[Unit]) -> tuple[str, list[tuple[int, int]]]:
    """Units -> the text Whisper is forced to read and each unit's [start, end) characters in it:
    Han characters and pauses are joined as written, English words get a leading space (as
    Whisper's own tokens do)."""
    parts, offsets, pos = [], [], 0
    for i, u in enumerate(units):
        piece = f" {u.text}" if u.kind == "en" and i > 0 else u.text
        lead = len(piece) - len(u.text)
        offsets.append((pos + lead, pos + len(piece)))
        parts.append(piece)
        pos += len(piece)
    return "".join(parts), offsets


class WhisperAligner:
    """Times the units of a sentence in its audio with a (multilingual) openai-whisper model."""

    def __init__(self, model, language: str = "auto"):
        self.model = model.eval()
        self.language = language  # "auto": "zh" if a unit is a Han character, else "en"
        self._tokenizers: dict[str | None, object] = {}

    def tokenizer(self, units: Sequence[Unit]):
        from whisper.tokenizer import get_tokenizer

        lang = self.language
        if lang == "auto":
            lang = "zh" if any(u.kind == "zh" for u in units) else "en"
        if not self.model.is_multilingual:
            lang = None
        if lang not in self._tokenizers:
            self._tokenizers[lang] = get_tokenizer(
                self.model.is_multilingual, num_languages=self.model.num_languages,
                language=lang, task="transcribe")
        return self._tokenizers[lang]

    @torch.inference_mode()
    def __call__(self, audio: np.ndarray, units: Sequence[Unit]) -> list[tuple[float, float]]:
        """audio (N,) float at 16 kHz, units -> (start, end) seconds per unit, in order."""
        import whisper
        from whisper.timing import find_alignment

        if not units:
            raise AlignError("no units to align")
        if not 0 < len(audio) <= whisper.audio.N_SAMPLES:
            raise AlignError(f"audio of {len(audio) / whisper.audio.SAMPLE_RATE:.2f} s: need "
                             f"(0, {whisper.audio.CHUNK_LENGTH}] s")
        text, offsets = spoken_string(units)
        tokenizer = self.tokenizer(units)
        tokens = tokenizer.encode(text)
        room = self.model.dims.n_text_ctx - len(tokenizer.sot_sequence) - 2  # + no_timestamps, eot
        if len(tokens) > room:
            raise AlignError(f"{len(tokens)} text tokens: more than the {room} Whisper's decoder "
                             "can read in one window")
        param = next(self.model.parameters())
        wav = torch.as_tensor(np.asarray(audio, dtype=np.float32), device=param.device)
        mel = whisper.log_mel_spectrogram(wav, self.model.dims.n_mels,
                                          padding=whisper.audio.N_SAMPLES)
        mel = whisper.pad_or_trim(mel[:, : whisper.audio.N_FRAMES], whisper.audio.N_FRAMES)
        mel = mel.to(param.dtype)
        words = find_alignment(self.model, tokenizer, tokens, mel,
                               len(audio) // whisper.audio.HOP_LENGTH)
        # the DTW's backtrace can put a token one frame before the audio (-0.02 s); the spans
        # are kept inside it
        dur = len(audio) / whisper.audio.SAMPLE_RATE
        return [(min(max(s, 0.0), dur), min(max(e, 0.0), dur))
                for s, e in unit_spans(text, offsets, [(w.word, w.start, w.end) for w in words])]


def unit_spans(text: str, offsets: Sequence[tuple[int, int]],
               words: Sequence[tuple[str, float, float]]) -> list[tuple[float, float]]:
    """Whisper's timed pieces (which concatenate to ``text``; a piece may hold several
    characters) -> (start, end) per unit: a piece's time is shared evenly by its characters."""
    joined = "".join(w for w, _, _ in words)
    if joined != text:
        raise AlignError(f"Whisper's aligned pieces {joined!r} do not spell the text {text!r}")
    char_start = np.zeros(len(text))
    char_end = np.zeros(len(text))
    pos = 0
    for word, start, end in words:
        n = len(word)
        edges = np.linspace(float(start), float(end), n + 1)
        char_start[pos: pos + n], char_end[pos: pos + n] = edges[:-1], edges[1:]
        pos += n
    return [(float(char_start[a]), float(char_end[b - 1])) for a, b in offsets]


def phone_durations(units: Sequence[Unit], spans: Sequence[tuple[float, float]], n_frames: int,
                    frame_s: float) -> list[int]:
    """Frames per phone (summing to ``n_frames``; at least one each when ``n_frames`` allows)
    from unit spans: a unit's phones share its span evenly, a pause takes the gap between its
    neighbours, other gaps are split at their middle, leading / trailing silence goes to the
    first / last phone (the TTS has no silence token)."""
    if len(units) != len(spans):
        raise AlignError(f"{len(units)} units but {len(spans)} spans")
    bounds: list[float] = []  # phone start times (s); the phone ends where the next starts
    prev_end = 0.0
    for i, (u, (start, end)) in enumerate(zip(units, spans)):
        if not u.phones:
            continue
        if u.kind == "pause":  # from the previous unit's end to the next timed unit's start
            nxt = next((s for v, (s, _) in zip(units[i + 1:], spans[i + 1:]) if v.kind != "pause"),
                       end)
            start, end = prev_end, max(prev_end, nxt)
        start = max(start, prev_end)
        end = max(end, start)
        k = len(u.phones)
        own = [start + (end - start) * j / k for j in range(k)]  # its phones share its span
        if bounds and u.kind != "pause":  # and its first phone takes half the gap before it
            own[0] = (prev_end + start) / 2
        bounds += own
        prev_end = end
    if not bounds:
        raise AlignError("no phones to time")
    frames = np.rint(np.asarray(bounds) / frame_s).astype(np.int64)
    frames[0] = 0
    frames = np.clip(frames, 0, n_frames)
    edges = np.append(np.maximum.accumulate(frames), n_frames)
    durs = np.diff(edges)
    return _at_least_one(durs, n_frames).tolist()


def _at_least_one(durs: np.ndarray, n_frames: int) -> np.ndarray:
    """Give zero-frame phones one frame taken from the longest phone (while it has frames to
    spare); the sum is kept."""
    durs = durs.copy()
    if n_frames < len(durs):
        return durs
    for i in np.flatnonzero(durs == 0):
        j = int(np.argmax(durs))
        durs[j] -= 1
        durs[i] += 1
    return durs
