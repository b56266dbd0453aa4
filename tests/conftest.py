"""Shared fixtures: the real data folders (skipped, with the reason, where absent); one torch thread per test process."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from monai_scribble.constants import DATA_ENV_VAR
from monai_scribble.data.data_root import default_data_root

torch.set_num_threads(1)


def require_dir(path: Path) -> Path:
    """Skip (with the reason) when a real-data folder is absent, e.g. outside CI without ../shared/data."""
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set ${DATA_ENV_VAR} to the folder holding dsb2018/ and monuseg/)")
    return path


@pytest.fixture(scope="session")
def dsb_stage_dir() -> Path:
    return require_dir(default_data_root() / "dsb2018" / "stage1_train")


@pytest.fixture(scope="session")
def monuseg_root() -> Path:
    return require_dir(default_data_root() / "monuseg")
