"""TwisterFastSpeech: alignment/durations, batched inference, and a tiny model trained by the
real tts_train entry point on S0150, then synthesis (mel + Griffin-Lim) with resume."""
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

from twister_plugin.bin import synthesize as synth_bin
from twister_plugin.bin import tts_prepare, tts_train
from twister_plugin.testing.tts import (S0150, assert_direct_load_matches_task, read_manifest, rows_to_kaldi_dir,
                                        tiny_whisper_checkpoint)
from twister_plugin.tts.loader import load_tts
from twister_plugin.tts.fastspeech import TwisterFastSpeech, fit_durations
from twister_plugin.tts.task import TwisterMelTTSTask, TwisterTTSTask, task_for

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / ".." / "shared" / "data"
CONF = REPO / "egs2" / "twister" / "asr1" / "conf" / "tts"
TINY = CONF / "fastspeech_tiny.yaml"


def _need_data():
    if not (DATA / S0150 / "manifest.tsv").exists():
        pytest.skip("shared data not available")


def _tiny(**over) -> TwisterFastSpeech:
    # the beta-binomial prior unless a test gives durations
    conf = {**yaml.safe_load(TINY.read_text())["tts_conf"], "spk_embed_dim": 8,
            "durations_prior": 0.0, **over}
    torch.manual_seed(0)
    return TwisterFastSpeech(idim=30, odim=80, **conf)


def _real_feats(n: int):
    """Log-mels (B, T_feats, 80) of n real S0150 utterances with the tiny config's fbank."""
    fbank = LogMelFbank(**yaml.safe_load(TINY.read_text())["feats_extract_conf"])
    wavs = [torch.from_numpy(sf.read(r["audio"], dtype="float32")[0])
            for r in read_manifest(DATA, S0150)[:n]]
    lens = torch.tensor([len(w) for w in wavs])
    return fbank(torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), lens)


def test_viterbi_durations_sum_to_the_feature_lengths():
    _need_data()
    feats, flens = _real_feats(2)
    model = _tiny().eval()
    text = torch.tensor([[3, 5, 7, 9, 11, 2, 4, 6], [8, 10, 12, 14, 16, 0, 0, 0]])
    tlens = torch.tensor([8, 5])
    hs = model.encode(text, tlens, torch.randn(2, 8))
    ds, log_p, _ = model.align(hs, feats, tlens, flens)
    assert torch.equal(ds.sum(1), flens)
    assert bool((ds[0] >= 1).all()) and bool((ds[1, :5] >= 1).all()) and int(ds[1, 5:].sum()) == 0
    assert log_p.shape == (2, int(flens.max()), 8)


def test_batched_inference_matches_single_sentences_and_speed_scales_durations():
    model = _tiny().eval()
    texts = [torch.tensor([5, 9, 12, 7]), torch.tensor([3, 22, 8, 8, 29, 2, 11])]
    spembs, alpha = torch.randn(2, 8), torch.tensor([0.5, 2.0])
    padded = torch.nn.utils.rnn.pad_sequence(texts, batch_first=True)
    mels, frames = model.infer_batch(padded, torch.tensor([4, 7]), spembs, alpha)
    assert int(frames[1]) == mels.size(1) > int(frames[0])  # sentence 1: no padding anywhere
    one, n = model.infer_batch(texts[1][None], torch.tensor([7]), spembs[1:], alpha[1:])
    # The longest sentence (no padding) is decoded exactly as alone; a padded one differs only
    # where ESPnet's convolutions (FFN, duration predictor, postnet) reach into its padding.
    assert int(n[0]) == int(frames[1])
    torch.testing.assert_close(mels[1, : int(n[0])], one[0], atol=1e-4, rtol=1e-4)
    assert torch.isfinite(mels).all()
    slow, n_slow = model.infer_batch(texts[1][None], torch.tensor([7]), spembs[1:], 4.0)
    assert int(n_slow[0]) > int(frames[1])
    cut, n_cut = model.infer_batch(texts[1][None], torch.tensor([7]), spembs[1:], 4.0,
                                   max_frames=3)
    assert int(n_cut[0]) == int(n_slow[0]) and cut.shape[1] == 3
    out = model.inference(texts[0], spembs=spembs[0])["feat_gen"]
    assert out.shape[1] == 80 and torch.isfinite(out).all()


def test_refused_inputs():
    with pytest.raises(ValueError, match="block_type"):
        _tiny(block_type="lstm")
    with pytest.raises(TypeError, match="nonsense"):
        _tiny(nonsense=1)
    model = _tiny()
    with pytest.raises(ValueError, match="no spembs"):
        model.encode(torch.tensor([[3, 4]]), torch.tensor([2]), None)
    with pytest.raises(ValueError, match="fewer frames than phones"):
        model(torch.tensor([[3, 4, 5, 6]]), torch.tensor([4]), torch.zeros(1, 3, 80),
              torch.tensor([3]), spembs=torch.randn(1, 8))


def test_given_durations_guide_the_alignment_or_replace_it():
    _need_data()
    feats, flens = _real_feats(2)
    text = torch.tensor([[3, 5, 7, 9, 11, 2, 4, 6], [8, 10, 12, 14, 16, 0, 0, 0]])
    tlens = torch.tensor([8, 5])
    # durations as tts_prepare writes them (frames per phone, maybe off by a frame from the fbank)
    given = fit_durations(torch.tensor([[1, 9, 3, 20, 5, 2, 30, 8], [40, 2, 2, 30, 10, 0, 0, 0]]),
                          tlens, flens - 1)
    spembs = torch.randn(2, 8)
    model = _tiny(durations_prior=1.0).eval()
    hs = model.encode(text, tlens, spembs)
    free, _, _ = _tiny().eval().align(hs, feats, tlens, flens)
    ds, _, _ = model.align(hs, feats, tlens, flens, given)
    assert torch.equal(ds.sum(1), flens)

    def boundary_error(d):  # mean |phone end - given phone end| in frames
        return float((torch.cumsum(d, 1) - torch.cumsum(given, 1)).abs()[:, :-1].float().mean())

    # an untrained aligner follows the prior: Whisper's spans within a frame or so, not the
    # beta-binomial's evenly spread phones
    assert boundary_error(ds) < 2.0 < boundary_error(free), (ds, free, given)
    teacher = _tiny(teacher_durations=True).train()
    loss, stats, _ = teacher(text, tlens, feats, flens, spembs=spembs, durations=given,
                             durations_lengths=tlens)
    assert torch.isfinite(loss) and stats["align_loss"] == 0.0
    assert stats["dur_max_share"] == pytest.approx(
        float((given.max(1).values / flens).mean()), abs=1e-6)
    with pytest.raises(ValueError, match="tts_prepare --durations whisper"):
        teacher(text, tlens, feats, flens, spembs=spembs)
    with pytest.raises(ValueError, match="differ in number"):
        teacher(text, tlens, feats, flens, spembs=spembs, durations=given,
                durations_lengths=tlens + 1)
    with pytest.raises(ValueError, match="align_loss: batched"):
        _tiny(durations_prior=2.0, align_loss="espnet")


def test_fit_durations_rescales_to_the_frames():
    d = fit_durations(torch.tensor([[3, 0, 3, 4], [5, 5, 9, 9]]), torch.tensor([4, 2]),
                      torch.tensor([20, 7]))
    assert d.sum(1).tolist() == [20, 7] and d[0].tolist() == [6, 0, 6, 8]
    assert d[1, 2:].tolist() == [0, 0]


def test_mel_task_takes_twister_g2p_and_builds_the_model(tmp_path):
    from twister_plugin.tts.frontend import Frontend, FrontendConfig
    from twister_plugin.tts.symbols import write_tokens

    write_tokens(tmp_path / "tokens.txt")
    args = TwisterMelTTSTask.get_parser().parse_args(
        ["--config", str(TINY), "--token_list", str(tmp_path / "tokens.txt"), "--g2p", "twister",
         "--tts_conf", "spk_embed_dim=8"])
    assert args.tts == "twister_fastspeech" and args.tts_conf["spk_embed_dim"] == 8
    pre = TwisterMelTTSTask.build_preprocess_fn(args, train=False)
    fe = Frontend(FrontendConfig())
    assert list(pre("u", {"text": "设定二十九度"})["text"]) == fe.symbols.ids(
        fe.phonemize("设定二十九度"))
    model = TwisterMelTTSTask.build_model(args)
    assert isinstance(model.tts, TwisterFastSpeech) and model.tts.spk_embed_dim == 8


def test_task_for_picks_gan_or_mel_task():
    assert task_for("twister_fastspeech") is TwisterMelTTSTask
    assert task_for("vits") is task_for(None) is TwisterTTSTask
    with pytest.raises(ValueError, match="nonsense"):
        task_for("nonsense")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    _need_data()
    tmp = tmp_path_factory.mktemp("fs")
    rows_to_kaldi_dir(read_manifest(DATA, S0150)[:10], tmp / "data")
    whisper = tiny_whisper_checkpoint(tmp / "tiny_whisper.pt")
    assert tts_prepare.main(["--data", str(tmp / "data"), "--out", str(tmp / "dump"),
                             "--whisper", str(whisper), "--valid_count", "2",
                             "--durations", "whisper"]) == 0
    assert tts_train.main(["--config", str(TINY), "--dump", str(tmp / "dump"),
                           "--output_dir", str(tmp / "exp"), "--device", "cpu",
                           "--max_epoch", "4"]) == 0
    return tmp


def test_tiny_model_trains_with_falling_mel_loss(trained):
    exp = trained / "exp"
    for name in ("config.yaml", "latest.pth", "valid.synth_loss.best.pth", "tokens.txt",
                 "frontend.yaml", "voices.npz"):
        assert (exp / name).exists(), name
    assert yaml.safe_load((exp / "config.yaml").read_text())["tts_conf"]["spk_embed_dim"] == 64
    stats = torch.load(exp / "checkpoint.pth", weights_only=False)["reporter"]["stats"]
    train = [stats[e]["train"]["mel_loss"] for e in sorted(stats)]
    assert len(train) == 4 and train[-1] < train[0], train
    state = torch.load(exp / "latest.pth", weights_only=False)
    assert int(state["tts.steps"]) == 8  # step counter saved (bin loss resumes correctly)


def test_training_resumes_from_checkpoint(trained, tmp_path):
    exp = tmp_path / "exp"
    shutil.copytree(trained / "exp", exp)
    def stats():
        return torch.load(exp / "checkpoint.pth", weights_only=False)["reporter"]["stats"]

    before = stats()
    assert tts_train.main(["--config", str(TINY), "--dump", str(trained / "dump"),
                           "--output_dir", str(exp), "--device", "cpu", "--max_epoch", "5"]) == 0
    after = stats()
    assert sorted(after) == [1, 2, 3, 4, 5]
    assert all(after[e] == before[e] for e in before)  # epochs 1-4 were not redone
    assert int(torch.load(exp / "latest.pth", weights_only=False)["tts.steps"]) == 10


def test_synthesis_writes_wavs_and_resumes(trained, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("苹果表配apple pay\n设定二十九度\nHello world.\n😀\n", encoding="utf-8")
    out = tmp_path / "synth"
    argv = ["--model_dir", str(trained / "exp"), "--text", str(corpus), "--out", str(out),
            "--device", "cpu", "--speed-range", "0.8,1.2", "--gl_iters", "4"]
    assert synth_bin.main(argv) == 0
    wavs = dict(line.split(maxsplit=1) for line in (out / "wav.scp").read_text().splitlines())
    durs = dict(line.split() for line in (out / "utt2dur").read_text().splitlines())
    assert len(wavs) == 3 and set(durs) == set(wavs) and (out / ".done").exists()
    for utt, path in wavs.items():
        audio, sr = sf.read(path)
        assert sr == 16000 and np.isfinite(audio).all() and len(audio) % 256 == 0
        assert abs(len(audio) / sr - float(durs[utt])) < 1e-2
    assert "line00000004 no_phones" in (out / "shards" / "1of1" / "skipped").read_text()
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "wav").glob("*.wav")}
    assert synth_bin.main(argv) == 0  # resume: nothing re-synthesised
    assert {p: p.stat().st_mtime_ns for p in (out / "wav").glob("*.wav")} == mtimes


def test_time_budget_stops_training_and_adds_up_over_reruns(trained, tmp_path):
    """--max_minutes: the spawned trainer is stopped when the budget is spent; epochs finished so
    far are kept; a rerun with the budget spent trains nothing (the recipe's stage 5 resume)."""
    exp = tmp_path / "exp"
    shutil.copytree(trained / "exp", exp)
    argv = ["--config", str(TINY), "--dump", str(trained / "dump"), "--output_dir", str(exp),
            "--device", "cpu", "--max_epoch", "100000", "--max_minutes", "0.5"]
    t0 = time.monotonic()
    assert tts_train.main(argv) == 0
    took = time.monotonic() - t0
    record = json.loads((exp / "train_time.json").read_text())
    assert record["stopped_by_budget"] is True and 30 <= record["seconds"] < 45, record
    assert took < 90
    epochs = sorted(torch.load(exp / "checkpoint.pth", weights_only=False)["reporter"]["stats"])
    assert epochs[:4] == [1, 2, 3, 4] and len(epochs) > 4  # resumed, then trained more
    assert (exp / "valid.synth_loss.best.pth").exists()
    mtime = (exp / "checkpoint.pth").stat().st_mtime
    assert tts_train.main(argv) == 0  # budget spent: returns at once, trains nothing
    assert (exp / "checkpoint.pth").stat().st_mtime == mtime


def test_duration_health_measures_zero_phones_dominant_phones_and_predicted_length():
    import math

    from twister_plugin.tts.fastspeech import duration_health

    ds = torch.tensor([[2, 0, 6, 0], [3, 3, 0, 0]])  # alignment durations; last of row 2 is padding
    keep = torch.tensor([[True, True, True, True], [True, True, True, False]])
    frames = torch.tensor([8, 6])
    pred = torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 4.0, 9.0]])  # predicted frames
    h = duration_health(ds, torch.log(pred + 1.0), keep, frames)
    assert math.isclose(h["dur_zero"], 3 / 7, rel_tol=1e-6)  # 2 of 4 + 1 of 3 real phones: no frame
    assert math.isclose(h["dur_max_share"], (6 / 8 + 3 / 6) / 2, rel_tol=1e-6)
    assert math.isclose(h["pred_zero"], 1 / 7, rel_tol=1e-6)  # the padded phone's 9 frames do not count
    assert math.isclose(h["pred_len_ratio"], (4 / 8 + 6 / 6) / 2, rel_tol=1e-6)


def test_training_logs_duration_health(trained):
    stats = torch.load(trained / "exp" / "checkpoint.pth", weights_only=False)["reporter"]["stats"]
    for e in stats.values():
        for key in ("synth_loss", "dur_zero", "dur_max_share", "pred_zero", "pred_len_ratio"):
            assert 0.0 <= e["valid"][key] < 1e3, (key, e["valid"])
        assert 0.0 <= e["valid"]["dur_zero"] <= 1.0 and 0.0 < e["valid"]["dur_max_share"] <= 1.0


def test_tts_pick_links_the_checkpoint_with_the_best_round_trip(trained, tmp_path):
    import json

    from twister_plugin.bin import tts_pick
    from twister_plugin.tts.pick import LINK, candidates
    from twister_plugin.tts.synthesize import pick_model_file

    exp = tmp_path / "exp"
    shutil.copytree(trained / "exp", exp, symlinks=True)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("设定二十九度\n今天天气很好\n我们去公园散步\n打开空调\n", encoding="utf-8")
    assert tts_pick.main(["--model_dir", str(exp), "--text", str(corpus), "--sentences", "3",
                          "--whisper", str(trained / "tiny_whisper.pt"), "--device", "cpu",
                          "--exclude", str(trained / "data" / "text")]) == 0
    report = json.loads((exp / "tts_pick.json").read_text())
    names = [c["checkpoint"] for c in report["candidates"]]
    assert names == [p.name for p in candidates(exp)] and names  # every distinct kept epoch
    assert all(c["spoken"] > 0 and 0 <= c["mer"] for c in report["candidates"])
    best = min(report["candidates"], key=lambda c: (c["mer"], -int(c["checkpoint"].split("epoch")[0])))
    assert report["best"] == best["checkpoint"] == (exp / LINK).resolve().name
    assert pick_model_file(exp) == exp / LINK  # synthesis loads the picked one first
    # sentences of the TTS training text are never used to pick (S0150's first one is in both)
    assert "设定二十九度" in (trained / "data" / "text").read_text(encoding="utf-8")
    assert sorted(tts_pick.sentences(corpus, trained / "data" / "text", 10, 0)) == sorted(
        ["今天天气很好", "我们去公园散步", "打开空调"])


def test_synthesis_builds_the_model_espnet_builds_without_its_task(trained):
    assert_direct_load_matches_task(trained / "exp", "valid.synth_loss.best.pth")


def test_a_checkpoint_the_direct_build_does_not_match_goes_through_espnet(trained, tmp_path, caplog):
    state = torch.load(trained / "exp" / "valid.synth_loss.best.pth", weights_only=False)
    state["tts.unexpected"] = torch.zeros(1)  # ESPnet loads with strict=False; the direct build refuses
    torch.save(state, tmp_path / "odd.pth")
    with caplog.at_level("INFO", logger="twister_plugin.tts.loader"):
        model, args = load_tts(trained / "exp" / "config.yaml", tmp_path / "odd.pth")
    assert "loading through ESPnet's task" in caplog.text and "unexpected" in caplog.text
    ref = torch.load(trained / "exp" / "valid.synth_loss.best.pth", weights_only=False)
    assert all(torch.equal(v, ref[k]) for k, v in model.state_dict().items())
