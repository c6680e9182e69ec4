"""Run the recipe in a temporary copy, so tests never touch the repo's data/ and exp/."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def copy_recipe(tmp: Path, name: str = "twister") -> Path:
    """tmp/egs2/<name>/asr1, a copy of egs2/twister/asr1 beside a link to egs2/TEMPLATE (whose
    generic local/prepare_data.sh the recipe calls as ../../TEMPLATE/...)."""
    egs2 = tmp / "egs2"
    egs2.mkdir(parents=True, exist_ok=True)
    if not (egs2 / "TEMPLATE").exists():
        (egs2 / "TEMPLATE").symlink_to(ROOT / "egs2" / "TEMPLATE")
    dst = egs2 / name / "asr1"
    shutil.copytree(ROOT / "egs2" / "twister" / "asr1", dst, symlinks=True,
                    ignore=shutil.ignore_patterns("data", "exp", "RESULTS.md"))
    return dst


def recipe_env(**extra: str) -> dict:
    """The test's venv on PATH (path.sh finds no tools/venv beside a temporary copy)."""
    venv = Path(sys.executable).parent
    return dict(os.environ, VIRTUAL_ENV=str(venv.parent), PATH=f"{venv}:{os.environ['PATH']}",
                OMP_NUM_THREADS="2", PYTHONPATH=str(ROOT), **extra)
