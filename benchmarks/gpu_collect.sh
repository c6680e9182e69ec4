#!/usr/bin/env bash
# Bring a GPU round's small results back through $OUT (device tool: 8 files, 16 MiB each):
# logs, reports, scores, RESULTS.md, stage times, decoded text, a few synthetic wavs; never
# checkpoints or the bulk of the audio.
# Usage (repo root, GPU machine): bash benchmarks/gpu_collect.sh NAME   -> $OUT/NAME.tar.gz
set -uo pipefail
name=${1:-round}
OUT=${OUT:-/tmp/out}
cd egs2/twister/asr1 || exit 1
list=$(mktemp)
find exp data/test_sets RESULTS.md -type f \( -name '*.log' -o -name '*.json' -o -name '*.jsonl' \
    -o -name '*.txt' -o -name '*.tsv' -o -name '*.md' -o -name 'text' -o -name 'text.spoken' \
    -o -name 'report*' -o -name '*.yaml' -o -name 'utt2dur' -o -name 'lm_weight' -o -name 'concat_map' -o -name '*.png' -o -name '*.html' \) \
    -size -4M 2>/dev/null | grep -v '/tts_dump/' > "$list"
# a few synthetic utterances (first 6 kept ones of round 1) and their texts
if [ -f exp/round1/synth/data/wav.scp ]; then
  head -n 6 exp/round1/synth/data/wav.scp | awk '{print $2}' >> "$list"
fi
tar czf "$OUT/$name.tar.gz" -T "$list" 2>/dev/null
ls -la "$OUT/$name.tar.gz"
