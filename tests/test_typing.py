"""Every package stays mypy clean (DESIGN pattern 9): one mypy run with pyproject.toml's settings.

The settings live in ``[tool.mypy]`` of pyproject.toml (the packages, full type hints, ignores that
name their error code and may not go stale), so running ``mypy`` by hand in the repository root
checks exactly what this test checks.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def test_mypy_checks_every_package() -> None:
    """``[tool.mypy] files`` names every top-level package (the distribution's and bench/)."""
    packages = sorted(p.name for p in REPO_ROOT.iterdir()
                      if (p / "__init__.py").is_file() and p.name != "tests")
    assert sorted(_pyproject()["tool"]["mypy"]["files"]) == packages


def test_mypy_reports_no_errors() -> None:
    result = subprocess.run(
        # No paths and no flags: pyproject.toml says what to check and how.
        [sys.executable, "-m", "mypy"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"mypy found errors:\n{result.stdout}{result.stderr}"
