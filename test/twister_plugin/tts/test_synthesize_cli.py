import pytest

from twister_plugin.bin.synthesize import parse
from twister_plugin.tts.synthesize import SynthConfig, read_corpus

BASE = ["--model_dir", "exp/tts", "--text", "c.txt", "--out", "o"]


def test_shard_and_speed_options():
    _, cfg, shard, n = parse(BASE + ["--nj", "4", "--job", "2", "--speed-range", "0.9,1.1"])
    assert (shard, n, cfg.speed_range) == (2, 4, (0.9, 1.1))
    _, cfg, shard, n = parse(BASE + ["--shard", "3/3", "--speakers", "sample"])
    assert (shard, n, cfg.speakers) == (3, 3, "sample")
    assert parse(BASE)[1].fsync == "shard" and parse(BASE + ["--fsync", "wav"])[1].fsync == "wav"


@pytest.mark.parametrize("extra", [
    ["--shard", "5/4"], ["--shard", "0/4"], ["--shard", "two"], ["--speed-range", "1.2,0.8"],
    ["--speed-range", "fast"], ["--nj", "4"], ["--speakers", "unseen"], ["--writers", "-1"],
    ["--fsync", "never"],
])
def test_refused_options(extra, capsys):
    with pytest.raises(SystemExit):
        parse(BASE + extra)


def test_a_config_with_an_unknown_fsync_is_refused():
    with pytest.raises(ValueError, match="fsync 'never'"):
        SynthConfig(fsync="never")


def test_corpus_shards_partition_the_non_empty_lines(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a\n\nb\nc\n  \nd\ne\n", encoding="utf-8")
    shards = [list(read_corpus(corpus, j, 2)) for j in (1, 2)]
    assert shards == [[(1, "a"), (4, "c"), (7, "e")], [(3, "b"), (6, "d")]]


def test_default_checkpoint_is_picked_by_synth_loss_then_mel_loss_then_latest(tmp_path):
    """Mel models: the epoch with the best mel + duration loss, not the teacher-forced mel loss."""
    from twister_plugin.tts.synthesize import pick_model_file

    with pytest.raises(FileNotFoundError, match="no model file"):
        pick_model_file(tmp_path)
    for name in ("latest.pth", "valid.mel_loss.best.pth", "valid.synth_loss.best.pth"):
        (tmp_path / name).write_bytes(b"x")
        assert pick_model_file(tmp_path).name == name
    (tmp_path / "train.total_count.best.pth").write_bytes(b"x")  # GAN configs (VITS)
    assert pick_model_file(tmp_path).name == "train.total_count.best.pth"
    (tmp_path / "valid.roundtrip.best.pth").write_bytes(b"x")  # tts_pick (any config)
    assert pick_model_file(tmp_path).name == "valid.roundtrip.best.pth"
