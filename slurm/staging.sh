#!/usr/bin/env bash
# The node side of stage_data (slurm/common.sh), run by srun as one task on each node of a job:
#   staging.sh copy SRC DEST   copy SRC into DEST/, unless DEST is there already (an earlier start of the
#                              job on this node, or another node on the same disk, staged it)
#   staging.sh hold DEST       wait for the job's end, then remove DEST (and any partial copy)
set -euo pipefail
node=${SLURMD_NODENAME:-$(hostname -s)}
case ${1-} in
    copy)
        src=$2 dest=$3
        [ -d "$dest" ] && exit 0
        partial=$dest.partial-$node-$$
        mkdir -p "$partial"
        cp -r "$src" "$partial/"
        # rename(2) is atomic: DEST appears complete or not at all. Where nodes share a disk, the copy
        # that loses the race finds DEST there and is dropped.
        mv -T "$partial" "$dest" 2>/dev/null || rm -rf "$partial"
        ;;
    hold)
        dest=$2
        # SLURM ends a job's steps with SIGTERM (a requeue, scancel, the time limit), then SIGKILL
        # KillWait seconds later; no new step may start then, so this one is started beforehand and
        # waits. It also ends, quietly, when the batch script has removed DEST at the job's normal end.
        # SIGUSR1 (--signal=USR1@90, reaching every step) is for train.py.
        trap '' USR1 USR2 HUP
        trap 'rm -rf "$dest" "$dest".partial-*; echo "removed $dest on $node (the job was ended)" >&2; exit 0' TERM INT
        while [ -d "$dest" ]; do sleep 1 & wait $! || true; done
        ;;
    *) echo "usage: $0 copy SRC DEST | hold DEST" >&2; exit 2 ;;
esac
