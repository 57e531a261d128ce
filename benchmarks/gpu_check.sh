#!/usr/bin/env bash
# The GPU check in one command: the GPU tests, then CycleGAN throughput (reference networks, 256 px,
# batch 1 and 8) under Lightning against the plain hand-written loop, as one markdown table.
#
#   bash benchmarks/gpu_check.sh           # on a CUDA machine, from the repository root: at most ~6 min
#   bash benchmarks/gpu_check.sh --smoke   # the same code paths on the CPU at tiny sizes (a check)
#
# Needs the packages docs/scaling.md lists for the GPU machine; runs from the source tree
# (PYTHONPATH=src), so no install is needed. PYTHON picks the interpreter (default: python).
# Each step runs under the time left of the budget; a step cut short prints what it measured so far
# and a row saying so, so the table always comes out.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
PYTHON="${PYTHON:-python}"

if [[ "${1:-}" == "--smoke" ]]; then
    budget_s=600  # a check of code paths, not a measurement: a busy machine must not cut a step short
    export OMP_NUM_THREADS=1  # tiny networks: more threads only contend with whatever else runs
    sizes=(--device cpu --size 32 --ngf 4 --blocks 1 --ndf 4 --steps 2 --warmup 1)
    batches=(2)
    variants=(fp32)
    # torch.compile takes 50-80 s on a CPU: the smoke run puts fused Adam where compile goes (CPU bf16 is slow).
    late_variants=(fp32+fused)
    cut_sizes=(--device cpu --quickstart --warmup 1 --timed 1 --threads 1)
elif [[ $# -eq 0 ]]; then
    budget_s=350  # under 6 minutes with Python start-up
    sizes=(--device cuda)  # bench_scaling's defaults: ResNet-9 ngf 64, PatchGAN ndf 64, 256 px
    batches=(1 8)
    variants=(fp32 bf16 bf16+fused)
    late_variants=(bf16+fused+compile)  # last: the first compiled steps take about a minute
    cut_sizes=(--device cuda --timed 20)  # reference networks, 256 px, batch 1
else
    echo "usage: bash benchmarks/gpu_check.sh [--smoke]" >&2
    exit 2
fi
deadline=$((SECONDS + budget_s))
seconds_left() { echo $((deadline - SECONDS > 1 ? deadline - SECONDS : 1)); }

# 1. The GPU tests (skipped on a CPU): every test file that marks one.
mapfile -t gpu_test_files < <(grep -l "pytest.mark.gpu" tests/*.py)
gpu_tests=$(timeout "$(seconds_left)" "$PYTHON" -m pytest -m gpu -q -p no:cacheprovider \
    "${gpu_test_files[@]}" 2>&1 | tail -n 1)
gpu_tests_status=${PIPESTATUS[0]}

# 2. Throughput: every variant at every batch size, then the late ones (compared with fp32); then
# CUT and FastCUT against CycleGAN (benchmarks.bench_cut: time per step and peak memory as ratios).
log=$(mktemp)
trap 'rm -f "$log"' EXIT
measure() {
    timeout "$(seconds_left)" "$PYTHON" -u -m benchmarks.bench_scaling --matrix "${sizes[@]}" "$@" \
        2>"$log" | grep --line-buffered '^|'
    local status=${PIPESTATUS[0]}
    if [[ $status -ne 0 ]]; then
        echo "| – | $* | stopped (exit $status: 124 means out of time) | | | | |"
        tail -n 5 "$log" >&2
    fi
    return 0
}
echo
echo "GPU tests (pytest -m gpu): ${gpu_tests} (exit ${gpu_tests_status})"
measure --batches "${batches[@]}" --variants "${variants[@]}"
measure --batches "${batches[@]}" --variants "${late_variants[@]}" --baseline fp32 --rows-only
echo
if ! timeout "$(seconds_left)" "$PYTHON" -m benchmarks.bench_cut "${cut_sizes[@]}" 2>"$log" | grep -v '^$'; then
    echo "| – | CUT / FastCUT | stopped (124 means out of time) | | | | |"
    tail -n 5 "$log" >&2
fi
echo
echo "Images/s is Lightning's (the CycleGAN module under a Trainer, batched calls on, as train.py runs it);"
echo "\"plain\" is the hand-written loop over the same networks. Total: ${SECONDS} s."
[[ $gpu_tests_status -eq 0 || $gpu_tests_status -eq 5 ]]  # 5: no test selected
