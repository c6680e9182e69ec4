"""tools/make_recipe.sh + tools/check_recipes.sh on a copy of egs2/ (TEMPLATE + twister)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKE = ROOT / "tools" / "make_recipe.sh"
CHECK = ROOT / "tools" / "check_recipes.sh"
IGNORE = shutil.ignore_patterns("data", "exp", "dump", "downloads", "__pycache__", "q")


def sh(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def egs2(tmp_path: Path) -> Path:
    """A copy of the repo's egs2/TEMPLATE (links kept) and egs2/twister/asr1."""
    egs2 = tmp_path / "egs2"
    shutil.copytree(ROOT / "egs2" / "TEMPLATE", egs2 / "TEMPLATE", symlinks=True)
    shutil.copytree(ROOT / "egs2" / "twister" / "asr1", egs2 / "twister" / "asr1",
                    symlinks=True, ignore=IGNORE)
    return egs2


def layout(egs2: Path) -> list[tuple[str, str]]:
    lines = (egs2 / "TEMPLATE" / "asr1" / "LAYOUT").read_text().splitlines()
    return [tuple(ln.split()[:2]) for ln in lines if ln.strip() and not ln.startswith("#")]


def test_repo_recipes_match_template():
    r = sh(CHECK)
    assert r.returncode == 0, r.stderr


def test_template_links_into_twister():
    template = ROOT / "egs2" / "TEMPLATE" / "asr1"
    for entry in ["run.sh", "path.sh", "utils"]:
        assert os.readlink(template / entry) == f"../../twister/asr1/{entry}"
        assert (template / entry).exists()


def test_made_recipe_links_and_copies(egs2):
    r = sh(MAKE, "--egs2", egs2, "cantonese")
    assert r.returncode == 0, r.stderr
    recipe, template = egs2 / "cantonese" / "asr1", egs2 / "TEMPLATE" / "asr1"
    for kind, path in layout(egs2):
        if kind == "link":
            assert os.readlink(recipe / path) == f"../../TEMPLATE/asr1/{path}"
            assert (recipe / path).resolve() == (egs2 / "twister" / "asr1" / path).resolve()
        else:
            assert not (recipe / path).is_symlink()
            assert sh("diff", "-r", recipe / path, template / path).returncode == 0
    assert (recipe / "conf" / "slurm.conf").is_file()
    assert os.access(recipe / "local" / "prepare_data.sh", os.X_OK)
    assert (recipe / "utils" / "run.pl").is_file()
    assert sh(CHECK, "--egs2", egs2).returncode == 0


def test_own_entries_may_differ(egs2):
    assert sh(MAKE, "--egs2", egs2, "yue").returncode == 0
    recipe = egs2 / "yue" / "asr1"
    (recipe / "conf" / "slurm.conf").write_text("partition = gpu_small\n")
    (recipe / "local" / "prepare_data.sh").write_text("#!/bin/bash\necho mine\n")
    r = sh(CHECK, "--egs2", egs2)
    assert r.returncode == 0, r.stderr


def test_edited_copied_shared_file_is_drift(egs2):
    assert sh(MAKE, "--egs2", egs2, "yue").returncode == 0
    recipe = egs2 / "yue" / "asr1"
    with open(recipe / "cmd.sh", "a") as f:
        f.write("train_cmd=queue.pl\n")
    r = sh(CHECK, "--egs2", egs2)
    assert r.returncode == 1 and "yue: cmd.sh differs from the template's" in r.stderr


def test_link_replaced_by_copy_is_ok_until_edited(egs2):
    assert sh(MAKE, "--egs2", egs2, "yue").returncode == 0
    run_sh = egs2 / "yue" / "asr1" / "run.sh"
    run_sh.unlink()
    shutil.copy(egs2 / "twister" / "asr1" / "run.sh", run_sh)
    assert sh(CHECK, "--egs2", egs2).returncode == 0
    with open(run_sh, "a") as f:
        f.write("echo local hack\n")
    r = sh(CHECK, "--egs2", egs2)
    assert r.returncode == 1 and "yue: run.sh is a copy that differs" in r.stderr


def test_broken_link_and_missing_entry_are_reported(egs2):
    assert sh(MAKE, "--egs2", egs2, "yue").returncode == 0
    recipe = egs2 / "yue" / "asr1"
    (recipe / "path.sh").unlink()
    (recipe / "path.sh").symlink_to("../../TEMPLATE/asr1/nothing.sh")
    shutil.rmtree(recipe / "local")
    r = sh(CHECK, "--egs2", egs2)
    assert r.returncode == 1
    assert "yue: path.sh is a broken link" in r.stderr and "yue: local is missing" in r.stderr


def test_hand_copied_recipe_is_checked(egs2):
    """A recipe made by copying twister/asr1 by hand (icefall-style) fails the check."""
    shutil.copytree(egs2 / "twister" / "asr1", egs2 / "copied" / "asr1", symlinks=True)
    with open(egs2 / "copied" / "asr1" / "run.sh", "a") as f:
        f.write("# tweak\n")
    r = sh(CHECK, "--egs2", egs2)
    assert r.returncode == 1 and "copied: run.sh is a copy that differs" in r.stderr


def test_broken_template_link_is_reported(egs2):
    (egs2 / "twister" / "asr1" / "path.sh").unlink()
    r = sh(CHECK, "--egs2", egs2)
    assert r.returncode == 1 and "TEMPLATE: path.sh is missing or a broken link" in r.stderr
    r = sh(MAKE, "--egs2", egs2, "yue")
    assert r.returncode == 1 and "missing or a broken link" in r.stderr
    assert not (egs2 / "yue").exists()


@pytest.mark.parametrize("name, message", [
    ("Cantonese", "must be lower-case"),
    ("a/b", "must be lower-case"),
    ("twister", "already exists"),
])
def test_bad_names_are_refused(egs2, name, message):
    r = sh(MAKE, "--egs2", egs2, name)
    assert r.returncode == 1 and message in r.stderr
