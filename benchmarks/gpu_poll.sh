#!/usr/bin/env bash
# Watch benchmarks/gpu_block.sh's background run from short device calls, bring its results back
# in few files ($OUT takes 8), and run the 2-GPU scaling benchmark once both lanes are idle.
#
#   bash benchmarks/gpu_poll.sh wait 300      # wait <= 300 s or until the block is done; status
#   bash benchmarks/gpu_poll.sh scaling 280   # after the block: multi_gpu.py with enough work
#   bash benchmarks/gpu_poll.sh collect       # $OUT/block.tar.gz (logs, results, recipe text)
set -uo pipefail
export PYTHONPATH=$HOME/site:$PWD PYTHONUNBUFFERED=1 PATH=$HOME/bin:$PATH TWISTER_DATA=$HOME/data
OUT=${OUT:-/tmp/out}
B=$HOME/blk
R=egs2/twister/asr1
S0150=$HOME/data/zh/aishell_sample_S0150/manifest.tsv

status() {
  echo "=== $(date +%T) status"; tail -n 30 "$B/events.log" 2>/dev/null
  nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader
  for f in "$B"/*.log; do
    case $(basename "$f") in events.log|main.log) continue ;; esac
    echo "--- $(basename "$f")"; tail -n 3 "$f" | tr '\r' '\n' | tail -n 3 | cut -c1-260
  done
  echo "--- stage times"; cat $R/exp/stage_times.tsv 2>/dev/null
  grep -h "epoch results" $R/exp/round1/tts/log/train.log 2>/dev/null | tail -n 2 | cut -c1-700
  python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print('tts_pick', d['best'], [(c['checkpoint'], c['mer']) for c in d['candidates']])" \
      $R/exp/round1/tts/tts_pick.json 2>/dev/null
  cat $R/exp/round*/synth/report.txt $R/exp/round*/pseudo/report.txt 2>/dev/null | head -n 12
  cat $R/RESULTS.md 2>/dev/null | head -n 60
}

collect() {
  bash benchmarks/gpu_collect.sh recipe > /dev/null
  tar czf "$OUT/block.tar.gz" -C "$HOME" blk 2>/dev/null
  ls -la "$OUT" | tail -n +2
}

for step in "$@"; do
  case $step in
    wait)    if [ ! -e "$B/events.log" ]; then  # session 9 lost 560 s of device time waiting on a bare machine
               echo "no block on this machine: it is a fresh one (the machine that ran the block was given back)"
               exit 3
             fi
             t=${2:-300}; for ((i = 0; i < t; i += 10)); do [ -f "$B/ALL_DONE" ] && break; sleep 10; done
             status; collect; exit 0 ;;
    scaling) t=${2:-280}; for ((i = 0; i < 240; i += 5)); do [ -f "$B/ALL_DONE" ] && break; sleep 5; done
             [ -f "$B/ALL_DONE" ] || echo "WARNING: the block is still running: scaling numbers share the GPUs"
             timeout "$t" python3 benchmarks/multi_gpu.py --model tools/whisper/base.pt --manifest "$S0150" \
                 --global_batch 256 --steps 20 --pl_repeat 4 --budget_s "$((t - 15))" \
                 --tts_dir $R/exp/round1/tts --tts_text "$HOME/data/text/zh_news_open.txt" --tts_lines 2000 \
                 --out "$B/out/multi_gpu_large.json" > "$B/multi_gpu_large.log" 2>&1
             echo "multi_gpu rc $?"; tail -n 5 "$B/multi_gpu_large.log"
             python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({k: d.get(k) for k in ('ddp_compare','pseudo_label','synth')}, indent=1)[:3000])" "$B/out/multi_gpu_large.json"
             status; collect; exit 0 ;;
    collect) status; collect; exit 0 ;;
  esac
done
