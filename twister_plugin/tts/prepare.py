"""Kaldi data dir (pseudo-labelled audio) -> ESPnet TTS dump dir.

Dump dir contract (every "key value" file sorted by utterance id):
    wav/<utt>.wav      16-bit PCM mono at ``fs``            wav.scp      utt -> wav path
    text               utt -> phone tokens (space-separated, all in tokens.txt)
    text.raw           utt -> original transcript            utt2spk, spk2utt
    utt2sid            utt -> speaker index (ESPnet "sids", text_int); spk2sid
    spembs.{ark,scp}   utt -> (D,) float32 normalised Whisper speaker embedding ("spembs")
    durations          utt -> frames per phone at ``hop`` from Whisper's cross-attention
                       (``durations: whisper``; ESPnet "durations", text_int), else absent
    speech_shape       utt -> samples                        text_shape.phn  utt -> tokens
    tokens.txt  frontend.yaml  voices.npz  stats.json  excluded (utt -> reason)  .done
    valid/             the same tables for the held-out utterances (``valid_count``)
Utterances with no phones, unreadable or too short/long audio are excluded and listed with the
reason in ``excluded`` and counted in stats.json; nothing is dropped silently.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from twister_plugin.tts.frontend import Frontend, FrontendConfig, Unit
from twister_plugin.data.audio import AudioError, load_utt, resample
from twister_plugin.data.kaldi import DataDir, DataError, read_kaldi_dir
from twister_plugin.tts.speaker import WHISPER_SR, VoiceBank, WhisperSpeakerEncoder
from twister_plugin.tts.symbols import SymbolTable
from twister_plugin.tts.whisper_align import AlignError, WhisperAligner, phone_durations
from twister_plugin.utils.fileio import atomic_open, atomic_write_text

log = logging.getLogger(__name__)
DURATIONS = ("none", "whisper")


@dataclass(frozen=True)
class PrepareConfig:
    fs: int = 16000  # sampling rate of the dumped audio (= the TTS model's)
    min_seconds: float = 0.5  # shorter utterances are excluded
    max_seconds: float = 20.0  # longer utterances are excluded (GPU memory)
    whisper: str = "tools/whisper/base.pt"  # Whisper checkpoint for speaker embeddings
    device: str = "cpu"  # device for the Whisper encoder
    keep_per_speaker: int = 20  # utterance embeddings kept per speaker in voices.npz
    valid_count: int = -1  # held out into <out>/valid; -1: n//20 clipped to [1, 50]; 0: none
    ref: str | None = None  # a prepared train dump: reuse its normalisation and speaker ids
    durations: str = "none"  # "whisper": phone durations from Whisper's alignment heads
    hop: int = 256  # frame hop (samples at fs) of those durations = the TTS fbank's hop_length
    language: str = "auto"  # language Whisper reads the labels in (durations); auto: zh if Han
    frontend: dict = field(default_factory=dict)  # FrontendConfig fields


@dataclass
class _Utt:
    utt: str
    spk: str
    raw_text: str
    phones: list[str]
    units: list[Unit]
    samples: int = 0
    emb: np.ndarray | None = None
    durations: list[int] | None = None
    aligned: bool = False  # durations from Whisper (False: even durations, alignment failed)


def prepare(data: str | Path, out: str | Path, config: PrepareConfig,
            encoder: WhisperSpeakerEncoder | None = None) -> dict:
    """Build the dump dir; returns the stats written to stats.json."""
    data, out = Path(data), Path(out)
    if config.durations not in DURATIONS:
        raise ValueError(f"durations={config.durations!r}: want one of {DURATIONS}")
    (out / ".done").unlink(missing_ok=True)
    dd = read_kaldi_dir(data, allow_pipes=True, allow_empty_text=True, fix_sort=True)
    frontend = Frontend(FrontendConfig.from_dict(config.frontend))
    excluded: dict[str, str] = {}
    utts = _phonemize(frontend, dd.text, dd.utt2spk, data / "text", excluded)
    encoder = encoder or WhisperSpeakerEncoder.from_checkpoint(config.whisper, config.device)
    utts = _audio_and_embeddings(utts, dd, out, config, encoder, excluded)
    if not utts:
        raise DataError(f"{data}: no usable utterance ({len(excluded)} excluded, see "
                           f"{out / 'excluded'})")
    bank, sid_of = _voice_bank(utts, config)
    _write_tables(out, utts, sid_of, frontend, bank, config)
    write_kv(out / "excluded", excluded)
    stats = _stats(utts, excluded, frontend, bank)
    atomic_write_text(out / "stats.json", json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(out / ".done", "")
    return stats


def _phonemize(frontend: Frontend, text: dict[str, str], utt2spk: dict[str, str], where: Path,
               excluded: dict[str, str]) -> list[_Utt]:
    keys = sorted(text)
    all_units = frontend.units_batch([text[k] for k in keys], where=str(where),
                                     labels=[f"utterance {k}" for k in keys])
    out = []
    for key, units in zip(keys, all_units, strict=True):
        ph = [p for u in units for p in u.phones]
        if ph:
            out.append(_Utt(key, utt2spk[key], text[key], ph, units))
        else:
            excluded[key] = "no_phones"
            log.warning("%s: %s: no phones from %r; excluded", where, key, text[key])
    return out


def _audio_and_embeddings(utts: list[_Utt], dd: DataDir, out: Path, config: PrepareConfig,
                          encoder: WhisperSpeakerEncoder, excluded: dict[str, str]) -> list[_Utt]:
    import soundfile as sf

    (out / "wav").mkdir(parents=True, exist_ok=True)
    aligner = WhisperAligner(encoder.model, config.language) if config.durations == "whisper" \
        else None
    kept = []
    for u in tqdm(utts, desc="tts_prepare audio+spembs" + "+durations" * bool(aligner),
                  unit="utt"):
        try:
            audio = load_utt(dd, u.utt, config.fs, max_seconds=config.max_seconds,
                             allow_pipes=True)
        except AudioError as e:
            excluded[u.utt] = "too_long" if "more than max_seconds" in str(e) else "bad_audio"
            log.warning("%s; excluded", e)
            continue
        if len(audio) < config.min_seconds * config.fs:
            excluded[u.utt] = "too_short"
            continue
        with atomic_open(out / "wav" / f"{u.utt}.wav", "wb") as f:
            sf.write(f, np.clip(audio, -1.0, 1.0), config.fs, format="WAV", subtype="PCM_16")
        u.samples = len(audio)
        audio16 = resample(audio, config.fs, WHISPER_SR)
        u.emb = encoder(audio16)
        if aligner is not None:
            u.durations = _durations(aligner, audio16, u, config)
        kept.append(u)
    return kept


def _durations(aligner: WhisperAligner, audio16: np.ndarray, u: _Utt, config: PrepareConfig
               ) -> list[int]:
    """Frames per phone from Whisper's alignment of the utterance's units; an utterance that cannot
    be aligned gets even durations (logged, and counted in stats.json)."""
    n_frames = u.samples // config.hop + 1  # = ESPnet's fbank frames (center=True)
    try:
        spans = aligner(audio16, u.units)
        durations = phone_durations(u.units, spans, n_frames, config.hop / config.fs)
        u.aligned = True
        return durations
    except AlignError as e:
        log.warning("%s: no Whisper alignment (%s); even durations", u.utt, e)
        n = len(u.phones)
        edges = np.rint(np.linspace(0, n_frames, n + 1)).astype(int)
        return np.diff(edges).tolist()


def _voice_bank(utts: list[_Utt], config: PrepareConfig) -> tuple[VoiceBank, dict[str, int]]:
    raw = np.stack([u.emb for u in utts])
    spks = [u.spk for u in utts]
    if config.ref is None:
        bank = VoiceBank.build(raw, spks, config.keep_per_speaker)
        return bank, {s: i for i, s in enumerate(bank.speakers)}
    ref = VoiceBank.load(Path(config.ref) / "voices.npz")
    sid_of = {str(s): i for i, s in enumerate(ref.speakers)}
    unseen = sorted(set(spks) - set(sid_of))
    if unseen:
        raise DataError(f"speakers not in the reference dump {config.ref}: {unseen[:5]} "
                           f"({len(unseen)} in all); hold out utterances of training speakers")
    if raw.shape[1] != ref.norm_mean.shape[0]:
        raise DataError(f"embedding dim {raw.shape[1]} != reference {ref.norm_mean.shape[0]}"
                           " (different Whisper?)")
    return VoiceBank.build(raw, spks, config.keep_per_speaker,
                           norm=(ref.norm_mean, ref.norm_std)), sid_of


def _split_valid(utts: list[_Utt], count: int) -> tuple[list[_Utt], list[_Utt]]:
    """Hold out ``count`` utterances spread evenly over the (sorted) list; rest is training."""
    if count < 0:
        count = min(50, max(1, len(utts) // 20)) if len(utts) >= 2 else 0
    if count == 0:
        return utts, []
    if count >= len(utts):
        raise DataError(f"valid_count={count} leaves no training data ({len(utts)} usable)")
    step = len(utts) / count
    held = {int(i * step + step / 2) for i in range(count)}
    return ([u for i, u in enumerate(utts) if i not in held],
            [u for i, u in enumerate(utts) if i in held])


def _write_tables(out: Path, utts: list[_Utt], sid_of: dict[str, int], frontend: Frontend,
                  bank: VoiceBank, config: PrepareConfig) -> None:
    train, valid = _split_valid(utts, config.valid_count)
    _write_split(out, train, sid_of, bank)
    if valid:
        _write_split(out / "valid", valid, sid_of, bank)
    table = SymbolTable.read(Path(config.ref) / "tokens.txt") if config.ref else frontend.symbols
    for folder in [out] + ([out / "valid"] if valid else []):
        table.write(folder / "tokens.txt")
        atomic_write_text(folder / "frontend.yaml", yaml.safe_dump(frontend.config.to_dict()))
    (VoiceBank.load(Path(config.ref) / "voices.npz") if config.ref else bank).save(
        out / "voices.npz")
    atomic_write_text(out / "prepare.yaml", yaml.safe_dump(asdict(config)))


def _write_split(folder: Path, utts: list[_Utt], sid_of: dict[str, int], bank: VoiceBank) -> None:
    import kaldiio

    folder.mkdir(parents=True, exist_ok=True)
    emb = bank.normalise(np.stack([u.emb for u in utts])).astype(np.float32)
    ark, scp = (folder / "spembs.ark").resolve(), (folder / "spembs.scp").resolve()
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as writer:
        for u, e in zip(utts, emb, strict=True):
            writer(u.utt, e)
    wav_dir = (folder if folder.name != "valid" else folder.parent) / "wav"
    write_kv(folder / "wav.scp", {u.utt: (wav_dir / f"{u.utt}.wav").resolve() for u in utts})
    write_kv(folder / "text", {u.utt: " ".join(u.phones) for u in utts})
    write_kv(folder / "text.raw", {u.utt: u.raw_text for u in utts})
    utt2spk = {u.utt: u.spk for u in utts}
    write_kv(folder / "utt2spk", utt2spk)
    write_kv(folder / "spk2utt", spk2utt(utt2spk))
    write_kv(folder / "utt2sid", {u.utt: sid_of[u.spk] for u in utts})
    write_kv(folder / "spk2sid", sid_of)
    write_kv(folder / "speech_shape", {u.utt: u.samples for u in utts})
    write_kv(folder / "text_shape.phn", {u.utt: len(u.phones) for u in utts})
    if utts[0].durations is not None:
        write_kv(folder / "durations", {u.utt: " ".join(map(str, u.durations)) for u in utts})


def _stats(utts: list[_Utt], excluded: dict[str, str], frontend: Frontend, bank: VoiceBank
           ) -> dict:
    secs = np.array([u.samples for u in utts], dtype=float)
    reasons: dict[str, int] = {}
    for r in excluded.values():
        reasons[r] = reasons.get(r, 0) + 1
    return {
        "utterances": len(utts),  # train + valid
        "speakers": len({u.spk for u in utts}),
        "excluded": reasons,
        "speech_samples_total": int(secs.sum()),
        "phones_per_utt_mean": float(np.mean([len(u.phones) for u in utts])),
        "spembs_dim": int(bank.norm_mean.shape[0]),
        "durations": _duration_stats(utts),
        "frontend": frontend.stats(),
    }


def _duration_stats(utts: list[_Utt]) -> dict | None:
    if utts[0].durations is None:
        return None
    d = np.concatenate([np.asarray(u.durations) for u in utts])
    return {"source": "whisper", "unaligned_utterances": sum(not u.aligned for u in utts),
            "frames_per_phone_mean": float(d.mean()), "zero_frame_phones": int((d == 0).sum())}


def write_kv(path: Path, table: dict) -> None:
    """Sorted "key value" lines, atomically (ESPnet/Kaldi table files)."""
    with atomic_open(path, "w") as f:
        f.writelines(f"{k} {table[k]}\n" for k in sorted(table))


def spk2utt(utt2spk: dict[str, str]) -> dict[str, str]:
    groups: dict[str, list[str]] = {}
    for utt, spk in sorted(utt2spk.items()):
        groups.setdefault(spk, []).append(utt)
    return {spk: " ".join(utts) for spk, utts in groups.items()}
