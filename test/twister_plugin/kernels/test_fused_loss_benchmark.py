"""benchmarks/fused_loss.py end to end on the CPU at tiny sizes (no GPU in CI)."""
import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "fused_loss.py"


def test_tiny_cpu_run_writes_table_and_json(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--out", str(out),
           "--methods", "torch", "liger", "ours", "--ours-variants", "chunk_size=16"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| D | N | method |" in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 2 * 2 * 4  # hidden sizes x token counts x methods
    ours = [r for r in rows if r["method"].startswith("ours")]
    assert all(r["status"] == "ok" and r["loss_rel"] < 1e-3 for r in ours)
    assert all(r["status"] == "ok" or r["status"].startswith("skipped: ")
               for r in rows if r["method"] == "liger")  # skipped here: no liger, no CUDA


def test_tiny_cpu_check_mode():
    cmd = [sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--check"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.stdout.count("ok ") == 12 and "FAIL" not in proc.stdout
