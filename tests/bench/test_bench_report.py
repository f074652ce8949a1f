"""The benchmark harness' pure parts: adapters (figures, ratios, issue 15's targets), the report, the
charts, and the runner's handling of a failed benchmark (in process, no benchmark actually runs)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import bench.__main__ as runner
from bench import charts, suite
from bench.bench_apiserver import Cell
from bench.bench_memory import Reading
from bench.report import Figure, Section, render

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("op", "conc", "api", "raw", "target", "met"), [
    ("create", 1, 700.0, 1000.0, "ratio >= 0.7", True),
    ("create", 1, 690.0, 1000.0, "ratio >= 0.7", False),
    ("create", 64, 500.0, 1000.0, "ratio >= 0.5", True),
    ("get", 64, 990.0, 1000.0, "ratio >= 1.0", False),
    ("update", 1, 100.0, 1000.0, "", None),
])
def test_apiserver_targets(op: str, conc: int, api: float, raw: float, target: str, met: bool | None) -> None:
    s = suite.apiserver([(Cell(op, conc, 10, api, 1.0, 2.0, 0), Cell(op, conc, 10, raw, 0.5, 1.0, 0))], [])
    f = s.figures[0]
    assert (f.target, f.met) == (target, met)
    assert f.ratio == pytest.approx(api / raw)


@pytest.mark.parametrize(("api_p99", "raw_p99", "met"), [(6.0, 1.0, True), (6.1, 1.0, False)])
def test_create_p99_target(api_p99: float, raw_p99: float, met: bool) -> None:
    s = suite.apiserver([(Cell("create", 1, 10, 1.0, 1.0, api_p99, 0), Cell("create", 1, 10, 1.0, 0.5, raw_p99, 0))], [])
    assert [f.met for f in s.figures if "p99" in f.what] == [met]


def test_pod_start_ratios_series_and_targets() -> None:
    results = {1: ([0.4] * 5, [0.3] * 5, [0.5] * 5), 20: ([2.0] * 19 + [6.0], [1.5] * 20, [])}
    s = suite.pod_start(results, [])
    assert s.series["concurrency"] == [1, 20]
    assert s.series["pod_p50"] == [pytest.approx(400), pytest.approx(2000)]
    by_what = {f.what.split(" (")[0]: f for f in s.figures}
    assert by_what["pod start p50, 1 at a time"].met is False  # 1.33 > 1.3
    assert by_what["pod start p50, 20 at a time"].met is True  # 1.33 <= 1.5
    assert by_what["pod start p99, 20 at a time"].met is False  # 6 s
    assert by_what["pod start p99, 1 at a time"].met is True
    hand = [f for f in s.figures if "by hand" in f.what]  # the two-container floor, where it was measured
    assert len(hand) == 1 and hand[0].ratio == pytest.approx(0.8) and hand[0].met is None


def test_scheduler_ratio_target_only_for_100_and_1000_nodes() -> None:
    def r(nodes: int, rate: float) -> SimpleNamespace:
        return SimpleNamespace(nodes=nodes, pods=1000, seconds=1000 / rate, create_seconds=2.0, scheduler_cpu_s=1.0,
                               rate=rate)
    full = suite.scheduler([r(100, 400), r(1000, 310)], [])
    assert [f.met for f in full.figures] == [None, True, True]
    assert full.series["nodes"] == [100, 1000]
    quick = suite.scheduler([r(10, 100), r(100, 50)], [])
    assert all(f.met is None for f in quick.figures)


def test_memory_against_targets_and_bare_python() -> None:
    s = suite.memory([Reading("apiserver", 120.0, "/metrics", 150.0), Reading("kubelet", 61.0, "/proc VmRSS", 60.0),
                      Reading("baseline: a bare Python interpreter (same venv)", 10.0, "/proc VmRSS", None)], [])
    assert [(f.met, f.ratio) for f in s.figures] == [(True, 12.0), (False, 6.1)]
    assert "/metrics" in s.figures[0].value and s.notes


def test_render_has_machine_targets_and_tables() -> None:
    ok = Section("a", "Alpha", ".venv/bin/python bench/a.py --x 1",
                 figures=[Figure("thing | other", "5 ops/s", "10 ops/s", 0.5, ">= 0.7", False)], date="d", load="1")
    bad = Section("b", "Beta", "cmd b", error="RuntimeError: boom\nmore")
    text = render([ok, bad], info={"CPU": "x"}, started="now", quick=False, total_s=3,
                  charts=[("Chart", "charts/c.png")], notes="## Notes\nhand text")
    assert "| CPU | x |" in text and "![Chart](charts/c.png)" in text
    assert "| thing \\| other | 5 ops/s | 10 ops/s | 0.50 | >= 0.7 | **missed** |" in text
    assert "**FAILED:** RuntimeError: boom more" in text and "**Failed:** b" in text
    assert text.rstrip().endswith("hand text")
    assert Section.from_json(json.loads(json.dumps(ok.to_json()))) == ok


@pytest.mark.parametrize("series", [{}, {"nodes": [100, 1000], "rate": [200.0, 150.0], "creates": [500.0, 480.0]}])
def test_scheduler_chart(tmp_path: Path, series: dict[str, list[float]]) -> None:
    assert charts.scheduler_chart(series, tmp_path / "c" / "s.png").read_bytes()[:8] == PNG


@pytest.mark.parametrize("series", [{}, {"concurrency": [1, 5, 20], "pod_p50": [400, 900, 3000], "pod_p99": [500, 1000, 4000],
                                         "docker_p50": [300, 700, 2000], "docker_p99": [350, 800, 2500]}])
def test_pod_start_chart(tmp_path: Path, series: dict[str, list[float]]) -> None:
    assert charts.pod_start_chart(series, tmp_path / "p.png").read_bytes()[:8] == PNG


def test_quick_never_overwrites_results() -> None:
    with pytest.raises(SystemExit):
        runner.parse(["--quick", "--output", str(runner.RESULTS)])
    with pytest.raises(SystemExit):
        runner.parse(["--only", "nosuchbench"])
    assert runner.parse(["--quick", "--only", "memory"]).only == ["memory"]


def test_child_reports_a_failure_as_a_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(spec: suite.Spec, *, quick: bool) -> Section:
        raise SystemExit("image missing")
    monkeypatch.setattr(runner, "run", boom)
    out = tmp_path / "r.json"
    assert runner.child("memory", quick=True, result=out) == 1
    s = Section.from_json(json.loads(out.read_text()))
    assert s.error == "SystemExit: image missing" and s.command == suite.by_name(["memory"])[0].command(True)


def test_a_failed_benchmark_does_not_stop_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(spec: suite.Spec, *, quick: bool, logs: Path) -> Section:
        if spec.name == "jobs":
            return Section(spec.name, spec.title, spec.command(quick), error="RuntimeError: broken")
        return Section(spec.name, spec.title, spec.command(quick), figures=[Figure("x", "1 s")])
    monkeypatch.setattr(runner, "run_child", fake)
    monkeypatch.setattr(runner, "machine", lambda: {"CPU": "test"})
    out = tmp_path / "RESULTS.md"
    assert runner.main(["--quick", "--only", "jobs", "memory", "--output", str(out)]) == 1
    text = out.read_text()
    assert "**FAILED:** RuntimeError: broken" in text and "## " + suite.by_name(["memory"])[0].title in text
    assert (tmp_path / "charts" / "pod_start.png").read_bytes()[:8] == PNG
    # A later --only run keeps the other benchmark's section.
    assert runner.main(["--quick", "--only", "memory", "--output", str(out)]) == 0
    assert "**FAILED:** RuntimeError: broken" in out.read_text()


def test_gitops_traffic_streams_jobs_simulated_adapters() -> None:
    from bench.bench_streams import Row

    g = suite.gitops({"baseline": {"total": [0.02] * 3}, "webhook": {"total": [0.04] * 3},
                      "polling": {"total": [0.5, 0.6]}, "drift": {"total": [0.004], "watch event (from PATCH sent)": [0.004]}},
                     ["--interval", "1"])
    assert [f.met for f in g.figures] == [True, True, True, True]
    assert g.figures[0].ratio == pytest.approx(2.0) and g.figures[2].ratio == pytest.approx(0.55)
    load = {"rps": 100.0, "p50": 1.0, "p99": 2.0, "errors": 0}
    t = suite.traffic(([("pod-direct", "pod: pod IPs", {**load, "rps": 200.0}), ("clusterip", "pod: ClusterIP", load),
                        ("host-direct", "host: pod IPs", {**load, "rps": 400.0}), ("ingress", "host: Ingress", load)],
                       {"ready": 1.0, "slice": 1.1, "reached": 1.5}, None), [])
    assert [(f.what, f.ratio) for f in t.figures[:2]] == [("pod: ClusterIP", 0.5), ("host: Ingress", 0.25)]
    assert t.figures[2].ratio == pytest.approx(1.5)
    st = suite.streams(([Row("exec", "p50 1 ms", "p50 2 ms", 0.5)], ["forward: RuntimeError: x"]), [])
    assert st.figures[0].ratio == 0.5 and st.error == "forward: RuntimeError: x"
    j = suite.jobs({"completions": 10, "baseline_s": 2.0, "wide_s": 4.0, "wide_parallelism": 10}, [])
    assert [f.ratio for f in j.figures] == [2.0]
    sim = suite.simulated({"nodes": 5, "ready_s": 1.0, "registered_s": 0.5, "rss_mib": 40.0}, [])
    assert len(sim.figures) == 2 and "5 simulated nodes" in sim.figures[0].what


def test_cached_get_target_moves_to_rv0_when_measured_apart() -> None:
    def row(op: str) -> tuple[Cell, Cell]:
        return Cell(op, 1, 10, 500.0, 1.0, 2.0, 0), Cell(op, 1, 10, 1000.0, 0.5, 1.0, 0)
    s = suite.apiserver([row("get"), row("get rv=0")], [])
    assert [(f.what.split(",")[0], f.target) for f in s.figures] == [("get", ""), ("get rv=0", "ratio >= 1.0")]


def test_scale_verdicts_only_at_the_stated_scale() -> None:
    from bench.bench_scale import Result as Scale

    def r(nodes: int, pods: int, rss: float, kubectl: float, relist: float) -> Scale:
        return Scale(nodes, pods, pods, 10.0, 20.0, rss, rss + 10, 300.0, 100.0, 0.5, kubectl, pods, relist, pods)
    full = suite.scale(r(1000, 30000, 1500.0, 6.0, 4.0), [])
    assert [f.met for f in full.figures] == [True, False, True]
    assert full.figures[0].ratio == 15.0 and full.figures[1].ratio == 12.0
    assert [f.target for f in full.figures] == ["<= 2 GiB", "< 5 s", "< 10 s"]
    small = suite.scale(r(10, 200, 150.0, 1.0, 0.2), [])
    assert [f.met for f in small.figures] == [None, None, None] and all(not f.target for f in small.figures)
    assert "200 pods created" in small.notes[0]
