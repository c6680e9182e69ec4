"""Fine-tuning throughput of Whisper: a plain PyTorch loop vs the plugin's training path (issue 7).

Same weights, same utterances, same global batch (in utterances), same optimiser (AdamW, constant
LR), same number of optimiser steps; every epoch is all training utterances once, so all systems
have seen the same audio at every epoch end. Systems (``--systems``, each from the same weights):

  plain   openai-whisper ``Whisper`` in fp32 with ``torch.autocast(float16)`` + ``GradScaler``;
          every utterance padded to 30 s and turned into log-mel on the CPU, one at a time
          (``whisper.log_mel_spectrogram``, as tutorial loops do); ``F.cross_entropy`` over the
          full vocabulary; random batches.
  ours    ``TwisterWhisperASRModel`` built by ``TwisterASRTask.build_model`` (as asr_train does)
          with ``fused_loss: true``, ``torch.autocast(bfloat16)``, log-mel batched on the GPU
          inside the encoder, length-bucketed batches.
  ours+pack  the same, but the utterances of each batch are first joined into <= 30-s windows
          (``twister_plugin.data.concat``: plan_windows / join_text, 0.3 s gaps; done before the
          epoch, as a data-loader worker would) so the encoder's fixed 30 s holds several.

Targets are identical: ``<|sot|> lang transcribe notimestamps text`` -> ``... text <|eot|>``,
prompt positions not scored, no label smoothing. The held-out loss (same utterances, unpacked,
the same function and bf16/fp32 autocast for both systems) is evaluated at the same audio-seconds
checkpoints (start and the end of every epoch: every epoch holds all training utterances once,
so every system has seen exactly the same audio there), so "equal loss curve" is measured.

Per system: audio hours per GPU hour (= audio seconds trained / training seconds), utterances/s,
peak CUDA memory, and MFU. MFU = model FLOPs / training seconds / peak FLOP/s, where (forward,
N windows of 30 s, T = 1500 encoder frames, D width, M mels, V vocabulary, l_i scored-or-prompt
decoder tokens of sequence i, n_enc / n_dec layers):
    encoder fwd per window  = 2*2T*3M*D + 2*T*3D*D + n_enc * (24*T*D^2 + 4*T^2*D)
    decoder fwd per token   = n_dec * (28*D^2 + 4*l*D + 4*T*D) + 2*D*V
    decoder fwd per seq     = n_dec * 4*T*D^2         (cross-attention keys/values)
    train FLOPs = (3 if encoder trained else 1) * encoder fwd * N + 3 * decoder fwd
and peak = 989e12 (H100 SXM dense bf16/fp16; ``--peak_tflops``). Padded decoder positions are
not counted; the encoder's 30 s are (that is the work the card does, filled or not: see
``audio_fill`` = audio seconds / (30 s * windows)). Warm-up steps are not timed.

Usage (CPU smoke test, tiny random model, < 2 min):
    python benchmarks/finetune_speed.py --tiny --device cpu --systems plain,ours,ours+pack --out /tmp/ft_speed.json

Usage (H100, Whisper base, three systems in about 3-4 minutes; each stops after 100 steps or 50 s
of training, whichever comes first; drop --frozen_encoder for full fine-tuning):
    python benchmarks/finetune_speed.py --model tools/whisper/base.pt --device cuda \\
        --data ../shared/data/zh/aishell_sample_S0150/manifest.tsv --batch 32 --steps 100 \\
        --frozen_encoder --systems plain,ours,ours+pack --max_seconds_per_system 50 --out benchmarks/results/finetune_speed.json \\
        --plot benchmarks/results/finetune_speed.png
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from twister_plugin.asr.sizes import dims_for
from twister_plugin.asr.task import TwisterASRTask
from twister_plugin.asr.tokenizer import WhisperPrompt, write_token_list
from twister_plugin.data.audio import load_utt
from twister_plugin.data.concat import ConcatOptions, join_text, plan_windows, window_language
from twister_plugin.data.kaldi import DataDir, read_kaldi_dir
from twister_plugin.data.manifest import read_manifest
from twister_plugin.decode.features import batch_log_mel, pad_batch

SR = 16000
WINDOW_S = 30.0
GAP_S = 0.3


@dataclasses.dataclass
class Item:
    """One training example: an utterance, or (packed) a window of several."""

    audio: np.ndarray  # (S,) float32, 16 kHz
    ids: list[int]  # prompt + transcript token ids (no sot / eot)
    n_utts: int  # utterances inside


# ----------------------------------------------------------------------------------- data
def load_data(path: str, n_train: int, n_heldout: int, prompt: WhisperPrompt, seed: int):
    """(train utterances, held-out utterances, DataDir of train ids) from a manifest or Kaldi dir."""
    dd = read_manifest(path) if path.endswith(".tsv") else read_kaldi_dir(path)
    ids = sorted(dd.utt_ids)
    random.Random(seed).shuffle(ids)
    if len(ids) < n_train + n_heldout:
        raise ValueError(f"{path}: {len(ids)} utterances, want {n_train} + {n_heldout}")
    held, train = ids[:n_heldout], ids[n_heldout:n_heldout + n_train]
    langs = dd.utt2lang or {}

    def item(u: str) -> Item:
        return Item(load_utt(dd, u, SR, max_seconds=WINDOW_S), prompt.encode(dd.text[u], langs.get(u, "zh")), 1)

    items = {u: item(u) for u in train + held}
    sub = dd.subset(train)
    return items, train, held, sub


def pack(dd: DataDir, items: dict[str, Item], prompt: WhisperPrompt, seed: int) -> list[Item]:
    """The utterances of ``dd`` (one batch) as windows of <= 30 s (Task A's planner)."""
    durs = {u: len(items[u].audio) / SR for u in dd.utt_ids}
    plan = plan_windows(dd, durs, ConcatOptions(max_seconds=WINDOW_S, gap_seconds=GAP_S, share=1.0, seed=seed))
    gap = np.zeros(int(GAP_S * SR), np.float32)
    langs = dd.utt2lang or {}
    out = []
    for g in plan:
        audio = np.concatenate([p for u in g for p in (gap, items[u].audio)][1:])
        text = join_text(dd.text[u] for u in g)
        out.append(Item(audio, prompt.encode(text, window_language([langs.get(u, "zh") for u in g])), len(g)))
    return out


def batches(ids: list[str], items: dict[str, Item], batch_utts: int, rng: random.Random, bucketed: bool):
    """One epoch: lists of ``batch_utts`` utterance ids (the last one may be short, so that every
    epoch holds exactly the same audio for every system), random or of similar lengths (then in
    random order)."""
    order = list(ids)
    rng.shuffle(order)
    if bucketed:
        order.sort(key=lambda u: len(items[u].audio))
    out = [order[i: i + batch_utts] for i in range(0, len(order), batch_utts)]
    rng.shuffle(out)
    return out


def targets(batch: list[Item], sot: int, eot: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder input (B, L) = sot + ids and labels (B, L) = ids + eot, prompt and pad = -100."""
    L = max(len(x.ids) for x in batch) + 1
    dec_in = torch.full((len(batch), L), eot, dtype=torch.long)
    labels = torch.full((len(batch), L), -100, dtype=torch.long)
    for i, x in enumerate(batch):
        seq = torch.tensor(x.ids)
        dec_in[i, : len(seq) + 1] = torch.cat([torch.tensor([sot]), seq])
        lab = torch.cat([seq, torch.tensor([eot])])
        lab[lab >= sot] = -100  # prompt specials are not scored
        labels[i, : len(lab)] = lab
    return dec_in, labels


# ----------------------------------------------------------------------------------- FLOPs
def train_flops(dims, batch: list[Item], train_encoder: bool) -> float:
    """Model FLOPs of one training step (formula in the module docstring)."""
    T, D, M, V = dims.n_audio_ctx, dims.n_audio_state, dims.n_mels, dims.n_vocab
    enc = 2 * 2 * T * 3 * M * D + 2 * T * 3 * D * D + dims.n_audio_layer * (24 * T * D * D + 4 * T * T * D)
    dec = 0.0
    for x in batch:
        n = len(x.ids) + 1
        dec += n * (dims.n_text_layer * (28 * D * D + 4 * n * D + 4 * T * D) + 2 * D * V)
        dec += dims.n_text_layer * 4 * T * D * D
    return (3 if train_encoder else 1) * enc * len(batch) + 3 * dec


# ----------------------------------------------------------------------------------- systems
class Plain:
    """openai-whisper model, fp16 autocast + GradScaler, per-utterance CPU log-mel."""

    def __init__(self, model, device: torch.device, lr: float):
        import whisper

        self.whisper, self.model, self.device = whisper, model.to(device), device
        self.amp = device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
        self.encoder, self.decoder = model.encoder, model.decoder

    def step(self, batch: list[Item], sot: int, eot: int) -> float:
        w = self.whisper
        mels = [w.log_mel_spectrogram(w.pad_or_trim(torch.from_numpy(x.audio)), self.model.dims.n_mels)
                for x in batch]  # each (M, 3000), on the CPU
        mel = torch.stack(mels).to(self.device)
        dec_in, labels = (t.to(self.device) for t in targets(batch, sot, eot))
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            logits = self.model(mel, dec_in)  # (B, L, V)
            loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad(set_to_none=True)
        return float(loss.detach())


class Ours:
    """TwisterWhisperASRModel (ESPnet), bf16 autocast, fused loss, GPU log-mel."""

    def __init__(self, model, device: torch.device, lr: float):
        self.model, self.device = model.to(device), device
        self.amp = device.type == "cuda"
        self.opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
        self.encoder, self.decoder = model.encoder.encoders, model.decoder.decoders

    def step(self, batch: list[Item], sot: int, eot: int) -> float:
        lens = torch.tensor([len(x.audio) for x in batch])
        speech = torch.zeros(len(batch), int(lens.max()))
        for i, x in enumerate(batch):
            speech[i, : len(x.audio)] = torch.from_numpy(x.audio)
        tl = torch.tensor([len(x.ids) for x in batch])
        text = torch.full((len(batch), int(tl.max())), -1, dtype=torch.long)
        for i, x in enumerate(batch):
            text[i, : len(x.ids)] = torch.tensor(x.ids)
        d = self.device
        with torch.autocast(d.type, dtype=torch.bfloat16, enabled=self.amp):
            loss, _, _ = self.model(speech=speech.to(d), speech_lengths=lens.to(d), text=text.to(d), text_lengths=tl.to(d))
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        scored = int(sum(sum(1 for t in x.ids if t < sot) + 1 for x in batch))
        return float(loss.detach()) * len(batch) / scored  # ESPnet: sum / B -> per scored token


@torch.no_grad()
def heldout_loss(system, held: list[Item], sot: int, eot: int, n_mels: int, device) -> float:
    """Per-token CE on the held-out utterances; one function, one precision, for both systems."""
    was = system.encoder.training
    system.encoder.eval(), system.decoder.eval()
    total, count = 0.0, 0
    for i in range(0, len(held), 16):
        b = held[i: i + 16]
        mel = batch_log_mel(pad_batch([x.audio for x in b], device), n_mels)  # (B, M, 3000)
        dec_in, labels = (t.to(device) for t in targets(b, sot, eot))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = system.decoder(dec_in, system.encoder(mel))  # (B, L, V)
        total += float(F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum"))
        count += int((labels != -100).sum())
    system.encoder.train(was), system.decoder.train(was)
    return total / count


# ----------------------------------------------------------------------------------- models
def build_ours(size: str, checkpoint: str | None, frozen_encoder: bool, token_list: str):
    enc_conf = f"{{size: {size}, trainable_layers: {0 if frozen_encoder else -1}" + (
        f", checkpoint: {checkpoint}}}" if checkpoint else "}")
    dec_conf = f"{{size: {size}" + (f", checkpoint: {checkpoint}}}" if checkpoint else "}")
    args = TwisterASRTask.get_parser().parse_args([
        "--token_list", token_list, "--input_size", "1", "--encoder", "twister_whisper",
        "--encoder_conf", enc_conf, "--decoder", "twister_whisper", "--decoder_conf", dec_conf,
        "--model", "twister_whisper", "--model_conf", "{lsm_weight: 0.0, fused_loss: true}"])
    return TwisterASRTask.build_model(args)


def build_plain(size: str, checkpoint: str | None, frozen_encoder: bool, init_from: dict | None = None):
    """openai-whisper model: the checkpoint's weights, or (tiny) ``init_from`` = the untrained
    encoder / decoder state dicts of our model."""
    from whisper.model import Whisper

    if checkpoint:
        from twister_plugin.whisper import load_whisper

        model = load_whisper(checkpoint, device="cpu").float()
    else:
        model = Whisper(dims_for(size))
        model.encoder.load_state_dict(init_from["encoder"])
        model.decoder.load_state_dict(init_from["decoder"])
    if frozen_encoder:
        model.encoder.requires_grad_(False)
    return model


# ----------------------------------------------------------------------------------- loop
def run_system(name, system, epochs_fn, held, a, dims, sot, eot, device):
    """Train for ``a.steps`` steps (or ``a.max_seconds_per_system``); timings and curves. The
    held-out loss is taken before training, after every epoch (the same audio for every system)
    and after the last step."""
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    curve, evals = [], [dict(audio_s=0.0, step=0, epoch_end=True, heldout_loss=heldout_loss(system, held, sot, eot, dims.n_mels, device))]
    timed_s = audio_s = timed_audio = flops = 0.0
    steps = timed_utts = windows = 0
    epoch, todo = 0, []
    while steps < a.steps and timed_s < a.max_seconds_per_system:
        if not todo:
            todo, epoch = epochs_fn(epoch), epoch + 1
        batch = todo.pop()
        sync()
        t0 = time.perf_counter()
        loss = system.step(batch, sot, eot)
        sync()
        dt = time.perf_counter() - t0
        steps += 1
        secs = sum(len(x.audio) for x in batch) / SR - GAP_S * sum(x.n_utts - 1 for x in batch)
        audio_s += secs
        if steps > a.warmup_steps:
            timed_s += dt
            timed_audio += secs
            timed_utts += sum(x.n_utts for x in batch)
            windows += len(batch)
            flops += train_flops(dims, batch, not a.frozen_encoder)
        curve.append(dict(step=steps, audio_s=round(audio_s, 2), train_loss=round(loss, 4)))
        last = steps >= a.steps or timed_s >= a.max_seconds_per_system
        if not todo or last:
            evals.append(dict(audio_s=round(audio_s, 2), step=steps, epoch_end=not todo,
                              heldout_loss=heldout_loss(system, held, sot, eot, dims.n_mels, device)))
        print(f"[{name}] step {steps} loss {loss:.4f} audio {audio_s:.0f} s  {dt * 1000:.0f} ms", flush=True)
    peak = a.peak_tflops * 1e12 if a.peak_tflops else None
    return dict(
        system=name, steps=steps, timed_steps=max(0, steps - a.warmup_steps), audio_s=round(audio_s, 2),
        train_s=round(timed_s, 3), utts_per_s=round(timed_utts / timed_s, 2) if timed_s else None,
        audio_h_per_gpu_h=round(timed_audio / timed_s, 1) if timed_s else None,
        windows_per_step=round(windows / max(1, steps - a.warmup_steps), 2),
        audio_fill=round(timed_audio / (WINDOW_S * windows), 3) if windows else None,
        tflops_per_s=round(flops / timed_s / 1e12, 3) if timed_s else None,
        mfu=round(flops / timed_s / peak, 4) if timed_s and peak else None,
        peak_mem_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        train_curve=curve, heldout=evals)


def compare(results: list[dict]) -> dict:
    """Each system against the first: held-out loss differences at the checkpoints both reached
    with the same audio seen (start and epoch ends), and the speed-up in audio hours per GPU hour."""
    out = {}
    base = results[0]
    for r in results[1:]:
        a = {round(c["audio_s"]): c for c in base["heldout"] if c["epoch_end"]}
        b = {round(c["audio_s"]): c for c in r["heldout"] if c["epoch_end"]}
        common = sorted(set(a) & set(b))
        diffs = [round(b[k]["heldout_loss"] - a[k]["heldout_loss"], 4) for k in common]
        speed = (round(r["audio_h_per_gpu_h"] / base["audio_h_per_gpu_h"], 2)
                 if r["audio_h_per_gpu_h"] and base["audio_h_per_gpu_h"] else None)
        out[f"{r['system']} vs {base['system']}"] = dict(
            checkpoints_audio_s=common, heldout=[(a[k]["heldout_loss"], b[k]["heldout_loss"]) for k in common],
            heldout_diff=diffs, max_abs_heldout_diff=max(abs(d) for d in diffs), speedup_audio_h=speed)
    return out


def plot(results: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        ax.plot([c["audio_s"] / 3600 for c in r["train_curve"]], [c["train_loss"] for c in r["train_curve"]],
                alpha=0.5, label=f"{r['system']} train")
        ax.plot([c["audio_s"] / 3600 for c in r["heldout"]], [c["heldout_loss"] for c in r["heldout"]],
                "o-", label=f"{r['system']} held-out")
    ax.set_xlabel("audio hours seen")
    ax.set_ylabel("loss per token")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tools/whisper/base.pt", help="Whisper checkpoint (ignored with --tiny)")
    p.add_argument("--size", default="base", help="Whisper size of --model")
    p.add_argument("--tiny", action="store_true", help="tiny random model and few utterances (CPU smoke test)")
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "zh"
                                         / "aishell_sample_S0150" / "manifest.tsv"))
    p.add_argument("--n_train", type=int, default=400)
    p.add_argument("--n_heldout", type=int, default=50)
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=32, help="global batch in utterances")
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--frozen_encoder", action="store_true")
    p.add_argument("--pack", action="store_true", help="same as --systems plain,ours+pack")
    p.add_argument("--systems", default="plain,ours",
                   help="comma list of plain, ours (bucketed), ours+pack (30-s windows); each starts from the same weights")
    p.add_argument("--warmup_steps", type=int, default=3, help="first steps not timed")
    p.add_argument("--max_seconds_per_system", type=float, default=120.0, help="training-time bound")
    p.add_argument("--peak_tflops", type=float, default=None, help="default: 989 on CUDA (H100 SXM bf16 dense)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="finetune_speed.json")
    p.add_argument("--plot", help="PNG of the loss curves")
    a = p.parse_args(argv)
    if a.tiny:
        a.size, a.model = "test", None
        a.n_train, a.n_heldout = min(a.n_train, 12), min(a.n_heldout, 4)
        a.batch, a.steps, a.warmup_steps = min(a.batch, 4), min(a.steps, 6), 1
    if a.pack and a.systems == "plain,ours":
        a.systems = "plain,ours+pack"
    if a.peak_tflops is None and a.device.startswith("cuda"):
        a.peak_tflops = 989.0
    return a


def main(argv=None) -> int:
    a = parse(argv)
    device = torch.device(a.device)
    torch.manual_seed(a.seed)
    dims = dims_for(a.size)
    prompt = WhisperPrompt(dims.n_vocab)
    sot, eot = prompt.tok.sot, prompt.tok.eot
    items, train_ids, held_ids, train_dd = load_data(a.data, a.n_train, a.n_heldout, prompt, a.seed)
    train, held = [items[u] for u in train_ids], [items[u] for u in held_ids]
    if len(train) < a.batch:
        raise SystemExit(f"--batch {a.batch} is more than the {len(train)} training utterances")
    epoch_audio = sum(len(x.audio) for x in train) / SR
    token_list = tempfile.NamedTemporaryFile(suffix=".txt", delete=False).name
    write_token_list(token_list, dims.n_vocab)
    first = build_ours(a.size, a.model, a.frozen_encoder, token_list)
    init = {k: {n: v.clone() for n, v in m.state_dict().items()}  # untrained weights, for every system
            for k, m in (("encoder", first.encoder.encoders), ("decoder", first.decoder.decoders))}
    del first

    def fresh_ours():
        model = build_ours(a.size, a.model, a.frozen_encoder, token_list)
        model.encoder.encoders.load_state_dict(init["encoder"])
        model.decoder.decoders.load_state_dict(init["decoder"])
        return model

    results = []
    for name in a.systems.split(","):
        rng = random.Random(a.seed)
        as_items = lambda b: [items[u] for u in b]  # noqa: E731
        if name == "plain":
            system = Plain(build_plain(a.size, a.model, a.frozen_encoder, init), device, a.lr)
            epochs = lambda e: [as_items(b) for b in batches(train_ids, items, a.batch, rng, False)]  # noqa: E731
        elif name == "ours+pack":  # packed ahead of the epoch, as a data-loader worker would
            system = Ours(fresh_ours(), device, a.lr)
            epochs = lambda e: [pack(train_dd.subset(b), items, prompt, a.seed + e)  # noqa: E731
                                for b in batches(train_ids, items, a.batch, rng, True)]
        elif name == "ours":
            system = Ours(fresh_ours(), device, a.lr)
            epochs = lambda e: [as_items(b) for b in batches(train_ids, items, a.batch, rng, True)]  # noqa: E731
        else:
            raise SystemExit(f"unknown system {name!r} (want plain, ours, ours+pack)")
        results.append(run_system(name, system, epochs, held, a, dims, sot, eot, device))
        del system
        if device.type == "cuda":
            torch.cuda.empty_cache()
    meta = dict(size=a.size, model=a.model, device=str(device), card=torch.cuda.get_device_name() if device.type == "cuda"
                else "cpu", batch_utts=a.batch, steps=a.steps, frozen_encoder=a.frozen_encoder, systems=a.systems,
                n_train=len(train), n_heldout=len(held), train_audio_s=round(epoch_audio, 1), lr=a.lr,
                peak_tflops=a.peak_tflops, torch=torch.__version__)
    report = dict(meta=meta, systems=results, compare=compare(results))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(report, indent=1) + "\n")
    if a.plot:
        plot(results, a.plot)
    summary = {r["system"]: {k: r[k] for k in ("steps", "audio_s", "train_s", "utts_per_s", "audio_h_per_gpu_h",
                                               "windows_per_step", "audio_fill", "tflops_per_s", "mfu", "peak_mem_gb")} for r in results}
    print(json.dumps(dict(meta=meta, summary=summary, compare=report["compare"]), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
