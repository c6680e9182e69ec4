# shellcheck shell=bash
# gpu_s0150.sh with what session 5's round (benchmarks/RESULTS.md) found limiting, for the next GPU
# run: its TTS was still improving when its 10 minutes ended, 74% of its synthetic speech was
# rejected although a quarter of the round-trip errors were homophones of correctly spoken
# syllables, and the fine-tuning loss was still falling after 3 epochs.
#   BLOCK_PROFILE=conf/profiles/gpu_s0150_long.sh TTS_MIN=15 bash benchmarks/gpu_block.sh ...
. conf/profiles/gpu_s0150.sh
synth_sentences=6000                    # 1.5x the text: synthesis + round trip ~1 min per 4,000 (H200)
roundtrip_opts="--max_err 30 --metric ser"  # pinyin syllables: 1,902 of 4,000 kept vs 1,044 by MER
asr_conf=conf/asr/finetune_base_gpu_long.yaml
