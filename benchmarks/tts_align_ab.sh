#!/usr/bin/env bash
# A/B on CPU (2 cores): does Whisper's own timing of each character (tts_prepare --durations whisper
# -> TwisterFastSpeech durations_prior) make the TTS learn faster than the beta-binomial prior alone?
#
#   bash benchmarks/tts_align_ab.sh [MINUTES] [OUT]     # default 45 min per run, /tmp/ab
#   ARMS="teacher:teacher_durations=true sigma1:durations_prior=1.0" bash benchmarks/tts_align_ab.sh 40
#       # other arms on the same dump: NAME[:tts_conf key=value[,key=value]] each, side by side
#
# Data: the 400 "unlabeled" S0150 utterances of local/split_s0150.py with their TRUE transcripts
# (a controlled comparison of two alignment priors, not the recipe: the recipe trains on
# pseudo-labels), 20 held out for validation. Both runs: conf/tts/fastspeech_cpu_small.yaml, same
# seed, same batches, one CPU thread each, side by side, the same wall-time budget; they differ in
# durations_prior only (3 frames vs 0 = beta-binomial; ARMS for others). Then each run's kept
# epochs speak 30 corpus sentences that are not training text and Whisper base reads them back
# (tts_pick: round-trip MER),
# and the picked checkpoint speaks SENTENCES (default 60) more unseen sentences through the
# recipe's stage 6 (synthesize + roundtrip_filter) for benchmarks/tts_samples.py (MER, PNG, wavs).
set -euo pipefail
MIN=${1:-45}
OUT=${2:-/tmp/ab}
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
DATA=${TWISTER_DATA:-$REPO/../shared/data}
CONF=egs2/twister/asr1/conf/tts/fastspeech_cpu_small.yaml
W=tools/whisper/base.pt
mkdir -p "$OUT"
if [ ! -f "$OUT/dump/.done" ]; then
  python egs2/twister/asr1/local/split_s0150.py --manifest "$DATA/zh/aishell_sample_S0150/manifest.tsv" \
      --out "$OUT/src"
  cp "$OUT/src/s0150_unlabeled/.truth" "$OUT/src/s0150_unlabeled/text"
  python -m twister_plugin.bin.tts_prepare --data "$OUT/src/s0150_unlabeled" --out "$OUT/dump" \
      --whisper "$W" --durations whisper --valid_count 20 --device cpu > "$OUT/prepare.log" 2>&1
fi
train() {  # train NAME [ESPnet options]
  local name=$1; shift
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m twister_plugin.bin.tts_train --config "$CONF" \
      --dump "$OUT/dump" --output_dir "$OUT/$name" --device cpu --max_minutes "$MIN" "$@" \
      >> "$OUT/$name.log" 2>&1
}
ARMS=${ARMS:-prior betabinomial:durations_prior=0}
for arm in $ARMS; do
  opts=()
  if [ "$arm" != "${arm%%:*}" ]; then
    IFS=, read -ra kvs <<< "${arm#*:}"
    for kv in "${kvs[@]}"; do opts+=(--tts_conf "$kv"); done
  fi
  train "${arm%%:*}" "${opts[@]}" &
done
wait
python -m twister_plugin.bin.prepare_text --text "$DATA/text/zh_news_open.txt" \
    --exclude "$OUT/src/s0150_unlabeled/text" --sample "${SENTENCES:-60}" --seed 7 --out "$OUT/corpus_sample.txt"
for arm in $ARMS; do
  name=${arm%%:*}
  [ -f "$OUT/$name/tts_pick.json" ] || python -m twister_plugin.bin.tts_pick --model_dir "$OUT/$name" --text "$DATA/text/zh_news_open.txt" \
      --exclude "$OUT/src/s0150_unlabeled/text" --whisper "$W" --sentences 30 --device cpu \
      > "$OUT/${name}_pick.log" 2>&1
  if [ ! -f "$OUT/${name}_synth/scores.jsonl" ]; then
    python -m twister_plugin.bin.synthesize --model_dir "$OUT/$name" --text "$OUT/corpus_sample.txt" \
        --out "$OUT/${name}_synth/raw" --device cpu > "$OUT/${name}_synth.log" 2>&1
    python -m twister_plugin.bin.roundtrip_filter --synth "$OUT/${name}_synth/raw" --model "$W" \
        --config egs2/twister/asr1/conf/pseudo_label.yaml --out "$OUT/${name}_synth" --device cpu \
        --max_err 30 >> "$OUT/${name}_synth.log" 2>&1
  fi
  python benchmarks/tts_samples.py --synth "$OUT/${name}_synth" --train_text "$OUT/src/s0150_unlabeled/text" \
      --real "$OUT/src/s0150_unlabeled" --n "${SENTENCES:-60}" --png 3 --out "$OUT/${name}_samples" \
      > "$OUT/${name}_samples.log" 2>&1
  grep -h "^{" "$OUT/${name}_samples.log" | cut -c1-300
  python - "$OUT/$name/checkpoint.pth" <<'PY'  # valid losses per epoch, from ESPnet's reporter
import sys, torch
stats = torch.load(sys.argv[1], weights_only=False)["reporter"]["stats"]
for e in sorted(stats):
    v = stats[e]["valid"]
    print(e, " ".join(f"{k}={v[k]:.3f}" for k in ("mel_loss", "duration_loss", "align_loss",
                                                 "pred_len_ratio", "dur_max_share") if k in v))
PY
  cat "$OUT/$name/tts_pick.json"
done
