"""monai_scribble.data.data_root: the default location of the real data."""

from __future__ import annotations

from pathlib import Path

import pytest

import monai_scribble
from monai_scribble.constants import DATA_ENV_VAR
from monai_scribble.data.data_root import default_data_root

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "env, expected",
    [
        (None, REPO_ROOT.parent / "shared" / "data"),  # beside the repository
        ("/srv/microscopy", Path("/srv/microscopy")),
        ("~/data", Path.home() / "data"),
    ],
)
def test_default_data_root(monkeypatch, env, expected):
    if env is None:
        monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(DATA_ENV_VAR, env)
    assert default_data_root() == expected


def test_repository_is_where_the_package_lives():
    assert (REPO_ROOT / "monai_scribble" / "__init__.py").resolve() == Path(monai_scribble.__file__).resolve()
