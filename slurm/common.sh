# Sourced by the job scripts: the environment, flag lookup, and data staging.
# sbatch runs a copy of the script from its spool folder, so everything is relative to the folder the
# job was submitted from: the repository root.
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"

# The environment, set up once (docs/clusters.md, "Set up once"). On Snellius:
# module load 2023
# module load Python/3.11.3-GCCcore-12.3.0
if [ -f .venv/bin/activate ]; then source .venv/bin/activate; fi
# Since SLURM 22.05 srun no longer takes --cpus-per-task from sbatch: without this a rank may be bound
# to one core whatever the job asked for (--cpus-per-task=18 on Snellius' gpu_a100).
if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK; fi

# flag NAME DEFAULT ARGS...: the value of --NAME in ARGS (the last one, as for train.py), else DEFAULT.
flag() {
    local name=$1 value=$2
    shift 2
    while [ $# -gt 0 ]; do
        case $1 in
            "--$name") value=${2-} ;;
            "--$name="*) value=${1#*=} ;;
        esac
        shift
    done
    echo "$value"
}

# stage_data ARGS...: with $TMPDIR set (node-local scratch) and CIFAR-10 under --data-dir, copy it to
# $TMPDIR/cifar10-<job id> once per node of the job (slurm/staging.sh: one task per node copies, the
# job's other steps start after it) and set DATA_FLAGS to the --data-dir flag that points there. The
# copy is removed when the job ends: by the batch script on exit, and on a requeue, scancel or time
# limit, when SLURM allows no new step, by a step on every node that waits for SLURM's SIGTERM.
# Without $TMPDIR or data to copy, DATA_FLAGS stays empty and train.py reads --data-dir where it is.
DATA_FLAGS=()
STAGED=
STAGE_HOLDER=
stage_data() {
    local src
    src=$(flag data-dir data "$@")
    [ -n "${TMPDIR:-}" ] || return 0
    if [ -d "$src/cifar-10-batches-py" ]; then
        src=$src/cifar-10-batches-py
    elif [ -f "$src/cifar-10-python.tar.gz" ]; then
        src=$src/cifar-10-python.tar.gz
    else
        return 0  # nothing staged: train.py downloads into --data-dir
    fi
    STAGED=$TMPDIR/cifar10-$SLURM_JOB_ID
    trap unstage_data EXIT
    per_node bash slurm/staging.sh copy "$src" "$STAGED" >&2
    per_node bash slurm/staging.sh hold "$STAGED" >&2 &
    STAGE_HOLDER=$!
    echo "staged $src to $STAGED on $SLURM_JOB_NUM_NODES node(s)" >&2
    DATA_FLAGS=(--data-dir "$STAGED")
}

# unstage_data: remove the staged copy on every node (the batch script's EXIT trap); the holder steps
# see it gone and end. When the job is being requeued or cancelled SLURM refuses this new step, and
# the holders, sent SIGTERM by SLURM, remove the copy instead.
unstage_data() {
    local status=$?
    if per_node rm -rf "$STAGED" 2>/dev/null; then
        echo "removed $STAGED on $SLURM_JOB_NUM_NODES node(s)" >&2
    else
        rm -rf "$STAGED"
    fi
    wait "$STAGE_HOLDER" 2>/dev/null || true
    exit "$status"
}

# per_node ARGS...: srun with one task on each node of the job, no GPU, sharing the CPUs and
# memory of the job's other steps (--overlap), so it can run beside training.
per_node() {
    srun --overlap --nodes="$SLURM_JOB_NUM_NODES" --ntasks="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 --gpus=0 "$@"
}
