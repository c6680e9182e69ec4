#!/usr/bin/env bash
# Stage 1 contract: write data/unlabeled (Kaldi dir, no text), data/<test> dirs, data/test_sets
# (their names) and data/text/corpus.txt (synthesis text with every test sentence removed).
# With no options the default data is generated with espeak-ng (local/make_default_data.py).
#
# Usage: local/prepare_data.sh [--unlabeled_dir D | --unlabeled_manifest TSV] [--text F]
#                              [--test_sets "name=DIR_or_TSV ..."] data
set -euo pipefail
unlabeled_dir=""; unlabeled_manifest=""; text=""; test_sets=""
while [ $# -gt 1 ]; do
  case $1 in
    --unlabeled_dir) unlabeled_dir=$2 ;; --unlabeled_manifest) unlabeled_manifest=$2 ;;
    --text) text=$2 ;; --test_sets) test_sets=$2 ;;
    *) echo "prepare_data.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
data=${1:?usage: local/prepare_data.sh [options] data}
mkdir -p "$data"
if [ -z "$unlabeled_dir$unlabeled_manifest" ] || [ -z "$text" ] || [ -z "$test_sets" ]; then
  python local/make_default_data.py --sentences local/default_sentences.txt --out "$data/default"
  [ -n "$unlabeled_dir$unlabeled_manifest" ] || unlabeled_dir=$data/default/unlabeled
  [ -n "$text" ] || text=$data/default/corpus.txt
  [ -n "$test_sets" ] || test_sets="test=$data/default/test"
fi
if [ -n "$unlabeled_manifest" ]; then
  python -m twister_plugin.bin.prepare_data --manifest "$unlabeled_manifest" --no-text --out "$data/unlabeled"
else
  python -m twister_plugin.bin.prepare_data --kaldi-dir "$unlabeled_dir" --no-text --out "$data/unlabeled"
fi
: > "$data/test_sets.tmp"
excludes=()
for spec in $test_sets; do
  name=${spec%%=*}; src=${spec#*=}
  case $src in
    *.tsv) python -m twister_plugin.bin.prepare_data --manifest "$src" --out "$data/$name" ;;
    *)     python -m twister_plugin.bin.prepare_data --kaldi-dir "$src" --out "$data/$name" ;;
  esac
  echo "$name" >> "$data/test_sets.tmp"
  excludes+=(--exclude "$data/$name/text")
done
mv "$data/test_sets.tmp" "$data/test_sets"
python -m twister_plugin.bin.prepare_text --text "$text" "${excludes[@]}" --out "$data/text/corpus.txt"
