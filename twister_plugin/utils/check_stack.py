"""Check that the installed stack is the pinned one and that ESPnet's tasks import.

Usage:
    python -m twister_plugin.utils.check_stack
"""
from __future__ import annotations

import importlib
import importlib.metadata as md
import sys

PINNED = {
    "torch": "2.11.0",
    "torchaudio": "2.11.0",
    "espnet": "202511",
    "openai-whisper": "20250625",
}
REQUIRED = ["lhotse", "jiwer", "sentencepiece", "soundfile", "pypinyin", "cn2an", "tqdm"]


def problems() -> list[str]:
    out = []
    if sys.version_info[:2] != (3, 11):
        out.append(f"python {sys.version.split()[0]} (want 3.11)")
    for name, want in PINNED.items():
        try:
            have = md.version(name).split("+")[0]
        except md.PackageNotFoundError:
            out.append(f"{name} missing (want {want})")
            continue
        if have != want:
            out.append(f"{name} {have} (want {want})")
    for name in REQUIRED:
        try:
            md.version(name)
        except md.PackageNotFoundError:
            out.append(f"{name} missing")
    for mod in ("espnet2.tasks.asr", "espnet2.tasks.tts", "whisper", "lhotse", "jiwer"):
        try:
            importlib.import_module(mod)
        except Exception as e:  # noqa: BLE001 - report every import failure
            out.append(f"import {mod} failed: {type(e).__name__}: {e}")
    return out


def main() -> int:
    bad = problems()
    for p in bad:
        print(f"check_stack: {p}", file=sys.stderr)
    if not bad:
        print("check_stack: ok")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
