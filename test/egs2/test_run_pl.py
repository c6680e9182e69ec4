"""utils/run.pl: parallel jobs, Kaldi-style logs, failures named, no shell injection."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

RUN_PL = Path(__file__).resolve().parents[2] / "egs2" / "twister" / "asr1" / "utils" / "run.pl"


def run_pl(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUN_PL), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_jobs_write_kaldi_style_logs(tmp_path):
    r = run_pl(tmp_path, "--num_threads", "3", "JOB=1:4", "log/x.JOB.log", "echo", "job", "JOB")
    assert r.returncode == 0, r.stderr
    for j in range(1, 5):
        lines = (tmp_path / f"log/x.{j}.log").read_text().splitlines()
        assert lines[0] == f"# echo job {j}"
        assert lines[1].startswith("# Started at ")
        assert lines[3] == f"job {j}"
        assert re.fullmatch(r"# Accounting: time=\d+ threads=3", lines[-2])
        assert re.fullmatch(r"# Ended \(code 0\) at .+, elapsed time \d+ seconds", lines[-1])


def test_single_job_without_range(tmp_path):
    r = run_pl(tmp_path, "log/one.log", "echo", "JOB stays")
    assert r.returncode == 0, r.stderr
    assert "JOB stays" in (tmp_path / "log/one.log").read_text()


def test_failed_job_is_named(tmp_path):
    r = run_pl(tmp_path, "JOB=1:3", "log/t.JOB.log", "bash", "-c", "echo t JOB; exit $((JOB == 2))")
    assert r.returncode == 1
    assert "log/t.2.log" in r.stderr and "1 / 3 failed" in r.stderr
    assert "t.1.log" not in r.stderr and "t.3.log" not in r.stderr
    assert "# Ended (code 1)" in (tmp_path / "log/t.2.log").read_text()
    assert "# Ended (code 0)" in (tmp_path / "log/t.3.log").read_text()


def test_killed_job_has_no_end_line_and_fails(tmp_path):
    # kill -9 of the job's own runner process: the log never gets its "Ended" line.
    r = run_pl(tmp_path, "JOB=1:2", "log/k.JOB.log", "bash", "-c", "kill -9 $PPID")
    assert r.returncode == 1
    assert "no end line" in r.stderr and "log/k.1.log" in r.stderr


def test_no_shell_injection_and_log_path_with_space(tmp_path):
    evil = ["a;touch pwned", "$(touch pwned2)", "`touch pwned3`", "x\ntouch pwned4", "it's", "*"]
    r = run_pl(tmp_path, "JOB=1:2", "my logs/a b.JOB.log", "printf", "[%s]", *evil)
    assert r.returncode == 0, r.stderr
    assert not list(tmp_path.glob("pwned*"))
    out = (tmp_path / "my logs/a b.2.log").read_text()
    assert "".join(f"[{e}]" for e in evil) in out


def test_operator_words_make_a_pipeline(tmp_path):
    r = run_pl(tmp_path, "JOB=1:2", "log/p.JOB.log", "echo", "hello JOB", "|", "tr", "a-z", "A-Z",
               ">", "out.JOB.txt")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.2.txt").read_text() == "HELLO 2\n"


def test_pipefail_makes_pipeline_fail(tmp_path):
    r = run_pl(tmp_path, "log/p.log", "false", "|", "cat")
    assert r.returncode == 1 and "log/p.log" in r.stderr


def _intervals(path: Path) -> list[tuple[float, float]]:
    times = [line.split() for line in path.read_text().splitlines()]
    starts = {j: float(t) for kind, j, t in times if kind == "start"}
    ends = {j: float(t) for kind, j, t in times if kind == "end"}
    return [(starts[j], ends[j]) for j in starts]


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


@pytest.mark.parametrize("max_jobs", [1, 3])
def test_max_jobs_run_bounds_parallelism(tmp_path, max_jobs):
    script = "echo start JOB $(date +%s.%N) >> t.txt; sleep 0.6; echo end JOB $(date +%s.%N) >> t.txt"
    r = run_pl(tmp_path, "--max-jobs-run", str(max_jobs), "JOB=1:3", "log/s.JOB.log",
               "bash", "-c", script)
    assert r.returncode == 0, r.stderr
    overlap = _max_overlap(_intervals(tmp_path / "t.txt"))
    assert overlap == 1 if max_jobs == 1 else overlap >= 2


@pytest.mark.parametrize("args, message", [
    (["--bogus", "1", "log/a.log", "true"], "unknown option --bogus"),
    (["--num_threads", "0", "log/a.log", "true"], "bad value '0' for --num_threads"),
    (["--max-jobs-run"], "needs a value"),
    (["JOB=1:3", "log/a.log", "true"], "put JOB in the log name"),
    (["JOB=3:1", "log/a.JOB.log", "true"], "empty job range"),
    (["log/a.log"], "need a log file and a command"),
])
def test_bad_usage_is_refused(tmp_path, args, message):
    r = run_pl(tmp_path, *args)
    assert r.returncode == 1
    assert message in r.stderr and "Usage:" in r.stderr
    assert not (tmp_path / "log").exists()


def test_interrupt_kills_running_jobs(tmp_path):
    proc = subprocess.Popen([str(RUN_PL), "JOB=1:2", "log/s.JOB.log", "bash", "-c",
                             "echo $$ > pid.JOB; exec sleep 120"],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    pid_files = [tmp_path / "pid.1", tmp_path / "pid.2"]
    for _ in range(100):
        if all(p.exists() and p.read_text().strip() for p in pid_files):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "caught SIGTERM" in err
    for p in pid_files:
        assert _gone(int(p.read_text()))


def _gone(pid: int, wait_s: float = 5.0) -> bool:
    """True once the process has ended (a zombie waiting to be reaped counts as ended)."""
    for _ in range(int(wait_s / 0.05)):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


# --gpu: each job sees its own GPUs through CUDA_VISIBLE_DEVICES (fake GPU lists on CPU).

def _gpu_env(tmp_path: Path, **env: str) -> dict:
    base = {k: v for k, v in os.environ.items()
            if k not in ("TWISTER_GPU_IDS", "CUDA_VISIBLE_DEVICES")}
    base["PATH"] = f"{tmp_path / 'bin'}:{base['PATH']}"  # a fake nvidia-smi may live there
    return {**base, **env}


def _fake_nvidia_smi(tmp_path: Path, n: int) -> None:
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir(exist_ok=True)
    lines = "".join(f"echo 'GPU {i}: NVIDIA H100 80GB HBM3 (UUID: GPU-{i:08d})'\n" for i in range(n))
    smi.write_text(f"#!/bin/bash\n[ \"$1\" = -L ] || exit 9\n{lines}")
    smi.chmod(0o755)


def _job_gpus(tmp_path: Path, env: dict, *opts: str, jobs: int = 4) -> list[str]:
    r = subprocess.run([str(RUN_PL), *opts, f"JOB=1:{jobs}", "log/g.JOB.log", "bash", "-c",
                        'echo "cvd=${CUDA_VISIBLE_DEVICES-unset}"'],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    out = []
    for j in range(1, jobs + 1):
        text = (tmp_path / f"log/g.{j}.log").read_text()
        out.append(next(x[4:] for x in text.splitlines() if x.startswith("cvd=")))
        if out[-1] not in ("unset", ""):
            assert f"# CUDA_VISIBLE_DEVICES={out[-1]}\n" in text  # the log says which GPU
    return out


def test_gpu_jobs_round_robin_over_twister_gpu_ids(tmp_path):
    env = _gpu_env(tmp_path, TWISTER_GPU_IDS="0,1")
    assert _job_gpus(tmp_path, env, "--gpu", "1", jobs=5) == ["0", "1", "0", "1", "0"]


def test_gpu_two_per_job_and_visible_devices_subset(tmp_path):
    env = _gpu_env(tmp_path, CUDA_VISIBLE_DEVICES="4,5,6,7")
    assert _job_gpus(tmp_path, env, "--gpu", "2", jobs=3) == ["4,5", "6,7", "4,5"]
    env = _gpu_env(tmp_path, CUDA_VISIBLE_DEVICES="3,5", TWISTER_GPU_IDS="1")  # ours wins
    assert _job_gpus(tmp_path, env, "--gpu=1", jobs=2) == ["1", "1"]


def test_gpu_ids_from_nvidia_smi(tmp_path):
    _fake_nvidia_smi(tmp_path, 3)
    assert _job_gpus(tmp_path, _gpu_env(tmp_path), "--gpu", "1") == ["0", "1", "2", "0"]


def test_gpu_is_a_no_op_without_gpus_or_without_the_option(tmp_path):
    env = _gpu_env(tmp_path)  # no list, no nvidia-smi on this CPU machine (or a fake one failing)
    _fake_nvidia_smi(tmp_path, 0)
    assert _job_gpus(tmp_path, env, "--gpu", "1", jobs=2) == ["unset", "unset"]
    assert _job_gpus(tmp_path, _gpu_env(tmp_path, CUDA_VISIBLE_DEVICES=""), "--gpu", "1",
                     jobs=2) == ["", ""]  # GPUs deliberately hidden stay hidden
    env = _gpu_env(tmp_path, TWISTER_GPU_IDS="0,1")
    assert _job_gpus(tmp_path, env, jobs=2) == ["unset", "unset"]  # --gpu 0: untouched


@pytest.mark.parametrize("env, opts, message", [
    ({"TWISTER_GPU_IDS": "0;rm -rf x"}, ["--gpu", "1"], "TWISTER_GPU_IDS='0;rm -rf x': want a comma"),
    ({"TWISTER_GPU_IDS": "0,,1"}, ["--gpu", "1"], "want a comma-separated list"),
    ({"TWISTER_GPU_IDS": "0,1"}, ["--gpu", "3"], "--gpu 3 but only 2 GPU(s): 0 1"),
    ({"TWISTER_GPU_IDS": "0"}, ["--gpu", "x"], "bad value 'x' for --gpu"),
])
def test_bad_gpu_settings_are_refused(tmp_path, env, opts, message):
    r = subprocess.run([str(RUN_PL), *opts, "JOB=1:2", "log/g.JOB.log", "true"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60, env=_gpu_env(tmp_path, **env))
    assert r.returncode == 1 and message in r.stderr
    assert not (tmp_path / "log").exists()
