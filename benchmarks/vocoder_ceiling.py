"""Ceiling of the TTS round trip set by the features and the vocoder alone (issue 4, CPU).

The recipe's TTS predicts ESPnet ``fbank`` log-mels and Griffin-Lim turns them into audio, and
the round-trip filter asks Whisper base to read that audio. A perfect acoustic model would
predict the log-mels of real speech exactly; this script gives Whisper exactly those (real S0150
held-out utterances -> log-mel with the TTS config's ``feats_extract_conf`` -> Griffin-Lim) and
scores them against the real transcripts, next to the real audio itself and to a coarser
variant. If the ceiling is far above the filter's threshold, no amount of TTS training passes.

    python benchmarks/vocoder_ceiling.py --model tools/whisper/base.pt \
        --manifest ../shared/data/zh/aishell_sample_S0150/manifest.tsv --n 30 --out vocoder_ceiling.json
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch
import yaml

from twister_plugin.asr.inference import load_any
from twister_plugin.data.audio import load_audio
from twister_plugin.data.manifest import read_manifest
from twister_plugin.decode import BatchedDecoder, DecoderConfig
from twister_plugin.scoring.metrics import get_metric
from twister_plugin.scoring.score import score
from twister_plugin.tts.vocoder import FbankConfig, GriffinLimConfig, GriffinLimVocoder

TTS_CONF = Path(__file__).resolve().parents[1] / "egs2/twister/asr1/conf/tts/fastspeech_base.yaml"


def log_mel(wav: torch.Tensor, fb: FbankConfig) -> torch.Tensor:
    """(S,) -> (T, M) log10 mel amplitudes, as ESPnet's LogMelFbank (|STFT|, Slaney mel)."""
    import librosa

    win = fb.win_length or fb.n_fft
    spec = torch.stft(wav, fb.n_fft, fb.hop_length, win, torch.hann_window(win), center=True,
                      return_complex=True).abs()  # (F, T)
    basis = torch.from_numpy(librosa.filters.mel(sr=fb.fs, n_fft=fb.n_fft, n_mels=fb.n_mels,
                                                 fmin=fb.fmin or 0, fmax=fb.fmax or fb.fs / 2, htk=fb.htk)).float()
    return torch.log10(torch.clamp(basis @ spec, min=1e-10)).T  # (T, M)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--n", type=int, default=30, help="held-out utterances (every 5th id, as split_s0150)")
    p.add_argument("--tts_conf", default=str(TTS_CONF))
    p.add_argument("--n_iter", default="16,48", help="Griffin-Lim iterations to try")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    conf = yaml.safe_load(Path(a.tts_conf).read_text())
    fb = FbankConfig.from_task_args(conf["feats_extract"], conf["feats_extract_conf"], a.tts_conf)
    dd = read_manifest(a.manifest)
    ids = [u for u in dd.utt_ids if int(re.search(r"(\d+)$", u).group(1)) % 5 == 0][: a.n]
    refs = {u: dd.text[u] for u in ids}
    waves = {u: torch.from_numpy(load_audio(dd.wav_scp[u])).float() for u in ids}
    decoder = BatchedDecoder(load_any(a.model, device="cpu"), DecoderConfig())
    metric = get_metric("mer")
    variants: dict[str, dict[str, torch.Tensor]] = {"real_audio": waves}
    for n_iter in (int(x) for x in a.n_iter.split(",")):
        voc = GriffinLimVocoder(fb, GriffinLimConfig(n_iter=n_iter))
        t0 = time.perf_counter()
        variants[f"griffin_lim_{n_iter}"] = {u: voc(log_mel(w, fb)[None])[0] for u, w in waves.items()}
        print(f"griffin_lim {n_iter} iters: {time.perf_counter() - t0:.1f} s", flush=True)
    result = dict(utterances=len(ids), fbank=fb.__dict__, metric="MER (CER on Han characters)", refs=refs)
    for name, wav in variants.items():
        res = decoder.decode_all([wav[u].numpy() for u in ids], ["zh"] * len(ids), batch_size=8)
        hyps = {u: r.text for u, r in zip(ids, res)}
        result[name] = score(refs, hyps, metric)[1].rate
        result[f"{name}_hyps"] = hyps
        print(name, result[name], flush=True)
    Path(a.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
