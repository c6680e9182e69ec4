"""The newcomer path of README.md "New language or corpus": tools/make_recipe.sh makes
egs2/<name>/asr1 in the repo, and stage 1 of that recipe prepares LibriSpeech (shared/data) with
the template's generic local/prepare_data.sh. The made recipe is removed afterwards, even when a
test fails. Also: the generic prepare script refuses incomplete or malformed options."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / ".." / "shared" / "data"
LIBRI = DATA / "en" / "librispeech" / "manifest.tsv"
PREPARE = ROOT / "egs2" / "TEMPLATE" / "asr1" / "local" / "prepare_data.sh"
needs_data = pytest.mark.skipif(not LIBRI.exists(), reason="no shared/data/en/librispeech")


def _env() -> dict:
    venv = Path(sys.executable).parent
    return dict(os.environ, VIRTUAL_ENV=str(venv.parent), PATH=f"{venv}:{os.environ['PATH']}",
                OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))


def _manifest_rows() -> list[list[str]]:
    lines = LIBRI.read_text(encoding="utf-8").splitlines()
    return [ln.split("\t") for ln in lines[1:] if ln.strip()]


def _corpus(tmp: Path) -> Path:
    """Three sentences; the second is a LibriSpeech test transcript, so it must be dropped."""
    path = tmp / "corpus.txt"
    path.write_text(f"a small text corpus for the new recipe\n{_manifest_rows()[0][6]}\n"
                    "the synthesis speaks only these lines\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """egs2/<unique name>/asr1 made by tools/make_recipe.sh, with stage 1 run on LibriSpeech."""
    if not LIBRI.exists():
        pytest.skip("no shared/data/en/librispeech")
    name = f"newcomer_{uuid.uuid4().hex[:8]}"
    top = ROOT / "egs2" / name
    try:
        r = subprocess.run([str(ROOT / "tools" / "make_recipe.sh"), name], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        recipe = top / "asr1"
        text = _corpus(tmp_path_factory.mktemp("newcomer"))
        r = subprocess.run(["./run.sh", "--stage", "1", "--stop_stage", "1",
                            "--unlabeled_manifest", str(LIBRI), "--text", str(text),
                            "--test_sets", f"test={LIBRI}"],
                           cwd=recipe, env=_env(), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        yield recipe
    finally:
        shutil.rmtree(top, ignore_errors=True)
    assert not top.exists()


@needs_data
def test_made_recipe_is_the_template(made: Path):
    assert os.readlink(made / "run.sh") == "../../TEMPLATE/asr1/run.sh"
    assert (made / "local" / "prepare_data.sh").read_bytes() == PREPARE.read_bytes()
    r = subprocess.run([str(ROOT / "tools" / "check_recipes.sh"), made.parent.name],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@needs_data
def test_stage1_writes_data_dirs(made: Path):
    data = made / "data"
    ids = [row[0] for row in _manifest_rows()]
    assert (data / ".done").exists()
    for d in ["unlabeled", "test"]:
        assert (data / d / ".done").exists() and (data / d / "cuts.jsonl.gz").exists()
        scp = (data / d / "wav.scp").read_text().splitlines()
        assert [ln.split()[0] for ln in scp] == sorted(ids)
        assert all(Path(ln.split(maxsplit=1)[1]).is_file() for ln in scp)
    refs = dict(ln.split(maxsplit=1) for ln in (data / "test" / "text").read_text().splitlines())
    assert refs == {row[0]: row[6] for row in _manifest_rows()}
    assert (data / "test_sets").read_text() == "test\n"
    corpus = (data / "text" / "corpus.txt").read_text(encoding="utf-8").splitlines()
    assert corpus == ["a small text corpus for the new recipe", "the synthesis speaks only these lines"]


@needs_data
def test_unlabeled_has_no_transcripts(made: Path):
    assert not (made / "data" / "unlabeled" / "text").exists()


def _prepare(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(PREPARE), *args, str(tmp / "data")], cwd=tmp, env=_env(),
                          capture_output=True, text=True, timeout=60)


@needs_data
@pytest.mark.parametrize("args, message", [
    ([], "no unlabeled audio"),
    (["--unlabeled_manifest", "M"], "no text corpus"),
    (["--unlabeled_manifest", "M", "--text", "T"], "no test sets"),
    (["--unlabeled_manifest", "M", "--unlabeled_dir", "D", "--text", "T"], "not both"),
    (["--unlabeled_manifest", "M", "--text", "nope.txt", "--test_sets", "t=M"], "--text nope.txt: no such"),
    (["--unlabeled_manifest", "M", "--text", "T", "--test_sets", "test"], "'test' is not name="),
    (["--unlabeled_manifest", "M", "--text", "T", "--test_sets", "t=M t=M"], "'t' given twice"),
    (["--unlabeled_manifest", "M", "--text", "T", "--test_sets", "text=M"], "'text' is reserved"),
    (["--unlabeled_manifest", "M", "--text", "T", "--test_sets", "t=missing.tsv"], "missing.tsv: not an"),
    (["--unlabeled_manifest", "gone.tsv", "--text", "T", "--test_sets", "t=M"], "gone.tsv: not an"),
    (["--speed", "3"], "unknown option --speed"),
])
def test_prepare_refuses(tmp_path: Path, args: list[str], message: str):
    text = _corpus(tmp_path)
    subst = {"M": str(LIBRI), "T": str(text), "t=M": f"t={LIBRI}", "text=M": f"text={LIBRI}",
             "t=M t=M": f"t={LIBRI} t={LIBRI}"}
    r = _prepare(tmp_path, *[subst.get(a, a) for a in args])
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not (tmp_path / "data").exists()   # refused before any work
