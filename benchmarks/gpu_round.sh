#!/usr/bin/env bash
# Session-2 GPU block on a 2x H100 machine, one device call per phase (each < 10 min), after
# `bash benchmarks/gpu_session.sh setup` / `part` x3 / `weights`:
#   A  GPU1: decode profile + decode peers (issue 7) + fine-tuning throughput;  GPU0: round 1
#      stages 1-5 (TTS trains under its --max_minutes budget; stopped by the call's limit, resumed)
#   B  GPU0: round 1 stages 5-6 (TTS to its budget, synthesis, round trip); GPU1: LM (stage 10)
#      + zero-shot fusion decodes, CTC agreement benchmark (issue 12)
#   C  both GPUs: stages 6-9 + ablations (self-training only, synthetic only)
#   D  both GPUs: DDP + sharding scaling (issue 11); stage 10 for round 1; round 2 (reused TTS)
# Usage (GPU machine, repo root): bash benchmarks/gpu_round.sh A|B|C|D [seconds for the round]
set -uo pipefail
export PYTHONPATH=$HOME/site:$PWD PYTHONUNBUFFERED=1 PATH=$HOME/bin:$PATH TWISTER_DATA=$HOME/data
OUT=${OUT:-/tmp/out}
DATA=$HOME/data
W=$PWD/tools/whisper/base.pt
S0150=$DATA/zh/aishell_sample_S0150/manifest.tsv
limit=${2:-520}
recipe() {  # recipe SECONDS NGPU GPUS args...: run_gpu_round.sh on the given GPUs, time-limited
  local t=$1 n=$2 g=$3; shift 3
  (cd egs2/twister/asr1 && CUDA_VISIBLE_DEVICES=$g TWISTER_NGPU=$n timeout "$t" ./run_gpu_round.sh "$@")
}
collect() { bash benchmarks/gpu_collect.sh "$1"; cp egs2/twister/asr1/exp/stage_times.tsv "$OUT/" 2>/dev/null; }
# recipes call `python`: a wrapper (a symlink to a venv's python3 would lose the venv)
mkdir -p "$HOME/bin" && rm -f "$HOME/bin/python" && printf '#!/bin/sh\nexec %s "$@"\n' "$(PATH=${PATH#"$HOME"/bin:} command -v python3)" > "$HOME/bin/python" && chmod +x "$HOME/bin/python"
python -c "import numpy, torch; print('python ok', torch.__version__)"
echo "=== phase $1 $(date +%T)"; nvidia-smi --query-gpu=index,name,memory.used --format=csv,noheader
case $1 in
  A) (export CUDA_VISIBLE_DEVICES=1
      timeout 150 bash benchmarks/gpu_session.sh profile
      timeout 200 bash benchmarks/gpu_session.sh decode
      timeout 200 python3 benchmarks/finetune_speed.py --model "$W" --device cuda --data "$S0150" \
          --batch 32 --steps 100 --frozen_encoder --systems plain,ours,ours+pack \
          --max_seconds_per_system 50 --out "$OUT/finetune_speed.json" 2>&1 | grep -v Warning | tail -30
     ) > "$OUT/gpu1_A.log" 2>&1 &
     recipe "$limit" 1 0 --stop_stage 5 > "$OUT/round_A.log" 2>&1
     wait; tail -c 3000 "$OUT/round_A.log"; echo; tail -c 6000 "$OUT/gpu1_A.log"; collect A ;;
  B) (export CUDA_VISIBLE_DEVICES=1
      for _ in $(seq 60); do [ -f egs2/twister/asr1/data/.done ] && break; sleep 5; done
      (cd egs2/twister/asr1 && timeout 330 ./run.sh --profile conf/profiles/gpu_s0150.sh --stage 10 --stop_stage 10)
      timeout 200 python3 benchmarks/ctc_agreement.py --model "$W" --manifest "$S0150" --device cuda \
          --epochs 100 --out "$OUT/ctc_agreement.json" --work "$HOME/ctc_work" 2>&1 | grep -v Warning | tail -25
     ) > "$OUT/gpu1_B.log" 2>&1 &
     recipe "$limit" 1 0 --stop_stage "${STOP:-6}" > "$OUT/round_B.log" 2>&1
     wait; tail -c 4000 "$OUT/round_B.log"; echo; tail -c 5000 "$OUT/gpu1_B.log"; collect B ;;
  C) recipe "$limit" 2 0,1 --stop_stage 9 > "$OUT/round_C.log" 2>&1
     tail -c 6000 "$OUT/round_C.log"; collect C ;;
  D) timeout 240 python3 benchmarks/multi_gpu.py --model "$W" --manifest "$S0150" --budget_s 230 \
         --tts_dir egs2/twister/asr1/exp/round1/tts --tts_text "$DATA/text/zh_news_open.txt" \
         --out "$OUT/multi_gpu.json" > "$OUT/multi_gpu.log" 2>&1
     tail -c 3000 "$OUT/multi_gpu.log"
     (cd egs2/twister/asr1 && CUDA_VISIBLE_DEVICES=0,1 timeout 150 ./run.sh --profile conf/profiles/gpu_s0150.sh --stage 10 --stop_stage 10) > "$OUT/round_D.log" 2>&1
     recipe "$((limit - 400))" 2 0,1 --stage 3 --stop_stage 9 --rounds 2 --tts_retrain false >> "$OUT/round_D.log" 2>&1
     tail -c 4000 "$OUT/round_D.log"; collect D ;;
esac
echo "=== end $1 $(date +%T)"
