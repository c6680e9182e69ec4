"""The CTC head on frozen Whisper tiny.en features of real S0150 clips: training, agreement
score, forced alignment of two concatenated clips, the trainer CLI and the filter option."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from twister_plugin.asr.filters import FilterConfig, FilterInputError, apply_filters
from twister_plugin.ctc.agreement import INFEASIBLE, agreement_scores
from twister_plugin.ctc.align import align_text
from twister_plugin.ctc.head import encoder_features, load_head
from twister_plugin.ctc.train import HeadTrainConfig, train_ctc
from twister_plugin.ctc.units import UnitsConfig, normalize_text
from twister_plugin.testing.ctc import S0150, s0150_clips

TINY = Path(__file__).resolve().parents[3] / "tools" / "whisper" / "tiny.en.pt"
pytestmark = pytest.mark.skipif(not (S0150.exists() and TINY.exists()), reason="data or tiny.en absent")
N = 10


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from twister_plugin.whisper import load_whisper

    torch.set_num_threads(1)
    model = load_whisper(TINY)
    ids, waves, texts = s0150_clips(N)
    out = tmp_path_factory.mktemp("ctc")
    cfg = HeadTrainConfig(epochs=60, batch_size=5, lr=5e-3, dropout=0.0,
                          units=UnitsConfig(model_type="char", character_coverage=1.0))
    head, units, info = train_ctc(texts, waves, model, out, cfg, str(TINY))
    return SimpleNamespace(model=model, waves=waves, texts=texts, head=head, units=units, info=info,
                           out=out, feats=encoder_features(model, waves))


def test_head_trains_and_reloads(trained):
    loss = trained.info["loss_per_frame"]
    assert loss[-1] < 0.3 * loss[0]
    head, units, enc = load_head(trained.out)
    assert enc == str(TINY) and units.n_classes == trained.units.n_classes
    x = trained.feats[0][None]
    assert torch.allclose(head(x), trained.head(x))


def test_agreement_prefers_the_right_transcript(trained):
    t = trained.texts
    looping = t[0] + (t[0][-3:] * 6)
    wrong = t[1]
    s = agreement_scores(trained.head, trained.units, trained.feats[:1] * 4,
                         [t[0], looping, wrong, t[0] * 40])
    right, loop, other, too_long = s
    assert right.per_unit > loop.per_unit and right.per_unit > other.per_unit
    assert too_long.per_unit == INFEASIBLE
    assert right.cer is not None and right.cer <= other.cer


def test_two_concatenated_clips_align_near_the_join(trained):
    a, b = trained.waves[2], trained.waves[3]
    wave = np.concatenate([a, b])
    feats = encoder_features(trained.model, [wave])[0]
    logp = trained.head(feats[None])[0]
    al = align_text(logp, trained.texts[2] + trained.texts[3], trained.units)
    k = len(normalize_text(trained.texts[2]).replace(" ", ""))
    join = len(a) / 16000
    predicted = (al.chars[k - 1].end + al.chars[k].start) / 2
    assert abs(predicted - join) < 0.5, (predicted, join)
    assert al.chars[k - 1].end <= join + 0.3 and al.chars[k].start >= join - 0.3


def test_filter_option(trained):
    rec = dict(text="设定", language="zh", language_prob=1.0, detected_language="zh", avg_logprob=-0.1,
               no_speech_prob=0.0, compression_ratio=1.0, finished=True, utt_id="u1")
    off = FilterConfig()
    on = FilterConfig(ctc_agreement_min=-1.0)
    assert apply_filters(SimpleNamespace(**rec), 2.0, off) == []
    assert apply_filters(SimpleNamespace(**rec, ctc_agreement=-0.5), 2.0, on) == []
    assert apply_filters(SimpleNamespace(**rec, ctc_agreement=-3.0), 2.0, on) == ["ctc_agreement"]
    with pytest.raises(FilterInputError, match="u1.*no ctc_agreement"):
        apply_filters(SimpleNamespace(**rec), 2.0, on)
