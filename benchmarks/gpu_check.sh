#!/usr/bin/env bash
# Every GPU test and GPU measurement in one run, on a machine with one NVIDIA GPU, nvcc
# and PyTorch (with pytest, pytest-benchmark, hypothesis, scikit-learn and scikit-image)
# already installed; nothing is downloaded:
#
#     OUT=DIR bash benchmarks/gpu_check.sh        # PY=python3 by default
#
# 1. builds the extension in place for the visible GPU's architecture;
# 2. runs the tests with a CUDA case: each kernel against its reference, and the
#    captured training step (cuda_graph) against the eager one;
# 3. times the training step (test_bench_train.py -k ratio): eager, replayed from a CUDA
#    graph and under bf16 autocast, with PyTorch's BatchNorm double backward and then
#    with the Triton kernel (ORTHOCORE_BACKEND=triton);
# 4. times the paper's ImageNet fine-tune step (test_bench_finetune.py -k ratio, VGG-16,
#    batch 32 at 224x224) and every fused kernel (test_bench_cuda_kernels.py).
#
# Each part's output is written to $OUT/PART.log and its exit status to $OUT/summary.txt;
# the measured ratios are collected in $OUT/figures.txt. Each part has a time limit, so a
# part that hangs leaves the others their time.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} ORTHOCORE_BUILD_CUDA=1
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # the package built in place, not installed

if ! "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
    echo "gpu_check: $PY's PyTorch sees no CUDA device; nothing to measure here" >&2
    exit 2
fi
TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$("$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')}
export TORCH_CUDA_ARCH_LIST
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    "$PY" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)'
    echo "TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST"
} > "$OUT/environment.txt" 2>&1

part() {  # part NAME SECONDS COMMAND...: runs COMMAND under a time limit, logged to $OUT/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "== $name"
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    echo "$name: exit $?" | tee -a "$OUT/summary.txt"
    tail -n 4 "$OUT/$name.log"
}

PYTEST=("$PY" -m pytest -q -p no:cacheprovider)
part build 420 "$PY" setup.py build_ext --inplace
part tests 300 "${PYTEST[@]}" -rs tests/test_cuda_graph.py tests/test_batch_norm.py tests/test_normalized_dot.py \
    tests/test_attack_step.py tests/test_bit_depth.py tests/test_bilateral.py tests/test_jpeg.py \
    tests/test_tv_denoise.py tests/test_objective.py -k "cuda or captured"
part bench_train 300 "${PYTEST[@]}" -s benchmarks/test_bench_train.py -k "ratio and resnet20"
ORTHOCORE_BACKEND=triton part bench_train_triton 300 "${PYTEST[@]}" -s benchmarks/test_bench_train.py \
    -k "ratio and resnet20"
part bench_finetune 300 "${PYTEST[@]}" -s benchmarks/test_bench_finetune.py -k ratio
part bench_kernels 300 "${PYTEST[@]}" benchmarks/test_bench_cuda_kernels.py --benchmark-group-by=group \
    --benchmark-columns=min,median,rounds

grep -H "threads, \|cuda graphs\]" "$OUT"/bench_*.log > "$OUT/figures.txt"
cat "$OUT/figures.txt"
