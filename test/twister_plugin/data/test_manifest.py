"""Shared-data manifests -> DataDir, id / language selection, and the lhotse round trip."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lhotse.utils import fastcopy

from twister_plugin.data.audio import load_audio
from twister_plugin.data.kaldi import DataDir, DataError, Segment
from twister_plugin.data.manifest import (
    from_lhotse, read_manifest, select_ids, select_language, to_lhotse,
)
from twister_plugin.testing.data import write_audio_cases, write_files

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
S0150 = SHARED / "zh" / "aishell_sample_S0150" / "manifest.tsv"
LIBRI = SHARED / "en" / "librispeech" / "manifest.tsv"
needs_shared = pytest.mark.skipif(not S0150.is_file(), reason="shared/data absent")
HEADER = "utt_id\taudio\tspeaker\tduration_s\tsample_rate\tlanguage\ttext\n"


@needs_shared
def test_s0150_manifest():
    dd = read_manifest(S0150)
    assert len(dd.utt_ids) == 500 and set(dd.utt2spk.values()) == {"S0150"}
    assert set(dd.utt2lang.values()) == {"zh"}
    path = Path(dd.wav_scp["BAC009S0150W0277"])
    assert path.is_absolute() and path.is_file() and ".." not in path.parts
    assert dd.text["BAC009S0150W0277"] == "苹果表配apple pay"
    assert dd.utt2dur["BAC009S0150W0001"] == 2.429


@needs_shared
def test_librispeech_manifest_and_language_filter():
    dd = read_manifest(LIBRI)
    assert len(dd.utt_ids) == 10 and dd.utt2spk["103-1240-0000"] == "103"
    assert select_language(dd, "en").utt_ids == dd.utt_ids
    with pytest.raises(DataError, match=r"no utterance has language 'zh' \(languages: \['en'\]\)"):
        select_language(dd, "zh")


@needs_shared
def test_bad_real_speaker_id_named_then_fixed():
    manifest = SHARED / "en" / "librivox_pocketsphinx" / "manifest.tsv"
    with pytest.raises(DataError, match=r"manifest.tsv:7: speaker: bad id 'cards-speaker\?'.*"
                                        r"fix_speaker_ids"):
        read_manifest(manifest)
    dd = read_manifest(manifest, fix_speaker_ids=True)
    assert "cards-speaker_" in dd.utt2spk.values()


@pytest.fixture
def audio_dir(tmp_path) -> Path:
    cases = write_audio_cases(tmp_path / "audio", long_seconds=None)
    return cases["good"].parent


def row(utt="u1", audio="audio/good.flac", spk="s1", dur="2.429", rate="16000", lang="zh",
        text="你好"):
    return "\t".join([utt, audio, spk, dur, rate, lang, text]) + "\n"


@pytest.mark.parametrize("content, message", [
    ("", "manifest.tsv:1: empty manifest"),
    ("utt_id\taudio\ttext\n", "manifest.tsv:1: header lacks columns ['speaker', 'duration_s'"),
    (HEADER, "manifest.tsv: no utterances after the header"),
    (HEADER + row() + "u2\taudio/good.flac\n", "manifest.tsv:3: 2 tab-separated fields, header has 7"),
    (HEADER + row() + row(), "manifest.tsv:3: duplicate utt_id 'u1' (first on line 2)"),
    (HEADER + row(utt="u 1"), "manifest.tsv:2: bad id 'u 1'"),
    (HEADER + row(audio="audio/nope.flac"), "manifest.tsv:2: audio file"),
    (HEADER + row(dur="-1"), "manifest.tsv:2: duration_s -1.0 and sample_rate 16000 must be positive"),
    (HEADER + row(rate="16k"), "manifest.tsv:2: duration_s '2.429' / sample_rate '16k' is not a number"),
    (HEADER + row(lang="Mandarin"), "manifest.tsv:2: bad language 'Mandarin'"),
    (HEADER + row(text="  "), "manifest.tsv:2: empty text"),
    (HEADER.encode() + b"u1\taudio/good.flac\ts1\t1\t16000\tzh\t\xe4\xbd\n", "manifest.tsv:2: not valid UTF-8"),
])
def test_refused_manifest(audio_dir, content, message):
    write_files(audio_dir.parent, {"manifest.tsv": content})
    with pytest.raises(DataError) as err:
        read_manifest(audio_dir.parent / "manifest.tsv")
    assert str(audio_dir.parent / message.split(":")[0]) in str(err.value)
    assert message in str(err.value)


def test_select_ids(audio_dir):
    write_files(audio_dir.parent, {"manifest.tsv": HEADER + row("u2") + row("u1") + row("u3"),
                                   "ids": "u3\nu1\n", "bad_ids": "u1\nu9\n", "empty_ids": ""})
    dd = read_manifest(audio_dir.parent / "manifest.tsv")
    assert dd.utt_ids == ["u1", "u2", "u3"]  # sorted, whatever the manifest order
    assert select_ids(dd, audio_dir.parent / "ids").utt_ids == ["u1", "u3"]
    with pytest.raises(DataError, match=r"bad_ids:2: id 'u9' is not in .*manifest.tsv"):
        select_ids(dd, audio_dir.parent / "bad_ids")
    with pytest.raises(DataError, match="empty_ids: no ids"):
        select_ids(dd, audio_dir.parent / "empty_ids")


def test_select_language_sets_missing_languages():
    dd = DataDir(wav_scp={"a": "x.flac", "b": "y.flac"}, utt2spk={"a": "s", "b": "s"})
    assert select_language(dd, "en").utt2lang == {"a": "en", "b": "en"}
    mixed = DataDir(wav_scp={"a": "x", "b": "y"}, utt2spk={"a": "s", "b": "s"},
                    utt2lang={"a": "zh", "b": "en"})
    assert select_language(mixed, "zh").utt_ids == ["a"]


@needs_shared
def test_lhotse_round_trip_real():
    dd = read_manifest(LIBRI)
    cuts = to_lhotse(dd)
    assert len(cuts) == 10
    cut = cuts["103-1240-0000"]
    sup = cut.supervisions[0]
    assert (sup.text, sup.speaker, sup.language) == (dd.text[cut.id], "103", "en")
    assert abs(cut.duration - 14.085) < 1e-3 and cut.sampling_rate == 16000
    np.testing.assert_allclose(cut.load_audio()[0], load_audio(dd.wav_scp[cut.id]), atol=1e-6)
    back = from_lhotse(cuts)
    assert back.segments is None  # every cut is a whole recording
    for key in ("wav_scp", "utt2spk", "text", "utt2lang"):
        assert getattr(back, key) == getattr(dd, key)


def test_lhotse_segments_round_trip(audio_dir):
    good = str(audio_dir / "good.flac")
    dd = DataDir(wav_scp={"rec": good}, utt2spk={"a": "s1", "b": "s2"}, text={"a": "一", "b": "二"},
                 segments={"a": Segment("rec", 0.0, 1.0), "b": Segment("rec", 1.25, 2.25)})
    cuts = to_lhotse(dd)
    assert [(c.id, c.start, c.duration) for c in cuts] == [("a", 0.0, 1.0), ("b", 1.25, 1.0)]
    back = from_lhotse(cuts)
    assert back.segments == dd.segments and back.utt2spk == dd.utt2spk and back.text == dd.text
    assert back.utt2lang is None
    truncated = from_lhotse(cuts.truncate(max_duration=0.5, offset_type="start", preserve_id=True))
    assert truncated.segments["b"] == Segment("rec", 1.25, 1.75)


def test_lhotse_refusals(audio_dir):
    dd = DataDir(wav_scp={"rec": str(audio_dir / "good.flac")}, utt2spk={"rec": "s"},
                 text={"rec": "x"})
    cuts = to_lhotse(dd)
    with pytest.raises(DataError, match=r"MixedCut has no single recording \(mixed or padding cut\)"):
        from_lhotse(cuts.pad(duration=5.0))
    sup = cuts[0].supervisions[0]
    two = fastcopy(cuts[0], supervisions=[sup, fastcopy(sup, id="other")])
    with pytest.raises(DataError, match=r"cut 'rec'\): 2 supervisions; want one per cut"):
        from_lhotse([two])
    english = fastcopy(cuts[0], supervisions=[fastcopy(sup, language="English")])
    assert from_lhotse([english]).utt2lang == {"rec": "en"}
    with pytest.raises(DataError, match="duplicate cut id"):
        from_lhotse([cuts[0], cuts[0]])
    with pytest.raises(DataError, match="no cuts"):
        from_lhotse([])
    bad = DataDir(wav_scp={"rec": str(audio_dir / "nan_wav.wav"), "r2": str(audio_dir / "empty.wav")},
                  utt2spk={"rec": "s", "r2": "s"})
    with pytest.raises(DataError, match=r"wav.scp \(id 'r2'\): .*empty.wav: empty file"):
        to_lhotse(bad)


def test_lhotse_pipe_entries_need_permission(audio_dir):
    entry = f"cat {audio_dir / 'good.flac'} |"
    dd = DataDir(wav_scp={"u": entry}, utt2spk={"u": "s"}, text={"u": "x"})
    with pytest.raises(DataError, match=r"wav.scp \(id 'u'\): .*refused unless allow_pipes=True"):
        to_lhotse(dd)
    cuts = to_lhotse(dd, allow_pipes=True)
    assert cuts[0].recording.sources[0].type == "command"
    np.testing.assert_allclose(cuts[0].load_audio()[0], load_audio(audio_dir / "good.flac"), atol=1e-6)
    assert from_lhotse(cuts).wav_scp == {"u": entry}
