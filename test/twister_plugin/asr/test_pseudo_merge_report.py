"""pseudo_merge's report: hours of long recordings, of their segments and of the kept segments;
the ctc_agreement threshold line."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from twister_plugin.asr.filters import FilterConfig
from twister_plugin.asr.pseudo_label import PseudoLabelConfig
from twister_plugin.asr.pseudo_merge import make_report, report_text, segment_hours
from twister_plugin.bin.pseudo_label import main
from twister_plugin.testing.decode import (ending_model, loose_pseudo_label_conf, save_model, tones,
                                           write_segments_dir, write_wave_dir)

TINY_CONF = loose_pseudo_label_conf(batch_size=4)
GAP_S = 0.5


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("merge_report")
    conf = root / "conf.yaml"
    conf.write_text(TINY_CONF, encoding="utf-8")
    return {"root": root, "conf": str(conf), "model": str(save_model(ending_model(0), root / "tiny.pt"))}


def pseudo_label(setup: dict, data: Path, out: Path) -> dict:
    main(["--data", str(data), "--model", setup["model"], "--out", str(out), "--config", setup["conf"],
          "--device", "cpu"])
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_segmented_input_reports_hours(setup: dict, tmp_path: Path):
    waves = tones(3, seed=5)
    data = write_segments_dir(tmp_path / "data", waves, gap_s=GAP_S)
    report = pseudo_label(setup, data, tmp_path / "out")
    seconds = [len(w) / 16000 for w in waves]
    rec_seconds = sum(seconds) + len(waves) * GAP_S  # each wave is followed by a gap
    assert report["segmented_recordings"] == 1 and report["segments"] == 3
    assert report["segmented_from_unreadable"] == 0
    assert report["segmented_from_hours"] == pytest.approx(rec_seconds / 3600, abs=1e-4)
    assert report["segments_hours"] == pytest.approx(sum(seconds) / 3600, abs=1e-4)
    scores = [json.loads(line) for line in (tmp_path / "out/scores.jsonl").read_text().splitlines()]
    kept = [seconds[int(r["utt_id"][-3:])] for r in scores if r["kept"]]
    assert kept and report["kept_hours"] == pytest.approx(sum(kept) / 3600, abs=1e-4)
    assert report["kept_hours"] == pytest.approx(report["hours_kept"], abs=1e-4)
    text = (tmp_path / "out/report.txt").read_text(encoding="utf-8")
    assert (f"segments: 1 long recordings ({report['segmented_from_hours']:.3f} h) -> 3 segments "
            f"({report['segments_hours']:.3f} h), {report['kept_hours']:.3f} h kept") in text


def test_whole_recordings_have_no_segment_fields(setup: dict, tmp_path: Path):
    data = write_wave_dir(tmp_path / "data", {f"utt{i}": w for i, w in enumerate(tones(2, seed=5))})
    report = pseudo_label(setup, data, tmp_path / "out")
    for key in ("segmented_from_hours", "segments_hours", "kept_hours", "segments"):
        assert key not in report
    assert "long recordings" not in (tmp_path / "out/report.txt").read_text(encoding="utf-8")


def test_unreadable_recording_is_counted_not_fatal(setup: dict, tmp_path: Path):
    data = write_segments_dir(tmp_path / "data", tones(2, seed=1), gap_s=GAP_S)
    audio = str(data / "rec1.flac")
    judged = [
        {"recording": "rec1", "audio": audio, "start": 0.0, "end": 1.0, "kept": True},
        {"recording": "gone", "audio": str(tmp_path / "missing.flac"), "start": 2.0, "end": 5.0,
         "kept": False},
    ]
    out = segment_hours(judged)
    assert out["segmented_recordings"] == 2 and out["segmented_from_unreadable"] == 1
    import soundfile as sf

    assert out["segmented_from_hours"] == pytest.approx(sf.info(audio).duration / 3600, abs=1e-4)
    assert out["segments_hours"] == pytest.approx(4.0 / 3600, abs=1e-4)
    assert out["kept_hours"] == pytest.approx(1.0 / 3600, abs=1e-4)
    assert "1 of unknown length" in report_text({**make_report([], PseudoLabelConfig()), **out})
    assert segment_hours([{"recording": "u", "audio": audio, "start": None, "end": None}]) == {}


@pytest.mark.parametrize("minimum, shown", [(None, "off"), (-1.5, "CTC log-likelihood per unit < -1.5")])
def test_ctc_agreement_threshold_is_listed(minimum, shown):
    cfg = replace(PseudoLabelConfig(), filters=FilterConfig(ctc_agreement_min=minimum))
    line = [ln for ln in report_text(make_report([], cfg)).splitlines() if ln.startswith("ctc_agreement")]
    assert len(line) == 1 and line[0].endswith(shown)
