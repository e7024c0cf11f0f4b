#!/usr/bin/env bash
# Create (or update) a virtual environment with everything that `make test`
# and `make demo` need (STACK=upstream, the default: mmengine, mmcv 2.1.0,
# mmdet 3.3, mmseg 1.2), or that `make test-onedl` needs (STACK=onedl: the
# maintained OneDL fork, onedl-mmengine, onedl-mmcv, onedl-mmdetection,
# onedl-mmsegmentation), on a fresh CPU machine.
#
#   [STACK=upstream|onedl] tools/install_env.sh [VENV_DIR]
#       (default VENV_DIR: .venv, or .venv-onedl for STACK=onedl)
#
# Safe to re-run: mmcv is only built when the environment lacks a working mmcv
# with compiled ops, and pip's wheel cache makes a rebuild on the same machine quick.
set -euo pipefail
cd "$(dirname "$0")/.."
STACK=${STACK:-upstream}
case "$STACK" in
    upstream) VENV=${1:-.venv} ;;
    onedl) VENV=${1:-.venv-onedl} ;;
    *) echo "[install_env] STACK=$STACK: expected upstream or onedl" >&2; exit 2 ;;
esac
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

build_mmcv() {  # $1: the mmcv distribution to build with its C++ ops
    if ! "$VENV/bin/python" -c 'from mmcv.ops import nms, roi_align' 2>/dev/null; then
        echo "[install_env] building $1 with its C++ ops (about 20 min on 2 cores the first time)"
        # --no-build-isolation: the build must see the installed torch, or it
        # silently produces an mmcv without ops.
        MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} $pip install --no-build-isolation "$1"
        "$VENV/bin/python" -c 'from mmcv.ops import nms, roi_align' \
            || { echo "[install_env] $1 was installed without its compiled ops" >&2; exit 1; }
    fi
}

if [ "$STACK" = upstream ]; then
    $pip install -q 'mmengine>=0.10.0,<0.11'
    build_mmcv 'mmcv==2.1.0'
    # Everything: mmconvmlp[all,tests] (det, seg, deploy and the test tools).
    $pip install -q -r requirements/runtime.txt -r requirements/det.txt \
        -r requirements/seg.txt -r requirements/deploy.txt \
        -r requirements/tests.txt
    # mmdeploy 1.3.1 for the test of the mmdeploy route (README, "mmdeploy"):
    # without its pins (protobuf<=3.20.2 would break onnx), with the modules it
    # imports.
    $pip install -q --no-deps 'mmdeploy==1.3.1'
    $pip install -q aenum multiprocess prettytable terminaltables
else
    $pip install -q 'onedl-mmengine>=0.10.12,<0.11'
    build_mmcv 'onedl-mmcv==2.3.6'
    # mmconvmlp[onedl,deploy,tests]: nothing of upstream OpenMMLab.
    $pip install -q -r requirements/runtime.txt -r requirements/onedl.txt \
        -r requirements/deploy.txt -r requirements/tests.txt
    if "$VENV/bin/python" -m pip show -q mmengine mmdet mmsegmentation mmcv 2>/dev/null; then
        echo "[install_env] upstream OpenMMLab distributions in the OneDL venv" >&2; exit 1
    fi
fi
# --no-build-isolation: setup.py must see torch to build the optional op.
$pip install -q --no-build-isolation --no-deps -e .
echo "[install_env] Winograd op: $("$VENV/bin/python" -c \
    'from mmconvmlp.ops import winograd_status; print(winograd_status())')"
echo "[install_env] $STACK stack ready in $VENV: $("$VENV/bin/python" -c \
    'import mmengine, mmcv, mmdet, mmseg, torch, sys; print(f"python {sys.version.split()[0]}, torch {torch.__version__}, mmengine {mmengine.__version__}, mmcv {mmcv.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}")')"
