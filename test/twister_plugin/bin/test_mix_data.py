"""mix_data: mixing, split, and the concat / speed / noise steps on real S0150 audio."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from twister_plugin.bin.mix_data import MixConfigError, counts, main
from twister_plugin.data.concat import read_concat_map
from twister_plugin.data.kaldi import read_kaldi_dir, write_kaldi_dir
from twister_plugin.data.manifest import read_manifest
from twister_plugin.testing.data import shared_data

RECIPE_CONF = Path(__file__).resolve().parents[3] / "egs2" / "twister" / "asr1" / "conf" / "mix.yaml"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> tuple[Path, Path]:
    root = shared_data()
    if root is None or not (root / "zh" / "aishell_sample_S0150" / "manifest.tsv").is_file():
        pytest.skip("shared/data/zh/aishell_sample_S0150 not present")
    dd = read_manifest(root / "zh" / "aishell_sample_S0150" / "manifest.tsv")
    tmp = tmp_path_factory.mktemp("mix")
    write_kaldi_dir(dd.subset(dd.utt_ids[:12]), tmp / "real")
    write_kaldi_dir(dd.subset(dd.utt_ids[40:52]), tmp / "synth")
    return tmp / "real", tmp / "synth"


def _run(dirs, out: Path, *extra: str) -> dict:
    real, synth = dirs
    assert main(["--real", str(real), "--synth", str(synth), "--real_ratio", "0.5", "--valid_share", "0.1",
                 "--out", str(out), *extra]) == 0
    return json.loads((out / "report.json").read_text())


def test_counts():
    assert counts(10, 10, 0.5) == (10, 10)
    assert counts(100, 10, 0.5) == (10, 10)
    with pytest.raises(ValueError, match="real_ratio"):
        counts(1, 1, 1.5)


def test_recipe_defaults_are_off(dirs, tmp_path):
    rep = _run(dirs, tmp_path / "out", "--config", str(RECIPE_CONF))
    assert [s["step"] for s in rep["steps"]] == ["mix"]
    train = read_kaldi_dir(tmp_path / "out" / "train")
    assert len(train.utt_ids) == rep["n_train"] == 24 - rep["n_valid"]
    assert not (tmp_path / "out" / "train" / "concat_map").exists()


def test_all_steps(dirs, tmp_path):
    out = tmp_path / "out"
    args = ("--concat_share", "1", "--concat_max_seconds", "10", "--speed_perturb", "0.9,1.0,1.1",
            "--noise_share", "0.5", "--noise_snr", "10,20")
    rep = _run(dirs, out, *args)
    steps = {s["step"]: s for s in rep["steps"]}
    assert list(steps) == ["mix", "concat", "speed", "noise"]
    assert steps["concat"]["windows"] > 0 and steps["concat"]["utts"] < steps["mix"]["utts"]
    assert steps["concat"]["hours"] > steps["mix"]["hours"]  # gaps add audio
    assert steps["speed"]["utts"] == 3 * steps["concat"]["utts"]
    assert steps["speed"]["hours"] == pytest.approx(steps["concat"]["hours"] * (1 / 0.9 + 1 + 1 / 1.1), rel=1e-3)
    assert 0 < steps["noise"]["noisy"] < steps["speed"]["utts"]
    train = read_kaldi_dir(out / "train")
    assert len(train.utt_ids) == rep["n_train"] == steps["noise"]["utts"]
    assert max(train.utt2dur.values()) <= 10.0
    rows = read_concat_map(out / "train" / "concat_map")
    windows = {r.window for r in rows}
    assert windows <= set(train.utt_ids)
    assert {w for w in train.utt_ids if "cat" in w} == windows
    for w in [w for w in windows if w.startswith("sp0.9-")][:2]:  # slowed window: spans scaled
        base = sorted((r for r in rows if r.window == w[len("sp0.9-"):]), key=lambda r: r.start)
        slow = sorted((r for r in rows if r.window == w), key=lambda r: r.start)
        assert [r.source for r in slow] == [r.source for r in base]
        assert slow[-1].end == pytest.approx(base[-1].end / 0.9, abs=1e-5)
        n = sf.info(train.wav_scp[w]).frames
        assert abs(n / 16000 - slow[-1].end) <= 1 / 16000 + 1e-6
    noisy = (out / "train" / "noise_map").read_text().split("\n")[:-1]
    assert len(noisy) == steps["noise"]["noisy"]
    again = _run(dirs, out, *args)  # a rerun reuses every audio file
    assert again["steps"][1]["written"] == 0 and again["steps"][1]["reused"] == steps["concat"]["windows"]
    assert read_kaldi_dir(out / "train") == train


def test_config_errors(dirs, tmp_path):
    bad = tmp_path / "mix.yaml"
    bad.write_text("concat:\n  max_secs: 10\n")
    with pytest.raises(MixConfigError, match=r"mix.yaml: concat: unknown option"):
        _run(dirs, tmp_path / "o", "--config", str(bad))
    bad.write_text("shuffle: {}\n")
    with pytest.raises(MixConfigError, match=r"mix.yaml: want a mapping with sections"):
        _run(dirs, tmp_path / "o", "--config", str(bad))
    with pytest.raises(MixConfigError, match=r"--speed_perturb: want comma-separated"):
        _run(dirs, tmp_path / "o", "--speed_perturb", "0.9;1.1")
    with pytest.raises(MixConfigError, match=r"noise: .*low, high"):
        _run(dirs, tmp_path / "o", "--noise_share", "0.5", "--noise_snr", "30,10")
    with pytest.raises(MixConfigError, match="not found"):
        _run(dirs, tmp_path / "o", "--config", str(tmp_path / "nope.yaml"))
    assert not np.any([p.name == "report.json" for p in tmp_path.rglob("*")])


def test_bad_input_line_is_named(dirs, tmp_path):
    import shutil

    real = tmp_path / "real"
    shutil.copytree(dirs[0], real)
    lines = (real / "utt2dur").read_text().splitlines()
    lines[2] = lines[2].split()[0] + " -1"
    (real / "utt2dur").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"real/utt2dur:3: duration -1.0 is not positive"):
        main(["--real", str(real), "--synth", str(dirs[1]), "--out", str(tmp_path / "o"), "--concat_share", "1"])
