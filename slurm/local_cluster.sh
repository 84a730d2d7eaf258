#!/usr/bin/env bash
# A SLURM of one or more nodes on this machine, to run the job scripts for real (tests/slurm/ uses it).
#
#   slurm/local_cluster.sh start [--nodes N]   # as root: write the config, start munged, slurmctld, N slurmd
#   eval "$(slurm/local_cluster.sh env)"       # export SLURM_CONF for sbatch, squeue, scancel
#   sbatch slurm/train.sbatch --accelerator cpu ...
#   slurm/local_cluster.sh stop
#
# Needs Debian's daemons: apt-get install -y slurmd slurmctld munge (what .ci/run does). Debian builds
# SLURM with MULTIPLE_SLURMD, so one machine runs N slurmd daemons as nodes n1..nN, each on its own
# port with its own spool, pid and log file (%n in the paths below). Every node has this machine's
# CPUs, a share of its memory, and 4 stand-in GPUs (empty files, no devices), so the scripts'
# --gpus-per-node lines schedule here; the jobs themselves run with --accelerator cpu.
# Everything lives in $LOCAL_SLURM_DIR; nothing under /etc/slurm is touched.
set -euo pipefail

DIR=${LOCAL_SLURM_DIR:-/tmp/cifar10-lab-slurm}
export SLURM_CONF=$DIR/slurm.conf
HOST=$(hostname -s)
CTLD_PORT=6817
FIRST_SLURMD_PORT=6818  # node i listens on FIRST_SLURMD_PORT + i - 1
GPUS_PER_NODE=4          # stand-in GPU files per node

write_config() {
    local nodes=$1 cpus mem i
    cpus=$(( $(nproc) < 2 ? 2 : $(nproc) ))  # 2 at least: the tests' one-node DDP job has 2 ranks
    # MB per node; the nodes share this machine's memory, a little under, or a node drains
    mem=$(awk -v n="$nodes" '/MemTotal/ {print int($2 / 1024 * 0.9 / n)}' /proc/meminfo)
    rm -rf "$DIR/spool"
    mkdir -p "$DIR/state"
    for i in $(seq "$nodes"); do mkdir -p "$DIR/spool/n$i"; done
    # The nodes' host name is n1, n2, ...: Lightning takes the first of SLURM_NODELIST as MASTER_ADDR,
    # which would hang in name lookup here. The task prolog points every task at this machine instead
    # (a real cluster's node names resolve, and no prolog is needed).
    cat > "$DIR/task_prolog.sh" <<'PROLOG'
#!/bin/sh
echo "export MASTER_ADDR=127.0.0.1"
PROLOG
    chmod +x "$DIR/task_prolog.sh"
    cat > "$DIR/slurm.conf" <<CONF
ClusterName=local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job waits cred_expire seconds before it may start again (default 120).
AuthInfo=cred_expire=10
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd-%n.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd-%n.log
SlurmctldPort=$CTLD_PORT
# Containers and CI machines have no usable cgroups: track processes by parent id, bind nothing.
# config_overrides: a node is what this file says, even with fewer cores than CPUs= here.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
TaskProlog=$DIR/task_prolog.sh
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
# Jobs run at the nice value sbatch/srun had (nice sbatch ...): this machine may be shared.
PropagatePrioProcess=1
SlurmdParameters=config_overrides
KillWait=10
MinJobAge=300
GresTypes=gpu
CONF
    : > "$DIR/gres.conf"
    for i in $(seq "$nodes"); do
        echo "NodeName=n$i NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$((FIRST_SLURMD_PORT + i - 1))" \
             "CPUs=$cpus RealMemory=$mem Gres=gpu:$GPUS_PER_NODE State=UNKNOWN" >> "$DIR/slurm.conf"
        # stand-in device files: slurmd counts a GPU per file
        for g in $(seq 0 $((GPUS_PER_NODE - 1))); do touch "$DIR/gpu-n$i-$g"; done
        echo "NodeName=n$i Name=gpu File=$DIR/gpu-n$i-[0-$((GPUS_PER_NODE - 1))]" >> "$DIR/gres.conf"
    done
    echo "PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP" >> "$DIR/slurm.conf"
    echo "CgroupPlugin=cgroup/v1" > "$DIR/cgroup.conf"
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    [ -f /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || create-munge-key -f; chown munge:munge /etc/munge/munge.key; }
    runuser -u munge -- munged
}

# up_nodes: how many nodes answer (idle, mixed or allocated)
up_nodes() {
    sinfo -h -N -o '%N %t' 2>/dev/null | awk '$2 ~ /^(idle|mix|alloc)$/ {print $1}' | sort -u | wc -l
}

wait_for_nodes() {
    local nodes=$1
    for _ in $(seq 60); do
        if [ "$(up_nodes)" -ge "$nodes" ]; then return; fi
        sleep 1
    done
    echo "local SLURM did not come up with $nodes node(s); logs in $DIR" >&2
    sinfo -N >&2 || true
    return 1
}

stop() {
    local pidfile pid
    for pidfile in "$DIR"/slurmd*.pid "$DIR/slurmctld.pid"; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done  # its port is free again
        rm -f "$pidfile"
    done
}

start() {
    local nodes=$1 running i
    if [ "$(id -u)" != 0 ]; then echo "slurm/local_cluster.sh start needs root (slurmd runs jobs as their user)" >&2; exit 1; fi
    for cmd in slurmctld slurmd munged sbatch; do
        command -v "$cmd" >/dev/null || { echo "no $cmd: apt-get install -y slurmd slurmctld munge" >&2; exit 1; }
    done
    if scontrol ping 2>/dev/null | grep -q UP && sinfo -h >/dev/null 2>&1; then
        running=$(sinfo -h -N -o %N | sort -u | wc -l)
        if [ "$running" != "$nodes" ]; then
            echo "local SLURM is running with $running node(s), not $nodes: slurm/local_cluster.sh stop first" >&2
            exit 1
        fi
        wait_for_nodes "$nodes"
        echo "local SLURM was already running with $nodes node(s): export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    stop
    write_config "$nodes"
    start_munge
    slurmctld -c -f "$SLURM_CONF"   # -c: a clean start, no jobs left from an earlier one
    for i in $(seq "$nodes"); do slurmd -f "$SLURM_CONF" -N "n$i"; done
    wait_for_nodes "$nodes"
    echo "local SLURM is up with $nodes node(s): export SLURM_CONF=$SLURM_CONF"
}

usage() { echo "usage: $0 start [--nodes N] | stop | env" >&2; exit 2; }

command=${1:-start}
[ $# -eq 0 ] || shift
nodes=1
while [ $# -gt 0 ]; do
    case $1 in
        --nodes) nodes=${2-}; shift 2 || usage ;;
        --nodes=*) nodes=${1#*=}; shift ;;
        *) usage ;;
    esac
done
[[ "$nodes" =~ ^[1-9][0-9]*$ ]] || { echo "$0: --nodes must be a positive integer, got '$nodes'" >&2; exit 2; }
case $command in
    start) start "$nodes" ;;
    stop) stop ;;
    env) echo "export SLURM_CONF=$SLURM_CONF" ;;
    *) usage ;;
esac
