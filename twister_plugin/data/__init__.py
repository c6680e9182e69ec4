"""Data contract: Kaldi data dirs (``kaldi``), shared-data manifests and lhotse (``manifest``),
and robust audio loading (``audio``).

A data dir is the unit every stage reads and writes: ``wav.scp``, ``text``, ``utt2spk``
(+ ``spk2utt``), optional ``segments``, ``utt2lang`` (zh / en) and ``utt2dur``; see
:mod:`twister_plugin.data.kaldi` for the exact rules. Audio comes out of :func:`load_audio` as
``(S,)`` float32 mono at 16 kHz (S samples).
"""
from twister_plugin.data.audio import AudioError, AudioInfo, load_audio, load_utt, probe_audio
from twister_plugin.data.kaldi import (
    AudioRef, DataDir, DataError, Segment, read_ids, read_kaldi_dir, read_text, write_kaldi_dir,
)
from twister_plugin.data.manifest import (
    from_lhotse, read_manifest, select_ids, select_language, to_lhotse, to_lhotse_manifests,
)

__all__ = [
    "AudioError", "AudioInfo", "AudioRef", "DataDir", "DataError", "Segment", "from_lhotse",
    "load_audio", "load_utt", "probe_audio", "read_ids", "read_kaldi_dir", "read_manifest",
    "read_text", "select_ids", "select_language", "to_lhotse", "to_lhotse_manifests",
    "write_kaldi_dir",
]
