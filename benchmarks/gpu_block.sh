#!/usr/bin/env bash
# One GPU session's whole block on a 2-GPU machine (device tool), run by a background orchestrator
# (setsid: it outlives the call that starts it) and watched by short `poll` calls, so no GPU
# minute is lost between calls.
#
#   bash benchmarks/gpu_block.sh setup           # wheels (.whl), data (.carry/data), python wrapper
#   bash benchmarks/gpu_block.sh part            # a carried Whisper part -> ~/parts (3 calls)
#   bash benchmarks/gpu_block.sh weights start   # join + check base.pt, launch the orchestrator
#   bash benchmarks/gpu_poll.sh wait 420         # wait <= 420 s (or until all done), status, $OUT
# Keep a call in flight: the machine is given back 30 s after a call ends, and the orchestrator
# with it (session 3 lost its first start that way). Issue the next poll at once.
#
# The orchestrator (`run`), with egs2/twister/asr1/conf/profiles/gpu_s0150.sh:
#   both GPUs   issue 11: benchmarks/multi_gpu.py (NCCL DDP 1 vs 2 GPUs, sharded pseudo-labelling)
#               while stages 1-2 (data, CPU) run
#   lane 0      round 1 stages 3-9 (TTS trains ${TTS_MIN:-12} min; benchmarks/tts_samples.py after
#               stage 6), round 2 stages 3-9 (TTS reused), then stage 10 for rounds 1-2
#   lane 1      issue 7 decode_speed (a-d, warm passes); ablation selftrain once the pseudo-labels
#               exist; stage 10 (LM + zero-shot fusion decodes, issue 13);
#               BLOCK_RANDOM_SIZES="small medium large-v3": decode speed at random init, forced 24
#               tokens, speed only; TTS micro-benchmarks (MAS, alignment loss) on CUDA; ablation
#               synthonly once stage 6 is done; a filter ablation: round 1's synthetic speech judged
#               again (run.sh --tag_roundtrip_opts; BLOCK_FILTER_TAG / BLOCK_FILTER_OPTS, default
#               ser / "--metric ser --max_err 30"; with gpu_s0150_long.sh use mer / "--metric mer --max_err 30")
#   BLOCK_SKIP_BENCH=1 leaves out the first multi_gpu.py and the TTS micro-benchmarks (measured
#   already); BLOCK_SKIP_DECODE=1 leaves out decode_speed; BLOCK_SKIP_LM=1 leaves out stage 10;
#   BLOCK_SKIP_FILTER=1 leaves out the filter ablation; BLOCK_ORACLE=1 adds a topline ablation:
#   the same real audio with its true transcripts (--tag oracle --tag_real_text, never in Twister's path)
#   BLOCK_GPUS=1 (a one-GPU machine): lane 1 shares GPU 0, decode_speed runs first with the host
#   idle (before any recipe stage), and lane 1's ablations wait until the TTS has trained
#   after the block: benchmarks/gpu_poll.sh scaling 230 (2-GPU scaling with enough work)
#   `scale` instead of `start` (issue 11 alone, 2 GPUs): a quick TTS on the dump carried with a part
#   (.carry/tts_dump, paths as @DUMP@) on GPU 0 while benchmarks/sdpa_shapes.py runs on GPU 1, then
#   multi_gpu.py --weak (SCALE_STEPS, default 30) with pseudo-labelling sized to ~SCALE_PL_S s of
#   one job (default 50; at most SCALE_PL_REPEAT x 500 utterances) after a cuDNN-attention A/B,
#   and synthesis of SCALE_TTS_LINES corpus sentences (default 12000: ~10 ms each for one job on an
#   H100 at batch 64, session 7), watched by gpu_poll.sh wait
#   `synth` (issue 11's synthesis shards alone, no Whisper weights: setup carries .whl, .carry/data
#   with text/ and the S0150 manifest, and .carry/tts_dump from benchmarks/make_tts_dump.sh): the
#   quick TTS with benchmarks/wav_write.py beside it (SYNTH_WAVW wavs: fsync per wav vs one flush,
#   1 vs 2 processes, on the disk), then a multi_gpu.py run over SYNTH_LINES (16000) sentences for
#   each word of SYNTH_WHERE ("disk disk"; "shm": outputs on /dev/shm), then, if SYNTH_AB_WRITERS
#   is set (e.g. "0 4"), synthesize --writers A/B over SYNTH_AB_LINES (4000)
# Session 6 ran (benchmarks/RESULTS.md) on one H100: BLOCK_GPUS=1 BLOCK_PROFILE=conf/profiles/gpu_s0150_long.sh
#   BLOCK_SKIP_BENCH=1 BLOCK_SKIP_LM=1 BLOCK_ORACLE=1 BLOCK_FILTER_TAG=mer
#   BLOCK_FILTER_OPTS="--metric mer --max_err 30" TTS_MIN=9 ... part weights start (23 min);
#   on 2 GPUs: part weights scale. Session 7 (2x H100): part weights scale; the synthesis phase of
#   the whole corpus ran past the budget, so multi_gpu.py was rerun by hand with --tts_lines 4000.
#   Session 8 (2x H100, two machines): `setup synth` (16,000 sentences, twice, then the writers
#   A/B), then `SYNTH_LINES=40000 SYNTH_BUDGET=560 SYNTH_AB_WRITERS= ... synth` on the warm machine
#   (the whole corpus, twice): 81-89% on the wall. On a second machine `SYNTH_RUNS=1 SYNTH_LINES=50000
#   SYNTH_REPEAT=2 SYNTH_BUDGET=480 ... setup synth` ran out of budget (slower host CPUs).
#   Session 10 (2x H200, one machine): `SYNTH_LINES=66692 SYNTH_REPEAT=2 SYNTH_BUDGET=560
#   SYNTH_WHERE="disk shm disk" ... setup synth`, then `SYNTH_WAVW=300 ... SYNTH_WHERE=disk synth`
#   on the warm machine (TTS reused): 88.6-104.3% over four runs, 94.8% pooled.
#   Still to measure: gpu_session.sh contention (issue 7).
# Logs: ~/blk/*.log; results: ~/blk/out/ and the recipe's exp/ (collected by gpu_poll.sh).
set -uo pipefail
export PYTHONPATH=$HOME/site:$PWD PYTHONUNBUFFERED=1 PATH=$HOME/bin:$PATH TWISTER_DATA=$HOME/data
B=$HOME/blk
DATA=$HOME/data
W=$PWD/tools/whisper/base.pt  # gpu_session.sh weights puts it there
S0150=$DATA/zh/aishell_sample_S0150/manifest.tsv
R=egs2/twister/asr1
PROFILE=${BLOCK_PROFILE:-conf/profiles/gpu_s0150.sh}  # BLOCK_PROFILE: e.g. a CPU dry run
export TWISTER_TTS_MINUTES=${TTS_MIN:-12}
G1=$(( ${BLOCK_GPUS:-2} > 1 ? 1 : 0 ))  # lane 1's GPU
mkdir -p "$B/out"

say() { echo "$(date +%T) [$1] ${*:2}" | tee -a "$B/events.log"; }
wait_for() {  # wait_for FILE SECONDS: 0 once FILE exists, 1 after SECONDS
  local i
  for ((i = 0; i < $2; i += 5)); do [ -e "$1" ] && return 0; sleep 5; done
  [ -e "$1" ]
}
recipe() {  # recipe GPU LOG run.sh-args...: the recipe on one GPU
  local g=$1 log=$2; shift 2
  (cd $R && CUDA_VISIBLE_DEVICES=$g TWISTER_NGPU=1 ./run.sh --profile $PROFILE "$@") >> "$B/$log" 2>&1
}
ablation() {  # ablation GPU TAG RATIO: round 1's stages 7-9 with another mix (run.sh --tag)
  recipe "$1" "ablation_$2.log" --stage 7 --stop_stage 9 --real_ratio "$3" --tag "$2"
}

lane0() {
  export CUDA_VISIBLE_DEVICES=0
  say lane0 "round 1 stages 3-6"; recipe 0 round1.log --stage 3 --stop_stage 6; say lane0 "stages 3-6 rc $?"
  python3 benchmarks/tts_samples.py --synth $R/exp/round1/synth --train_text $R/exp/round1/pseudo/data/text \
      --real $R/exp/round1/pseudo/data --out "$B/out/tts_samples" > "$B/tts_samples.log" 2>&1
  say lane0 "tts_samples rc $?: $(grep "^{" "$B/tts_samples.log" | cut -c1-300)"
  recipe 0 round1.log --stage 7 --stop_stage 9; say lane0 "stages 7-9 rc $?"
  say lane0 "round 2 (TTS reused)"
  recipe 0 round2.log --stage 3 --stop_stage 9 --rounds 2 --tts_retrain false; say lane0 "round 2 rc $?"
  [ -n "${BLOCK_SKIP_LM:-}" ] && return
  wait_for "$B/stage10_lane1.done" 600
  say lane0 "stage 10 for rounds 1-2"; recipe 0 stage10_rounds.log --stage 10 --stop_stage 10 --rounds 2; say lane0 "rc $?"
}

decode_bench() {  # issue 7: a, b, c, d on this card, warm passes
  [ -n "${BLOCK_SKIP_DECODE:-}" ] && return
  say "$1" "decode_speed"
  [ -n "${BLOCK_DRY:-}" ] || timeout 240 python3 benchmarks/decode_speed.py --manifest "$S0150" --model "$W" \
      --device cuda --limit_a 100 --bs_d 256,512 --repeats 2 --out "$B/out/bench_decode.json" > "$B/decode_speed.log" 2>&1
  say "$1" "decode_speed rc $?"
}

lane1() {
  local g=$G1
  export CUDA_VISIBLE_DEVICES=$g
  [ "$g" = 0 ] || decode_bench lane1
  if [ "$g" = 0 ]; then wait_for $R/exp/round1/tts/.done 1800; else wait_for $R/exp/round1/pseudo/.done 600; fi
  say lane1 "ablation selftrain"; ablation $g selftrain 1.0; say lane1 "selftrain rc $?"
  if [ -n "${BLOCK_ORACLE:-}" ]; then  # topline: the same real audio with its true transcripts
    say lane1 "ablation oracle"
    recipe $g ablation_oracle.log --stage 7 --stop_stage 9 --real_ratio 1.0 --tag oracle \
        --tag_real_text data_src/s0150_unlabeled/.truth; say lane1 "oracle rc $?"
  fi
  if [ -z "${BLOCK_SKIP_LM:-}" ]; then
    say lane1 "stage 10 (LM, zero-shot fusion)"; recipe $g stage10.log --stage 10 --stop_stage 10
    say lane1 "stage 10 rc $?"
  fi
  touch "$B/stage10_lane1.done"
  for size in ${BLOCK_RANDOM_SIZES:-}; do  # issue 7: sizes without weights, random init, speed only
    say lane1 "decode_speed random-init $size"
    timeout 200 python3 benchmarks/decode_speed.py --manifest "$S0150" --model none --random_init "$size" \
        --device cuda --systems b,c,d --bs_b 64 --bs_c 64 --bs_d 64,128 --forced_tokens 24 --repeats 2 \
        --out "$B/out/bench_decode_random_$size.json" > "$B/decode_random_$size.log" 2>&1
    say lane1 "random-init $size rc $?"
  done
  [ -n "${BLOCK_SKIP_BENCH:-}" ] || for m in mas align_loss; do  # measured in session 3
    timeout 90 python3 -m twister_plugin.tts.$m --device cuda > "$B/out/tts_$m.txt" 2>&1
  done
  wait_for $R/exp/round1/synth/.done 900
  say lane1 "ablation synthonly"; ablation $g synthonly 0.0; say lane1 "synthonly rc $?"
  [ -n "${BLOCK_SKIP_FILTER:-}" ] && return
  local ftag=${BLOCK_FILTER_TAG:-ser} fopts=${BLOCK_FILTER_OPTS:---metric ser --max_err 30}
  say lane1 "ablation $ftag (round 1's synthetic speech judged again: $fopts)"
  recipe $g "ablation_$ftag.log" --stage 7 --stop_stage 9 --real_ratio 0.2 --tag "$ftag" \
      --tag_roundtrip_opts "$fopts"; say lane1 "$ftag rc $?"
}

orchestrate() {
  say main "start (TTS ${TWISTER_TTS_MINUTES} min)"
  (cd $R && { [ -f data_src/.done ] || { python3 local/split_s0150.py --manifest "$S0150" --out data_src && touch data_src/.done; }; }
   ./run.sh --profile $PROFILE --stage 1 --stop_stage 2) > "$B/stages12.log" 2>&1 &
  [ -n "${BLOCK_DRY:-}${BLOCK_SKIP_BENCH:-}" ] || timeout 260 python3 benchmarks/multi_gpu.py --model "$W" --manifest "$S0150" --budget_s 230 \
      --out "$B/out/multi_gpu.json" > "$B/multi_gpu.log" 2>&1
  say main "multi_gpu rc $?"
  wait; say main "stages 1-2 done: $(tail -n 1 "$B/stages12.log")"
  [ "$G1" = 0 ] && CUDA_VISIBLE_DEVICES=0 decode_bench main  # one GPU: before the recipe, host idle
  lane0 & lane1 & wait
  (cd $R && python3 -m twister_plugin.bin.score --results exp --write RESULTS.md \
      && python3 -m twister_plugin.bin.report --exp exp --out exp/report) > "$B/final.log" 2>&1
  say main "all done"; touch "$B/ALL_DONE"
}

scaling() {  # issue 11 on a 2-GPU machine, nothing else running: a quick TTS, then multi_gpu.py
  say main "scaling: fastspeech_base on the carried dump (${SCALE_TTS_MIN:-2} min) on GPU 0; sdpa_shapes on GPU 1"
  CUDA_VISIBLE_DEVICES=1 timeout 120 python3 benchmarks/sdpa_shapes.py --out "$B/out/sdpa_shapes.json" > "$B/sdpa_shapes.log" 2>&1 &
  quick_tts
  wait; say main "sdpa_shapes: $(tail -n 30 "$B/sdpa_shapes.log" | tr '\n' ' ' | cut -c1-900)"
  local budget=${SCALE_BUDGET:-780}
  # pseudo-labelling: 2 copies of S0150 once with and once without cuDNN attention, then enough
  # copies for ~SCALE_PL_S s of one job's decoding at the rate just seen (at most SCALE_PL_REPEAT)
  timeout "$budget" python3 benchmarks/multi_gpu.py --model "$W" --manifest "$S0150" --weak --global_batch 256 \
      --steps "${SCALE_STEPS:-30}" --pl_ab_copies 2 --pl_target_s "${SCALE_PL_S:-50}" --pl_repeat "${SCALE_PL_REPEAT:-80}" \
      --tts_dir "$HOME/tts_quick" --tts_text "$DATA/text/zh_news_open.txt" \
      --tts_lines "${SCALE_TTS_LINES:-12000}" --budget_s "$((budget - 20))" --out "$B/out/multi_gpu_s7.json" > "$B/multi_gpu_s7.log" 2>&1
  say main "multi_gpu rc $?"; touch "$B/ALL_DONE"
}

quick_tts() {  # the 2-minute fastspeech_base of the synthesis shards (speed only), on GPU 0; keep
  # SCALE_TTS_MIN at 2: after 1.5 min (1 epoch, session 9) the model spoke far longer audio, and
  # one job over 66,692 sentences took 351 s to speak instead of 140 s
  CUDA_VISIBLE_DEVICES=0 timeout 300 python3 -m twister_plugin.bin.tts_train --config $R/conf/tts/fastspeech_base.yaml \
      --dump "$HOME/tts_dump" --output_dir "$HOME/tts_quick" --device cuda --max_minutes "${SCALE_TTS_MIN:-2}" \
      --num_iters_per_epoch 20 > "$B/tts_quick.log" 2>&1
  say main "tts rc $?: $(ls "$HOME/tts_quick" | grep -c epoch.pth) epoch files"
}

host_samplers() {  # the host once (CPUs, GPU topology), then vmstat and GPU clocks every 5 s until the block ends
  { lscpu; echo; nvidia-smi topo -m; echo; df -h "$HOME" /dev/shm; } > "$B/out/host_info.txt" 2>&1
  vmstat -t 5 > "$B/out/host_vmstat.log" 2>&1 &
  local vm=$!
  nvidia-smi --query-gpu=timestamp,index,utilization.gpu,clocks.sm,clocks.mem,power.draw,temperature.gpu \
      --format=csv -l 5 > "$B/out/host_gpus.csv" 2>&1 &
  local gs=$!
  (while [ ! -e "$B/ALL_DONE" ]; do sleep 5; done; kill "$vm" "$gs" 2> /dev/null) &
}

synth_scaling() {  # issue 11's synthesis shards alone (no Whisper weights needed): one multi_gpu.py
  # run (1 job on GPU 0, then 2 jobs on GPUs 0-1) over SYNTH_LINES corpus sentences per word of
  # SYNTH_WHERE ("disk": outputs on the machine's disk, "shm": on /dev/shm, the disk left out)
  say main "synth: fastspeech_base on the carried dump (${SCALE_TTS_MIN:-2} min) on GPU 0; wav_write.py beside it"
  python3 benchmarks/wav_write.py --wavs "${SYNTH_WAVW:-6000}" --root "$HOME/wav_write" \
      --out "$B/out/wav_write.json" > "$B/wav_write.log" 2>&1 &
  local wpid=$!
  [ -e "$HOME/tts_quick/latest.pth" ] || quick_tts  # a warm machine keeps the one it trained
  wait $wpid; say main "wav_write rc $?: $(grep -o '"shard_vs_wav": {[^}]*}' "$B/out/wav_write.json" | tr -d '\n ')"
  host_samplers  # what the host does during the runs (CPU, disk, GPU clocks): ~/blk/out/host_*
  local k=0 where root
  for where in ${SYNTH_WHERE:-disk disk}; do
    k=$((k + 1)); root=()
    if [ "$where" = shm ]; then  # a run's wavs: ~150 kB a sentence (16 kHz, 16 bit)
      local avail_gb=$(( $(df --output=avail -k /dev/shm | tail -n 1) / 1048576 ))
      if [ "$avail_gb" -ge "${SYNTH_SHM_GB:-20}" ]; then root=(--tts_root /dev/shm/twister_synth)
      else say main "run $k on the disk: /dev/shm has only $avail_gb GB"; where=disk; fi
    fi
    say main "multi_gpu synth run $k ($where) starts"
    timeout "${SYNTH_BUDGET:-420}" python3 benchmarks/multi_gpu.py --manifest "$S0150" --skip_ddp --skip_pseudo \
        --tts_dir "$HOME/tts_quick" --tts_text "$DATA/text/zh_news_open.txt" --tts_lines "${SYNTH_LINES:-16000}" --tts_repeat "${SYNTH_REPEAT:-1}" \
        "${root[@]}" --budget_s "$((${SYNTH_BUDGET:-420} - 20))" --out "$B/out/multi_gpu_synth${k}_$where.json" > "$B/multi_gpu_synth${k}_$where.log" 2>&1
    say main "multi_gpu synth run $k ($where) rc $?: $(grep -o '"wall_s": [0-9.]*\|"scaling_efficiency[a-z_]*": [0-9.]*' "$B/out/multi_gpu_synth${k}_$where.json" | tr '\n' ' ')"
  done
  local w  # writer threads (synthesize --writers) vs writing in turn, SYNTH_AB_LINES sentences
  for w in ${SYNTH_AB_WRITERS-}; do
    timeout 300 python3 benchmarks/multi_gpu.py --manifest "$S0150" --skip_ddp --skip_pseudo --tts_writers "$w" \
        --tts_dir "$HOME/tts_quick" --tts_text "$DATA/text/zh_news_open.txt" --tts_lines "${SYNTH_AB_LINES:-4000}" \
        --budget_s 280 --out "$B/out/multi_gpu_synth_writers$w.json" > "$B/multi_gpu_synth_writers$w.log" 2>&1
    say main "writers $w rc $?: $(grep -o '"wall_s": [0-9.]*\|"scaling_efficiency[a-z_]*": [0-9.]*' "$B/out/multi_gpu_synth_writers$w.json" | tr '\n' ' ')"
  done
  touch "$B/ALL_DONE"
}

background() {  # run this script's step $1 detached (it outlives the device call), show its events
  setsid nohup bash "$0" "$1" > "$B/main.log" 2>&1 < /dev/null &
  sleep 20; cat "$B/events.log"
}

for step in "$@"; do
  case $step in
    setup|part|weights) bash benchmarks/gpu_session.sh "$step" || exit 1 ;;  # wheels, data, weights
    start)   background run ;;
    run)     orchestrate ;;
    scale)   background scale_run ;;  # issue 11
    scale_run) scaling ;;
    synth)   background synth_run ;;  # issue 11's synthesis only
    synth_run) synth_scaling ;;
  esac
done
