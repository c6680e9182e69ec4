"""Faster start and end of jobs that load an already trained model (synthesis, decoding).

ESPnet decorates its classes with typeguard's ``@typechecked``, which recompiles each decorated
function when its module is imported: on the 2-core CPU that was about 4 s of the 10 s a
synthesis job spent importing ESPnet and loading its TTS (session 6), paid again by every shard.
The checks guard constructor arguments, which the training run that wrote the model's config
has validated already, so inference entry points skip them. ``TWISTER_TYPECHECK=1`` keeps them.

At the end, tearing the interpreter down (torch, ESPnet and their ~4,000 modules, the CUDA
context) took 1.8 s of a 9.5-s synthesis job on the 2-core CPU, after its outputs were written:
``fast_exit`` ends a job that succeeded without it. Every output is written and closed by then;
a job that fails raises as before.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

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


def fast_exit(code: int | None = 0) -> NoReturn:
    """Exit now with ``code`` (None = 0), after flushing the streams and the log handlers, without
    the interpreter's teardown. Only for the end of a ``__main__`` whose outputs are closed."""
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code or 0)
