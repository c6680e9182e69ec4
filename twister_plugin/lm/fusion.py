"""Shallow fusion of an LM over Whisper's text tokens into the batched decoder.

Per step, for each hypothesis row r and Whisper token t (V Whisper vocabulary, V_lm = eot + 1):

    fused[r, t] = log p_whisper(t) + weight * log p_lm(t) + length_bonus * [t < eot]

Text tokens ``t < eot`` and ``<|endoftext|>`` (the LM's eos) get the LM's log-probability;
special tokens ``t > eot`` (language, task, timestamps: not in the LM's vocabulary) are suppressed
while an LM is fused (-inf; the decoder already suppresses most of them, timestamps included
unless ``suppress_timestamps`` is off), so every sampled token is one the LM can read.

The LM is anything with ESPnet's ``batch_score(ys [R, n], states: list, xs) -> (logp [R, V_lm],
states)`` (every ``espnet2.lm`` model; per-row states). One LM call per step scores every active
row; when the beam re-orders or drops rows, the states and the pending log-probs follow them.

Shapes: R rows (audio-major, as :mod:`twister_plugin.decode.search`), n sampled tokens.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

logger = logging.getLogger(__name__)


class BatchScorer(Protocol):
    def batch_score(self, ys: Tensor, states: list[Any], xs: Any) -> tuple[Tensor, list[Any]]:
        ...


class ShallowFusion:
    """Incremental LM state per hypothesis row, and the fused log-probabilities."""

    def __init__(self, lm: BatchScorer | None, eot: int, weight: float = 0.0,
                 length_bonus: float = 0.0) -> None:
        if lm is None and weight != 0.0:
            raise ValueError("lm_weight != 0 needs an LM (lm_path)")
        self.lm, self.eot, self.weight, self.length_bonus = lm, eot, weight, length_bonus
        self.states: list[Any] = []
        self.logp: Tensor | None = None  # [R, V_lm] LM log-probs of the next token

    def start(self, n_rows: int, device: torch.device) -> None:
        """Every row starts from the LM's sos (= ``<|endoftext|>``)."""
        if self.lm is None:
            return
        self.states = [None] * n_rows
        self._score(torch.full((n_rows, 0), 0, dtype=torch.long, device=device))

    def _score(self, tokens: Tensor) -> None:
        sos = torch.full((tokens.shape[0], 1), self.eot, dtype=torch.long, device=tokens.device)
        ys = torch.cat([sos, tokens], dim=1)  # [R, 1 + n]
        logp, self.states = self.lm.batch_score(ys, self.states, None)
        if logp.shape[1] != self.eot + 1:
            raise ValueError(f"LM vocabulary {logp.shape[1]} != Whisper eot + 1 = {self.eot + 1} "
                             "(an LM for another Whisper tokenizer?)")
        self.logp = logp.float()

    def fuse(self, logprobs: Tensor) -> Tensor:
        """Fused scores ``[R, V]`` from Whisper's log-probs ``[R, V]`` (a new tensor)."""
        fused = logprobs.clone()
        if self.lm is not None:
            n_lm = self.logp.shape[1]
            fused[:, :n_lm] += self.weight * self.logp.to(fused.device)
            fused[:, n_lm:] = float("-inf")
        fused[:, : self.eot] += self.length_bonus
        return fused

    def advance(self, src: Tensor | None, tokens: Tensor) -> None:
        """Rows re-ordered/dropped (new row i continues old row ``src[i]``; None: unchanged),
        then ``tokens [R, n]`` (each row's sampled tokens) fed: the LM scores the last one."""
        if self.lm is None:
            return
        if src is not None:
            idx = src.tolist()
            self.states = [self.states[i] for i in idx]
        self._score(tokens)


def _checkpoint(exp_dir: Path) -> Path:
    for name in ("valid.loss.ave.pth", "valid.loss.best.pth"):
        if (exp_dir / name).exists():
            return exp_dir / name
    epochs = sorted(exp_dir.glob("*epoch.pth"), key=lambda p: int(p.name.split("epoch")[0]))
    if not epochs:
        raise FileNotFoundError(f"{exp_dir}: no valid.loss.*.pth or <N>epoch.pth LM checkpoint")
    return epochs[-1]


def load_lm(exp_dir: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The ``AbsLM`` of a :class:`~twister_plugin.lm.task.TwisterLMTask` exp dir, in eval mode."""
    from twister_plugin.lm.task import TwisterLMTask

    exp_dir = Path(exp_dir)
    if not (exp_dir / "config.yaml").exists():
        raise FileNotFoundError(f"{exp_dir}: not an LM exp dir (no config.yaml)")
    ckpt = _checkpoint(exp_dir)
    model, _ = TwisterLMTask.build_model_from_file(exp_dir / "config.yaml", ckpt, str(device))
    logger.info("LM %s: %s", ckpt, type(model.lm).__name__)
    return model.lm.eval()
