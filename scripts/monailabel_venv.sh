#!/usr/bin/env bash
# Provision the separate MONAI Label environment used by tests/monailabel and by users who serve the
# bundle with MONAI Label (README.md "MONAI Label", bundles/scribble_cell_segmentation/docs/monailabel.md).
#
#   bash scripts/monailabel_venv.sh            # -> $MONAI_SCRIBBLE_MONAILABEL_VENV or ~/.cache/monai_scribble/monailabel-venv
#   bash scripts/monailabel_venv.sh --check    # only verify that environment (exit 1 if absent, stale or broken)
#
# It is kept apart from the project's venv because monailabel 0.8.5 imports torchvision at start-up, and
# PyPI's torchvision does not import beside the project's pinned CPU torch 2.13.0 ("operator
# torchvision::nms does not exist"). So this environment
# gets its own matching pair, torch==2.14.1 + torchvision==0.29.1, pinned by a constraints file so that
# no dependency of monailabel can change them. monailabel 0.8.5 also needs pydicom<3,
# dicomweb-client<0.60 and pynetdicom<3 to import. This project's own dependencies (setup.cfg
# install_requires: monai 1.6.x, pytorch-ignite 0.5.x, scikit-image, ...) are resolved together with
# monailabel's, because the server runs the bundle's training. monailabel asks for monai>=1.4 with the
# ignite extra, which pins pytorch-ignite==0.4.11 in monai 1.4.0-1.6.0; monai==1.6.1 (unpinned extra) is
# pinned here, else pip's resolver gives up ("ResolutionImpossible") instead of finding it.
#
# Built once, then reused (CI caches it in the home folder). A stamp file in the venv records the
# requirements it was built from (the pins below, setup.cfg's install_requires, the Python version); when
# they differ, e.g. an environment made by an older version of this script, it is rebuilt from scratch.
# This project is (re)installed into it each run, without dependencies, from the current checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
# a temporary folder of its own, removed however the script ends: importing torch in the checks makes an
# (empty) torchinductor_<user> folder in the temp dir, and pip unpacks there
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export TMPDIR="$scratch"
venv="${MONAI_SCRIBBLE_MONAILABEL_VENV:-$HOME/.cache/monai_scribble/monailabel-venv}"
stamp="$venv/monai_scribble-requirements.txt"
python="${PYTHON:-python3}"

pins="torch==2.14.1
torchvision==0.29.1
monailabel==0.8.5
monai==1.6.1
pydicom<3
dicomweb-client<0.60
pynetdicom<3"

# the project's install_requires, one a line (setup.cfg is read with the standard library only)
project_requires="$("$python" - <<'EOF'
import configparser
config = configparser.ConfigParser()
config.read("setup.cfg")
print("\n".join(line.strip() for line in config["options"]["install_requires"].splitlines() if line.strip()))
EOF
)"
wanted="# made by scripts/monailabel_venv.sh; rebuilt when this text changes
# python: $("$python" -c 'import sys; print(".".join(map(str, sys.version_info[:2])))')
# pins (also the constraints):
$pins
# monai-scribble install_requires:
$project_requires"

check() {  # the imports the server needs, torchvision's compiled operators beside this torch, this checkout
    # -I: nothing from the current folder or PYTHONPATH, only what the environment itself holds
    "$venv/bin/python" -I - "$PWD" <<'EOF'
import sys
from pathlib import Path
import torch
import torchvision
boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0]])
keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
assert keep.tolist() == [0, 2], keep
import monai, ignite, skimage  # noqa: E401  the bundle's training runs inside the server
import monailabel.main  # what `monailabel start_server` runs
from monailabel.transform.post import save_image  # torchvision.utils, imported at start-up
import monai_scribble.monailabel_app
checkout = Path(sys.argv[1]).resolve()
if checkout not in Path(monai_scribble.__file__).resolve().parents:
    sys.exit(f"monai_scribble in this environment is {monai_scribble.__file__}, not from {checkout}: "
             f"run bash scripts/monailabel_venv.sh in {checkout}")
print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, monai {monai.__version__}, "
      f"ignite {ignite.__version__}, monailabel {monailabel.__version__}")
EOF
    # the launcher runs `python -m monailabel.main` with the first python on PATH: as after activating
    PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" "$venv/bin/monailabel" --help > /dev/null \
        || { echo "'monailabel --help' failed in $venv" >&2; return 1; }
}

pip_install() {  # pip in the environment, quiet but for real errors; fail loudly on error
    local log
    log="$(mktemp)"
    if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" > "$log" 2>&1; then
        grep -v "^WARNING: Location" "$log" >&2 || true
        rm -f "$log"
        echo "pip install failed in $venv" >&2
        exit 1
    fi
    grep -v "^WARNING: Location" "$log" || true
    rm -f "$log"
}

if [ "${1:-}" = "--check" ]; then
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] || { echo "MONAI Label environment $venv is absent or stale: run bash scripts/monailabel_venv.sh" >&2; exit 1; }
    check
    exit
fi

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    if [ -e "$venv" ]; then
        echo "MONAI Label environment in $venv is stale or incomplete: rebuilding it"
    fi
    echo "creating the MONAI Label environment in $venv (one-time: about 8 GB, several minutes)"
    if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ] && [ -n "$(ls -A "$venv")" ]; then
        echo "$venv exists and is not a virtual environment: not removing it; choose another MONAI_SCRIBBLE_MONAILABEL_VENV" >&2
        exit 1
    fi
    rm -rf "$venv"
    "$python" -m venv "$venv"
    constraints="$venv/constraints.txt"
    printf '%s\n' "$pins" > "$constraints"
    # the torch + torchvision pair first, then monailabel and this project's dependencies; versions come
    # from the constraints (the pins), which also hold the pair in the second resolve
    pip_install -c "$constraints" torch torchvision
    mapfile -t requires <<< "$project_requires"
    pip_install -c "$constraints" monailabel monai pydicom "dicomweb-client[gcp]" pynetdicom "${requires[@]}"
    pip_install -c "$constraints" --no-deps -e .
    check || { echo "the new MONAI Label environment in $venv does not work" >&2; exit 1; }
    printf '%s\n' "$wanted" > "$stamp"  # last: an interrupted build has no stamp and is rebuilt next time
else
    pip_install --no-deps -e .
    check || { echo "MONAI Label environment in $venv does not work: delete it and run this script again" >&2; exit 1; }
fi
echo "MONAI Label environment ready: $venv (source $venv/bin/activate)"
