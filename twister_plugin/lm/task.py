"""ESPnet LM task over Whisper's text tokens.

Vocabulary: Whisper's BPE tokens followed by ``<|endoftext|>`` (ids ``0 .. eot``; 50258 entries
for multilingual models, 50257 for ``.en``), so an LM id *is* the Whisper id and ESPnet's
convention ``sos = eos = vocab_size - 1`` lands on Whisper's ``<|endoftext|>``. Prompt,
language, task and timestamp tokens are not in the LM's vocabulary (fusion gives them 0).

Text: one sentence per line, plain BPE ids (no ``<|startoftranscript|>``); a line starting with a
Latin letter or digit gets Whisper's leading space, as the ASR preprocessor does.

``whisper_transformer`` is ESPnet's ``TransformerLM`` with a causal-only attention mask: the
stock mask treats id 0 as padding, but here id 0 is the BPE token ``!`` (padding sits after the
end of each line, where the causal mask already hides it).
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Dict, List, Union

import numpy as np

from espnet2.lm.espnet_model import ESPnetLanguageModel
from espnet2.lm.seq_rnn_lm import SequentialRNNLM
from espnet2.lm.transformer_lm import TransformerLM
from espnet2.tasks.lm import LMTask, model_choices
from espnet2.torch_utils.initialize import initialize
from espnet2.train.class_choices import ClassChoices
from espnet2.lm.abs_model import AbsLM
from espnet.nets.pytorch_backend.transformer.mask import subsequent_mask
from whisper.tokenizer import Tokenizer

from twister_plugin.asr.tokenizer import token_strings, tokenizer_for_vocab
from twister_plugin.utils.fileio import atomic_open

EOT_NAME = "<|endoftext|>"
_LATIN_START = re.compile(r"^[A-Za-z0-9]")

class LMTextError(ValueError):
    """A text line the LM cannot take (empty, or a token list that is not Whisper's)."""


class WhisperTransformerLM(TransformerLM):
    """ESPnet's TransformerLM with a causal-only mask (id 0 is a real token here)."""

    def _target_mask(self, ys_in_pad):
        return subsequent_mask(ys_in_pad.size(-1), device=ys_in_pad.device).unsqueeze(0)


lm_choices = ClassChoices("lm", classes=dict(whisper_transformer=WhisperTransformerLM,
                                             transformer=TransformerLM, seq_rnn=SequentialRNNLM),
                          type_check=AbsLM, default="whisper_transformer")


def lm_token_strings(whisper_vocab: int) -> List[str]:
    """LM token list: Whisper's names of ids ``0 .. eot`` (the last one ``<|endoftext|>``)."""
    eot = tokenizer_for_vocab(whisper_vocab).eot
    names = token_strings(whisper_vocab)[: eot + 1]
    assert names[-1] == EOT_NAME, names[-1]
    return names


def write_lm_token_list(path: Union[str, Path], whisper_vocab: int) -> Path:
    with atomic_open(path) as f:
        f.write("\n".join(lm_token_strings(whisper_vocab)) + "\n")
    return Path(path)


def encode_line(tok: Tokenizer, text: str) -> List[int]:
    """Whisper BPE ids of one sentence (leading space before Latin script, as Whisper writes)."""
    text = text.strip()
    if not text:
        raise LMTextError("empty text")
    return tok.encode(" " + text if _LATIN_START.match(text) else text)


class WhisperTextPreprocessor:
    """ESPnet preprocessor: ``text`` string -> Whisper BPE ids ``int64 [L]``."""

    def __init__(self, whisper_vocab: int, text_name: str = "text"):
        self.tok = tokenizer_for_vocab(whisper_vocab)
        self.text_name = text_name

    def __call__(self, uid: str, data: Dict[str, Union[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        try:
            ids = encode_line(self.tok, str(data[self.text_name]))
        except LMTextError as e:
            raise LMTextError(f"utterance {uid}: {e}") from None
        data[self.text_name] = np.asarray(ids, dtype=np.int64)
        return data


class TwisterLMTask(LMTask):
    class_choices_list = [lm_choices, model_choices]

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        super().add_task_arguments(parser)
        parser.add_argument("--whisper_vocab", type=int, default=51865,
                            help="Whisper vocabulary the LM's tokens come from (51864: .en)")
        return parser

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool):
        return WhisperTextPreprocessor(args.whisper_vocab) if args.use_preprocessor else None

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> ESPnetLanguageModel:
        tokens = args.token_list
        if isinstance(tokens, str):
            with open(tokens, encoding="utf-8") as f:
                tokens = [line.rstrip("\n") for line in f]
        expected = len(lm_token_strings(args.whisper_vocab))
        if len(tokens) != expected or tokens[-1] != EOT_NAME:
            raise LMTextError(f"token_list must be Whisper's ids 0..eot ({expected} entries ending "
                              f"in {EOT_NAME}: write_lm_token_list), got {len(tokens)} ending in "
                              f"{tokens[-1]!r}")
        if getattr(args, "model", "lm") != "lm":
            raise ValueError(f"model must be 'lm' (ESPnetLanguageModel), got {args.model!r}")
        args.token_list = list(tokens)  # saved in config.yaml: the exp dir is self-contained
        lm = lm_choices.get_class(args.lm)(vocab_size=len(tokens), **args.lm_conf)
        # ESPnetLanguageModel takes sos = eos = vocab_size - 1, i.e. <|endoftext|> here
        model = ESPnetLanguageModel(lm=lm, vocab_size=len(tokens), **args.model_conf)
        if args.init is not None:
            initialize(model, args.init)
        return model
