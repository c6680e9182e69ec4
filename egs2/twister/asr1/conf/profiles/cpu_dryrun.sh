# shellcheck shell=bash
# CPU dry run of conf/profiles/gpu_s0150.sh: the same stages, data layout and ablations (--tag) on a small
# slice (24 "unlabeled" + 8 held-out S0150 utterances, 12 corpus sentences) with CPU-size models,
# to check the wiring on 2 cores before spending GPU time. Numbers from it mean nothing.
#   BLOCK_DRY=1 BLOCK_PROFILE=conf/profiles/cpu_dryrun.sh bash benchmarks/gpu_block.sh run
# shellcheck disable=SC1091
. conf/profiles/gpu_s0150.sh
if [ -f data_src/.done ] && [ ! -f data_src/dry/.done ]; then
  python - <<'PY'
from twister_plugin.data.kaldi import read_kaldi_dir, write_kaldi_dir
for name, n in (("s0150_unlabeled", 24), ("s0150_eval", 8)):
    dd = read_kaldi_dir(f"data_src/{name}", require_text=False)
    write_kaldi_dir(dd.subset(dd.utt_ids[:n]), f"data_src/dry/{name}")
PY
  touch data_src/dry/.done
fi
unlabeled_dir=data_src/dry/s0150_unlabeled
test_sets="s0150_eval=data_src/dry/s0150_eval aishell1_dev=$data_root/zh/aishell1_dev_S0724/manifest.tsv"
lm_dev_set=s0150_eval
device=cpu
nj=1
pseudo_conf=conf/pseudo_label.yaml
tts_conf=conf/tts/fastspeech_tiny.yaml
tts_opts=""
synth_sentences=12
tts_pick_sentences=4
synth_opts="--batch_size 4"
roundtrip_opts="--max_err 101 --min_rate 0 --max_rate 1000"  # keep everything: the CPU TTS does not speak
asr_conf=conf/asr/finetune_tiny.yaml
lm_conf=conf/lm/tiny.yaml
lm_weights="0.1"
