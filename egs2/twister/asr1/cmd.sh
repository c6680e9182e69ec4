# How jobs run: run.pl on this machine, or slurm.pl on a Slurm cluster (conf/slurm.conf for
# partitions). Select with TWISTER_CMD=slurm.pl ./run.sh ...
# With slurm.pl: TWISTER_GPUS (default 0) GPUs a job, TWISTER_TRAIN_MEM / TWISTER_DECODE_MEM
# (default 16G / 8G; empty: conf/slurm.conf's mem, else Slurm's) memory a training job / a
# decoding task. Jobs inherit this shell's environment (sbatch --export=ALL), the venv included.
backend=${TWISTER_CMD:-run.pl}
case $backend in
  # decoding/synthesis shard J runs on GPU (J-1) % #GPUs (none: unchanged); training sees them all
  run.pl)   train_cmd="run.pl"; decode_cmd="run.pl --gpu 1" ;;
  slurm.pl) slurm="slurm.pl --config conf/slurm.conf --gpu ${TWISTER_GPUS:-0}"
            train_mem=${TWISTER_TRAIN_MEM-16G}; decode_mem=${TWISTER_DECODE_MEM-8G}
            train_cmd="$slurm${train_mem:+ --mem $train_mem}"
            decode_cmd="$slurm${decode_mem:+ --mem $decode_mem}" ;;
  *) echo "cmd.sh: unknown backend $backend (run.pl or slurm.pl)" >&2; exit 2 ;;
esac
export train_cmd decode_cmd
