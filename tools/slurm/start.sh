#!/usr/bin/env bash
# Start munge + a single-node Slurm cluster (slurmctld + slurmd) on this machine.
#
# Usage (as root):
#   bash tools/slurm/start.sh            # start, or check that it already runs
#   sinfo; srun -N1 hostname             # try it
#   bash tools/slurm/stop.sh             # stop it
#
# Writes /etc/slurm/slurm.conf from tools/slurm/slurm.conf.in (CPUs = nproc, RealMemory
# = total memory minus a margin), creates the munge key if missing, starts munged,
# `slurmctld -D` and `slurmd -D -N localhost` in the background with logs in
# /tmp/twister-slurm/, then waits (60 s at most) until the node is idle and
# `srun -N1 true` works. Idempotent: if the cluster already answers, it only checks it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
run_dir=${TWISTER_SLURM_RUN_DIR:-/tmp/twister-slurm}
timeout_s=${TWISTER_SLURM_TIMEOUT:-60}

die() { echo "tools/slurm/start.sh: ERROR: $*" >&2; exit 1; }
log() { echo "tools/slurm/start.sh: $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it writes /etc/slurm and starts daemons)"
for b in munged slurmctld slurmd sinfo srun scontrol; do
  command -v "$b" >/dev/null || die "$b not found; install with: apt-get install -y slurm-wlm munge"
done

cluster_ok() {  # the controller answers, the node is idle (or busy) and a one-step job runs
  scontrol ping >/dev/null 2>&1 \
    && sinfo -h -N -o '%t' 2>/dev/null | grep -Eq '^(idle|mix|alloc)' \
    && timeout 20 srun -N1 -t 1 true >/dev/null 2>&1
}

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_conf() {
  local cpus mem_total margin mem
  cpus=$(nproc)
  mem_total=$(free -m | awk '/^Mem:/ {print $2}')
  margin=$(( mem_total / 20 > 512 ? mem_total / 20 : 512 ))
  mem=$(( mem_total - margin ))
  mkdir -p /etc/slurm
  sed -e "s|@CPUS@|${cpus}|g" -e "s|@MEMORY_MB@|${mem}|g" \
      -e "s|@DEF_MEM_PER_CPU@|$(( mem / cpus ))|g" -e "s|@RUN_DIR@|${run_dir}|g" \
      "${here}/slurm.conf.in" > /etc/slurm/slurm.conf.tmp
  mv /etc/slurm/slurm.conf.tmp /etc/slurm/slurm.conf
  log "wrote /etc/slurm/slurm.conf (CPUs=${cpus} RealMemory=${mem} MB)"
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile=/etc/munge/munge.key
    else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    log "created /etc/munge/munge.key"
  fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
  chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key; chmod 0755 /run/munge
  if pid_alive /run/munge/munged.pid && munge -n </dev/null | unmunge >/dev/null 2>&1; then
    return 0
  fi
  runuser -u munge -- munged
  munge -n </dev/null | unmunge >/dev/null || die "munged started but munge -n | unmunge fails"
  log "munged running"
}

start_daemon() {  # name, then the command line
  local name=$1; shift
  if pid_alive "${run_dir}/${name}.pid"; then return 0; fi
  # The daemon writes its own pid file (SlurmctldPidFile / SlurmdPidFile in slurm.conf).
  # started in run_dir, not the caller's checkout: a daemon whose working directory is deleted later
  # (a test clone) cannot start job steps ("slurmstepd: Unable to get current working directory")
  (cd "${run_dir}" && exec setsid nohup "$@" >"${run_dir}/${name}.out" 2>&1 </dev/null) &
  log "started ${name} (pid $!, log ${run_dir}/${name}.log)"
}

wait_ready() {
  local t0=$SECONDS
  until cluster_ok; do
    if (( SECONDS - t0 >= timeout_s )); then
      sinfo -N -l >&2 || true
      tail -n 20 "${run_dir}/slurmctld.log" "${run_dir}/slurmd.log" >&2 || true
      die "cluster not ready after ${timeout_s} s (see the logs in ${run_dir}/)"
    fi
    # A node left DOWN/DRAINED by an earlier run: resume it.
    if sinfo -h -N -o '%t' 2>/dev/null | grep -Eq '^(down|drain|drng|fail)'; then
      scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true
    fi
    sleep 1
  done
}

mkdir -p "${run_dir}" /var/spool/slurmctld /var/spool/slurmd
if [ -s /etc/slurm/slurm.conf ] && cluster_ok; then
  log "cluster already running"; exit 0
fi
write_conf
start_munge
start_daemon slurmctld slurmctld -D
start_daemon slurmd slurmd -D -N localhost
wait_ready
log "cluster ready: $(sinfo -h -N -o '%N %t %c CPUs %m MB')"
