"""``python -m bench --quick``: every benchmark runs in its reduced form and reports numbers.

One test per benchmark of ``bench.suite.SUITE``, each running ``python -m bench --quick --only NAME``
as a subprocess (the same runner, child process and report as a full run), so a parallel run
spreads them over its workers (tests/conftest.py). Docker benchmarks included (pod start, traffic,
streams, the memory benchmark's Docker kubelet): under CI a missing engine or image fails the test
(``tests/dockertest.py``). Each report is checked: the benchmark's section is there, did not fail,
carries its exact command and a table whose every row has a number; the two benchmarks that feed a
chart (scheduler, pod start) also leave it as a PNG linked from the report.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.suite import SUITE, Spec
from tests import dockertest

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"
CHARTS = {"scheduler": "scheduler.png", "pod_start": "pod_start.png"}

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]


@pytest.mark.parametrize("spec", [s for s in SUITE if s.present()], ids=lambda s: s.name)
def test_benchmark_runs_quick_and_reports(spec: Spec, tmp_path: Path) -> None:
    dockertest.checked_runtime().close()
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", spec.name, "--output", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=spec.timeout_quick + 120)
    assert proc.returncode == 0, f"{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    text = out.read_text()
    assert "FAILED" not in text, text
    body = text.split(f"## {spec.title}\n", 1)
    assert len(body) == 2, f"no section for {spec.name}"
    section = body[1].split("\n## ", 1)[0]
    assert spec.command(True) in section
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| figure")]
    assert rows, f"{spec.name}: no figures"
    assert all(re.search(r"\d", row) for row in rows), f"{spec.name}: a row without a number"
    if spec.name in CHARTS:
        png = tmp_path / "charts" / CHARTS[spec.name]
        assert png.read_bytes()[:8] == PNG, png
        assert f"charts/{CHARTS[spec.name]}" in text
