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


def fastspeech_tiny_batch(data_root: Path, tiny_config: Path):
    """Inputs for TwisterFastSpeech (tiny config, idim 30, spk_embed_dim 8) on 3 real S0150
    utterances: (text (3, 15), text lengths, log-mels (3, T, 80), feats lengths, spembs (3, 8)).
    The text is random phone ids (seeded); the log-mels are the config's fbank of real audio.
    Skips the test when the shared data is absent."""
    import pytest
    import soundfile as sf
    import torch
    import yaml
    from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

    if not (data_root / S0150 / "manifest.tsv").exists():
        pytest.skip("shared data not available")
    fbank = LogMelFbank(**yaml.safe_load(tiny_config.read_text())["feats_extract_conf"])
    wavs = [torch.from_numpy(sf.read(r["audio"], dtype="float32")[0])
            for r in read_manifest(data_root, S0150)[:3]]
    lens = torch.tensor([len(w) for w in wavs])
    feats, flens = fbank(torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), lens)
    g = torch.Generator().manual_seed(0)
    tlens = torch.tensor([12, 9, 15])
    text = torch.randint(1, 30, (3, 15), generator=g) * (torch.arange(15)[None] < tlens[:, None])
    return text, tlens, feats, flens, torch.randn(3, 8, generator=g)


def assert_direct_load_matches_task(exp: Path, checkpoint: str) -> None:
    """``twister_plugin.tts.loader`` builds, for a trained model dir, exactly what ESPnet's task
    builds: the same modules (repr) and the same weights, key by key."""
    import torch

    from twister_plugin.tts.loader import build_direct, direct_build_supported, load_tts
    from twister_plugin.tts.task import task_for

    direct, args = load_tts(exp / "config.yaml", exp / checkpoint, "cpu")
    assert direct_build_supported(args) is None
    # the checkpoint loads strictly into the direct build: load_tts did not fall back to the task
    build_direct(args).load_state_dict(torch.load(exp / checkpoint, weights_only=False), strict=True)
    ref, _ = task_for(args.tts).build_model_from_file(exp / "config.yaml", exp / checkpoint, "cpu")
    assert repr(direct) == repr(ref.eval())
    a, b = direct.state_dict(), ref.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


SYNTH_IMPORTS_PROBE = """
import sys
from twister_plugin.utils.fast_import import skip_espnet_typechecks
skip_espnet_typechecks()
from twister_plugin.tts.synthesize import SynthConfig, Synthesizer
Synthesizer(sys.argv[1], SynthConfig(device="cpu"))
print(sorted(m for m in ("espnet2.tasks.abs_task", "transformers") if m in sys.modules))
"""
