import math

from twister_plugin.report.trainlog import find_train_log, parse_epoch_line, parse_train_log
from twister_plugin.testing.report import espnet_epoch_line


def test_epoch_line_reads_train_and_valid_loss_not_loss_att():
    line = espnet_epoch_line(3, 253.368, 251.218, 3723.5)
    assert "1 hour, 2 minutes and 3.5 seconds" in line  # commas inside a value
    epoch, parts = parse_epoch_line(line)
    assert epoch == 3
    assert parts["train"] == 253.368 and parts["valid"] == 251.218
    assert math.isnan(parts["att_plot"])  # a part without loss=


def test_other_lines_are_not_epoch_results():
    assert parse_epoch_line("[n] (trainer:774) INFO: 1epoch:train:1-20batch: loss=9.0") is None
    assert parse_epoch_line("# Accounting: time=900 threads=1") is None


def test_scientific_notation_and_nan():
    _, parts = parse_epoch_line("12epoch results: [train] loss_att=1.000e+04, loss=2.534e+03, "
                                "[valid] loss=nan")
    assert parts["train"] == 2534.0 and math.isnan(parts["valid"])


def test_resumed_epoch_last_line_wins_and_missing_valid_is_nan(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("\n".join([
        "# started", espnet_epoch_line(1, 10.0, 11.0, 5), espnet_epoch_line(2, 9.0, 10.0, 5),
        "[n] INFO: resumed from checkpoint", espnet_epoch_line(2, 8.5, 9.5, 5),
        "[n] INFO: 3epoch results: [train] loss=8.0"]) + "\n")
    c = parse_train_log(log)
    assert c.epochs == [1, 2, 3]
    assert c.train == [10.0, 8.5, 8.0]
    assert c.valid[:2] == [11.0, 9.5] and math.isnan(c.valid[2])


def test_log_without_epochs_gives_none_and_find_prefers_log_dir(tmp_path):
    asr = tmp_path / "asr"
    (asr / "log").mkdir(parents=True)
    (asr / "log" / "train.log").write_text("# Started\n[n] INFO: building model\n")
    assert parse_train_log(asr / "log" / "train.log") is None
    assert find_train_log(asr) is None
    (asr / "train.log").write_text(espnet_epoch_line(1, 5.0, 6.0, 1) + "\n")
    assert find_train_log(asr) == asr / "train.log"
    (asr / "log" / "train.log").write_text(espnet_epoch_line(1, 4.0, 5.0, 1) + "\n")
    assert find_train_log(asr) == asr / "log" / "train.log"
    assert find_train_log(tmp_path / "absent") is None


def test_undecodable_bytes_do_not_fail(tmp_path):
    log = tmp_path / "train.log"
    log.write_bytes(b"\xff\xfe garbage\n" + espnet_epoch_line(1, 5.0, 6.0, 1).encode() + b"\n")
    assert parse_train_log(log).train == [5.0]
