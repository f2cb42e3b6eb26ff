#!/usr/bin/env bash
# Build the one-folder CPU bundle (dist/losslab/losslab) and start it once under Xvfb with
# --screenshot. Not part of CI: on two cores it takes several minutes and ~1.5 GB of disk.
# Usage: packaging/pyinstaller/build.sh [WORKDIR]   (default: build/bundle)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
WORK="$(realpath -m "${1:-build/bundle}")"
PYTHON="${PYTHON:-python3}"
mkdir -p "$WORK"
start=$SECONDS

# A venv with the CPU-only torch build: the CUDA wheel would add gigabytes of GPU libraries.
[ -x "$WORK/venv/bin/python" ] || "$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q "torch==2.13.0+cpu" 2>&1 | grep -v "^WARNING: Location" || true
# torchvision is only needed for CIFAR/MNIST folders; without its own torch pin it keeps the CPU torch.
"$VPY" -m pip install -q --no-deps torchvision==0.29.1 2>&1 | grep -v "^WARNING: Location" || true
deps=$("$VPY" - <<'PY'
import tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print(" ".join(d for d in deps if not d.startswith(("torch==", "torchvision=="))))
PY
)
"$VPY" -m pip install -q $deps pyinstaller==6.22.3 2>&1 | grep -v "^WARNING: Location" || true
"$VPY" -m pip install -q --no-deps "$ROOT" 2>&1 | grep -v "^WARNING: Location" || true
echo "bundle venv ready after $((SECONDS - start)) s"

cd "$WORK"
"$WORK/venv/bin/pyinstaller" --noconfirm --log-level WARN --distpath "$WORK/dist" --workpath "$WORK/work" \
    "$ROOT/packaging/pyinstaller/losslab.spec"
echo "bundle built after $((SECONDS - start)) s: $(du -sh "$WORK/dist/losslab" | cut -f1) in $WORK/dist/losslab"

mkdir -p "$WORK/run" && cd "$WORK/run"
"$WORK/dist/losslab/losslab" presets | head -3
xvfb-run -a -s "-screen 0 1400x1000x24" "$WORK/dist/losslab/losslab" gui --screenshot "$WORK/bundle-window.png"
echo "bundle screenshot: $WORK/bundle-window.png (total $((SECONDS - start)) s)"
