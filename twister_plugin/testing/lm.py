"""A count-based bigram LM over Whisper ids with ESPnet's ``batch_score`` interface, for tests of
shallow fusion: built in about a second from a text file, deterministic, strongly in-domain.

``p(w | v) = a * c(v, w) / c(v) + (1 - a) * p_uni(w)`` (add-one unigram); state = last token.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import torch
from torch import Tensor

from twister_plugin.asr.tokenizer import tokenizer_for_vocab
from twister_plugin.lm.task import encode_line


class BigramLM:
    def __init__(self, text: Path, whisper_vocab: int = 51865, max_lines: int | None = None,
                 bigram_weight: float = 0.9) -> None:
        tok = tokenizer_for_vocab(whisper_vocab)
        self.eot, self.a = tok.eot, bigram_weight
        uni = torch.ones(self.eot + 1)
        pairs: dict[int, Counter] = defaultdict(Counter)
        with open(text, encoding="utf-8") as f:
            for n, line in enumerate(f):
                if max_lines is not None and n >= max_lines:
                    break
                ids = [self.eot] + encode_line(tok, line) + [self.eot]
                for v, w in zip(ids[:-1], ids[1:]):
                    pairs[v][w] += 1
                    uni[w] += 1
        self.uni = uni / uni.sum()
        self.pairs = {v: (torch.tensor(list(c.keys())), torch.tensor(list(c.values()), dtype=torch.float32))
                      for v, c in pairs.items()}

    def batch_score(self, ys: Tensor, states: list, xs) -> tuple[Tensor, list]:
        rows = []
        for v in ys[:, -1].tolist():
            p = (1 - self.a) * self.uni
            if v in self.pairs:
                ids, counts = self.pairs[v]
                p = p.clone()
                p[ids] += self.a * counts / counts.sum()
            else:
                p = self.uni
            rows.append(p.log())
        return torch.stack(rows).to(ys.device), [None] * ys.shape[0]
