#!/usr/bin/env bash
# The GPU measurements, in one call of a lent GPU machine (about 6 minutes on an H200):
# bench/train.py with VideoMAE-B's shape in bf16 (model alone, ours, the guide's), then
# bench/infer.py's per-video latency. Logs go to $OUT (or runs/gpu).
#
# That machine has torch, transformers, huggingface_hub and onnx but not PyAV or pytorchvideo;
# they travel as wheels (Python 3.12, x86-64) in .whl/, made once on a machine with pip access:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl av==18.1.0 parameterized yacs termcolor
#   (cd .whl && python3 -m pip wheel --no-deps pytorchvideo==0.1.5 fvcore==0.1.5.post20221221 iopath==0.1.10)
# and it is called as: bash bench/gpu.sh   (carrying .whl)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-runs/gpu}"
mkdir -p "$out"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" \
  | tee -a "$out/gpu.txt"
timeout 330 python3 bench/train.py --model videomae-base --device cuda --workers 16 --precision bf16 --compile \
  2>&1 | grep -v "it/s]" | tee "$out/train.log"
timeout 150 python3 bench/infer.py --model videomae-base --device cuda --videos 16 \
  2>&1 | grep -v "it/s]" | tee "$out/infer.log"
