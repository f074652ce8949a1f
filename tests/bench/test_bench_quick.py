"""``python -m bench --quick``: every benchmark runs in its reduced form and the report has them all.

The whole suite runs once as a subprocess (module-scoped), Docker benchmarks included (pod start,
traffic, streams, the memory benchmark's Docker kubelet): under CI a missing engine or image fails
the test (``tests/dockertest.py``). Then the report is checked: every benchmark's section is there,
none failed, each has a table with numbers, and both charts are PNG files.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.suite import SUITE
from tests import dockertest

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    dockertest.checked_runtime().close()
    out = tmp_path_factory.mktemp("bench-quick") / "RESULTS.md"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--output", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=840)
    return proc, out


def test_every_benchmark_ran(quick: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, out = quick
    assert proc.returncode == 0, f"{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    text = out.read_text()
    assert "FAILED" not in text, text
    for spec in SUITE:
        if not spec.present():
            continue
        body = text.split(f"## {spec.title}\n", 1)
        assert len(body) == 2, f"no section for {spec.name}"
        section = body[1].split("\n## ", 1)[0]
        assert spec.command(True) in section
        rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| figure")]
        assert rows, f"{spec.name}: no figures"
        assert all(re.search(r"\d", row) for row in rows), f"{spec.name}: a row without a number"


def test_charts_are_png(quick: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = quick
    for name in ("scheduler.png", "pod_start.png"):
        png = out.parent / "charts" / name
        assert png.read_bytes()[:8] == PNG, name
        assert f"charts/{name}" in out.read_text()
