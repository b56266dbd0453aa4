"""Notebook runs under pytest (nbmake): the reduced budget, and a skip where the real data is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from monai_scribble.constants import DATA_ENV_VAR
from monai_scribble.data.data_root import default_data_root

# read by notebooks/02_dsb_walkthrough.ipynb and 04_robustness.ipynb: the kernel nbmake starts inherits this process's environment
os.environ.setdefault("MONAI_SCRIBBLE_NOTEBOOK_BUDGET", "ci")

REAL_DATA_NOTEBOOKS = {"02_dsb_walkthrough.ipynb": Path("dsb2018") / "stage1_train"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    data_root = default_data_root()
    for item in items:
        needed = REAL_DATA_NOTEBOOKS.get(item.path.name)
        if needed is not None and not (data_root / needed).is_dir():
            item.add_marker(pytest.mark.skip(reason=f"real data not found at {data_root / needed} (set ${DATA_ENV_VAR})"))
