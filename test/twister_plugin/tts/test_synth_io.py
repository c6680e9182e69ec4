"""Merging synthesis shards: the lhotse manifests come from what each shard noted about its wavs
(no wav is opened again at merge time) and equal lhotse's own reading of the files."""
from __future__ import annotations

import numpy as np
from lhotse import Recording, RecordingSet, SupervisionSet

from twister_plugin.tts.synth_io import SHARD_ONLY, ShardWriter, merge_if_complete, shard_dir, write_wav
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
    for shard in (1, 2):
        (shard_dir(tmp_path, shard, 2) / SHARD_ONLY).unlink()  # as an older run left its shards
    assert merge_if_complete(tmp_path, 2, FS)
    recs = RecordingSet.from_file(tmp_path / "recordings.jsonl.gz")
    assert {r.id: r.to_dict() for r in recs} == _expected(tmp_path)
