"""Merging synthesis shards: the lhotse manifests come from what each shard noted about its wavs
(no wav is opened again at merge time) and equal lhotse's own reading of the files."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
from lhotse import Recording, RecordingSet, SupervisionSet

from twister_plugin.tts.synth_io import LHOTSE_PARTS, SHARD_ONLY, ShardWriter, merge_if_complete, shard_dir, write_wav
from twister_plugin.tts.synthesize import Job

FS = 22050


def _write_shards(out, n_lines=5, n_shards=2):
    rng = np.random.default_rng(0)
    for shard in range(1, n_shards + 1):
        writer = ShardWriter(out, shard, n_shards)
        for line in range(shard, n_lines + 1, n_shards):
            job = Job(line=line, text=f"第{line}句", voice=f"synth-spk{line % 2}", speed=1.0,
                      emb=np.zeros(4), sid=0, spoken=f"第{line}句", lang="zh")
            path = out / "wav" / f"{job.utt}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_wav(path, 0.1 * rng.standard_normal(1000 + 731 * line).astype(np.float32), FS)
            writer.add(job, path)
        writer.finish(resumed=0)


def _expected(out) -> dict:
    wav_scp = dict(line.split(maxsplit=1) for line in (out / "wav.scp").read_text().splitlines())
    return {u: Recording.from_file(p, recording_id=u).to_dict() for u, p in wav_scp.items()}


def test_merge_writes_the_recordings_lhotse_would_read(tmp_path):
    _write_shards(tmp_path)
    assert (shard_dir(tmp_path, 1, 2) / SHARD_ONLY).read_text().split("\n")[0].endswith(f" {FS}")
    assert merge_if_complete(tmp_path, 2, FS)
    recs = RecordingSet.from_file(tmp_path / "recordings.jsonl.gz")
    assert {r.id: r.to_dict() for r in recs} == _expected(tmp_path)
    assert len(recs) == 5 and all(r.sampling_rate == FS for r in recs)
    sups = SupervisionSet.from_file(tmp_path / "supervisions.jsonl.gz")
    assert {s.id: s.duration for s in sups} == {r.id: r.duration for r in recs}
    assert not (tmp_path / SHARD_ONLY).exists()  # a shard table, not a Kaldi table of the output


def test_shards_written_before_the_table_still_merge_from_the_headers(tmp_path):
    _write_shards(tmp_path)
    for shard in (1, 2):  # as an older run left its shards: no frames table, no manifest parts
        for name in (SHARD_ONLY, *(f"{p}.jsonl.gz" for p in LHOTSE_PARTS)):
            (shard_dir(tmp_path, shard, 2) / name).unlink()
    assert merge_if_complete(tmp_path, 2, FS)
    recs = RecordingSet.from_file(tmp_path / "recordings.jsonl.gz")
    assert {r.id: r.to_dict() for r in recs} == _expected(tmp_path)


def _manifest_lines(out: Path) -> dict[str, list[bytes]]:
    return {p: gzip.open(out / f"{p}.jsonl.gz", "rb").read().splitlines() for p in LHOTSE_PARTS}


def test_shard_parts_interleave_into_what_one_lhotse_write_gives(tmp_path):
    """The merge interleaves the shards' own manifest lines: the same lines, in the same (id)
    order, as building every object at merge time (the path older shards take)."""
    _write_shards(tmp_path, n_lines=9, n_shards=3)
    assert merge_if_complete(tmp_path, 3, FS)
    fast = _manifest_lines(tmp_path)
    for shard in (1, 2, 3):
        (shard_dir(tmp_path, shard, 3) / "recordings.jsonl.gz").unlink()
    assert merge_if_complete(tmp_path, 3, FS)
    assert _manifest_lines(tmp_path) == fast
    ids = [json.loads(x)["id"] for x in fast["recordings"]]
    assert ids == sorted(ids) and len(ids) == 9


def test_a_part_that_does_not_match_its_shard_is_not_trusted(tmp_path, caplog):
    _write_shards(tmp_path)
    part = shard_dir(tmp_path, 2, 2) / "supervisions.jsonl.gz"
    rows = gzip.open(part, "rb").read().splitlines(keepends=True)
    with gzip.open(part, "wb") as f:  # a line lost (e.g. a part from another run)
        f.writelines(rows[:-1])
    assert merge_if_complete(tmp_path, 2, FS)
    assert "does not list its shard's utterances" in caplog.text
    sups = SupervisionSet.from_file(tmp_path / "supervisions.jsonl.gz")
    assert sorted(s.id for s in sups) == sorted(_expected(tmp_path))


def _merge_many(out: str, times: int) -> None:
    for _ in range(times):
        assert merge_if_complete(Path(out), 2, FS)


def test_two_jobs_merging_at_once_both_succeed_with_the_same_output(tmp_path):
    """The last two shards of a run can finish together and both merge (session 7: two
    pseudo-labelling jobs collided on the data dir's staged files)."""
    import multiprocessing as mp

    _write_shards(tmp_path)
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_merge_many, args=(str(tmp_path), 15)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    recs = RecordingSet.from_file(tmp_path / "recordings.jsonl.gz")
    assert {r.id: r.to_dict() for r in recs} == _expected(tmp_path)
    assert (tmp_path / ".done").exists()


KALDI_FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "utt2lang", "utt2dur", "text.spoken")


def test_line_merge_of_checked_shard_tables_equals_parsing_them_all(tmp_path):
    """Shards write their Kaldi tables checked (write_kaldi_dir); the merge interleaves their lines.
    Same files, byte for byte, as parsing, checking and writing everything at merge time (the path
    shards from older runs, without spk2utt, take)."""
    _write_shards(tmp_path, n_lines=11, n_shards=3)
    assert merge_if_complete(tmp_path, 3, FS)
    fast = {name: (tmp_path / name).read_bytes() for name in KALDI_FILES}
    for shard in (1, 2, 3):
        (shard_dir(tmp_path, shard, 3) / "spk2utt").unlink()
    assert merge_if_complete(tmp_path, 3, FS)
    assert {name: (tmp_path / name).read_bytes() for name in KALDI_FILES} == fast
    assert fast["spk2utt"].decode().splitlines()[0].split()[1:] == sorted(
        line.split()[0] for line in fast["utt2spk"].decode().splitlines() if line.endswith(" synth-spk0"))
    assert len(fast["wav.scp"].decode().splitlines()) == 11 and not list(tmp_path.glob(".staged.*"))


def test_an_utterance_in_two_shards_is_refused_by_name(tmp_path):
    import pytest

    from twister_plugin.data.kaldi import DataError

    _write_shards(tmp_path)
    first = (shard_dir(tmp_path, 1, 2) / "wav.scp").read_text().splitlines()[0]
    other = shard_dir(tmp_path, 2, 2) / "wav.scp"
    other.write_text("".join(f"{x}\n" for x in sorted(other.read_text().splitlines() + [first])))
    with pytest.raises(DataError, match=f"{first.split()[0]}.*two shards"):
        merge_if_complete(tmp_path, 2, FS)
    assert not (tmp_path / ".done").exists() and not list(tmp_path.glob(".staged.*"))


def test_a_shard_whose_lines_were_all_skipped_merges_with_the_others(tmp_path):
    _write_shards(tmp_path, n_lines=1, n_shards=2)  # shard 2 gets no line
    assert (shard_dir(tmp_path, 2, 2) / "wav.scp").read_text() == ""
    assert merge_if_complete(tmp_path, 2, FS)
    assert len((tmp_path / "wav.scp").read_text().splitlines()) == 1
