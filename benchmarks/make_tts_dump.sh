#!/usr/bin/env bash
# A small TTS dump to carry to the GPU machine (device tool) for issue 11's synthesis shards
# (gpu_block.sh scale / synth): N S0150 utterances with their true transcripts, prepared here on
# the CPU with Whisper base (speaker embeddings, phone durations for conf/tts/fastspeech_base.yaml).
# The TTS trained on it there is for speed only: the transcripts are S0150's own, never Twister's path.
# Absolute paths inside the dump become @DUMP@; gpu_session.sh `setup` or `part` makes them local.
#
# Usage (repo root, after tools/setup.sh):  bash benchmarks/make_tts_dump.sh [N=120] [OUT=.carry/tts_dump]
set -euo pipefail
n=${1:-120}
out=${2:-.carry/tts_dump}
py=${TWISTER_PY:-tools/venv/bin/python}
data=${TWISTER_DATA:-../shared/data}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash tools/get_whisper.sh base > /dev/null
# the first N utterances of S0150 (ids in manifest order)
tail -n +2 "$data/zh/aishell_sample_S0150/manifest.tsv" | head -n "$n" | cut -f1 > "$work/ids"
"$py" -m twister_plugin.bin.prepare_data --manifest "$data/zh/aishell_sample_S0150/manifest.tsv" \
    --ids-file "$work/ids" --out "$work/data"
rm -rf "$out" && mkdir -p "$(dirname "$out")"
abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
"$py" -m twister_plugin.bin.tts_prepare --data "$work/data" --out "$abs" --whisper tools/whisper/base.pt \
    --device cpu --durations auto --tts_config egs2/twister/asr1/conf/tts/fastspeech_base.yaml
grep -rlI "$abs" "$out" | xargs -r sed -i "s|$abs|@DUMP@|g"
if grep -rlI "$PWD\|/work/" "$out"; then echo "make_tts_dump: paths of this machine left above" >&2; exit 1; fi
du -sh "$out"
