# How jobs run: run.pl on this machine, or slurm.pl on a Slurm cluster (conf/slurm.conf for
# partitions). Select with TWISTER_CMD=slurm.pl ./run.sh ...
backend=${TWISTER_CMD:-run.pl}
case $backend in
  run.pl)   train_cmd="run.pl"; decode_cmd="run.pl" ;;
  slurm.pl) train_cmd="slurm.pl --config conf/slurm.conf --gpu ${TWISTER_GPUS:-0} --mem 16G"
            decode_cmd="slurm.pl --config conf/slurm.conf --gpu ${TWISTER_GPUS:-0} --mem 8G" ;;
  *) echo "cmd.sh: unknown backend $backend (run.pl or slurm.pl)" >&2; exit 2 ;;
esac
export train_cmd decode_cmd
