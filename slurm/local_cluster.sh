#!/usr/bin/env bash
# A one-node SLURM on this machine, to run the job scripts for real (tests/slurm/ uses it).
#
#   slurm/local_cluster.sh start     # as root: write the config, start munged, slurmctld and slurmd
#   export SLURM_CONF=/tmp/cifar10-lab-slurm/slurm.conf
#   sbatch slurm/train.sbatch --accelerator cpu ...; squeue; scancel ...
#   slurm/local_cluster.sh stop
#
# Needs Debian's daemons: apt-get install -y slurmd slurmctld munge (what .ci/run does). The node
# has this machine's CPUs and memory and reports 4 stand-in GPUs (empty files, no devices), so
# the scripts' --gpus-per-node lines schedule here; the jobs themselves run with --accelerator cpu.
# Everything lives in $LOCAL_SLURM_DIR; nothing under /etc/slurm is touched.
set -euo pipefail

DIR=${LOCAL_SLURM_DIR:-/tmp/cifar10-lab-slurm}
export SLURM_CONF=$DIR/slurm.conf
NODE=$(hostname -s)

write_config() {
    local cpus mem
    cpus=$(( $(nproc) < 2 ? 2 : $(nproc) ))  # 2 at least: the tests' DDP job has 2 ranks
    mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)  # MB; a little under, or the node drains
    mkdir -p "$DIR/state" "$DIR/spool"
    cat > "$DIR/slurm.conf" <<EOF
ClusterName=local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job waits cred_expire seconds before it may start again (default 120).
AuthInfo=cred_expire=10
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
# Containers and CI machines have no usable cgroups: track processes by parent id, bind nothing.
# config_overrides: the node is what this file says, even with fewer cores than CPUs= here.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=10
MinJobAge=300
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:4 State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    echo "CgroupPlugin=cgroup/v1" > "$DIR/cgroup.conf"
    touch "$DIR"/gpu{0..3}  # stand-in device files: slurmd counts a GPU per file
    echo "NodeName=$NODE Name=gpu File=$DIR/gpu[0-3]" > "$DIR/gres.conf"
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    [ -f /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || create-munge-key -f; chown munge:munge /etc/munge/munge.key; }
    runuser -u munge -- munged
}

wait_for_node() {
    for _ in $(seq 60); do
        if sinfo -h -N -o %t 2>/dev/null | grep -qx 'idle\|mix\|alloc'; then return; fi
        sleep 1
    done
    echo "local SLURM did not come up; logs in $DIR" >&2
    sinfo -N >&2 || true
    return 1
}

stop() {
    for pidfile in "$DIR/slurmd.pid" "$DIR/slurmctld.pid"; do
        if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; rm -f "$pidfile"; fi
    done
}

case ${1:-start} in
    start)
        if [ "$(id -u)" != 0 ]; then echo "slurm/local_cluster.sh start needs root (slurmd runs jobs as their user)" >&2; exit 1; fi
        for cmd in slurmctld slurmd munged sbatch; do
            command -v "$cmd" >/dev/null || { echo "no $cmd: apt-get install -y slurmd slurmctld munge" >&2; exit 1; }
        done
        if scontrol ping 2>/dev/null | grep -q UP && sinfo -h >/dev/null 2>&1; then
            wait_for_node
            echo "local SLURM was already running: export SLURM_CONF=$SLURM_CONF"
            exit 0
        fi
        stop
        write_config
        start_munge
        slurmctld -c -f "$SLURM_CONF"   # -c: a clean start, no jobs left from an earlier one
        slurmd -f "$SLURM_CONF"
        wait_for_node
        echo "local SLURM is up: export SLURM_CONF=$SLURM_CONF"
        ;;
    stop) stop ;;
    *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac
