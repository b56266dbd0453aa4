"""The layering rules of docs/DESIGN.md#layout, as import-linter contracts (setup.cfg ``[importlinter]``)."""

from __future__ import annotations

from pathlib import Path

from importlinter.cli import lint_imports

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_every_import_contract_is_kept(capsys):
    status = lint_imports(config_filename=str(REPO_ROOT / "setup.cfg"), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert status == 0, report  # the report names each broken contract and the import that breaks it
    assert "Contracts: 3 kept, 0 broken." in report
