#!/bin/sh
# Sharded `dmatrace matrix` as a Slurm job array: `--shard auto` reads SLURM_ARRAY_TASK_ID and
# SLURM_ARRAY_TASK_COUNT (minus SLURM_ARRAY_TASK_MIN, so --array=1-4 works as well as 0-3).
#   jid=$(sbatch --parsable tools/scale/slurm-array.sh)
#   sbatch --dependency=afterany:$jid --wrap 'dmatrace merge parts/part-*.json --format json -o report.json'
#SBATCH --job-name=dmatrace-matrix
#SBATCH --array=0-3
#SBATCH --cpus-per-task=2
#SBATCH --mem=512M
mkdir -p parts
DMATRACE_THREADS=${SLURM_CPUS_PER_TASK:-2} exec dmatrace matrix traces/*.dmat --shard auto -o "parts/part-${SLURM_ARRAY_TASK_ID}.json"
