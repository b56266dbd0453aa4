"""Session-wide test setup for ``tests/`` and ``notebooks/``: every temporary file goes to one folder, removed at the end.

The contrastive kernel is compiled by ``torch.compile`` (``monai_scribble.losses.contrastive``). Inductor writes its
cache (~150 MB per run) and its precompiled C++ header (~150 MB, one per virtual environment) under
``tempfile.gettempdir()`` and keeps them, so every clean-clone CI run used to leave ~300 MB in ``/tmp``. The session
points ``TMPDIR`` at a folder of its own, which the trainings, servers and notebook kernels it starts inherit, and
removes that folder when pytest ends. A ``TORCHINDUCTOR_CACHE_DIR`` set by the user is left as it is.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_SESSION_TMP: str | None = None
_PREVIOUS_TMPDIR: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _SESSION_TMP, _PREVIOUS_TMPDIR
    _SESSION_TMP = tempfile.mkdtemp(prefix="monai_scribble_tests_")
    _PREVIOUS_TMPDIR = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = _SESSION_TMP
    tempfile.tempdir = None  # gettempdir() caches its answer: make it read TMPDIR again


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SESSION_TMP is None:
        return
    if _PREVIOUS_TMPDIR is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = _PREVIOUS_TMPDIR
    tempfile.tempdir = None
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)
