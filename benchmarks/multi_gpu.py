"""Multi-GPU scaling on one host (issue 11), time-bounded (default 290 s in all), JSON out.

(a) Data-parallel fine-tuning of the plugin's Whisper ASR model (ESPnet's loss reduction, see
    twister_plugin/testing/ddp.py), full fine-tuning (no frozen layers), bf16 autocast, fused
    loss: 1 process vs --ngpu processes (torchrun, NCCL) at the SAME global batch, seed and data
    order. Per-step losses of both runs, samples/s, scaling efficiency = thr_N / (N * thr_1)
    (strong scaling: the same global batch split over N). --weak adds one GPU at the per-rank
    batch: weak scaling efficiency = thr_N / (N * thr_1 at global_batch / N), the figure for a
    user who adds GPUs and keeps each GPU's batch.
(b) Pseudo-labelling S0150 with ``twister_plugin.bin.pseudo_label``: one job on one GPU vs
    ``--shard J/N`` jobs spread over the GPUs by ``utils/run.pl --gpu 1`` (TWISTER_GPU_IDS),
    wall times -> scaling; labels of both runs compared. Same for synthesis with --tts_dir.

Usage (2x H100, from the repo root):
    python benchmarks/multi_gpu.py --model tools/whisper/base.pt \
        --manifest ../shared/data/zh/aishell_sample_S0150/manifest.tsv --out multi_gpu.json
    # CPU smoke test (2 gloo processes, test-size random Whisper, no pseudo-labelling):
    python benchmarks/multi_gpu.py --device cpu --tiny --backend gloo --skip_pseudo \
        --manifest ../shared/data/zh/aishell_sample_S0150/manifest.tsv --out /tmp/mg.json
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_PL = ROOT / "egs2" / "twister" / "asr1" / "utils" / "run.pl"
PSEUDO_CONF = ROOT / "egs2" / "twister" / "asr1" / "conf" / "pseudo_label{}.yaml"  # "" or "_gpu": the recipe's


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True, help="S0150 manifest.tsv (16 kHz FLAC)")
    p.add_argument("--model", help="Whisper base checkpoint (.pt); required unless --tiny")
    p.add_argument("--out", default="multi_gpu.json")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--backend", default="nccl", help="nccl (GPU) or gloo (CPU smoke test)")
    p.add_argument("--ngpu", type=int, default=2, help="processes of the data-parallel run")
    p.add_argument("--tiny", action="store_true", help="test-size random Whisper (CPU smoke test)")
    p.add_argument("--global_batch", type=int, help="default 64 (--tiny: 4)")
    p.add_argument("--steps", type=int, help="timed steps (default 30; --tiny: 2)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--max_seconds", type=float, default=30.0, help="longest clip used")
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--fused_loss", default="auto", choices=["auto", "true", "false"],
                   help="auto: on with CUDA")
    p.add_argument("--skip_pseudo", action="store_true", help="leave out (b) pseudo-labelling")
    p.add_argument("--skip_ddp", action="store_true", help="leave out (a) fine-tuning")
    p.add_argument("--weak", action="store_true",
                   help="(a) also on one GPU at global_batch / ngpu (weak scaling)")
    p.add_argument("--pl_utts", type=int, default=500, help="utterances to pseudo-label")
    p.add_argument("--pl_repeat", type=int, default=1,
                   help="copies of those utterances (new ids): enough work that the fixed start-up "
                        "of a job (imports, model load) does not decide the scaling")
    p.add_argument("--pl_batch", type=int, help="pseudo_label --batch-size (default: the recipe's config, "
                   "conf/pseudo_label_gpu.yaml on cuda)")
    p.add_argument("--tts_dir", help="tts_train output dir: also time sharded synthesis")
    p.add_argument("--tts_text", help="corpus to synthesise (default: shared text/zh_news_open.txt)")
    p.add_argument("--tts_lines", type=int, default=200, help="corpus lines to synthesise")
    p.add_argument("--tts_batch", type=int, help="synthesize --batch_size (default: the recipe's GPU "
                   "profile, 64, on cuda; the synthesizer's default on cpu)")
    p.add_argument("--tts_repeat", type=int, default=1, help="copies of the corpus before taking --tts_lines "
                   "(the shared corpus has 33k sentences; a copy's lines get new numbers, so new utterance ids)")
    p.add_argument("--tts_writers", type=int, help="synthesize --writers (default: its own, 4 threads)")
    p.add_argument("--tts_fsync", choices=["shard", "wav"], help="synthesize --fsync (default: its own, shard)")
    p.add_argument("--tts_root", help="folder for the synthesis outputs (default: the run's temporary folder); "
                   "e.g. /dev/shm to take the disk out of the measurement")
    p.add_argument("--pl_ab_copies", type=int, default=0,
                   help="also pseudo-label this many copies of the utterances as ONE job twice, with cuDNN "
                        "attention off (the plugin's default) and on (TWISTER_CUDNN_SDPA=1): cold jobs, same data")
    p.add_argument("--pl_target_s", type=float,
                   help="with --pl_ab_copies: lower --pl_repeat so that one job's decoding takes about this long "
                        "at the rate the default job just showed (the scaling run then fits the budget)")
    p.add_argument("--budget_s", type=float, default=290.0, help="wall-clock limit of everything")
    p.add_argument("--worker_out", help=argparse.SUPPRESS)  # set for the torchrun workers
    a = p.parse_args(argv)
    a.global_batch = a.global_batch or (4 if a.tiny else 64)
    a.steps = a.steps or (2 if a.tiny else 30)
    if not a.worker_out and not a.model and ((not a.tiny and not a.skip_ddp) or not a.skip_pseudo):
        p.error("--model is required (fine-tuning without --tiny, pseudo-labelling)")
    if a.tts_repeat < 1:
        p.error(f"--tts_repeat {a.tts_repeat}: want 1 or more copies of the corpus")
    if a.global_batch % a.ngpu:
        p.error(f"--global_batch {a.global_batch} is not a multiple of --ngpu {a.ngpu}")
    return a


# ---------------------------------------------------------------- (a) worker, one per rank
def model_args(a, token_list: Path) -> list[str]:
    from twister_plugin.testing.asr import build_args

    size = "test" if a.tiny else "base"
    fused = a.fused_loss == "true" or (a.fused_loss == "auto" and a.device == "cuda")
    args = build_args(token_list, size=size, lsm_weight=0.1, fused_loss=str(fused).lower())
    if a.model and not a.tiny:
        args += ["--encoder_conf", f"checkpoint={a.model}", "--decoder_conf", f"checkpoint={a.model}"]
    return args


def worker(a) -> None:
    import torch
    import torch.distributed as dist

    from twister_plugin.asr.tokenizer import write_token_list
    from twister_plugin.testing.ddp import build_model, collate, rank_slice, s0150_items, train_step

    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    device = f"cuda:{local}" if a.device == "cuda" else "cpu"
    if a.device == "cuda":
        torch.cuda.set_device(local)
    dist.init_process_group(a.backend)
    tl = write_token_list(Path(a.worker_out).with_suffix(f".tokens{rank}.txt"), 51865)
    n_items = min(500, a.global_batch * (a.steps + a.warmup))
    items = s0150_items(Path(a.manifest), tl, n_items, a.max_seconds) if n_items else []
    torch.manual_seed(0)
    model = build_model(model_args(a, tl)).to(device).train()
    ids = [local] if a.device == "cuda" else None
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids) if world > 1 else model
    optim = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    amp = torch.bfloat16 if a.device == "cuda" else None
    batches = []  # collated up front (ESPnet's loader workers do it in the background)
    for s in range(a.warmup + a.steps):
        # the same global batches in the same order whatever the world size
        batch = [items[(s * a.global_batch + i) % len(items)] for i in range(a.global_batch)]
        batches.append(collate(rank_slice(batch, rank, world)))
    losses, times = [], []
    for batch in batches:
        sync(device)
        t0 = time.perf_counter()
        losses.append(train_step(ddp, optim, batch, world > 1, device, amp))
        sync(device)
        times.append(time.perf_counter() - t0)
    timed = sum(times[a.warmup:])
    peak = torch.cuda.max_memory_allocated() / 2**30 if a.device == "cuda" else None
    if rank == 0:
        out = dict(world=world, global_batch=a.global_batch, per_rank_batch=a.global_batch // world,
                   losses=losses, step_s=[round(t, 4) for t in times],
                   samples_per_s=a.global_batch * a.steps / timed, peak_gb_rank0=peak, utterances=len(items))
        Path(a.worker_out).write_text(json.dumps(out))
    dist.destroy_process_group()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


# ---------------------------------------------------------------- (a) launcher
def run_ddp(a, nproc: int, tmp: Path, deadline: float, global_batch: int | None = None) -> dict:
    out = tmp / f"ddp{nproc}_{global_batch or a.global_batch}.json"
    args = forward_args(a)
    if global_batch:
        args[args.index("--global_batch") + 1] = str(global_batch)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           str(Path(__file__).resolve()), "--worker_out", str(out)] + args
    env = dict(os.environ)
    if a.device == "cuda":
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(nproc))
    log = out.with_suffix(".log")
    wall = timed_run(cmd, env, deadline, log)
    if not out.exists():
        return dict(error=f"no result; see {log}", wall_s=wall)
    return dict(json.loads(out.read_text()), wall_s=wall)


def forward_args(a) -> list[str]:
    keep = ["manifest", "model", "device", "backend", "global_batch", "steps", "warmup", "max_seconds",
            "lr", "fused_loss"]
    args = [x for k in keep if getattr(a, k) is not None for x in (f"--{k}", str(getattr(a, k)))]
    return args + (["--tiny"] if a.tiny else []) + ["--ngpu", "1"]


def timed_run(cmd: list[str], env: dict, deadline: float, log: Path, cwd: Path = ROOT) -> float:
    """Run ``cmd`` (output to ``log``) within the budget; returns the wall time in seconds."""
    left = deadline - time.monotonic()
    if left < 5:
        raise TimeoutError(f"budget spent before: {' '.join(cmd[:6])} ...")
    t0 = time.perf_counter()
    with open(log, "w") as f:
        # own process group: on timeout the jobs run.pl started go too (session 7 lost a report to
        # shard jobs that outlived their run.pl and kept writing into the temp dir)
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    if rc:
        raise RuntimeError(f"exit {rc}: {' '.join(cmd[:8])} ... (log {log}):\n" + _errors(log))
    return round(time.perf_counter() - t0, 2)


def _errors(log: Path) -> str:
    """The error lines of a failed run's log (torchrun's own trace hides the worker's error)."""
    lines = log.read_text(errors="replace").splitlines()
    hits = [x for x in lines if "Error" in x or "error:" in x or "ERROR" in x][:12]
    return "\n".join(hits + lines[-4:])[-3000:]


def compare_losses(one: dict, many: dict) -> dict:
    pairs = list(zip(one.get("losses", []), many.get("losses", [])))
    rel = [abs(x - y) / max(abs(x), 1e-12) for x, y in pairs]
    out = dict(max_rel_loss_diff=max(rel) if rel else None, first_step_rel_diff=rel[0] if rel else None)
    if "samples_per_s" in one and "samples_per_s" in many:
        out["scaling_efficiency"] = many["samples_per_s"] / (many["world"] * one["samples_per_s"])
        out["speedup"] = many["samples_per_s"] / one["samples_per_s"]
    if one.get("step_s") and many.get("step_s"):  # steady state: median timed step (no compiles)
        med = [median_step(one), median_step(many)]
        out["median_step_s"] = med
        out["scaling_efficiency_median_step"] = med[0] / (many["world"] * med[1])
    return out


def median_step(run: dict) -> float:
    """Median timed step after the first (steady state: no compiles)."""
    steps = sorted(run["step_s"][1:])
    return steps[len(steps) // 2]


def weak_scaling(one: dict, many: dict) -> dict:
    """N GPUs at per-rank batch b against one GPU at batch b: samples/s and median steps."""
    if "samples_per_s" not in one or "samples_per_s" not in many:
        return dict(error="a run gave no result")
    out = dict(per_rank_batch=one["global_batch"],
               scaling_efficiency=many["samples_per_s"] / (many["world"] * one["samples_per_s"]))
    med = [median_step(one), median_step(many)]
    out.update(median_step_s=med, scaling_efficiency_median_step=med[0] / med[1])
    return out


# ---------------------------------------------------------------- (b) sharded jobs over GPUs
class PhaseError(RuntimeError):
    """A phase that failed or ran out of time after some of its runs: ``partial`` keeps those."""

    def __init__(self, message: str, partial: dict):
        super().__init__(message)
        self.partial = partial


def sharded_jobs(a, name: str, job_cmd: list[str], tmp: Path, deadline: float,
                 runs: tuple = ((1, ""), (None, "")), extra_env: dict | None = None,
                 parts: tuple = (), root: Path | None = None, after=None) -> dict:
    """``job_cmd`` (with JOB and NJ placeholders) as 1 job on GPU 0, then as --ngpu jobs spread
    over the GPUs by run.pl --gpu 1; wall times of both. ``runs``: (jobs, tag) pairs (None = --ngpu).
    ``parts``: names of a job's logged seconds (synthesize logs its Stopwatch) reported per job.
    ``root``: where the runs write (default ``tmp``); ``after(out)``: a dict of more figures for a
    finished run's row (it may also clear the run's outputs). Before each run the disk is flushed
    (untimed, ``presync_s``), so a run never pays for writing back the one before it.
    A run that fails or times out raises PhaseError with the runs done before it."""
    rows, outs = {}, {}
    for nj, tag in runs:
        nj = nj or a.ngpu
        gpus = ",".join(str(i) for i in range(nj))
        env = dict(os.environ, TWISTER_GPU_IDS=gpus) if a.device == "cuda" else dict(os.environ)
        env.update(extra_env or {})
        # the recipe's path.sh: one CPU thread per job unless set (session 6 without it, 2x H100:
        # 32 threads a job on 32 cores, and two pseudo-labelling jobs took as long as one)
        env.setdefault("OMP_NUM_THREADS", "1")
        out = (root or tmp) / f"{name}{nj}{tag}"
        t_sync = time.perf_counter()
        os.sync()
        presync = round(time.perf_counter() - t_sync, 2)
        words = [w.replace("OUT", str(out)).replace("NJ", str(nj)) for w in job_cmd]
        cmd = [str(RUN_PL), "--gpu", "1", f"JOB=1:{nj}", str(out / "log" / f"{name}.JOB.log")] + words
        try:
            wall = timed_run(cmd, env, deadline, tmp / f"{name}{nj}{tag}.runpl.log")
        except (RuntimeError, TimeoutError, subprocess.TimeoutExpired) as e:
            # run.pl's log only names the job logs: bring their errors along
            errors = "\n".join(_errors(log) for log in sorted((out / "log").glob("*.log")))
            raise PhaseError(f"{e}\n{errors}".strip(), {"done": rows}) from None
        key = f"jobs{nj}{tag}"
        outs[key] = out
        rows[key] = dict(wall_s=wall, gpus=gpus if a.device == "cuda" else "cpu",
                         work_s=job_work_seconds(out / "log", name),  # model loaded, start-up excluded
                         ready_s=job_work_seconds(out / "log", name, r"ready_s=([0-9.]+)"),  # start -> model loaded
                         job_s=job_work_seconds(out / "log", name, r"# Accounting: time=([0-9.]+)"),
                         presync_s=presync)
        if parts:  # where each job's work went
            rows[key]["parts_s"] = {part: job_work_seconds(out / "log", name, rf"'{part}': ([0-9.]+)")
                                    for part in parts}
        if after:
            rows[key].update(after(out))
    if f"jobs{a.ngpu}" not in rows:
        return rows, outs
    one, many = rows["jobs1"]["wall_s"], rows[f"jobs{a.ngpu}"]["wall_s"]
    rows["speedup"] = one / many
    rows["scaling_efficiency"] = one / (a.ngpu * many)
    w1, wn = rows["jobs1"]["work_s"], rows[f"jobs{a.ngpu}"]["work_s"]
    if w1 and wn:  # the slowest shard decides when the work is done
        rows["scaling_efficiency_work"] = max(w1) / (a.ngpu * max(wn))
        rows["startup_s_jobs1"] = round(one - max(w1), 2)
    return rows, outs


def job_work_seconds(log_dir: Path, name: str, pattern: str = r"work_s=([0-9.]+)") -> list[float]:
    """``work_s`` of each job log ``<name>.<J>.log`` (pseudo_label / synthesize print it last);
    with run.pl's Accounting pattern: each job's whole wall time (start-up, work, merge)."""
    found = []
    for log in sorted(log_dir.glob(f"{name}.*.log")):
        hits = re.findall(pattern, log.read_text(errors="replace"))
        if hits:
            found.append(float(hits[-1]))
    return found


def pseudo_data(a, tmp: Path, copies: int | None = None, name: str = "unlabeled") -> Path:
    from twister_plugin.data.kaldi import write_kaldi_dir
    from twister_plugin.data.manifest import read_manifest

    dd = read_manifest(a.manifest)
    dd.text = None  # unlabeled
    dd = dd.subset(dd.utt_ids[: a.pl_utts])
    out = tmp / name
    write_kaldi_dir(dd, out)
    copies = copies or a.pl_repeat
    if copies > 1:  # k copies under new ids, zero-padded so the files stay in Kaldi's sort order
        for name in ("wav.scp", "utt2spk"):
            lines = (out / name).read_text(encoding="utf-8").splitlines()
            (out / name).write_text("".join(f"r{k:03d}-{line}\n" for k in range(copies) for line in lines),
                                    encoding="utf-8")
        for name in ("spk2utt", "utt2dur", "segments", "utt2lang"):
            (out / name).unlink(missing_ok=True)
    return out


def pseudo_cmd(a, data: Path) -> list[str]:
    return [sys.executable, "-m", "twister_plugin.bin.pseudo_label", "--data", str(data), "--model", a.model,
            "--config", str(PSEUDO_CONF).format("_gpu" if a.device == "cuda" else ""), "--out", "OUT",
            "--shard", "JOB/NJ", "--device", a.device] + (["--batch-size", str(a.pl_batch)] if a.pl_batch else [])


def run_pseudo_ab(a, tmp: Path, deadline: float) -> dict:
    """One cold pseudo-labelling job, the same data, cuDNN attention off (default) and on."""
    cmd = pseudo_cmd(a, pseudo_data(a, tmp, a.pl_ab_copies, "unlabeled_ab"))
    rows = {}
    for tag, env in (("_default", {}), ("_cudnn_sdpa", {"TWISTER_CUDNN_SDPA": "1"})):
        rows.update(sharded_jobs(a, "pseudo_ab", cmd, tmp, deadline, runs=((1, tag),), extra_env=env)[0])
    rows["utterances"] = a.pl_utts * a.pl_ab_copies
    w = [rows[f"jobs1{t}"]["work_s"] for t in ("_default", "_cudnn_sdpa")]
    if all(w):
        rows["work_speedup_without_cudnn"] = w[1][0] / w[0][0]
    return rows


def run_pseudo(a, tmp: Path, deadline: float) -> dict:
    cmd = pseudo_cmd(a, pseudo_data(a, tmp))
    rows, outs = sharded_jobs(a, "pseudo", cmd, tmp, deadline)
    rows["utterances"] = a.pl_utts * a.pl_repeat
    texts = [_read_text(outs[k] / "text") for k in ("jobs1", f"jobs{a.ngpu}")]
    same = sum(texts[0].get(u) == t for u, t in texts[1].items())
    rows["labels"] = dict(kept_1=len(texts[0]), kept_n=len(texts[1]), identical=same)
    return rows


def run_synth(a, tmp: Path, deadline: float) -> dict:
    corpus = Path(a.tts_text or Path(a.manifest).parents[2] / "text" / "zh_news_open.txt")
    lines = (corpus.read_text(encoding="utf-8").splitlines() * a.tts_repeat)[: a.tts_lines]  # a copy: new line numbers
    text = tmp / "corpus.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    batch = a.tts_batch or (64 if a.device == "cuda" else None)  # conf/profiles/gpu_s0150.sh: --batch_size 64
    cmd = [sys.executable, "-m", "twister_plugin.bin.synthesize", "--model_dir", a.tts_dir, "--text", str(text),
           "--out", "OUT", "--shard", "JOB/NJ", "--device", a.device] + (["--batch_size", str(batch)] if batch else [])
    if a.tts_writers is not None:
        cmd += ["--writers", str(a.tts_writers)]
    if a.tts_fsync:
        cmd += ["--fsync", a.tts_fsync]
    root = Path(a.tts_root) if a.tts_root else None
    if root:
        root.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="synth.", dir=root))
    try:
        rows, _ = sharded_jobs(a, "synth", cmd, tmp, deadline, parts=("plan_s", "speak_s", "write_s", "flush_s", "merge_s"),
                               root=root, after=_count_and_clear_wavs)
    finally:
        if root:
            shutil.rmtree(root, ignore_errors=True)
    return dict(rows, lines=len(lines), out_root=str(root or "tmp"))


def _count_and_clear_wavs(out: Path) -> dict:
    """The run's wavs (count, MB), then removed: the next run starts on an emptier disk, and a
    whole-corpus run twice over does not fill it."""
    wavs = list((out / "wav").glob("*.wav"))
    size = sum(w.stat().st_size for w in wavs)
    shutil.rmtree(out / "wav", ignore_errors=True)
    return dict(wavs=len(wavs), wav_mb=round(size / 2**20, 1))


def _read_text(path: Path) -> dict:
    if not path.exists():
        return {}
    pairs = (line.split(maxsplit=1) for line in path.read_text(encoding="utf-8").splitlines() if line)
    return {p[0]: (p[1] if len(p) > 1 else "") for p in pairs}


# ---------------------------------------------------------------- main
def card(a) -> str:
    if a.device != "cuda":
        return "cpu"
    import torch

    return f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"


def phase(report: dict, key: str, fn, *args, out: str | None = None) -> None:
    """Run one measurement; the report so far is written after each (a later phase may not end)."""
    t0 = time.perf_counter()
    try:
        report[key] = fn(*args)
    except (RuntimeError, TimeoutError, subprocess.TimeoutExpired, ValueError, OSError) as e:
        report[key] = dict(error=str(e)[-3000:], **getattr(e, "partial", {}))  # runs done before it
    print(f"[multi_gpu] {key}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    if out:
        write_report(report, out)


def write_report(report: dict, out: str) -> None:
    from twister_plugin.utils.fileio import atomic_open

    with atomic_open(out) as f:
        json.dump(report, f, indent=1)


def main(argv=None) -> None:
    a = parse(argv)
    if a.worker_out:
        return worker(a)
    deadline = time.monotonic() + a.budget_s
    t0 = time.perf_counter()
    report: dict = dict(meta=dict(card=card(a), ngpu=a.ngpu, backend=a.backend, device=a.device,
                                  size="test" if a.tiny else "base", model=a.model, global_batch=a.global_batch,
                                  steps=a.steps, warmup=a.warmup, lr=a.lr, fused_loss=a.fused_loss,
                                  amp="bf16" if a.device == "cuda" else "off", full_finetune=True,
                                  cudnn_sdpa=os.environ.get("TWISTER_CUDNN_SDPA") == "1"))
    with tempfile.TemporaryDirectory(prefix="multi_gpu.", ignore_cleanup_errors=True) as d:
        tmp = Path(d)
        if not a.skip_ddp:
            phase(report, "ddp_1", run_ddp, a, 1, tmp, deadline, out=a.out)
            phase(report, f"ddp_{a.ngpu}", run_ddp, a, a.ngpu, tmp, deadline, out=a.out)
            report["ddp_compare"] = compare_losses(report["ddp_1"], report[f"ddp_{a.ngpu}"])
            if a.weak:
                phase(report, "ddp_1_per_rank_batch", run_ddp, a, 1, tmp, deadline, a.global_batch // a.ngpu, out=a.out)
                report["ddp_weak"] = weak_scaling(report["ddp_1_per_rank_batch"], report[f"ddp_{a.ngpu}"])
        if not a.skip_pseudo and a.pl_ab_copies:
            phase(report, "pseudo_label_cudnn_ab", run_pseudo_ab, a, tmp, deadline, out=a.out)
            work = report["pseudo_label_cudnn_ab"].get("jobs1_default", {}).get("work_s")
            if a.pl_target_s and work:
                per_copy = work[0] / a.pl_ab_copies
                a.pl_repeat = max(2, min(a.pl_repeat, int(a.pl_target_s / per_copy)))
                report["meta"]["pl_repeat_used"] = a.pl_repeat
        if not a.skip_pseudo:
            phase(report, "pseudo_label", run_pseudo, a, tmp, deadline, out=a.out)
        if a.tts_dir:
            phase(report, "synthesize", run_synth, a, tmp, deadline, out=a.out)
    report["meta"]["total_s"] = round(time.perf_counter() - t0, 1)
    write_report(report, a.out)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
