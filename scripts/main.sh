#!/usr/bin/env bash
# The main job: set up (idempotent), export a bundled model, compile it for this host,
# check it against ONNX Runtime and benchmark it beside ONNX Runtime at 1 and 2 threads.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
MODEL="${1:-resnet50}"
WORK="out/$MODEL"
mkdir -p "$WORK"
NPASC=.venv/bin/npasc
$NPASC zoo export "$MODEL" -o "$WORK/$MODEL.onnx"
$NPASC compile "$WORK/$MODEL.onnx" --target host -o "$WORK/$MODEL.npas"
for t in 1 2; do
  $NPASC bench "$WORK/$MODEL.npas" --compare onnxruntime --threads "$t" --repeat 30 \
    --json "$WORK/bench-t$t.json"
  echo
done
