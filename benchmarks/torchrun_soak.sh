#!/usr/bin/env bash
# Soak of two-process training under torchrun: the configuration whose ranks at times
# aborted at exit ("terminate called without an active exception"). Runs it N times in
# a row and counts the runs that failed (a non-zero exit) or printed that abort; the log
# of every failed run is kept.
#
#     bash benchmarks/torchrun_soak.sh [N] [OUT]        # N = 200, OUT = a new temporary folder
#
# MALLOC=retain runs every rank with orthocore.runtime.retain_freed_memory()'s glibc
# settings forced on (whatever the package decides under torchrun), MALLOC=glibc with
# glibc's defaults forced; unset, the package decides. The last line is the count:
#     soak: A aborted, F failed otherwise, of N runs (MALLOC=...)
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}
OUT=${2:-$(mktemp -d -t orthocore-soak.XXXXXX)}
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=1 ORTHOCORE_SOAK_MALLOC=${MALLOC:-}
SGD=(--optimizer sgd --lr 0.01 --momentum 0 --weight-decay 0 --batch-size 64 --no-progress)
mkdir -p "$OUT"
"$PY" benchmarks/_soak_worker.py train --out "$OUT/k" --max-epochs 1 --seed 7 "${SGD[@]}" > "$OUT/k.log" 2>&1 \
    || { echo "soak: the reference failed to train; see $OUT/k.log" >&2; exit 2; }
aborted=0 failed=0
for ((i = 1; i <= N; i++)); do
    log="$OUT/run-$i.log"
    "$PY" -m torch.distributed.run --standalone --nproc_per_node=2 benchmarks/_soak_worker.py train \
        --reference "$OUT/k/model.ckpt" --lambda 1 --max-epochs 1 --eval-every 1 "${SGD[@]}" --out "$OUT/run" \
        > "$log" 2>&1
    status=$?
    if grep -q "terminate called" "$log"; then
        aborted=$((aborted + 1)); echo "run $i: aborted (exit $status), log kept: $log"
    elif [ "$status" -ne 0 ]; then
        failed=$((failed + 1)); echo "run $i: failed (exit $status), log kept: $log"
    else
        rm -f "$log"
    fi
    rm -rf "$OUT/run"
    (( i % 20 == 0 )) && echo "soak: $i runs, $aborted aborted, $failed failed otherwise"
done
echo "soak: $aborted aborted, $failed failed otherwise, of $N runs (MALLOC=${MALLOC:-as the package decides})"
