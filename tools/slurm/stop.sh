#!/usr/bin/env bash
# Stop the single-node Slurm cluster started by tools/slurm/start.sh (slurmd, slurmctld,
# then munged). Usage (as root): bash tools/slurm/stop.sh
# Running jobs are killed with their node; state in /var/spool/slurm* is kept.
set -uo pipefail
run_dir=${TWISTER_SLURM_RUN_DIR:-/tmp/twister-slurm}

stop_pidfile() {  # name, pid file
  local name=$1 pidfile=$2 pid i
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
    echo "tools/slurm/stop.sh: stopped ${name} (pid ${pid})" >&2
  fi
  rm -f "$pidfile"
}

stop_pidfile slurmd "${run_dir}/slurmd.pid"
stop_pidfile slurmctld "${run_dir}/slurmctld.pid"
stop_pidfile munged /run/munge/munged.pid
