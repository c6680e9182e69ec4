"""asr_inference decodes several data sets with one model load; each set's output equals what a
call for that set alone writes."""
from __future__ import annotations

import pytest

from twister_plugin.bin import asr_inference
from twister_plugin.testing.data import shared_data
from twister_plugin.testing.decode import ending_model, save_model

pytestmark = pytest.mark.skipif(shared_data() is None, reason="needs shared/data")
SETS = ["aishell1_dev_S0724", "thchs30_D4"]


def _args(model, data, out):
    return ["--model", str(model), "--device", "cpu", "--language", "zh",
            "--set", "max_new_tokens=6", "--data", *map(str, data), "--out", *map(str, out)]


def test_several_sets_one_model_load_same_output(tmp_path, monkeypatch):
    model = save_model(ending_model(), tmp_path / "tiny.pt")
    data = [shared_data() / "zh" / s / "manifest.tsv" for s in SETS]
    loads = []
    real_load = asr_inference.load_any
    monkeypatch.setattr(asr_inference, "load_any",
                        lambda *a, **k: loads.append(a) or real_load(*a, **k))
    assert asr_inference.main(_args(model, data, [tmp_path / "both" / s for s in SETS])) == 0
    assert len(loads) == 1
    for d, s in zip(data, SETS):
        assert asr_inference.main(_args(model, [d], [tmp_path / "alone" / s])) == 0
        both = (tmp_path / "both" / s / "text").read_text(encoding="utf-8")
        assert both == (tmp_path / "alone" / s / "text").read_text(encoding="utf-8")
        assert len(both.splitlines()) == 5
        assert (tmp_path / "both" / s / "timing.json").exists()


def test_unpaired_outputs_are_refused_before_loading(tmp_path, capsys):
    data = [shared_data() / "zh" / s / "manifest.tsv" for s in SETS]
    with pytest.raises(SystemExit):
        asr_inference.main(_args(tmp_path / "none.pt", data, [tmp_path / "one"]))
    assert "--data names 2 sets but --out 1 dirs" in capsys.readouterr().err
