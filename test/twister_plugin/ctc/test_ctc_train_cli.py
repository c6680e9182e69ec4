"""``python -m twister_plugin.bin.ctc_train``: head files, then scoring pseudo-label records and
re-merging them with the ctc_agreement filter."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from twister_plugin.asr.pseudo_label import PseudoLabelConfig, PseudoLabelError, plan_of, read_records, write_records
from twister_plugin.asr.pseudo_merge import merge
from twister_plugin.asr.filters import FilterConfig
from twister_plugin.bin import ctc_train
from twister_plugin.data import DataError, read_kaldi_dir
from twister_plugin.testing.asr import s0150_dir
from twister_plugin.testing.ctc import S0150

TINY = Path(__file__).resolve().parents[3] / "tools" / "whisper" / "tiny.en.pt"
pytestmark = pytest.mark.skipif(not (S0150.exists() and TINY.exists()), reason="data or tiny.en absent")


def _pseudo_dir(data: Path, out: Path) -> None:
    dd = read_kaldi_dir(data)
    (out / "shards").mkdir(parents=True)
    (out / "shards" / "plan.json").write_text(json.dumps(plan_of(dd.utt_ids, 1, 256)))
    recs = [dict(utt_id=u, recording=u, audio=dd.wav_scp[u], start=None, end=None, speaker=dd.utt2spk[u],
                 duration=3.0, text=dd.text[u], language="zh", detected_language="zh", language_prob=1.0,
                 no_speech_prob=0.0, avg_logprob=-0.1, compression_ratio=1.0, finished=True, n_tokens=5)
            for u in dd.utt_ids]
    write_records(out / "shards" / "1.jsonl", recs)
    (out / "shards" / "1.done").write_text("3\n")


def test_train_score_and_filter(tmp_path):
    torch.set_num_threads(1)
    data = s0150_dir(tmp_path / "data", 3)
    pseudo = tmp_path / "pseudo"
    _pseudo_dir(data, pseudo)
    ctc_train.main(["--data", str(data), "--model", str(TINY), "--out", str(tmp_path / "ctc"),
                    "--epochs", "2", "--device", "cpu", "--vocab-size", "50", "--score-pseudo", str(pseudo)])
    assert {p.name for p in (tmp_path / "ctc").iterdir()} >= {"head.pt", "units.model", "train.json"}
    recs = read_records(pseudo / "shards" / "1.jsonl")
    assert len(recs) == 3 and all(r["ctc_agreement"] < 0 for r in recs)
    lenient = PseudoLabelConfig(filters=FilterConfig(ctc_agreement_min=-1e9))
    report = merge(pseudo, lenient)
    assert report["kept"] == 3 and report["rejected_by"]["ctc_agreement"] == 0
    strict = PseudoLabelConfig(filters=FilterConfig(ctc_agreement_min=0.0))
    with pytest.raises(PseudoLabelError, match="no utterance passed"):
        merge(pseudo, strict)
    report = json.loads((pseudo / "report.json").read_text())
    assert report["rejected_by"]["ctc_agreement"] == 3


def test_refused_data(tmp_path):
    with pytest.raises(DataError, match="not a directory"):
        ctc_train.main(["--data", str(tmp_path / "nope"), "--model", str(TINY), "--out", str(tmp_path / "o")])
    data = s0150_dir(tmp_path / "data", 2)
    (data / "text").unlink()
    with pytest.raises(DataError, match="text"):
        ctc_train.main(["--data", str(data), "--model", str(TINY), "--out", str(tmp_path / "o")])
