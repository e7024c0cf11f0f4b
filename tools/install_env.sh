#!/usr/bin/env bash
# Create (or update) the project's virtual environment with everything that
# `make test` and `make demo` need, on a fresh CPU machine.
#
#   tools/install_env.sh [VENV_DIR]       (default: .venv)
#
# Safe to re-run: mmcv is only built when the environment lacks a working mmcv
# with compiled ops, and pip's wheel cache makes a rebuild on the same machine quick.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip="$VENV/bin/python -m pip"
$pip install -q --upgrade 'pip>=23' wheel
# torch first, so that nothing below pulls in a different build.
"$VENV/bin/python" -c 'import torch' 2>/dev/null || $pip install -q "$TORCH_SPEC"
# mmcv's setup.py and mmengine's `mmdet::` config lookup import pkg_resources
# (gone in setuptools 82); torch 2.13 needs >= 77.
$pip install -q 'setuptools>=77,<82' ninja
$pip install -q 'mmengine>=0.10.0,<0.11'
if ! "$VENV/bin/python" -c 'from mmcv.ops import nms, roi_align' 2>/dev/null; then
    echo "[install_env] building mmcv 2.1.0 with its C++ ops (about 20 min on 2 cores the first time)"
    # --no-build-isolation: the build must see the installed torch, or it
    # silently produces an mmcv without ops.
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} $pip install --no-build-isolation 'mmcv==2.1.0'
    "$VENV/bin/python" -c 'from mmcv.ops import nms, roi_align' \
        || { echo "[install_env] mmcv was installed without its compiled ops" >&2; exit 1; }
fi
# Everything: mmconvmlp[all,tests] (det, seg, deploy and the test tools).
$pip install -q -r requirements/runtime.txt -r requirements/det.txt \
    -r requirements/seg.txt -r requirements/deploy.txt \
    -r requirements/tests.txt
# mmdeploy 1.3.1 for the test of the mmdeploy route (README, "mmdeploy"):
# without its pins (protobuf<=3.20.2 would break onnx), with the modules it
# imports.
$pip install -q --no-deps 'mmdeploy==1.3.1'
$pip install -q aenum multiprocess prettytable terminaltables
# --no-build-isolation: setup.py must see torch to build the optional op.
$pip install -q --no-build-isolation --no-deps -e .
echo "[install_env] Winograd op: $("$VENV/bin/python" -c \
    'from mmconvmlp.ops import winograd_status; print(winograd_status())')"
echo "[install_env] environment ready in $VENV"
