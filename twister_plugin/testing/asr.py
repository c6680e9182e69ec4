"""Tiny real data and test-size models for the ASR task's tests."""
from __future__ import annotations

from pathlib import Path

from twister_plugin.data.kaldi import write_kaldi_dir
from twister_plugin.data.manifest import read_manifest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def s0150_dir(out: Path, n: int, first: int = 121) -> Path:
    """A Kaldi dir of ``n`` S0150 news utterances (ids W0121...) with their transcripts."""
    dd = read_manifest(SHARED / "zh" / "aishell_sample_S0150" / "manifest.tsv")
    ids = [u for u in dd.utt_ids if int(u[-4:]) >= first][:n]
    write_kaldi_dir(dd.subset(ids), out)
    return out


def build_args(token_list: Path, size: str = "test", **model_conf) -> list[str]:
    conf = ", ".join(f"{k}: {v}" for k, v in {"lsm_weight": 0.0, **model_conf}.items())
    return ["--token_list", str(token_list), "--input_size", "1", "--encoder", "twister_whisper",
            "--encoder_conf", f"{{size: {size}}}", "--decoder", "twister_whisper",
            "--decoder_conf", f"{{size: {size}}}", "--model", "twister_whisper",
            "--model_conf", f"{{{conf}}}"]
