#!/usr/bin/env bash
# The prepared GPU run (one GPU, 16 cores, one call of at most 9 minutes): install what the device image lacks from
# the wheels carried in .whl (made here by `../shared/tools/device-wheels.sh webdataset pandas`; the device tool's
# README says how to carry them), then tools/gpu_run.py, which generates
# the book dataset with every core and trains and evaluates the main set for one seed at the `gpu` preset. Results
# go to results/gpu-*.json. Arguments are passed on (tools/gpu_run.py --help); a tiny CPU check is in tests/test_gpu_run.py.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --find-links .whl smplx pycocotools webdataset pandas "fastcore>=1.12.3,<2"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
exec python3 tools/gpu_run.py "$@"
