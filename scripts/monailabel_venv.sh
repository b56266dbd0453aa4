#!/usr/bin/env bash
# Provision the separate MONAI Label environment used by tests/monailabel (and by users who serve the
# bundle with MONAI Label on a CPU machine). Kept apart from the project's venv: monailabel pulls ~3.7 GB.
#
#   bash scripts/monailabel_venv.sh            # -> $MONAI_SCRIBBLE_MONAILABEL_VENV or ~/.cache/monai_scribble/monailabel-venv
#
# The venv is created once and reused (CI caches it in the home folder); this project is (re)installed
# into it each time, without dependencies, from the current checkout.
# Pins: torch==2.13.0 keeps pip from pulling a CUDA build; monailabel 0.8.5 needs pydicom<3,
# dicomweb-client<0.60 and pynetdicom<3 to import.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${MONAI_SCRIBBLE_MONAILABEL_VENV:-$HOME/.cache/monai_scribble/monailabel-venv}"
if [ ! -x "$venv/bin/monailabel" ]; then
    echo "creating the MONAI Label environment in $venv (one-time, several minutes)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    constraints="$(mktemp)"
    echo "torch==2.13.0" > "$constraints"
    "$venv/bin/python" -m pip install -q -c "$constraints" "torch==2.13.0" "monailabel==0.8.5" "pydicom<3" \
        "dicomweb-client[gcp]<0.60" "pynetdicom<3" 2>&1 | grep -v "^WARNING: Location" || true
    rm -f "$constraints"
    [ -x "$venv/bin/monailabel" ] || { echo "monailabel install failed" >&2; exit 1; }
fi
"$venv/bin/python" -m pip install -q --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
echo "MONAI Label environment ready: $venv"
