"""Draw a tts_prepare dump's Whisper durations over the log-mel of its audio (evidence that the
timing Whisper gives each character lands on the speech, before any TTS trains on it).

    python benchmarks/whisper_align_plot.py --dump /tmp/ab/dump --n 3 --out align.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from twister_plugin.data.kaldi import read_text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dump", required=True, help="tts_prepare --durations whisper output")
    p.add_argument("--n", type=int, default=3, help="utterances drawn (spread over the dump)")
    p.add_argument("--hop", type=int, default=256)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import soundfile as sf
    import torch
    from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

    dump = Path(a.dump)
    durs = read_text(dump / "durations")
    phones = read_text(dump / "text")
    raw = read_text(dump / "text.raw")
    wavs = read_text(dump / "wav.scp")
    keys = sorted(durs)
    picks = [keys[int(i)] for i in np.linspace(0, len(keys) - 1, a.n)]
    fbank = LogMelFbank(fs=16000, n_fft=1024, hop_length=a.hop, n_mels=80, fmin=0, fmax=8000)
    fig, axes = plt.subplots(len(picks), 1, figsize=(14, 3.2 * len(picks)))
    for ax, utt in zip(np.atleast_1d(axes), picks):
        wav, sr = sf.read(wavs[utt], dtype="float32")
        mel, _ = fbank(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
        ax.imshow(mel[0].T.numpy(), origin="lower", aspect="auto", cmap="magma",
                  extent=(0, mel.shape[1] * a.hop / sr, 0, 80))
        d = np.array(durs[utt].split(), dtype=int)
        ends = np.cumsum(d) * a.hop / sr
        starts = ends - d * a.hop / sr
        for s, e, ph in zip(starts, ends, phones[utt].split()):
            ax.axvline(s, color="cyan", lw=0.6)
            ax.text((s + e) / 2, 74, ph, color="white", ha="center", fontsize=7)
        ax.set_title(f"{utt}  ({len(raw[utt])} characters; phone spans from Whisper base's alignment heads)",
                     fontsize=9)
        ax.set_ylabel("mel bin")
    np.atleast_1d(axes)[-1].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(a.out, dpi=80)
    print(f"wrote {a.out}: {', '.join(picks)}")


if __name__ == "__main__":
    main()
