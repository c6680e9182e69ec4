"""Faster start of jobs that load an already trained model (synthesis, decoding).

ESPnet decorates its classes with typeguard's ``@typechecked``, which recompiles each decorated
function when its module is imported: on the 2-core CPU that was about 4 s of the 10 s a
synthesis job spent importing ESPnet and loading its TTS (session 6), paid again by every shard.
The checks guard constructor arguments, which the training run that wrote the model's config
has validated already, so inference entry points skip them. ``TWISTER_TYPECHECK=1`` keeps them.
"""
from __future__ import annotations

import logging
import os
import sys

logger = logging.getLogger(__name__)


def _identity(target=None, **_options):
    return (lambda t: t) if target is None else target


def skip_espnet_typechecks() -> bool:
    """Make ``typeguard.typechecked`` a no-op for the modules imported from now on.

    Returns True when done; False when ``TWISTER_TYPECHECK=1`` or ESPnet is imported already (its
    classes are decorated then, and this process keeps their checks)."""
    if os.environ.get("TWISTER_TYPECHECK") == "1":
        return False
    if any(m == "espnet2" or m.startswith("espnet2.") for m in sys.modules):
        return False
    import typeguard

    typeguard.typechecked = _identity
    logger.debug("typeguard checks off for ESPnet (a trained model is loaded; TWISTER_TYPECHECK=1 keeps them)")
    return True
