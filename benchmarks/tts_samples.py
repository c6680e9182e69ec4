"""TTS evidence for issue 4 from a finished stage 6: round-trip CER on sentences the TTS never
saw, log-mel spectrogram PNGs and a few wavs.

Reads ``<synth>/scores.jsonl`` (round-trip hypotheses of every synthetic utterance) and
``<synth>/raw`` (the audio), and the TTS training text (the pseudo-labels it was trained on).
Takes the first ``--n`` synthetic sentences (corpus order of the seeded sample) whose text is
not a training sentence, scores them with the recipe's metric (MER: CER on Han characters),
and draws the spectrograms of ``--png`` of them (best, median, worst round trip, ...) beside
one real training utterance.

    python benchmarks/tts_samples.py --synth exp/round1/synth --train_text exp/round1/pseudo/data/text \
        --real exp/round1/pseudo/data --out /tmp/tts_samples
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from twister_plugin.data.audio import load_audio
from twister_plugin.data.kaldi import read_kaldi_dir, read_text
from twister_plugin.scoring.metrics import get_metric, normalize_mandarin
from twister_plugin.scoring.score import score


def log_mel(wav: np.ndarray, sr: int = 16000) -> np.ndarray:
    import torch
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(sr, n_fft=1024, hop_length=256, n_mels=80)(
        torch.from_numpy(wav).float())
    return torch.log10(mel.clamp(min=1e-5)).numpy()


CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "AR PL UMing CN"]


def readable(text: str) -> str:
    """``text`` as drawn in a title: pinyin with tone numbers where no CJK font is installed."""
    from matplotlib import font_manager

    if {f.name for f in font_manager.fontManager.ttflist} & set(CJK_FONTS):
        return text
    from pypinyin import Style, lazy_pinyin

    return " ".join(lazy_pinyin(text, style=Style.TONE3))


def draw(items: list[tuple[str, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.sans-serif"] = CJK_FONTS + ["DejaVu Sans"]
    fig, axes = plt.subplots(len(items), 1, figsize=(10, 2.4 * len(items)), squeeze=False)
    for ax, (title, mel) in zip(axes[:, 0], items):
        ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=mel.max() - 5, vmax=mel.max(),
                  extent=(0, mel.shape[1] * 256 / 16000, 0, 80))
        ax.set_title(title, fontsize=8)
        ax.set_ylabel("mel bin")
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--synth", required=True, help="stage 6 output dir (scores.jsonl, raw/)")
    p.add_argument("--train_text", required=True, help="Kaldi text the TTS was trained on")
    p.add_argument("--real", help="Kaldi dir of the TTS training audio (one real utterance drawn)")
    p.add_argument("--n", type=int, default=100, help="unseen sentences scored")
    p.add_argument("--png", type=int, default=4, help="synthetic utterances drawn / copied as wav")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    seen = {normalize_mandarin(t) for t in read_text(a.train_text).values()}
    rows = [json.loads(line) for line in (Path(a.synth) / "scores.jsonl").read_text(encoding="utf-8").splitlines()]
    order = {u: i for i, u in enumerate(read_kaldi_dir(Path(a.synth) / "raw").utt_ids)}
    rows.sort(key=lambda r: order.get(r["utt_id"], len(order)))
    new = [r for r in rows if normalize_mandarin(r["text"]) not in seen]
    unseen = new[: a.n]
    _, summ = score({r["utt_id"]: r["text"] for r in unseen}, {r["utt_id"]: r["hyp"] for r in unseen},
                    get_metric("mer"), set_name="tts_roundtrip_unseen")
    all_rate = score({r["utt_id"]: r["text"] for r in rows}, {r["utt_id"]: r["hyp"] for r in rows},
                     get_metric("mer"))[1].rate
    cers = sorted(r["cer"] for r in unseen)
    result = dict(unseen_sentences=len(unseen), seen_skipped=len(rows) - len(new), roundtrip_mer_unseen=summ.rate,
                  roundtrip_mer_all=all_rate, all_utterances=len(rows),
                  kept_all=sum(r["kept"] for r in rows), utt_cer_median=cers[len(cers) // 2] if cers else None,
                  utt_cer_quartiles=[cers[len(cers) // 4], cers[3 * len(cers) // 4]] if cers else None,
                  summary=summ.to_dict())
    (out / "roundtrip_unseen.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "summary"}, ensure_ascii=False))
    # best, quartiles, worst of the unseen ones
    by_cer = sorted(unseen, key=lambda r: r["cer"])
    picks = [by_cer[int(q * (len(by_cer) - 1))] for q in np.linspace(0, 1, a.png)] if by_cer else []
    wav_scp = read_kaldi_dir(Path(a.synth) / "raw").wav_scp
    items = []
    for i, r in enumerate(picks):
        wav = load_audio(wav_scp[r["utt_id"]])
        items.append((f"synthetic {r['utt_id']}  round-trip MER {r['cer']:.0f}%\nref: {readable(r['text'])}\nhyp: {readable(r['hyp'])}",
                      log_mel(wav)))
        src = Path(wav_scp[r["utt_id"]])
        if src.exists():
            shutil.copy(src, out / f"synth_{i}_{r['utt_id']}{src.suffix}")
    if a.real:
        real = read_kaldi_dir(a.real)
        u = real.utt_ids[0]
        items.append((f"real training utterance {u} \npseudo-label: {readable(real.text[u])}", log_mel(load_audio(real.wav_scp[u]))))
    if items:
        draw(items, out / "spectrograms.png")
    (out / "samples.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in picks),
                                       encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
