#!/usr/bin/env bash
# Install LossLab's desktop entry, AppStream metainfo, MIME types and icons for one user
# (default ~/.local/share) or system-wide (PREFIX=/usr/local/share, as root). The `losslab`
# command itself comes from `pip install losslab-*.whl` (or the PyInstaller bundle) on the PATH.
set -euo pipefail
cd "$(dirname "$0")"
DATA="${PREFIX:-${XDG_DATA_HOME:-$HOME/.local/share}}"
ID=org.losslab.LossLab

install -Dm644 "$ID.desktop" "$DATA/applications/$ID.desktop"
install -Dm644 "$ID.metainfo.xml" "$DATA/metainfo/$ID.metainfo.xml"
install -Dm644 "$ID.mime.xml" "$DATA/mime/packages/$ID.xml"
for icon in icons/hicolor/*/apps/*; do
  install -Dm644 "$icon" "$DATA/$icon"
done
# Refresh the caches when the tools are there (desktop environments also do it on login).
command -v update-mime-database >/dev/null && update-mime-database "$DATA/mime"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$DATA/applications"
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -qtf "$DATA/icons/hicolor" 2>/dev/null || true
echo "LossLab's desktop entry, MIME types and icons are installed under $DATA"
