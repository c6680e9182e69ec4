#!/usr/bin/env bash
# Data preparation for this recipe (called by run.sh stage 1). Replace this skeleton with
# the preparation of your corpus; egs2/twister/asr1/local/ is a worked example.
#
# Usage: local/prepare_data.sh [--unlabeled_dir DIR] [--unlabeled_manifest TSV]
#                              [--text FILE] [--test_sets "name=DIR_or_manifest.tsv ..."] data
# Must produce (atomically, so that a crash leaves no half-made folder that looks finished):
#   data/unlabeled/        the untranscribed audio to pseudo-label
#   data/<test>/           one folder per test set, with reference transcripts
#   data/test_sets         the test set names, one a line
#   data/text/corpus.txt   the text the TTS speaks, one sentence a line
set -euo pipefail
echo "local/prepare_data.sh: this recipe's data preparation is not written yet;" \
     "see the contract at the top of $0" >&2
exit 1
