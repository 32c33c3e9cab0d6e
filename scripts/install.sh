#!/usr/bin/env bash
# Create .venv (when missing) and install the project into it. Idempotent: a second run is a no-op
# unless requirements.txt, setup.py or this script changed.
#
#   VENV=path        where the environment lives (default: .venv in the repository root)
#   PYTHON=python3   the interpreter that creates it
#   TORCH_SPEC       torch/torchvision requirement (default: the pair that lies on this kind of machine)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
D2_SDIST_SHA256=5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29

stamp_key=$(cat requirements.txt setup.py scripts/install.sh scripts/build_detectron2.py | sha256sum | cut -c1-16)
stamp="$VENV/.efl-install-$stamp_key"
if [ -f "$stamp" ]; then
    exit 0
fi

start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
    echo "[install] creating $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# pip warns about every package missing from the machine's extra local indexes: keep errors only.
pip_install() {
    "$PY" -m pip install --disable-pip-version-check --progress-bar off -q "$@" 2>&1 \
        | { grep -v "is neither a file nor a directory" || true; }
    return "${PIPESTATUS[0]}"
}

# pip >= 26.3 refuses the pb1-detectron2 sdist; keep a pip that accepts it.
pip_install 'pip>=23.2,<26.3'

if ! "$PY" -c "import torch, torchvision" 2>/dev/null; then
    echo "[install] torch: $TORCH_SPEC"
    # shellcheck disable=SC2086
    pip_install $TORCH_SPEC
fi
echo "[install] pinned requirements"
pip_install -r requirements.txt
# lvis declares the GUI opencv-python, which clashes with the headless build: install it alone.
pip_install --no-deps lvis==0.5.3
# Test reference only: effdet's NumPy port of TensorFlow's Open Images challenge metric
# (tests/evaluation/test_openimages_metric.py imports effdet.evaluation, never its timm models).
pip_install --no-deps effdet==0.4.1

if "$PY" -c "import detectron2" 2>/dev/null; then
    echo "[install] keeping the detectron2 already importable: $("$PY" -c 'import detectron2; print(detectron2.__version__, detectron2.__file__)')"
else
    echo "[install] building detectron2 0.6 (pure Python) from the PyPI sdist pb1-detectron2"
    "$PY" scripts/build_detectron2.py --sha256 "$D2_SDIST_SHA256" 2>&1 \
        | { grep -v "is neither a file nor a directory" || true; }
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "[install] detectron2 build failed" >&2; exit 1; }
fi

echo "[install] efl (editable)"
pip_install --no-deps --no-build-isolation -e .
"$PY" -c "import efl, detectron2; print('[install] efl', efl.__version__, '| detectron2', detectron2.__version__)"
rm -f "$VENV"/.efl-install-*
touch "$stamp"
echo "[install] done in $(( $(date +%s) - start )) s"
