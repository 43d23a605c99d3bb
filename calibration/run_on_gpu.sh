#!/usr/bin/env bash
# Calibrate and validate energaizer on one NVIDIA GPU, reading its settings only.
#
# Usage: calibration/run_on_gpu.sh OUT_DIR [GPU_PROFILE_ID]
#
# Writes at most 8 files to OUT_DIR: machine.csv, the calibration profile, the measured
# workloads as a measurement set, three traces with measured power, and summary.txt.
# It never sets clocks, power limits or any other setting, and never resets the GPU.
# NOTE: written without a GPU at hand; the first run on a GPU is its first real test.
set -euo pipefail
out=${1:?usage: run_on_gpu.sh OUT_DIR [GPU_PROFILE_ID]}
gpu=${2:-h200-sxm-141gb}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. The machine, read only.
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,power.default_limit,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu \
    --format=csv > "$out/machine.csv"
python -c "import torch; print('cuda', torch.version.cuda, 'torch', torch.__version__)" >> "$out/machine.csv"

# 2. Calibration within a five-minute budget; points are kept in $work for --resume.
energaizer calibrate --device 0 --budget-s 300 -o "$out/$gpu.json" --json > "$work/calibration.json"

# 3. Real workloads, each under the profiler with measured power.
echo "model,dtype,batch,seq,phase,attention,gpu,clock_mhz,time_ms,energy_j" > "$out/measurements.csv"
run() {  # name preset phase batch seq steps
    local name=$1 preset=$2 phase=$3 batch=$4 seq=$5 steps=$6
    ENERGAIZER_STEPS_FILE="$work/$name.steps.json" energaizer measure --trace --out "$work/$name" --json -- \
        "$here/gpu_workloads/run_model.py" "$preset" "$phase" "$batch" "$seq" "$steps" > "$work/$name.json"
    python - "$work/$name.steps.json" "$preset" "$phase" "$batch" "$seq" "$gpu" >> "$out/measurements.csv" <<'PY'
import json, sys
steps = json.load(open(sys.argv[1]))
preset, phase, batch, seq, gpu = sys.argv[2:7]
print(f"{preset},bf16,{batch},{seq},{phase},default,{gpu},,{steps['time_ms']},{steps['energy_j']}")
PY
}
run gpt2-b8 gpt2 forward 8 1024 200
run gpt2-b32 gpt2 forward 32 1024 100
# qwen2-1.5b is the closest Llama-shaped preset to 1B parameters (RMSNorm, SwiGLU, RoPE).
run llama1b-decode-b1 qwen2-1.5b decode 1 2048 300
run llama1b-decode-b32 qwen2-1.5b decode 32 2048 300
run resnet50-train resnet-50 train 64 1 30
for name in gpt2-b8 llama1b-decode-b32 resnet50-train; do
    cp "$work/$name/trace_with_power.json.gz" "$out/$name.trace.json.gz"
done

# 4. How well the estimator predicted the measured runs, before and after calibration.
{
    echo "== default calibration"; energaizer validate "$out/measurements.csv"
    echo "== this GPU's calibration"; energaizer validate "$out/measurements.csv" --calibration "$out/$gpu.json"
} | tee "$out/summary.txt"
