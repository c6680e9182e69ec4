"""run_with_budget: the spawned trainer never outlives the process that keeps its budget."""
import subprocess
import sys
import time
from pathlib import Path


def _beats(path: Path, seconds: float) -> bool:
    """Whether ``path`` is rewritten within ``seconds``."""
    before = path.read_text()
    time.sleep(seconds)
    return path.read_text() != before


def test_trainer_stops_when_the_budget_process_is_killed(tmp_path):
    beat = tmp_path / "beat"
    code = ("from pathlib import Path; from twister_plugin.utils.budget import run_with_budget; "
            "from twister_plugin.testing.budget import HeartbeatTask; "
            f"run_with_budget(HeartbeatTask, [{str(beat)!r}], Path({str(tmp_path / 'out')!r}), 3600)")
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        for _ in range(300):
            if beat.exists() and beat.read_text():
                break
            time.sleep(0.2)
        assert beat.exists(), "the trainer never started"
        assert _beats(beat, 1.0)  # training while the budget process lives
    finally:
        parent.kill()  # SIGKILL: no chance to stop its child itself
        parent.wait()
    time.sleep(3.0)  # the child's watcher sees the parent gone and stops it
    assert not _beats(beat, 1.5), "the trainer outlived the budget process"
