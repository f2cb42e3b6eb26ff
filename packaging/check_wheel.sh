#!/usr/bin/env bash
# Build LossLab's wheel and sdist, install the wheel (not editable) into a fresh venv and run the
# quick demo from an empty folder: proves that presets and icons ship inside the wheel.
# Usage: packaging/check_wheel.sh [WORKDIR]   (default: a new temporary folder; CI runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-$(mktemp -d)}"
mkdir -p "$WORK"
PYTHON="${PYTHON:-python3}"
start=$SECONDS

.venv/bin/python -m build --outdir "$WORK/dist" . >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; exit 1; }
wheel=$(ls "$WORK"/dist/losslab-*.whl)
ls "$WORK"/dist/losslab-*.tar.gz >/dev/null
echo "built $(basename "$wheel") and the sdist in $((SECONDS - start)) s"

# A plain venv: no --system-site-packages and no access to this checkout, so a file missing from
# the wheel fails here. pip takes torch and the other wheels from the local disk where provided.
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q torch==2.14.1 torchvision==0.29.1
"$WORK/venv/bin/python" -m pip install -q "$wheel"
echo "installed the wheel into a fresh venv after $((SECONDS - start)) s"

mkdir -p "$WORK/empty"
cd "$WORK/empty"
"$WORK/venv/bin/losslab" presets | grep -q "digits-mlp-quick" || { echo "presets missing from the wheel"; exit 1; }
site=$("$WORK/venv/bin/python" -c "import losslab_resources, pathlib; print(pathlib.Path(losslab_resources.__file__).parent)")
case "$site" in */site-packages/*) ;; *) echo "resources came from $site, not the wheel"; exit 1;; esac
"$WORK/venv/bin/losslab" demo --quick --out-dir demo >"$WORK/demo.log" 2>&1 || { tail -30 "$WORK/demo.log"; exit 1; }
test -s demo/digits-mislabel-30-test_loss.png
echo "losslab demo --quick from the wheel: $(grep 'demo finished' "$WORK/demo.log")"
echo "wheel check passed in $((SECONDS - start)) s"
