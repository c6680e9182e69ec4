#!/usr/bin/env bash
# Issue 8 in one command: Twister rounds on real Mandarin speech (AISHELL sample S0150) with
# Whisper base on 1-2 GPUs, the ablations (self-training only, synthetic only) and the LM peer.
#
#   ./run_gpu_round.sh [--rounds 2] [run.sh options...]
#   TWISTER_DATA=/path/to/shared/data TWISTER_NGPU=2 ./run_gpu_round.sh --stage 1 --stop_stage 10
#   # session 6 (benchmarks/RESULTS.md, one H100): the long profile, TTS 9 min, the topline too
#   TWISTER_PROFILE=conf/profiles/gpu_s0150_long.sh TWISTER_TTS_MINUTES=9 TWISTER_TOPLINE=1 \
#       ./run_gpu_round.sh --rounds 2
#
# What it does: local/split_s0150.py (400 unlabeled / 100 held-out utterances), then
# run.sh --profile PROFILE (stages 1-9, + 10 when asked), then for round 1 the
# two ablations with run.sh --tag (real-only and synthetic-only training mixes), each on
# its own GPU when two are given. Every step resumes: rerun the same command after a crash or a
# time limit. Stage wall times: exp/stage_times.tsv. Results: RESULTS.md, exp/report/.
# TWISTER_TOPLINE=1 adds a topline ablation: the same real audio with its TRUE transcripts
# (data_src/s0150_unlabeled/.truth; never read on Twister's own path): what perfect labels give.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
profile=${TWISTER_PROFILE:-conf/profiles/gpu_s0150.sh}  # another profile: e.g. a CPU dry run
data_root=${TWISTER_DATA:-$(cd ../../../.. && pwd)/shared/data}
if [ ! -f data_src/.done ]; then
  python local/split_s0150.py --manifest "$data_root/zh/aishell_sample_S0150/manifest.tsv" --out data_src
  touch data_src/.done
fi
stop=9
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [ "${args[$i]}" = --stop_stage ] && stop=${args[$((i + 1))]}
done
./run.sh --profile "$profile" "$@"
# Ablations of round 1 (need its pseudo-labels; synthetic-only also its synthetic data): stages
# 7-9 with another mix into exp/round1_<tag>/ (run.sh --tag), each on its own GPU when two are given.
if [ "$stop" -ge 9 ] && [ -f exp/round1/synth/.done ]; then
  ngpu=${TWISTER_NGPU:-1}
  CUDA_VISIBLE_DEVICES=0 ./run.sh --profile "$profile" --stage 7 --stop_stage 9 \
      --real_ratio 1.0 --tag selftrain &
  p1=$!
  [ "$ngpu" -ge 2 ] || wait "$p1"
  CUDA_VISIBLE_DEVICES=$((ngpu >= 2 ? 1 : 0)) ./run.sh --profile "$profile" --stage 7 --stop_stage 9 \
      --real_ratio 0.0 --tag synthonly
  wait "$p1"
  if [ -n "${TWISTER_TOPLINE:-}" ]; then
    ./run.sh --profile "$profile" --stage 7 --stop_stage 9 --real_ratio 1.0 --tag oracle \
        --tag_real_text data_src/s0150_unlabeled/.truth
  fi
  python -m twister_plugin.bin.score --results exp --write RESULTS.md
fi
