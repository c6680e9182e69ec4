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
# The generic preparation shared with every recipe made from the template.
exec ../../TEMPLATE/asr1/local/prepare_data.sh --unlabeled_dir "$unlabeled_dir" \
    --unlabeled_manifest "$unlabeled_manifest" --text "$text" --test_sets "$test_sets" "$data"
