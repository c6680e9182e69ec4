"""Twister TTS tasks: ESPnet's GAN TTS task (VITS/JETS) and its mel TTS task (TwisterFastSpeech),
each with the Twister frontend registered (``TwisterFrontendMixin``).

Differences from ``espnet2.tasks.gan_tts.GANTTSTask`` / ``espnet2.tasks.tts.TTSTask``:
  * ``--g2p twister``: the text is raw (Mandarin/English) and is phonemized by
    ``twister_plugin.tts.frontend.Frontend`` configured by ``--frontend_conf``. Training dumps
    from tts_prepare hold phone text already and use ``--g2p none`` (faster, errors found once);
    the option lets ESPnet's own inference (Text2Speech) take raw text.
  * ``--frontend_conf`` is saved in config.yaml, so synthesis rebuilds the same frontend.
  * TTSTask also offers ``--tts twister_fastspeech`` (``twister_plugin.tts.fastspeech``).
``task_for(tts)`` picks the task of a config's ``tts`` (GAN models vs mel models).
Data contract (from tts_prepare): text (phones), speech (wav), spembs (D,), sids (1,).
"""
from __future__ import annotations

import argparse
from typing import Iterable, List

from espnet2.tasks import gan_tts, tts
from espnet2.tasks.gan_tts import GANTTSTask
from espnet2.tasks.tts import TTSTask
from espnet2.text.abs_tokenizer import AbsTokenizer
from espnet2.train.preprocessor import CommonPreprocessor
from espnet2.utils.nested_dict_action import NestedDictAction

from twister_plugin.tts.fastspeech import TwisterFastSpeech
from twister_plugin.tts.frontend import Frontend, FrontendConfig

TWISTER_G2P = "twister"
tts.tts_choices.classes.setdefault("twister_fastspeech", TwisterFastSpeech)  # --tts choice

class TwisterTokenizer(AbsTokenizer):
    """ESPnet tokenizer over the Twister frontend (raw text -> phone tokens)."""

    def __init__(self, frontend_conf: dict | None = None):
        self.frontend = Frontend(FrontendConfig.from_dict(frontend_conf))

    def text2tokens(self, line: str) -> List[str]:
        return self.frontend.phonemize(line)

    def tokens2text(self, tokens: Iterable[str]) -> str:
        return " ".join(tokens)


class TwisterFrontendMixin:
    """The Twister frontend as g2p "twister" + its config saved in config.yaml (task mixin)."""

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_task_arguments(parser)
        for action in parser._actions:  # extend ESPnet's fixed --g2p choices with ours
            if action.dest == "g2p" and action.choices is not None:
                action.choices = [*action.choices, TWISTER_G2P]
        parser.add_argument(
            "--frontend_conf",
            action=NestedDictAction,
            default={},
            help="Twister FrontendConfig fields (used by --g2p twister and by synthesis)",
        )

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool):
        if getattr(args, "g2p", None) != TWISTER_G2P:
            return super().build_preprocess_fn(args, train)
        if not args.use_preprocessor:
            return None
        pre = CommonPreprocessor(
            train=train,
            token_type=args.token_type,
            token_list=args.token_list,
            text_cleaner=args.cleaner,
            g2p_type=None,
        )
        pre.tokenizer = TwisterTokenizer(getattr(args, "frontend_conf", None))
        return pre


class TwisterTTSTask(TwisterFrontendMixin, GANTTSTask):
    """GAN TTS (VITS, JETS) with the Twister frontend."""

    @staticmethod
    def spk_embed_conf(dim: int) -> str:
        """``--tts_conf`` entry that sets the speaker embedding size."""
        return f"generator_params.spk_embed_dim={dim}"


class TwisterMelTTSTask(TwisterFrontendMixin, TTSTask):
    """Mel TTS (TwisterFastSpeech; vocoded by Griffin-Lim) with the Twister frontend."""

    @staticmethod
    def spk_embed_conf(dim: int) -> str:
        return f"spk_embed_dim={dim}"


def is_gan_model(tts_name: str | None) -> bool:
    """Whether ESPnet's GAN TTS task trains ``tts_name`` (its default, vits, when None)."""
    return tts_name is None or tts_name.lower() in gan_tts.tts_choices.classes


def task_for(tts_name: str | None):
    """The task class that trains / loads a config's ``tts`` model."""
    if is_gan_model(tts_name):
        return TwisterTTSTask
    if tts_name.lower() not in tts.tts_choices.classes:
        raise ValueError(f"tts {tts_name!r}: not a GAN TTS ({sorted(gan_tts.tts_choices.classes)})"
                         f" nor a mel TTS ({sorted(tts.tts_choices.classes)})")
    return TwisterMelTTSTask
