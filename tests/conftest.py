"""Shared fixtures and helpers: the real data folders (skipped, with the reason, where absent), box instance maps, file digests; one torch thread per test process."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_scribble.constants import DATA_ENV_VAR
from monai_scribble.data.data_root import default_data_root

torch.set_num_threads(1)


def instance_boxes(shape: tuple[int, int], *boxes: tuple[int, int, int, int, int]) -> np.ndarray:
    """int32 instance map with boxes ``(id, r0, r1, c0, c1)`` (half-open rows and columns) on 0 background."""
    out = np.zeros(shape, dtype=np.int32)
    for label, r0, r1, c0, c1 in boxes:
        out[r0:r1, c0:c1] = label
    return out


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (to tell whether a model file was replaced)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_online(host: str = "download.pytorch.org") -> bool:
    """Whether ``host`` resolves (an online machine); offline-error tests skip where it does, as the download would run."""
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False


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
