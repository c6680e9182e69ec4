"""Data-parallel training steps of the plugin's ASR model, done the way ESPnet's trainer does them,
for the DDP equality test and the multi-GPU benchmark.

ESPnet (espnet2/train/trainer.py, distributed mode) gives each rank ``batch[rank::world]`` of the
global batch, then rescales the rank's loss by its share of the global weight (the ASR model's
weight is its batch size) times the world size, because DDP averages gradients over ranks:
``loss_r * B_r / B * world``. The gradient is then the one of the global-batch loss.

Data contract (B batch, S samples, L tokens): an item is ``(utt_id, {"speech": (S,) float32,
"text": (L,) int64})`` as the plugin's preprocessor makes it; a batch is CommonCollateFn's dict
(speech (B, S), speech_lengths (B,), text (B, L) padded with -1, text_lengths (B,)).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import soundfile as sf
import torch
import torch.distributed as dist
from espnet2.torch_utils.recursive_op import recursive_average
from espnet2.train.collate_fn import CommonCollateFn

from twister_plugin.asr.task import TwisterASRTask
from twister_plugin.asr.tokenizer import TwisterWhisperPreprocessor

Item = tuple[str, dict]
_COLLATE = CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)


def s0150_items(manifest: Path, token_list: Path, n: int, max_seconds: float = 30.0) -> list[Item]:
    """The first ``n`` utterances (at most ``max_seconds`` long) of a manifest, read with
    soundfile and tokenised with the plugin's preprocessor (zh prompt)."""
    from twister_plugin.data.manifest import read_manifest

    dd = read_manifest(manifest, check_audio=False)
    pre = TwisterWhisperPreprocessor(True, token_list=str(token_list))
    items: list[Item] = []
    for utt in dd.utt_ids:
        audio, sr = sf.read(str(manifest.parent / dd.wav_scp[utt]), dtype="float32")
        if sr != 16000:
            raise ValueError(f"{manifest}: {utt} is {sr} Hz; the ASR model wants 16 kHz")
        if len(audio) > max_seconds * sr:
            continue
        items.append((utt, pre(utt, {"speech": audio, "text": dd.text[utt]})))
        if len(items) == n:
            break
    if len(items) < n:
        raise ValueError(f"{manifest}: only {len(items)} utterances of <= {max_seconds} s, {n} wanted")
    return items


def collate(items: Sequence[Item]) -> dict:
    return _COLLATE(list(items))[1]


def rank_slice(items: Sequence[Item], rank: int, world: int) -> list[Item]:
    """ESPnet's split of one global batch: rank r takes items r, r+world, ..."""
    if len(items) < world:
        raise ValueError(f"batch of {len(items)} is smaller than the world size {world}")
    return list(items)[rank::world]


def espnet_loss(loss: torch.Tensor, stats: dict, weight: torch.Tensor, distributed: bool):
    """ESPnet's trainer reduction: (loss to backprop, the global-batch loss for reporting)."""
    loss = (loss * weight.type(loss.dtype)).sum()
    stats = {k: v for k, v in stats.items() if v is not None}
    stats, weight = recursive_average(stats, weight, distributed)
    loss = loss / weight  # weight is now the global batch size
    if distributed:
        loss = loss * dist.get_world_size()  # DDP averages gradients over ranks
    return loss, stats["loss"].detach()


def build_model(model_args: list[str]) -> torch.nn.Module:
    return TwisterASRTask.build_model(TwisterASRTask.get_parser().parse_args(model_args))


def train_step(ddp_model, optim, batch: dict, distributed: bool, device: str = "cpu",
               amp_dtype: torch.dtype | None = None) -> float:
    """One optimiser step on ``batch`` (this rank's share, collated); returns the global-batch loss."""
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    optim.zero_grad(set_to_none=True)
    with torch.autocast(device_type=device.split(":")[0], dtype=amp_dtype or torch.bfloat16,
                        enabled=amp_dtype is not None):
        loss, stats, weight = ddp_model(**batch)
    loss, global_loss = espnet_loss(loss, stats, weight, distributed)
    loss.backward()
    optim.step()
    return float(global_loss)


def gloo_worker(rank: int, world: int, init_file: str, model_args: list[str], state: dict,
                items: list[Item], lr: float, out_dir: str) -> None:
    """mp.spawn target: one DDP step on CPU (gloo); saves loss, grads and params to rank<r>.pt.

    SGD, not the recipes' AdamW: Adam's first step is ~lr * sign(grad), so a gradient that is ~0
    flips sign with float32 summation order and params differ by 2*lr; SGD keeps the comparison
    as well-conditioned as the gradients'."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = build_model(model_args)
        model.load_state_dict(state)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        optim = torch.optim.SGD(model.parameters(), lr=lr)
        loss = train_step(ddp, optim, collate(rank_slice(items, rank, world)), distributed=True)
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        result = dict(loss=loss, grads=grads, params=model.state_dict())
        torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def single_step(model_args: list[str], state: dict, items: list[Item], lr: float) -> dict:
    """The same step in one process on the whole batch (no DDP)."""
    model = build_model(model_args)
    model.load_state_dict(state)
    optim = torch.optim.SGD(model.parameters(), lr=lr)
    loss = train_step(model, optim, collate(items), distributed=False)
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return dict(loss=loss, grads=grads, params=model.state_dict())

