"""pseudo_label CLI: sharding, resume after a kill, merge outputs, bad audio, real bad cases."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from twister_plugin.asr.pseudo_label import PseudoLabelError
from twister_plugin.bin.pseudo_label import main
from twister_plugin.data import AudioError, read_kaldi_dir, to_lhotse
from twister_plugin.decode import BatchedDecoder
from twister_plugin.testing.data import shared_data
from twister_plugin.testing.decode import (
    base_checkpoint, ending_model, loose_pseudo_label_conf, noise_and_silence, save_model, tones,
    write_segments_dir, write_wave_dir,
)

TINY_CONF = loose_pseudo_label_conf(block_size=2)
OUTPUTS = ["text", "scores.jsonl", "report.json", "report.txt", "data/wav.scp", "data/text",
           "data/utt2spk", "data/spk2utt", "data/utt2lang", "data/utt2dur"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("pl")
    model = save_model(ending_model(0), root / "tiny.pt")
    data = write_wave_dir(root / "data", {f"utt{i}": w for i, w in enumerate(tones(7, seed=3))})
    conf = root / "conf.yaml"
    conf.write_text(TINY_CONF, encoding="utf-8")
    return {"model": str(model), "data": str(data), "conf": str(conf), "root": root}


def run(setup, out, *extra: str, data: str | None = None, conf: str | None = None) -> None:
    main(["--data", data or setup["data"], "--model", setup["model"], "--out", str(out),
          "--config", conf or setup["conf"], "--device", "cpu", *extra])


@pytest.fixture(scope="module")
def one_shot(setup):
    out = setup["root"] / "one_shot"
    run(setup, out)
    return out


def test_one_shot_outputs(one_shot):
    report = json.loads((one_shot / "report.json").read_text())
    assert report["total"] == 7 and 0 < report["kept"] < 7
    assert report["rejected_by"]["unfinished"] == 7 - report["kept"]
    scores = [json.loads(line) for line in (one_shot / "scores.jsonl").read_text().splitlines()]
    assert [s["utt_id"] for s in scores] == [f"utt{i}" for i in range(7)]
    assert all(s["kept"] == (not s["reasons"]) for s in scores)
    kept = [s["utt_id"] for s in scores if s["kept"]]
    dd = read_kaldi_dir(one_shot / "data")
    assert dd.utt_ids == kept and set(dd.utt2lang.values()) == {"zh"}
    assert (one_shot / "text").read_text().count("\n") == len(kept)
    assert f"kept {len(kept)} of 7" in (one_shot / "report.txt").read_text()


def test_sharded_and_killed_run_equals_one_shot(setup, one_shot, monkeypatch):
    out = setup["root"] / "sharded"
    run(setup, out, "--shard", "1/2")
    assert (out / "shards/1.done").exists() and not (out / "report.json").exists()
    calls = []
    real = BatchedDecoder.decode_batch

    def dies_on_second_batch(self, waves, languages=None):
        calls.append(len(waves))
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated kill")  # block 1 of shard 2 is checkpointed
        return real(self, waves, languages)

    monkeypatch.setattr(BatchedDecoder, "decode_batch", dies_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        run(setup, out, "--shard", "2/2")
    partial = out / "shards/2.partial"
    assert not (out / "shards/2.done").exists()
    assert [p.name for p in partial.iterdir()] == ["000002.jsonl"]  # block 2 (utt4, utt5)
    assert len((partial / "000002.jsonl").read_text().splitlines()) == 2
    calls.clear()
    monkeypatch.setattr(BatchedDecoder, "decode_batch",
                        lambda self, w, langs=None: calls.append(len(w)) or real(self, w, langs))
    run(setup, out, "--shard", "2/2")  # resumes, then merges: every shard is done
    assert calls == [1]  # only the block that was lost (utt6) is decoded again
    assert not partial.exists()
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (one_shot / name).read_bytes(), name


def test_finished_shard_is_skipped_without_the_model(setup, one_shot):
    main(["--data", setup["data"], "--model", "/nonexistent.pt", "--out", str(one_shot),
          "--config", setup["conf"], "--device", "cpu"])  # shard 1/1 is done: nothing to load


def test_remerge_with_new_thresholds(setup, one_shot, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(one_shot, out)
    conf = tmp_path / "strict.yaml"
    conf.write_text(TINY_CONF.replace("zh_max_rate: 1000", "zh_max_rate: 1000\n  max_duration: 5"))
    main(["--out", str(out), "--merge", "--num-shards", "1", "--config", str(conf)])
    report = json.loads((out / "report.json").read_text())
    durations = [json.loads(x)["duration"] for x in (out / "scores.jsonl").read_text().splitlines()]
    assert report["rejected_by"]["too_long"] == sum(d > 5 for d in durations) > 0
    assert report["filters"]["max_duration"] == 5


def test_plan_mismatch_and_missing_shards_are_refused(setup, one_shot, tmp_path):
    with pytest.raises(PseudoLabelError, match="another plan"):
        run(setup, one_shot, "--shard", "1/3")
    out = tmp_path / "half"
    run(setup, out, "--shard", "1/3")
    with pytest.raises(PseudoLabelError, match=r"shards \[2, 3\] of 3 are not done"):
        main(["--out", str(out), "--merge"])
    with pytest.raises(PseudoLabelError, match="planned as 3, not 2"):
        main(["--out", str(out), "--merge", "--num-shards", "2"])
    with pytest.raises(PseudoLabelError, match="no plan"):
        main(["--out", str(tmp_path / "empty"), "--merge"])


def test_bad_audio_is_counted_or_stops(setup, tmp_path):
    waves = {f"utt{i}": w for i, w in enumerate(tones(2, seed=3))}
    data = write_wave_dir(tmp_path / "data", {**waves, "zz_missing": None})
    (data / "wav/zz_trunc.flac").write_bytes((data / "wav/utt0.flac").read_bytes()[:300])
    with open(data / "wav.scp", "a") as f:
        f.write(f"zz_trunc {data / 'wav/zz_trunc.flac'}\n")
    with open(data / "utt2spk", "a") as f:
        f.write("zz_trunc spkzz\n")
    run(setup, tmp_path / "out", data=str(data))
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert report["total"] == 4 and report["rejected_by"]["bad_audio"] == 2
    bad = [json.loads(x) for x in (tmp_path / "out/scores.jsonl").read_text().splitlines()][2:]
    assert [b["utt_id"] for b in bad] == ["zz_missing", "zz_trunc"]
    assert "no such file" in bad[0]["error"] and "zz_trunc.flac" in bad[1]["error"]
    conf = tmp_path / "strict.yaml"
    conf.write_text(TINY_CONF + "on_bad_audio: error\n")
    with pytest.raises(AudioError, match="zz_missing.flac: no such file"):
        run(setup, tmp_path / "out2", data=str(data), conf=str(conf))


def test_cuts_input_gives_the_same_scores(setup, one_shot, tmp_path):
    cuts = tmp_path / "cuts.jsonl.gz"
    to_lhotse(read_kaldi_dir(setup["data"], require_text=False)).to_file(cuts)
    main(["--cuts", str(cuts), "--model", setup["model"], "--out", str(tmp_path / "out"),
          "--config", setup["conf"], "--device", "cpu"])
    assert (tmp_path / "out/scores.jsonl").read_bytes() == (one_shot / "scores.jsonl").read_bytes()


def test_segments_input_keeps_segments(setup, tmp_path):
    data = write_segments_dir(tmp_path / "data", tones(3, seed=5))
    run(setup, tmp_path / "out", data=str(data))
    dd = read_kaldi_dir(tmp_path / "out/data")
    assert dd.segments is not None and list(dd.wav_scp) == ["rec1"]
    src = read_kaldi_dir(data, require_text=False)
    for utt, seg in dd.segments.items():
        assert seg == src.segments[utt]


def test_refused_arguments(setup, tmp_path):
    for shard in ("x", "3/2", "0/2"):
        with pytest.raises(PseudoLabelError, match="--shard"):
            run(setup, tmp_path / "o", "--shard", shard)
    with pytest.raises(PseudoLabelError, match="--model"):
        main(["--data", setup["data"], "--out", str(tmp_path / "o")])
    conf = tmp_path / "bad.yaml"
    conf.write_text("filters:\n  logprob: -1\n")
    with pytest.raises(PseudoLabelError, match=r"bad.yaml: filters: unknown .*\['logprob'\]"):
        run(setup, tmp_path / "o", conf=str(conf))
    conf.write_text("on_bad_audio: ignore\n")
    with pytest.raises(PseudoLabelError, match="on_bad_audio"):
        run(setup, tmp_path / "o", conf=str(conf))


@pytest.mark.skipif(base_checkpoint() is None or shared_data() is None,
                    reason="needs tools/whisper/base.pt and shared/data")
def test_real_bad_cases_with_whisper_base(tmp_path):
    zh = shared_data() / "zh"
    ns = noise_and_silence(5.0)
    data = write_wave_dir(tmp_path / "data", {"a_silence": ns["silence"], "b_noise": ns["noise"]})
    extra = {"c_loop": zh / "thchs30_D4/audio/D4_754.flac",
             "d_good": zh / "aishell1_dev_S0724/audio/BAC009S0724W0121.flac",
             "e_good": zh / "aishell1_dev_S0724/audio/BAC009S0724W0122.flac"}
    with open(data / "wav.scp", "a") as f:
        f.writelines(f"{u} {p}\n" for u, p in extra.items())
    with open(data / "utt2spk", "a") as f:
        f.writelines(f"{u} {u}\n" for u in extra)
    # Mandarin declared English (utt2lang): Whisper base loops "The Taiwan-China-China-..."
    (data / "utt2lang").write_text("".join(f"{u} {'en' if u == 'c_loop' else 'zh'}\n"
                                           for u in ["a_silence", "b_noise", *extra]))
    conf = Path(__file__).resolve().parents[3] / "egs2/twister/asr1/conf/pseudo_label.yaml"
    main(["--data", str(data), "--model", str(base_checkpoint()), "--out", str(tmp_path / "out"),
          "--config", str(conf), "--device", "cpu", "--batch-size", "5"])
    scores = {s["utt_id"]: s for s in map(json.loads, (tmp_path / "out/scores.jsonl").open())}
    assert [u for u, s in scores.items() if s["kept"]] == ["d_good", "e_good"]
    assert all("no_speech" in scores[u]["reasons"] for u in ("a_silence", "b_noise"))
    assert {"repeated_ngram", "compression_ratio"} <= set(scores["c_loop"]["reasons"])
    dd = read_kaldi_dir(tmp_path / "out/data")
    assert dd.text["d_good"].startswith("广州市")
    assert dd.utt2lang == {"d_good": "zh", "e_good": "zh"}
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert report["kept"] == 2 and report["total"] == 5
    assert np.isclose(report["hours_kept"], (4.281 + 4.341) / 3600, atol=1e-4)


def test_zh_labels_are_simplified_and_on_one_line():
    import opencc

    from twister_plugin.asr.pseudo_label import PseudoLabelConfig
    from twister_plugin.asr.pseudo_merge import judge

    rec = {"utt_id": "u1", "text": "8個多的4個多,\n7個多的", "language": "zh", "duration": 3.5,
           "detected_language": "zh", "language_prob": 0.9, "no_speech_prob": 0.05,
           "avg_logprob": -0.3, "compression_ratio": 1.1, "finished": True}
    out = judge(rec, PseudoLabelConfig(), opencc.OpenCC("t2s"))
    assert out["label"] == "8个多的4个多, 7个多的" and out["kept"] and out["reasons"] == []
    english = judge({**rec, "language": "en"}, PseudoLabelConfig(), None)
    assert english["label"] == "8個多的4個多, 7個多的"  # t2s is for zh labels only
