"""Real weights (tools/get_whisper.sh): exports read back exactly and decode like openai-whisper.

tiny.en.pt -> pt / hf / ct2 -> load_whisper gives the same tensors (the source is float16, so
float16 and float32 exports are both exact); int8 is within half a step per row. The exported
CTranslate2 folder (base if present, else tiny.en; float16) transcribes shared utterances through
``faster_whisper.WhisperModel`` (compute float32) exactly as ``whisper.decode`` greedy does on
the source model; the exported Hugging Face folder does the same through transformers'
``generate``. Skipped when the weights or shared/data are absent.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import whisper

from twister_plugin.whisper import load_whisper
from twister_plugin.whisper.export import export_whisper, readback_error

ROOT = Path(__file__).resolve().parents[3]
WEIGHTS = Path(os.environ.get("TWISTER_WHISPER_DIR", ROOT / "tools" / "whisper"))
DATA = ROOT / ".." / "shared" / "data"

torch.set_num_threads(1)


def _weights(*names: str) -> tuple[str, Path]:
    for name in names:
        if (WEIGHTS / f"{name}.pt").is_file():
            return name, WEIGHTS / f"{name}.pt"
    pytest.skip(f"none of {names} in {WEIGHTS}: run bash tools/get_whisper.sh")


@pytest.fixture(scope="module")
def tiny_en():
    return load_whisper(_weights("tiny.en")[1])


@pytest.fixture(scope="module")
def decoding_model():
    """base (multilingual: one zh and one en utterance) or else tiny.en (two en)."""
    name, path = _weights("base", "tiny.en")
    cases = [("zh", "zh/aishell_sample_S0150"), ("en", "en/librispeech")]
    if name == "tiny.en":
        cases = [("en", "en/librispeech"), ("en", "en/librispeech")]
    return name, load_whisper(path), _utterances(cases)


def _utterances(cases: list[tuple[str, str]]) -> list[tuple[str, str, np.ndarray]]:
    """(language, utt_id, 16 kHz samples): the shortest utterances of each set, in order."""
    import soundfile as sf

    out, taken = [], {}
    for lang, set_name in cases:
        manifest = DATA / set_name / "manifest.tsv"
        if not manifest.is_file():
            pytest.skip(f"{manifest} absent")
        with open(manifest, encoding="utf-8", newline="") as f:
            rows = sorted(csv.DictReader(f, delimiter="\t"), key=lambda r: float(r["duration_s"]))
        row = rows[taken.get(set_name, 0)]
        taken[set_name] = taken.get(set_name, 0) + 1
        audio, sr = sf.read(DATA / set_name / row["audio"], dtype="float32")
        assert sr == 16000
        out.append((lang, row["utt_id"], audio))
    return out


def _openai_greedy(model, audio: np.ndarray, lang: str) -> str:
    mel = whisper.pad_or_trim(whisper.log_mel_spectrogram(torch.from_numpy(audio), 80), 3000)
    options = whisper.DecodingOptions(language=lang, without_timestamps=True, fp16=False,
                                      temperature=0)
    return whisper.decode(model, mel, options).text.strip()


@pytest.mark.parametrize("fmt,dtype", [("pt", "float16"), ("hf", "float16"), ("hf", "float32"),
                                       ("ct2", "float16"), ("ct2", "float32")])
def test_tiny_en_round_trip_is_exact(tiny_en, tmp_path, fmt, dtype):
    out = export_whisper(tiny_en, tmp_path / ("m.pt" if fmt == "pt" else "m"), fmt, dtype)
    back = load_whisper(out)
    assert back.dims == tiny_en.dims
    for name, t in tiny_en.state_dict().items():
        assert torch.equal(back.state_dict()[name], t), name
    assert torch.equal(back.alignment_heads.to_dense(), tiny_en.alignment_heads.to_dense())


def test_tiny_en_int8(tiny_en, tmp_path):
    out = export_whisper(tiny_en, tmp_path / "int8", "ct2", "int8")
    err = readback_error(tiny_en, out, "int8")
    largest = max(t.abs().max().item() for n, t in tiny_en.state_dict().items()
                  if n.endswith("weight") and t.dim() > 1)
    print(f"tiny.en int8: max |error| = {err:.2e} (largest weight {largest:.2f}); "
          f"model.bin {(out / 'model.bin').stat().st_size / 1e6:.1f} MB")
    assert 0 < err <= largest / 254 * 1.001  # half a step of the widest row


def test_ct2_export_transcribes_like_whisper(decoding_model, tmp_path):
    faster_whisper = pytest.importorskip("faster_whisper")
    ctranslate2 = pytest.importorskip("ctranslate2")
    name, model, utterances = decoding_model
    out = export_whisper(model, tmp_path / "ct2", "ct2")  # float16 weights, the default
    ct2 = ctranslate2.models.Whisper(str(out), device="cpu", compute_type="float32")
    assert ct2.is_multilingual == model.is_multilingual and ct2.n_mels == 80
    del ct2
    fw = faster_whisper.WhisperModel(str(out), device="cpu", compute_type="float32",
                                     cpu_threads=1)
    for lang, utt, audio in utterances:
        segments, info = fw.transcribe(
            audio, language=lang, beam_size=1, temperature=0, without_timestamps=True,
            condition_on_previous_text=False, vad_filter=False)
        got = "".join(s.text for s in segments).strip()
        want = _openai_greedy(model, audio, lang)
        print(f"{name} {utt}: faster-whisper {got!r} / whisper.decode {want!r}")
        assert want and got == want, utt


def test_hf_export_generates_like_whisper(decoding_model, tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    name, model, utterances = decoding_model
    out = export_whisper(model, tmp_path / "hf", "hf", "float32")
    hf = transformers.WhisperForConditionalGeneration.from_pretrained(str(out)).eval()
    processor = transformers.WhisperProcessor.from_pretrained(str(out))
    for lang, utt, audio in utterances:
        features = processor(audio, sampling_rate=16000, return_tensors="pt").input_features
        mel = whisper.log_mel_spectrogram(torch.from_numpy(audio), 80)  # [80, frames]
        n = mel.shape[1] - 1  # the last frame differs: HF pads the audio to 30 s first
        assert features.shape == (1, 80, 3000)
        assert torch.allclose(features[0, :, :n], mel[:, :n], atol=1e-3)  # the same log-mel
        features = whisper.pad_or_trim(mel, 3000)[None]  # openai's input: compare models only
        language = {"language": lang, "task": "transcribe"} if model.is_multilingual else {}
        with torch.no_grad():
            ids = hf.generate(features, num_beams=1, do_sample=False, **language)
        got = processor.batch_decode(ids, skip_special_tokens=True)[0].strip()
        want = _openai_greedy(model, audio, lang)
        print(f"{name} {utt}: transformers {got!r} / whisper.decode {want!r}")
        assert want and got == want, utt
