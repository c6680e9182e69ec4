"""Real weights (tools/get_whisper.sh): our converted models agree with CTranslate2 itself.

Needs tools/whisper/ct2/{base,tiny.en} (and the imported .pt files) and shared/data; skipped
when absent. Measured on the 2-core dev box: base encoder max |ours - CTranslate2| =
4.8e-4..1.15e-3 over librispeech utterances (outputs up to 24), tiny.en 6.6e-5; 20/20
transcripts (all 10 commonvoice_zh_cn + all 10 librispeech) identical to faster-whisper
greedy decoding; the test runs the 3 + 1 shortest to stay fast.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import whisper
import whisper.model

from twister_plugin.whisper import load_whisper

ROOT = Path(__file__).resolve().parents[3]
WEIGHTS = Path(os.environ.get("TWISTER_WHISPER_DIR", ROOT / "tools" / "whisper"))
DATA = ROOT / ".." / "shared" / "data"
ENCODER_TOL = 1e-3

torch.set_num_threads(1)
ctranslate2 = pytest.importorskip("ctranslate2")


def _ct2_dir(name: str) -> Path:
    d = WEIGHTS / "ct2" / name
    if not d.is_dir():
        pytest.skip(f"{d} absent: run bash tools/get_whisper.sh {name}")
    return d


@pytest.fixture(scope="module")
def base_joined(tmp_path_factory) -> Path:
    """CTranslate2 needs one model.bin: join the parts into a temp folder (ours reads parts)."""
    src = _ct2_dir("base")
    parts = sorted(src.glob("model.bin.part*"), key=lambda p: int(p.name.rsplit("part", 1)[1]))
    if not parts:
        return src
    dst = tmp_path_factory.mktemp("base_ct2")
    with open(dst / "model.bin", "wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
        if (src / name).exists():
            (dst / name).symlink_to(src / name)
    return dst


def _audio(rel: str, set_dir: Path) -> np.ndarray:
    import soundfile as sf
    import torchaudio

    audio, sr = sf.read(set_dir / rel, dtype="float32", always_2d=True)
    audio = torch.from_numpy(audio.mean(axis=1))
    if sr != 16000:
        audio = torchaudio.functional.resample(audio, sr, 16000)
    return audio.numpy()


def _mel(audio: np.ndarray, n_mels: int = 80) -> torch.Tensor:
    return whisper.pad_or_trim(whisper.log_mel_spectrogram(torch.from_numpy(audio), n_mels), 3000)


def _shortest(set_name: str, n: int) -> list[tuple[Path, dict]]:
    set_dir = DATA / set_name
    if not (set_dir / "manifest.tsv").is_file():
        pytest.skip(f"{set_dir} absent")
    with open(set_dir / "manifest.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    rows.sort(key=lambda r: float(r["duration_s"]))
    return [(set_dir, r) for r in rows[:n]]


def _encode_float64(model, mel: torch.Tensor) -> np.ndarray:
    """Reference encoder output in float64 (openai's LayerNorm forces float32; lift that)."""
    plain = lambda self, x: torch.nn.LayerNorm.forward(self, x)  # noqa: E731
    with mock.patch.object(whisper.model.LayerNorm, "forward", plain), torch.no_grad():
        return model.double().encoder(mel.double()).numpy()


@pytest.mark.parametrize("name", ["base", "tiny.en"])
def test_encoder_matches_ctranslate2(name, base_joined):
    """Our float32 encoder output against CTranslate2's (same fp16 weights, float32 compute).

    The two engines round differently: on base each is 4e-4..1e-3 away from a float64 run of
    the same weights, so ours vs CTranslate2 reaches 1.15e-3 on some utterances (6.7e-4 on
    others). Asserted: ours within 1e-3 of float64, CTranslate2 within 2e-3 of it, ours vs
    CTranslate2 within 2e-3 max and 1e-4 at the 99.9th percentile.
    """
    ct2_dir = base_joined if name == "base" else _ct2_dir(name)
    ours = load_whisper(_ct2_dir(name))
    set_dir, row = _shortest("en/librispeech", 1)[0]
    mel = _mel(_audio(row["audio"], set_dir))[None]  # [1, 80, 3000]
    ct2 = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32",
                                     intra_threads=1)
    ref = np.array(ct2.encode(ctranslate2.StorageView.from_array(mel.numpy())))
    with torch.no_grad():
        got = ours.encoder(mel).numpy()
    exact = _encode_float64(ours, mel)
    diff = np.abs(ref - got)
    own, theirs = np.abs(got - exact).max(), np.abs(ref - exact).max()
    print(f"{name}: encoder max|ours - ct2| = {diff.max():.2e}, "
          f"p99.9 {np.quantile(diff, 0.999):.1e} (|out| <= {np.abs(ref).max():.1f}); "
          f"vs float64: ours {own:.1e}, ct2 {theirs:.1e}")
    assert own < ENCODER_TOL  # our float32 path is within 1e-3 of the exact computation
    assert theirs < 2 * ENCODER_TOL  # CTranslate2 computes (about) the same function
    assert diff.max() < 2 * ENCODER_TOL and np.quantile(diff, 0.999) < 1e-4


@pytest.mark.parametrize("name", ["base", "tiny.en"])
def test_imported_checkpoint_equals_ct2_weights(name):
    pt = WEIGHTS / f"{name}.pt"
    if not pt.is_file():
        pytest.skip(f"{pt} absent")
    from_pt, from_ct2 = load_whisper(pt), load_whisper(_ct2_dir(name))
    assert from_pt.dims == from_ct2.dims
    a, b = from_pt.state_dict(), from_ct2.state_dict()
    for k in a:  # fp16 source stored as fp16: bit-exact
        assert torch.equal(a[k], b[k]), k
    assert torch.equal(from_pt.alignment_heads.to_dense(), from_ct2.alignment_heads.to_dense())


def test_transcripts_match_faster_whisper(base_joined):
    faster_whisper = pytest.importorskip("faster_whisper")
    pt = WEIGHTS / "base.pt"
    ours = load_whisper(pt if pt.is_file() else _ct2_dir("base"))
    fw = faster_whisper.WhisperModel(str(base_joined), device="cpu", compute_type="float32",
                                     cpu_threads=1)
    cases = [("zh", u) for u in _shortest("zh/commonvoice_zh_cn", 3)]
    cases += [("en", u) for u in _shortest("en/librispeech", 1)]
    differ = []
    for lang, (set_dir, row) in cases:
        audio = _audio(row["audio"], set_dir)
        segments, _ = fw.transcribe(
            audio, language=lang, beam_size=1, temperature=0, without_timestamps=True,
            condition_on_previous_text=False, vad_filter=False)
        ref = "".join(s.text for s in segments).strip()
        options = whisper.DecodingOptions(language=lang, without_timestamps=True, fp16=False,
                                          beam_size=None, temperature=0)
        hyp = whisper.decode(ours, _mel(audio), options).text.strip()
        assert hyp, row["utt_id"]
        if hyp != ref:
            differ.append((row["utt_id"], ref, hyp))
    print(f"transcripts identical: {len(cases) - len(differ)}/{len(cases)}")
    assert not differ, differ
