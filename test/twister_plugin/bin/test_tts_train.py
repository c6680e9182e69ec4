"""tts_train's ESPnet command line and tts_prepare's --durations auto: the dump's durations are
written and go to ESPnet exactly when the model, with the command line's ``--tts_conf`` overrides
applied, trains on them."""
import argparse
import json
from pathlib import Path

import pytest
import yaml

from twister_plugin.bin.tts_train import espnet_argv, tts_conf
from twister_plugin.tts.task import TwisterMelTTSTask

CONF = Path(__file__).resolve().parents[3] / "egs2" / "twister" / "asr1" / "conf" / "tts"


def test_tts_conf_applies_command_line_overrides():
    config = {"tts_conf": {"adim": 16, "durations_prior": 2.0}}
    assert tts_conf(config, []) == {"adim": 16, "durations_prior": 2.0}
    got = tts_conf(config, ["--max_epoch", "3", "--tts_conf", "durations_prior=0",
                            "--tts_conf={teacher_durations: true}", "--tts_conf", "adim=32"])
    assert got == {"adim": 32, "durations_prior": 0, "teacher_durations": True}
    assert config["tts_conf"] == {"adim": 16, "durations_prior": 2.0}  # the config is not changed


def _dump(d: Path, durations: bool) -> Path:
    d.mkdir(parents=True)
    for name in ("text", "tokens.txt", "voices.npz", "wav.scp"):
        (d / name).write_text("")
    (d / "frontend.yaml").write_text("{}\n")
    (d / "stats.json").write_text(json.dumps({"spembs_dim": 8}))
    if durations:
        (d / "durations").write_text("u1 3 4\n")
    return d


def _argv(tmp_path, config_file, extra, durations=True):
    train = _dump(tmp_path / "dump", durations)
    _dump(train / "valid", durations)
    a = argparse.Namespace(config=str(config_file), train_data=None, valid_data=None,
                           dump=str(train), output_dir=str(tmp_path / "exp"), device="cpu")
    config = yaml.safe_load(config_file.read_text())
    return espnet_argv(a, extra, TwisterMelTTSTask, config)


def test_durations_are_passed_when_the_model_uses_them(tmp_path):
    tiny = CONF / "fastspeech_tiny.yaml"  # durations_prior: 2
    argv = _argv(tmp_path / "a", tiny, [])
    assert any(x.endswith("dump/durations,durations,text_int") for x in argv)
    assert any(x.endswith("valid/durations,durations,text_int") for x in argv)
    argv = _argv(tmp_path / "b", tiny, ["--tts_conf", "durations_prior=0"])
    assert not any("durations,durations" in x for x in argv)
    # a config without the prior, teacher durations asked for on the command line
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({**yaml.safe_load(tiny.read_text()),
                                     "tts_conf": {"durations_prior": 0.0}}))
    argv = _argv(tmp_path / "c", plain, ["--tts_conf", "teacher_durations=true"])
    assert any(x.endswith("dump/durations,durations,text_int") for x in argv)
    with pytest.raises(FileNotFoundError, match="rerun tts_prepare with --durations whisper"):
        _argv(tmp_path / "d", tiny, [], durations=False)


def test_tts_prepare_writes_durations_only_for_configs_that_train_on_them(capsys):
    from twister_plugin.bin.tts_prepare import parse

    def durations(*extra):
        return parse(["--data", "d", "--out", "o", "--device", "cpu", *extra])[1].durations

    assert durations() == "none"
    assert durations("--durations", "whisper") == "whisper"
    assert durations("--durations", "auto", "--tts_config", str(CONF / "fastspeech_tiny.yaml")) == "whisper"
    assert durations("--durations", "auto", "--tts_config", str(CONF / "tiny.yaml")) == "none"  # VITS
    with pytest.raises(SystemExit):
        durations("--durations", "auto")
    assert "--durations auto needs --tts_config" in capsys.readouterr().err
