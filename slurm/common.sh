# Sourced by the job scripts: the environment, flag lookup, and data staging.
# sbatch runs a copy of the script from its spool folder, so everything is relative to the folder the
# job was submitted from: the repository root.
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"

# The environment, set up once (README, "Clusters"). On Snellius:
# module load 2023
# module load Python/3.11.3-GCCcore-12.3.0
if [ -f .venv/bin/activate ]; then source .venv/bin/activate; fi

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

# stage_data ARGS...: copy CIFAR-10 from --data-dir to the node-local $TMPDIR (on every node of the
# job) and print the --data-dir flag that points there. Prints nothing without $TMPDIR or data to copy.
stage_data() {
    local src dest
    src=$(flag data-dir data "$@")
    [ -n "${TMPDIR:-}" ] || return 0
    dest=$TMPDIR/cifar10-$SLURM_JOB_ID
    if [ -d "$src/cifar-10-batches-py" ]; then
        src=$src/cifar-10-batches-py
    elif [ -f "$src/cifar-10-python.tar.gz" ]; then
        src=$src/cifar-10-python.tar.gz
    else
        return 0  # nothing staged: train.py downloads into --data-dir
    fi
    srun --ntasks="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 --gpus=0 mkdir -p "$dest" >&2
    srun --ntasks="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 --gpus=0 cp -r "$src" "$dest/" >&2
    echo "staged $src to $dest on $SLURM_JOB_NUM_NODES node(s)" >&2
    echo "--data-dir $dest"
}
