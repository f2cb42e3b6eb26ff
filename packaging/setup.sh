#!/usr/bin/env bash
# Set up LossLab on a fresh Debian/Ubuntu machine: system packages, a venv, the project.
# Safe to run again: every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Xvfb + the xcb libraries Qt needs for a real window (GUI tests and screenshots); Fashion-MNIST
# offline for realistic runs. See ENVIRONMENT notes in README.md.
APT_PACKAGES="xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libegl1 libgl1 dataset-fashion-mnist chromium desktop-file-utils appstream shared-mime-info"
missing=""
for pkg in $APT_PACKAGES; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch first and pinned: pip takes these wheels from the local disk where they are provided.
.venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install -q -e '.[dev]'
.venv/bin/losslab --help >/dev/null
echo "LossLab is installed in .venv (run .venv/bin/losslab)"
