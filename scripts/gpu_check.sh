#!/usr/bin/env bash
# Every CUDA path in one call, on a fresh GPU machine, in under 8 minutes: install the gpu extra, then
# scripts/gpu_check.py (train, export --device cuda with the fp16 gate enforced, baton serve --device cuda under
# baton bench serve, CUDA fp16 in-process against torch fp16). One JSON file of results: OUT_DIR/gpu_check.json.
#
#   scripts/gpu_check.sh [OUT_DIR]       (default: $OUT when set, else gpu-check/)
#
# Environment:
#   PYTHON=python3        the interpreter the venv is made from
#   VENV=.gpu-venv        where baton is installed (reused when it already has baton and onnxruntime-gpu)
#   WHEELS=DIR            install offline from a folder of wheels (pip --no-index --find-links DIR)
#   TORCH_SPEC=torch==2.13.0   the torch to install (PyPI's Linux wheel of it is the CUDA build)
# Exit 0 only when every step passed and the fp16 gate was measured on the GPU and passed.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-gpu-check}}"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.gpu-venv}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
mkdir -p "$OUT_DIR"
started=$(date +%s)

pip_args=(-q)
if [[ -n "${WHEELS:-}" ]]; then pip_args+=(--no-index --find-links "$WHEELS"); fi

if ! "$VENV/bin/python" -c "import baton, onnxruntime as o; assert 'CUDAExecutionProvider' in o.get_available_providers()" 2>/dev/null; then
    test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
    py="$VENV/bin/python"
    {
        "$py" -m pip install "${pip_args[@]}" --upgrade pip
        "$py" -m pip install "${pip_args[@]}" -c constraints.txt "$TORCH_SPEC"
        "$py" -m pip install "${pip_args[@]}" -c constraints.txt -e ".[serve,train,export,bench]"
        # The gpu extra: onnxruntime-gpu has the same import name as onnxruntime, so one replaces the other. Its
        # releases trail the CPU build's (PyPI had 1.31.1 when the constraints pinned onnxruntime 1.32.0), so take
        # the newest one not above the CPU version.
        ort_version=$("$py" -c "import onnxruntime; print(onnxruntime.__version__)")
        "$py" -m pip uninstall -q -y onnxruntime
        "$py" -m pip install "${pip_args[@]}" "onnxruntime-gpu<=$ort_version"
    } 2>&1 | tee "$OUT_DIR/install.log"
fi
echo "install: $(( $(date +%s) - started )) s"
exec "$VENV/bin/python" scripts/gpu_check.py "$OUT_DIR" --device cuda
