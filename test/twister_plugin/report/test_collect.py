import json

import pytest

from twister_plugin.report.collect import ReportError, collect, read_filtering, read_timing_tsv
from twister_plugin.report.examples import pick_examples, read_per_utt
from twister_plugin.scoring import score_files
from twister_plugin.testing.data import shared_data
from twister_plugin.testing.report import STAGE_SECONDS, ExpTreeOptions, build_exp_tree

pytestmark = pytest.mark.skipif(shared_data() is None, reason="shared/data not beside the repo")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return build_exp_tree(tmp_path_factory.mktemp("recipe"), ExpTreeOptions(rounds=2))


def test_scores_are_the_summaries_of_every_system_and_set(tree):
    exp = collect(tree.exp)
    assert [r.k for r in exp.rounds] == [1, 2]
    for r in exp.rounds:
        assert r.test_sets == tree.test_sets
        assert {s for s, _ in r.scores} == {"zeroshot", f"round{r.k}"}
        for (system, t), s in r.scores.items():
            hyp = tree.exp / f"round{r.k}" / "eval" / system / t / "text"
            _, again = score_files(tree.data / t / "text", hyp)
            assert s["rate"] == again.rate and s["metric"] == again.metric
    metrics = {t: s["metric"] for (_, t), s in exp.rounds[0].scores.items()}
    assert metrics == {"aishell_zh": "cer", "aishell_cs": "mer", "librispeech_en": "wer"}


def test_filter_reports_agree_with_their_scores_jsonl(tree):
    for r in collect(tree.exp).rounds:
        rows = [json.loads(x) for x in (r.dir / "pseudo" / "scores.jsonl").open()]
        assert r.pseudo.total == len(rows) and r.pseudo.kept == sum(x["kept"] for x in rows)
        reasons = [f for x in rows for f in x["reasons"]]
        assert r.pseudo.rejected == {f: reasons.count(f) for f in r.pseudo.rejected}
        synth = [json.loads(x) for x in (r.dir / "synth" / "scores.jsonl").open()]
        assert r.roundtrip_cer == [x["cer"] for x in synth]
        assert r.synth.kept == sum(x["cer"] <= r.synth.max_cer for x in synth)
        assert sum(t for t, _ in r.synth.per_speaker.values()) == r.synth.total
        real, syn = r.hours
        assert real == pytest.approx(r.pseudo.hours_kept * 0.5) and syn > 0
        assert len(r.loss.epochs) == 4 and r.loss.train[-1] < r.loss.train[0]


def test_timing_from_done_mtimes_then_timing_tsv(tree):
    times = collect(tree.exp).timing
    assert {t.source for t in times} == {".done mtimes"}
    assert {(t.round, t.stage): t.seconds for t in times} == pytest.approx(
        {(k, s): sec for k in (1, 2) for s, sec in STAGE_SECONDS.items() if (k, s) != (2, "eval")})
    tsv = tree.exp / "timing.tsv"
    tsv.write_text("round\tstage\tseconds\n-\tdata\t30\n1\tpseudo\t12.5\n")
    try:
        times = collect(tree.exp).timing
    finally:
        tsv.unlink()
    assert [(t.round, t.stage, t.seconds, t.source) for t in times] == [
        (0, "data", 30.0, "timing.tsv"), (1, "pseudo", 12.5, "timing.tsv")]


def test_examples_improve_and_regress_with_raw_texts(tree):
    exp = collect(tree.exp)
    r = exp.rounds[0]
    refs = (tree.data / "aishell_zh" / "text").read_text(encoding="utf-8")
    ex = pick_examples(r, "aishell_zh", tree.data, n=2)
    assert ex, "perturbed hypotheses must change some error counts"
    for e in ex:
        assert (e.errors_after < e.errors_before) == (e.kind == "improved")
        assert f"{e.utt_id} {e.ref}\n" in refs
    deltas = [e.errors_before - e.errors_after for e in ex if e.kind == "improved"]
    assert deltas == sorted(deltas, reverse=True)
    score = lambda s: read_per_utt(r.dir / "eval" / s / "aishell_zh" / "score" / "per_utt.tsv")
    before, after = score("zeroshot"), score("round1")
    assert deltas[0] == max(before[u].errors - after[u].errors for u in before)


def test_missing_parts_are_none(tmp_path):
    (tmp_path / "exp" / "round1" / "pseudo").mkdir(parents=True)
    (tmp_path / "exp" / "round3").mkdir()
    (tmp_path / "exp" / "roundabout").mkdir()
    exp = collect(tmp_path / "exp")
    assert [r.k for r in exp.rounds] == [1, 3]
    r = exp.rounds[0]
    assert (r.scores, r.pseudo, r.synth, r.roundtrip_cer, r.hours, r.loss) == (
        {}, None, None, None, None, None)
    assert exp.timing == []
    assert collect(tmp_path / "no_such_exp").rounds == []


@pytest.mark.parametrize("rel, text, match", [
    ("pseudo/report.json", '{"total": 3, "kept": ', r"pseudo/report\.json: not valid JSON"),
    ("synth/report.json", "[1, 2]", r"synth/report\.json: want a JSON object"),
    ("pseudo/report.json", '{"total": "ten"}', r"report\.json: field 'total' is 'ten'"),
    ("pseudo/report.json", '{"kept": 1, "rejected": {"no_speech": "x"}}', "rejection counts"),
    ("synth/report.json", '{"per_speaker": {"a": 3}}', r"per_speaker\['a'\]"),
    ("synth/scores.jsonl", '{"cer": 1.0}\n{"cer": \n', r"scores\.jsonl:2: not valid JSON"),
    ("synth/scores.jsonl", '{"cer": 1.0}\n{"utt_id": "x"}\n', "object 2 has no round-trip CER"),
    ("asr_data/report.json", '{"hours_real": true}', "field 'hours_real' is True"),
    ("eval/zeroshot/t/score/summary.json", '{"set": "t"}', r"summary\.json lacks \['metric'"),
    ("eval/round1/t/score/summary.json", '{"set": "t", "metric": "cer", "rate": "1", "n_utts": 1}',
     "rate is '1'"),
])
def test_corrupt_inputs_raise_naming_the_file(tmp_path, rel, text, match):
    path = tmp_path / "exp" / "round1" / rel
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ReportError, match=match) as e:
        collect(tmp_path / "exp")
    assert str(path) in str(e.value)


def test_aliases_and_seconds(tmp_path):
    p = tmp_path / "report.json"
    p.write_text(json.dumps({"n_total": 10, "n_kept": 7, "seconds_kept": 7200,
                             "rejected": [{"name": "no_speech", "count": 3}]}))
    f = read_filtering(p)
    assert (f.total, f.kept, f.hours_kept, f.rejected, f.yield_pct) == (
        10, 7, 2.0, {"no_speech": 3}, 70.0)


def test_bad_timing_tsv_and_per_utt(tmp_path):
    tsv = tmp_path / "timing.tsv"
    tsv.write_text("1 pseudo 3.0\n1 tts\n")
    with pytest.raises(ReportError, match=r"timing\.tsv:2: bad line"):
        read_timing_tsv(tsv)
    tsv.write_text("one pseudo 3.0\n")
    with pytest.raises(ReportError, match=r"timing\.tsv:1"):
        read_timing_tsv(tsv)
    per_utt = tmp_path / "per_utt.tsv"
    per_utt.write_text("utt_id\tn_ref\tsub\n")
    with pytest.raises(ReportError, match=r"per_utt\.tsv:1: header lacks"):
        read_per_utt(per_utt)
    cols = "utt_id\tn_ref\tsub\tdel\tins\terr_pct\thyp_missing\tref\thyp\n"
    per_utt.write_text(cols + "u1\t2\t0\t0\t0\t0.00\t0\ta b\ta b\nu2\t2\tx\t0\t0\t0\t0\ta\ta\n")
    with pytest.raises(ReportError, match=r"per_utt\.tsv:3: bad count"):
        read_per_utt(per_utt)
    per_utt.write_text(cols + "u1\t2\t0\t0\n")
    with pytest.raises(ReportError, match=r"per_utt\.tsv:2: 4 columns"):
        read_per_utt(per_utt)
    assert read_per_utt(tmp_path / "absent.tsv") is None
