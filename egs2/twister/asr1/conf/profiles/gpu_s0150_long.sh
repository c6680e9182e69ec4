# shellcheck shell=bash
# gpu_s0150.sh with what session 5's round (benchmarks/RESULTS.md) found limiting, for the next GPU
# run: its TTS was still improving when its 10 minutes ended, 74% of its synthetic speech was
# rejected although a quarter of the round-trip errors were homophones of correctly spoken
# syllables, and the fine-tuning loss was still falling after 3 epochs.
# Session 6 ran it on one H100 (benchmarks/RESULTS.md): round 2 MER -27.0%, numbers read out -4.1%.
#   TWISTER_PROFILE=conf/profiles/gpu_s0150_long.sh TWISTER_TTS_MINUTES=9 ./run_gpu_round.sh --rounds 2
. conf/profiles/gpu_s0150.sh
synth_sentences=6000                    # 1.5x the text: synthesis + round trip ~1 min per 4,000 (H200)
roundtrip_opts="--max_err 30 --metric ser"  # pinyin syllables: 1,902 of 4,000 kept vs 1,044 by MER
asr_conf=conf/asr/finetune_base_gpu_long.yaml
tts_retrain=false                       # rounds > 1 reuse round 1's TTS (as session 6 ran it)
