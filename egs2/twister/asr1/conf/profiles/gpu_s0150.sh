# shellcheck shell=bash
# Profile for run.sh (--profile): one self-refinement round on real Mandarin speech, 1-2 GPUs
# (issue 8; run_gpu_round.sh uses it). Data under TWISTER_DATA (default: ../shared/data beside
# the repository): AISHELL sample S0150 split by local/split_s0150.py into 400 "unlabeled"
# utterances (transcripts never read) and 100 held out, plus the other shared Mandarin sets.
data_root=${TWISTER_DATA:-$(cd ../../../.. && pwd)/shared/data}
unlabeled_dir=data_src/s0150_unlabeled
text=$data_root/text/zh_news_open.txt   # 33k sentences; SOURCE: overlaps with ../zh removed
test_sets="s0150_eval=data_src/s0150_eval cv_zh=$data_root/zh/commonvoice_zh_cn/manifest.tsv"
test_sets="$test_sets aishell1_dev=$data_root/zh/aishell1_dev_S0724/manifest.tsv"
test_sets="$test_sets thchs30=$data_root/zh/thchs30_D4/manifest.tsv"
device=cuda
nj=${TWISTER_NGPU:-1}                   # shards of pseudo-labelling / synthesis (one per GPU)
pseudo_conf=conf/pseudo_label_gpu.yaml
tts_conf=conf/tts/fastspeech_base.yaml
tts_opts="--max_minutes ${TWISTER_TTS_MINUTES:-15}"   # training budget of the TTS (issue 4: <= 20)
tts_pick_sentences=64                   # the kept TTS epoch that Whisper reads best speaks stage 6
synth_sentences=4000                    # a seeded sample of the corpus spoken per round
synth_opts="--batch_size 64"
roundtrip_opts="--max_err 30"            # kept: round-trip MER <= 30% (base on real S0150: ~22%)
asr_conf=conf/asr/finetune_base_gpu.yaml
real_ratio=0.2                          # 1 real pseudo-labelled : 4 synthetic utterances
lm_conf=conf/lm/transformer_base.yaml   # stage 10 (LM fusion peer, issue 13)
lm_dev_set=s0150_eval
lm_weights="0.1 0.2 0.3"               # session 2 on the H100: 0.2 best, 0.3 already worse than none
