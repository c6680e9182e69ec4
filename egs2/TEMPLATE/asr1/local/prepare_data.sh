#!/usr/bin/env bash
# Data preparation for this recipe (run.sh stage 1), generic: it prepares data that is already
# in a supported format, given on the command line (or as defaults you write below):
#   a shared-data manifest.tsv (utt_id, audio, speaker, duration_s, sample_rate, language, text),
#   a Kaldi data dir (wav.scp, utt2spk, text, utt2lang), or lhotse cuts (*.jsonl[.gz]).
# For a corpus in another layout, convert it to one of these first (a script of your own in
# local/), then call this one. egs2/twister/asr1/local/ is a worked example with default data.
#
# Usage: local/prepare_data.sh [--unlabeled_dir DIR_or_cuts | --unlabeled_manifest TSV]
#            --text FILE --test_sets "name=DIR_or_manifest.tsv_or_cuts ..." data
#   local/prepare_data.sh --unlabeled_manifest /corpus/train/manifest.tsv --text lm.txt \
#       --test_sets "dev=/corpus/dev/manifest.tsv test=data_src/test" data
# Produces (each written atomically by twister_plugin.bin.prepare_data / prepare_text):
#   data/unlabeled/        the untranscribed audio to pseudo-label (its transcripts never read)
#   data/<name>/           one folder per test set, with reference transcripts
#   data/test_sets         the test set names, one a line
#   data/text/corpus.txt   the text the TTS speaks, one sentence a line, test sentences removed
set -euo pipefail
die() { echo "local/prepare_data.sh: ERROR: $*" >&2; exit 2; }

# This recipe's defaults, used when run.sh passes an empty option: set them to your corpus.
unlabeled_dir=""; unlabeled_manifest=""; text=""; test_sets=""
while [ $# -gt 0 ]; do
  case $1 in
    --unlabeled_dir|--unlabeled_manifest|--text|--test_sets)
      [ $# -ge 2 ] || die "$1 needs a value"
      [ -z "$2" ] || printf -v "${1#--}" '%s' "$2"
      shift 2 ;;
    --*) die "unknown option $1" ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || die "usage: local/prepare_data.sh [options] data (see the top of $0)"
data=$1
[ -z "$unlabeled_dir" ] || [ -z "$unlabeled_manifest" ] \
  || die "give --unlabeled_dir or --unlabeled_manifest, not both"
[ -n "$unlabeled_dir$unlabeled_manifest" ] \
  || die "no unlabeled audio: give --unlabeled_dir or --unlabeled_manifest (or set a default in $0)"
[ -n "$text" ] || die "no text corpus: give --text FILE (or set a default in $0)"
[ -f "$text" ] || die "--text $text: no such file"
[ -n "$test_sets" ] || die "no test sets: give --test_sets \"name=DIR_or_TSV ...\" (or set a default in $0)"

# The prepare_data option that reads source $1 (dies naming it if it is none of the formats).
source_opt() {
  case $1 in
    *.tsv) [ -f "$1" ] && echo --manifest ;;
    *.jsonl|*.jsonl.gz) [ -f "$1" ] && echo --lhotse ;;
    *) [ -d "$1" ] && echo --kaldi-dir ;;
  esac || die "$1: not an existing manifest.tsv, lhotse cuts file (*.jsonl[.gz]) or Kaldi dir"
}

# Check every source and test set spec before any work, so a typo fails at once.
unlabeled=${unlabeled_manifest:-$unlabeled_dir}
unlabeled_opt=$(source_opt "$unlabeled")
declare -A seen=()
for spec in $test_sets; do
  name=${spec%%=*}; src=${spec#*=}
  [[ $spec == *=* && -n $src ]] || die "test set '$spec' is not name=DIR_or_TSV"
  [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "test set name '$name': use letters, digits, _ . -"
  case $name in unlabeled|text|default) die "test set name '$name' is reserved" ;; esac
  [ -z "${seen[$name]:-}" ] || die "test set name '$name' given twice"
  seen[$name]=1
  source_opt "$src" >/dev/null
done

mkdir -p "$data"
python -m twister_plugin.bin.prepare_data "$unlabeled_opt" "$unlabeled" --no-text --out "$data/unlabeled"
excludes=()
: > "$data/test_sets.tmp"
for spec in $test_sets; do
  name=${spec%%=*}; src=${spec#*=}
  opt=$(source_opt "$src")
  python -m twister_plugin.bin.prepare_data "$opt" "$src" --out "$data/$name"
  echo "$name" >> "$data/test_sets.tmp"
  excludes+=(--exclude "$data/$name/text")
done
mv "$data/test_sets.tmp" "$data/test_sets"
python -m twister_plugin.bin.prepare_text --text "$text" "${excludes[@]}" --out "$data/text/corpus.txt"
