"""The documentation stands alone: no pointer outside the repository, and every docs/method.md anchor exists."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
METHOD_DOC = REPO_ROOT / "docs" / "method.md"
TEXT_SUFFIXES = {".py", ".md", ".json", ".ipynb", ".cfg", ".toml", ".conf", ".txt", ".sh"}
SKIP_DIRS = {"__pycache__", "runs", "output", "eval", "build", "dist", "node_modules"}
# spelled in pieces so that this file does not match itself
OUTSIDE_REFERENCES = ("method" + "-spec", "shared" + "/docs")  # docs/DESIGN.md is the repository's own
ANCHOR_REFERENCE = re.compile(r"docs/method\.md#([A-Za-z0-9_-]+)")
LOCAL_LINK = re.compile(r"\]\(#([A-Za-z0-9_-]+)\)")
ANCHOR = re.compile(r'<a id="([A-Za-z0-9_-]+)"></a>')


def project_text_files() -> list[Path]:
    """Text files of the project (hidden folders, virtual environments and run outputs left out)."""
    found = [REPO_ROOT / ".ci" / "run"]
    for root, dirs, files in os.walk(REPO_ROOT):
        dirs[:] = [
            d for d in dirs
            if not d.startswith(".") and d not in SKIP_DIRS and not d.endswith(".egg-info")
            and not (Path(root, d) / "pyvenv.cfg").exists()
        ]
        found += [Path(root, f) for f in files if Path(f).suffix in TEXT_SUFFIXES]
    return [path for path in found if path.is_file()]


def method_anchors() -> set[str]:
    return set(ANCHOR.findall(METHOD_DOC.read_text(encoding="utf-8")))


def test_no_reference_outside_the_repository():
    offending = []
    for path in project_text_files():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if any(word in line for word in OUTSIDE_REFERENCES):
                offending.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()[:100]}")
    assert not offending, "references to files outside the repository:\n" + "\n".join(offending)


def test_method_doc_anchors_are_unique():
    anchors = ANCHOR.findall(METHOD_DOC.read_text(encoding="utf-8"))
    assert anchors and len(anchors) == len(set(anchors)), sorted(a for a in anchors if anchors.count(a) > 1)


@pytest.mark.parametrize("source", ["references in the project", "links inside docs/method.md"])
def test_method_doc_anchors_exist(source):
    anchors = method_anchors()
    if source == "links inside docs/method.md":
        used = {(METHOD_DOC, name) for name in LOCAL_LINK.findall(METHOD_DOC.read_text(encoding="utf-8"))}
    else:
        used = {(path, name) for path in project_text_files()
                for name in ANCHOR_REFERENCE.findall(path.read_text(encoding="utf-8", errors="replace"))}
    missing = sorted(f"{path.relative_to(REPO_ROOT)}: #{name}" for path, name in used if name not in anchors)
    assert used, f"no {source} found"
    assert not missing, "unknown docs/method.md anchors:\n" + "\n".join(missing)
