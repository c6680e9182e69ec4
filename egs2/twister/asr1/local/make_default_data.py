"""Make the recipe's default data with espeak-ng (Debian): no download, tiny, deterministic.

Usage:
    python local/make_default_data.py --sentences local/default_sentences.txt --out data/default

Writes ``unlabeled/`` (Kaldi dir; its ``text`` is withheld in ``unlabeled/.truth`` for analysis
only), ``test/`` (Kaldi dir with text) and ``corpus.txt``. Several espeak-ng voices and speeds give
a multi-speaker set.
"""
from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

VOICES = [("en-us", 150, 50), ("en-gb", 140, 40), ("en-us+f3", 160, 60), ("en-gb-x-rp+m3", 145, 45)]


def speak(text: str, wav: Path, voice: str, speed: int, pitch: int) -> None:
    tmp = wav.with_suffix(".tmp.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(tmp), text],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # -R: repeatable (sox seeds its dither with a fixed number; without it two runs differ)
    subprocess.run(["sox", "-q", "-R", str(tmp), "-r", "16000", "-c", "1", "-b", "16", str(wav)], check=True)
    tmp.unlink()


def write_dir(d: Path, rows: list[tuple[str, str, str, Path]], with_text: bool) -> None:
    d.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows)
    files = {"wav.scp": [], "utt2spk": [], "utt2lang": [], "text": []}
    for utt, spk, text, wav in rows:
        files["wav.scp"].append(f"{utt} {wav.resolve()}")
        files["utt2spk"].append(f"{utt} {spk}")
        files["utt2lang"].append(f"{utt} en")
        files["text"].append(f"{utt} {text}")
    for name, lines in files.items():
        target = d / (name if with_text or name != "text" else ".truth")
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sentences", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    out = Path(a.out)
    wav_dir = out / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    sets: dict[str, list] = {"u": [], "t": [], "c": []}
    for n, line in enumerate(Path(a.sentences).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        tag, sep, text = line.partition(":")
        if not sep or tag not in sets:
            raise ValueError(f"{a.sentences}:{n}: expected 'u:', 't:' or 'c:' before the sentence")
        sets[tag].append(text.strip())
    for name, tag in (("unlabeled", "u"), ("test", "t")):
        rows = []
        for i, text in enumerate(sets[tag]):
            voice, speed, pitch = VOICES[i % len(VOICES)]
            spk = f"espeak{i % len(VOICES)}"
            utt = f"{spk}-{name}{i:03d}"
            wav = wav_dir / f"{utt}.wav"
            if not wav.exists():
                speak(text, wav, voice, speed, pitch)
            rows.append((utt, spk, text, wav))
        write_dir(out / name, rows, with_text=(name == "test"))
    (out / "corpus.txt").write_text("\n".join(sets["c"]) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
