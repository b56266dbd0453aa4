"""Session-wide test setup for ``tests/`` and ``notebooks/``: torch.compile's cache goes to a temporary folder.

The contrastive kernel is compiled by ``torch.compile`` (``monai_scribble.losses.contrastive``), and inductor
otherwise writes its cache (~150 MB per run) to ``/tmp/torchinductor_<user>`` and keeps it. The session uses a
folder of its own, inherited by the trainings and notebook kernels it starts, and removes it at the end.
A ``TORCHINDUCTOR_CACHE_DIR`` set by the user is kept. Inductor's precompiled C++ header (~150 MB, built once per
torch version) ignores the variable and stays in ``/tmp/torchinductor_<user>``, reused rather than grown by each run.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

INDUCTOR_CACHE_VAR = "TORCHINDUCTOR_CACHE_DIR"
_created_cache: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _created_cache
    if INDUCTOR_CACHE_VAR not in os.environ:
        _created_cache = tempfile.mkdtemp(prefix="monai_scribble_inductor_")
        os.environ[INDUCTOR_CACHE_VAR] = _created_cache


def pytest_unconfigure(config: pytest.Config) -> None:
    if _created_cache is not None:
        shutil.rmtree(_created_cache, ignore_errors=True)
        os.environ.pop(INDUCTOR_CACHE_VAR, None)
