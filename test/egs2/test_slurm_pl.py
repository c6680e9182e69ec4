"""utils/slurm.pl: sbatch options, the generated batch script, and real runs on the local
Slurm cluster (tools/slurm/start.sh); the `slurm` tests skip when no cluster answers."""

import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[2] / "egs2" / "twister" / "asr1"
SLURM_PL = RECIPE / "utils" / "slurm.pl"
EVIL = ["a;touch pwned", "$(touch pwned2)", "`touch pwned3`", "x\ntouch pwned4", "it's", "*"]


def slurm_pl(cwd: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(SLURM_PL), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def cluster_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    try:   # scontrol ping fails at once when no controller runs; sinfo would retry for 9 s
        if subprocess.run(["scontrol", "ping"], capture_output=True, timeout=10).returncode:
            return False
        r = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                           timeout=10)
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0 and re.search(r"^(idle|mix|alloc)", r.stdout, re.M) is not None


needs_cluster = pytest.mark.skipif(not cluster_up(),
                                   reason="no Slurm cluster (run tools/slurm/start.sh)")


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    """The recipe's conf/slurm.conf plus a GPU partition, as the config to test."""
    path = tmp_path / "slurm.conf"
    path.write_text((RECIPE / "conf" / "slurm.conf").read_text()
                    + "gpu_partition = gpu\ngpu_extra = --constraint=h100\n")
    return path


def test_dry_run_sbatch_options(tmp_path, conf):
    r = slurm_pl(tmp_path, "--config", str(conf), "--dry-run", "true", "--gpu", "1", "--mem", "2G",
                 "--num_threads", "2", "--max-jobs-run", "2", "--time", "1:00:00",
                 "JOB=1:4", "log/x.JOB.log", "echo", "JOB")
    assert r.returncode == 0, r.stderr
    words = r.stdout.split()
    for opt in ["--gres=gpu:1", "--mem=2G", "--cpus-per-task=2", "--array=1-4%2", "--partition=gpu",
                "--constraint=h100", "--time=1:00:00", "--job-name=x", "--output=log/q/x.%a.out"]:
        assert opt in words
    assert words[-1] == "log/q/x.sh" and "sbatch_cmd=" in (tmp_path / "log/q/x.sh").read_text()
    assert not (tmp_path / "log/x.1.log").exists()   # nothing submitted


def test_dry_run_cpu_job_uses_cpu_partition(tmp_path, conf):
    r = slurm_pl(tmp_path, "--config", str(conf), "--dry-run", "true", "--gpu", "0",
                 "log/one.log", "true")
    assert r.returncode == 0, r.stderr
    words = r.stdout.split()
    assert "--partition=debug" in words and "--constraint=h100" not in words
    assert not any(w.startswith(("--gres", "--array", "--mem")) for w in words)
    assert "--output=log/q/one.%j.out" in words


def test_batch_script_run_by_hand_is_quoted(tmp_path, conf):
    """The generated script is what Slurm runs: run it as one task, without Slurm."""
    r = slurm_pl(tmp_path, "--config", str(conf), "--dry-run", "true",
                 "JOB=1:3", "my logs;x/a b.JOB.log", "printf", "[%s]", "JOB", *EVIL)
    assert r.returncode == 0, r.stderr
    script = tmp_path / "my logs;x" / "q" / "a b.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    run = subprocess.run(["bash", str(script)], cwd=tmp_path, env={"JOB": "2", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0
    assert not list(tmp_path.glob("pwned*"))
    log = (tmp_path / "my logs;x" / "a b.2.log").read_text()
    assert "[2]" + "".join(f"[{e}]" for e in EVIL) in log
    assert log.splitlines()[-1].startswith("# Ended (code 0) at ")


@pytest.mark.parametrize("line, message", [
    ("bogus = 1", "line 21: unknown setting 'bogus'"),
    ("partition debug", "line 21: expected `name = value`"),
])
def test_bad_config_is_refused(tmp_path, conf, line, message):
    conf.write_text(conf.read_text().replace("gpu_partition = gpu\n", line + "\n"))
    r = slurm_pl(tmp_path, "--config", str(conf), "--dry-run", "true", "log/a.log", "true")
    assert r.returncode == 1 and message in r.stderr and str(conf) in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--gpu", "x", "log/a.log", "true"], "bad value 'x' for --gpu"),
    (["--mem", "lots", "log/a.log", "true"], "bad value 'lots' for --mem"),
    (["--dry-run", "yes", "log/a.log", "true"], "bad value 'yes' for --dry_run"),
    (["JOB=1:2", "log/JOB/a.log", "true"], "must be in the log's file name"),
    (["JOB=1:2", "log/a.log", "true"], "put JOB in the log name"),
])
def test_bad_usage_is_refused(tmp_path, args, message):
    r = slurm_pl(tmp_path, "--dry-run", "true", *args)
    assert r.returncode == 1 and message in r.stderr


@pytest.mark.slurm
@needs_cluster
def test_array_job_on_cluster(tmp_path):
    r = slurm_pl(tmp_path, "--mem", "100M", "JOB=1:4", "log/x.JOB.log", "echo", "JOB")
    assert r.returncode == 0, r.stderr
    for j in range(1, 5):
        lines = (tmp_path / f"log/x.{j}.log").read_text().splitlines()
        assert lines[0] == "# echo JOB".replace("JOB", str(j)) and lines[3] == str(j)
        assert re.fullmatch(r"# Ended \(code 0\) at .+", lines[-1])
    assert not list((tmp_path / "log/q").glob("*.out"))   # empty Slurm outputs removed


@pytest.mark.slurm
@needs_cluster
def test_failed_task_is_named_on_cluster(tmp_path):
    r = slurm_pl(tmp_path, "JOB=1:3", "log/t.JOB.log", "bash", "-c", "exit $((JOB == 2))")
    assert r.returncode == 1
    assert "log/t.2.log" in r.stderr and "1 / 3 failed" in r.stderr
    assert "t.1.log" not in r.stderr and "t.3.log" not in r.stderr


@pytest.mark.slurm
@needs_cluster
def test_killed_task_is_named_on_cluster(tmp_path):
    # kill -9 of the batch script itself: Slurm marks the task failed, the log has no end.
    r = slurm_pl(tmp_path, "log/k.log", "bash", "-c", "kill -9 $PPID")
    assert r.returncode == 1
    assert "no end line" in r.stderr and "log/k.log" in r.stderr


@pytest.mark.slurm
@needs_cluster
def test_no_shell_injection_on_cluster(tmp_path):
    r = slurm_pl(tmp_path, "JOB=1:2", "my logs/a b.JOB.log", "printf", "[%s]", *EVIL)
    assert r.returncode == 0, r.stderr
    assert not list(tmp_path.glob("pwned*"))
    out = (tmp_path / "my logs/a b.1.log").read_text()
    assert "".join(f"[{e}]" for e in EVIL) in out


@pytest.mark.slurm
@needs_cluster
def test_interrupt_cancels_the_job(tmp_path):
    name = f"cancel{tmp_path.name[-12:]}".replace("_", "")
    active = ["squeue", "-h", "-n", name, "-t", "PD,R,CG", "-o", "%i"]
    proc = subprocess.Popen([str(SLURM_PL), "JOB=1:2", f"log/{name}.JOB.log", "sleep", "120"],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    for _ in range(40):
        if subprocess.run(active, capture_output=True, text=True).stdout.strip():
            break
        time.sleep(0.25)
    else:
        proc.kill()
        pytest.fail("the job never showed up in squeue")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "cancelled Slurm job" in err
    for _ in range(40):
        if not subprocess.run(active, capture_output=True, text=True).stdout.strip():
            break
        time.sleep(0.25)
    else:
        pytest.fail("the job is still in the queue after slurm.pl was interrupted")
