"""The layering rules of docs/DESIGN.md#layout, as import-linter contracts (setup.cfg ``[importlinter]``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_every_import_contract_is_kept():
    # in a subprocess: import-linter in-process changes the logging setup, and later tests' caplog then sees nothing
    command = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
               "--config", str(REPO_ROOT / "setup.cfg"), "--no-cache"]  # fmt: skip
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr  # the report names each broken contract and the import that breaks it
    assert "Contracts: 3 kept, 0 broken." in result.stdout
