#!/usr/bin/env bash
# Ablation of a round: the same fine-tuning and scoring as run.sh stages 7-9 with another training
# mix (real pseudo-labelled : synthetic by --real_ratio; 1.0 = self-training only, 0.0 = synthetic
# only), under exp/round<k>_<tag>/. Resumes like run.sh (.done markers).
#
#   local/ablation.sh [--profile conf/profiles/x.sh] --round 1 --real_ratio 1.0 --tag selftrain
set -euo pipefail
profile=""; round=1; real_ratio=""; tag=""
device=cpu; asr_conf=conf/asr/finetune_tiny.yaml; decode_conf=conf/decode.yaml; mix_opts=""
whisper=base; whisper_dir=../../../tools/whisper
# the profile first: --real_ratio and --tag must override its real_ratio
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do
  [ "${args[$i]}" = --profile ] && profile=${args[$((i + 1))]}
done
# shellcheck disable=SC1090
[ -z "$profile" ] || . "$profile"
real_ratio=""
while [ $# -gt 0 ]; do
  case $1 in
    --profile|--round|--real_ratio|--tag) [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
        printf -v "${1#--}" '%s' "$2"; shift 2 ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$real_ratio" ] && [ -n "$tag" ] || { echo "$0: --real_ratio and --tag are required" >&2; exit 2; }
. ./path.sh
. ./cmd.sh
src=exp/round$round
r=exp/round${round}_$tag
prev_model=$whisper_dir/$whisper.pt
[ "$round" -eq 1 ] || prev_model=exp/round$((round - 1))/asr
needs="$src/pseudo"  # self-training only (real ratio 1) needs no synthetic data
awk -v r="$real_ratio" 'BEGIN { exit !(r < 1) }' && needs="$needs $src/synth"
for need in $needs; do
  [ -f "$need/.done" ] || { echo "$0: $need is not done (run run.sh stages 3-6 first)" >&2; exit 2; }
done
log() { echo "$(date '+%F %T') [ablation $tag] $*"; }
t0=$SECONDS
if [ ! -f "$r/asr_data/.done" ]; then
  # shellcheck disable=SC2086
  python -m twister_plugin.bin.mix_data --real "$src/pseudo/data" --synth "$src/synth/data" \
      --real_ratio "$real_ratio" --out "$r/asr_data" $mix_opts
  touch "$r/asr_data/.done"
fi
if [ ! -f "$r/asr/.done" ]; then
  log "fine-tuning ($asr_conf, real ratio $real_ratio)"
  $train_cmd "$r/asr/log/train.log" python -m twister_plugin.bin.asr_train --config "$asr_conf" \
      --init "$prev_model" --train_data "$r/asr_data/train" --valid_data "$r/asr_data/valid" \
      --output_dir "$r/asr" --ngpu "$([ "$device" = cuda ] && echo 1 || echo 0)"
  touch "$r/asr/.done"
fi
for t in $(cat data/test_sets); do
  out=$r/eval/$tag/$t
  [ -f "$out/.done" ] && continue
  python -m twister_plugin.bin.asr_inference --data "data/$t" --model "$r/asr" \
      --config "$decode_conf" --out "$out" --device "$device"
  python -m twister_plugin.bin.score --ref "data/$t/text" --hyp "$out/text" \
      --utt2lang "data/$t/utt2lang" --out "$out/score"
  touch "$out/.done"
done
log "done in $((SECONDS - t0)) s"
