"""The benchmarks ``python -m bench`` runs: their flags (full and quick) and their rows as report figures.

Data flow: ``SUITE`` names each benchmark with its module, the flags of a full run and of a
``--quick`` run (the same flags a person passes to ``bench/bench_<name>.py``, so the command
printed in RESULTS.md is exactly what was run) and an adapter -> the runner (``bench/__main__.py``)
calls the module's ``measure(argv)`` in a child process -> the adapter turns its structured result
into a ``report.Section``: each figure with the baseline from the same run, the ratio and issue
15's target where one exists, plus the ``series`` the charts draw. Adapters are pure.
"""

from __future__ import annotations

import importlib
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench.report import Figure, Section

BENCH = Path(__file__).resolve().parent


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def at_most(ratio: float, limit: float) -> bool:
    return ratio <= limit


# ---------------------------------------------------------------------------- adapters
def apiserver(rows: Any, argv: list[str]) -> Section:
    """(apiserver cell, raw etcd cell) per operation and concurrency -> ratios against issue 15's targets."""
    # The cached GET is "get rv=0" where the benchmark measures it apart from the consistent "get".
    cached = "get rv=0" if any(api.op == "get rv=0" for api, _ in rows) else "get"
    floor = {("create", 1): 0.7, ("create", 64): 0.5, (cached, 1): 1.0, (cached, 64): 1.0}
    s = Section("", "", "")
    for api, raw in rows:
        ratio = api.ops_per_s / raw.ops_per_s if raw.ops_per_s else None
        want = floor.get((api.op, api.concurrency))
        s.figures.append(Figure(
            f"{api.op}, concurrency {api.concurrency} ({api.requests} requests)",
            f"{api.ops_per_s:,.0f} ops/s (p50 {api.p50_ms:.2f} / p99 {api.p99_ms:.2f} ms)",
            f"{raw.ops_per_s:,.0f} ops/s raw aetcd {'get' if api.op.startswith('get') else 'put'} "
            f"(p50 {raw.p50_ms:.2f} / p99 {raw.p99_ms:.2f} ms)",
            ratio, f"ratio >= {want}" if want is not None else "",
            None if want is None or ratio is None else ratio >= want))
        if api.op == "create" and api.concurrency == 1:
            s.figures.append(Figure("create p99, concurrency 1", f"{api.p99_ms:.2f} ms", f"{raw.p99_ms:.2f} ms raw put",
                                    api.p99_ms / raw.p99_ms if raw.p99_ms else None, "<= raw etcd p99 + 5 ms",
                                    api.p99_ms <= raw.p99_ms + 5))
        if api.errors or raw.errors:
            s.notes.append(f"{api.op} at concurrency {api.concurrency}: {api.errors} apiserver errors, "
                           f"{raw.errors} etcd errors")
    return s


def consistent_read(rows: Any, argv: list[str]) -> Section:
    s = Section("", "", "")
    for row in rows:
        e = row["etcd"]
        what = "GET one ConfigMap" if e.op == "get" else "LIST the namespace's ConfigMaps"
        for mode, label in (("consistent", "consistent (no resourceVersion)"), ("rv=0", "resourceVersion=0 (cache)")):
            c = row[mode]
            s.figures.append(Figure(f"{what}, {label}, concurrency {c.concurrency}",
                                    f"{c.ops_per_s:,.0f} req/s (p50 {c.p50_ms:.2f} / p99 {c.p99_ms:.2f} ms)",
                                    f"{e.ops_per_s:,.0f} req/s raw etcd range (p50 {e.p50_ms:.2f} ms)",
                                    c.ops_per_s / e.ops_per_s if e.ops_per_s else None))
    return s


def scheduler(results: Any, argv: list[str]) -> Section:
    s = Section("", "", "", series={"nodes": [], "rate": [], "creates": []})
    for r in results:
        creates = r.pods / r.create_seconds
        big = r.nodes == 1000
        s.figures.append(Figure(f"{r.pods} pods on {r.nodes} nodes: pods scheduled/s",
                                f"{r.rate:.1f} pods/s ({r.scheduler_cpu_s / r.pods * 1000:.2f} ms scheduler CPU/pod)",
                                f"{creates:.1f} pods/s: the creates alone", r.rate / creates,
                                ">= 300 pods/s (10,000 pods, 1000 nodes)" if big else "",
                                r.rate >= 300 if big else None))
        if getattr(r, "sli_p99_s", 0):  # the scheduler's own /metrics, where the benchmark reads them
            s.notes.append(f"- {r.nodes} nodes, from the scheduler's /metrics: pod scheduling SLI p50 "
                           f"<= {r.sli_p50_s * 1000:g} ms, p99 <= {r.sli_p99_s * 1000:g} ms (bucket bounds); "
                           f"Filter {r.filter_ms:.2f} ms and Score {r.score_ms:.2f} ms per pod; "
                           f"{r.other_attempts:.0f} attempts not scheduled")
        s.series["nodes"].append(r.nodes)
        s.series["rate"].append(r.rate)
        s.series["creates"].append(creates)
    if len(results) >= 2:
        a, b = results[0], results[-1]
        issue = (a.nodes, b.nodes) == (100, 1000)
        s.figures.append(Figure(f"throughput at {b.nodes} nodes / at {a.nodes} nodes", f"{b.rate:.1f} pods/s",
                                f"{a.rate:.1f} pods/s at {a.nodes} nodes", b.rate / a.rate,
                                ">= 0.7" if issue else "", b.rate / a.rate >= 0.7 if issue else None))
    return s


def simulated(d: Any, argv: list[str]) -> Section:
    n = int(d["nodes"])
    s = Section("", "", "", figures=[
        Figure(f"{n} simulated nodes Ready after the kubelet process started",
               f"{d['ready_s']:.1f} s (it registered them in {d['registered_s']:.2f} s)"),
        Figure(f"the kubelet's resident memory with {n} nodes", f"{d['rss_mib']:.0f} MiB")])
    if "fresh" in d:
        s.figures.append(Figure("leases renewed within the last 40 s, after the steady state",
                                f"{d['fresh']:.0f}/{n} (oldest renewal {d['oldest_s']:.1f} s ago, median "
                                f"{d['median_s']:.1f} s)"))
    return s


def pod_start(results: Any, argv: list[str]) -> Section:
    from bench.bench_pod_start import pct

    s = Section("", "", "", series={k: [] for k in ("concurrency", "pod_p50", "pod_p99", "docker_p50", "docker_p99")})
    limit = {1: 1.3, 20: 1.5}
    for c, (pods, runs, *rest) in sorted(results.items()):
        p50, p99, d50, d99 = pct(pods, 50), pct(pods, 99), pct(runs, 50), pct(runs, 99)
        want = limit.get(c)
        s.figures.append(Figure(f"pod start p50, {c} at a time ({len(pods)} pods)", ms(p50),
                                f"{ms(d50)}: docker run -d", p50 / d50, f"<= {want} x docker run" if want else "",
                                at_most(p50 / d50, want) if want else None))
        s.figures.append(Figure(f"pod start p99, {c} at a time", ms(p99), f"{ms(d99)}: docker run -d", p99 / d99,
                                "< 5 s", p99 < 5))
        if rest and rest[0]:
            t50 = pct(rest[0], 50)
            s.figures.append(Figure(f"pod start p50, {c} at a time, against its two containers by hand", ms(p50),
                                    f"{ms(t50)}: docker run -d of a sandbox, then of a container in it", p50 / t50))
        for key, v in (("concurrency", c), ("pod_p50", p50 * 1000), ("pod_p99", p99 * 1000),
                       ("docker_p50", d50 * 1000), ("docker_p99", d99 * 1000)):
            s.series[key].append(v)
    return s


def jobs(d: Any, argv: list[str]) -> Section:
    n, base = int(d["completions"]), d["baseline_s"]
    s = Section("", "", "")
    for name in ("wide", "narrow"):
        if f"{name}_s" in d:
            took = d[f"{name}_s"]
            s.figures.append(Figure(f"a Job of {n} completions, parallelism {d[f'{name}_parallelism']:.0f}: "
                                    "until Complete", f"{took:.1f} s ({n / took:.0f} pods/s)",
                                    f"{base:.1f} s: {n} bare pods created by the client", took / base))
    return s


def gitops(results: Any, argv: list[str]) -> Section:
    from bench.bench_gitops import TARGETS, parse, pct

    interval = parse(argv).interval
    s = Section("", "", "")
    base = results.get("baseline", {}).get("total")
    by_hand = f"{ms(pct(base, 50))}: git fetch + apply by hand" if base else "-"
    if "webhook" in results:
        w = results["webhook"]["total"]
        for p, key, limit in ((50, "webhook p50", "< 1 s"), (99, "webhook p99", "< 3 s")):
            s.figures.append(Figure(f"commit -> applied, webhook, p{p}", ms(pct(w, p)), by_hand,
                                    pct(w, p) / pct(base, 50) if base else None, f"{limit} (gitops issue)",
                                    pct(w, p) < TARGETS[key]))
    if "polling" in results:
        mean = statistics.fmean(results["polling"]["total"])
        s.figures.append(Figure(f"commit -> applied, polling every {interval:g} s, mean", ms(mean),
                                f"{interval:g} s: the interval", mean / interval, "<= 0.6 x interval (gitops issue)",
                                mean / interval <= TARGETS["polling mean/interval"]))
    if "drift" in results:
        d, seen = results["drift"]["total"], results["drift"].get("watch event (from PATCH sent)")
        s.figures.append(Figure("drift corrected, p50", ms(pct(d, 50)),
                                f"{ms(pct(seen, 50))}: one write seen on a watch" if seen else "-",
                                pct(d, 50) / pct(seen, 50) if seen and pct(seen, 50) else None,
                                "< 2 s (gitops issue)", pct(d, 50) < TARGETS["drift p50"]))
    return s


def traffic(result: Any, argv: list[str]) -> Section:
    rows, scale, _lookups = result
    runs: dict[str, list[dict[str, Any]]] = {}
    labels: dict[str, str] = {}
    for key, label, r in rows:
        runs.setdefault(key, []).append(r)
        labels[key] = label
    med = {k: statistics.median(r["rps"] for r in rs) for k, rs in runs.items()}
    s = Section("", "", "")
    for key, rs in runs.items():
        base = "fresh-direct" if key.startswith("fresh") else ("pod-direct" if labels[key].startswith("pod")
                                                               else "host-direct")
        if key == base:
            continue
        b = med.get(base)
        s.figures.append(Figure(labels[key], f"{med[key]:,.0f} req/s (p50 {statistics.median(r['p50'] for r in rs):.2f}"
                                f" ms, {sum(r['errors'] for r in rs)} errors)",
                                f"{b:,.0f} req/s: {labels[base]}" if b else "-", med[key] / b if b else None))
    if scale and scale.get("reached") is not None:
        s.figures.append(Figure("scale 2 -> 3: first answer from the new pod through the ClusterIP",
                                ms(scale["reached"]), f"{ms(scale['ready'])}: the new pod Ready in the API"
                                if scale.get("ready") else "-",
                                scale["reached"] / scale["ready"] if scale.get("ready") else None))
    return s


def streams(result: Any, argv: list[str]) -> Section:
    rows, failed = result
    return Section("", "", "", figures=[Figure(r.what, r.ours, r.base, r.ratio) for r in rows],
                   error="; ".join(failed) if failed else None)


def memory(readings: Any, argv: list[str]) -> Section:
    bare = next((r.mib for r in readings if r.component.startswith("baseline")), None)
    s = Section("", "", "")
    for r in readings:
        if r.target_mib is None:
            s.notes.append(f"- {r.component}: {r.mib:.1f} MiB ({r.source})")
            continue
        s.figures.append(Figure(f"{r.component}, idle", f"{r.mib:.1f} MiB ({r.source})",
                                f"{bare:.1f} MiB: a bare Python interpreter" if bare else "-",
                                r.mib / bare if bare else None, f"< {r.target_mib:.0f} MiB", r.mib < r.target_mib))
    return s


def scale(r: Any, argv: list[str]) -> Section:
    """One API server holding many pods: its memory against the pods' bytes, reads against a raw range."""
    from bench.bench_scale import TARGETS

    full = r.full_scale  # the targets are stated for 1000 nodes and 30,000 pods; smaller runs show no verdict
    what = f"{r.pods:,} pods on {r.nodes:,} nodes"
    raw = f"{r.raw_range_s:.2f} s: raw etcd range of every pod key"
    s = Section("", "", "", figures=[
        Figure(f"API server resident memory holding {what} (peak {r.peak_mib:,.0f} MiB)", f"{r.rss_mib:,.0f} MiB",
               f"{r.stored_mib:,.1f} MiB: the pods' bytes in etcd", r.rss_mib / r.stored_mib if r.stored_mib else None,
               "<= 2 GiB" if full else "", r.rss_mib <= TARGETS["rss_mib"] if full else None),
        Figure(f"kubectl get pods -A ({r.kubectl_lines:,} rows)", f"{r.kubectl_s:.2f} s", raw,
               r.kubectl_s / r.raw_range_s if r.raw_range_s else None, "< 5 s" if full else "",
               r.kubectl_s < TARGETS["kubectl_s"] if full else None),
        Figure(f"informer relist of {r.relist_items:,} pods", f"{r.relist_s:.2f} s", raw,
               r.relist_s / r.raw_range_s if r.raw_range_s else None, "< 10 s" if full else "",
               r.relist_s < TARGETS["relist_s"] if full else None)])
    s.notes.append(f"- {r.pods:,} pods created in {r.create_s:.1f} s ({r.pods / r.create_s:.0f}/s, nodeName set, no "
                   f"scheduler); {r.running:,} reported Running by the simulated kubelet {r.running_s:.1f} s after "
                   f"the first create; etcd's resident memory {r.etcd_rss_mib:,.0f} MiB")
    return s


def watch(result: Any, argv: list[str]) -> Section:
    """bench_watch.py (another part of issue 15) converts its own result with ``figures(result)``."""
    mod = importlib.import_module("bench.bench_watch")
    convert: Callable[[Any], list[Figure]] | None = getattr(mod, "figures", None)
    if convert is None:
        return Section("", "", "", notes=["```", repr(result)[:4000], "```"])
    return Section("", "", "", figures=list(convert(result)))


# ---------------------------------------------------------------------------- the suite
@dataclass(frozen=True)
class Spec:
    name: str
    title: str
    module: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    adapt: Callable[[Any, list[str]], Section]
    timeout_full: float = 1800
    timeout_quick: float = 240

    def argv(self, quick: bool) -> list[str]:
        return list(self.quick if quick else self.full)

    def command(self, quick: bool) -> str:
        return " ".join([".venv/bin/python", f"bench/{self.module}.py", *self.argv(quick)])

    def present(self) -> bool:
        return (BENCH / f"{self.module}.py").exists()


SUITE: tuple[Spec, ...] = (
    Spec("apiserver", "API server against raw etcd: create, get, update, apply", "bench_apiserver",
         ("--concurrency", "1", "64", "--requests", "500", "2000"),
         ("--concurrency", "1", "64", "--requests", "40", "128"), apiserver),
    Spec("consistent_read", "Consistent reads against resourceVersion=0 and raw etcd", "bench_consistent_read",
         ("--concurrency", "1", "32", "--requests", "1000", "3000"),
         ("--concurrency", "1", "8", "--requests", "40", "80", "--objects", "10"), consistent_read),
    Spec("watch", "Watch fan-out: write-to-event latency against raw etcd watches", "bench_watch",
         ("--watchers", "100", "--events", "300"), ("--quick",),
         watch),
    Spec("scheduler", "Scheduler throughput against simulated node count", "bench_scheduler",
         ("--nodes", "100", "1000", "--pods", "10000"), ("--nodes", "10", "100", "--pods", "200"), scheduler,
         timeout_full=3600),
    Spec("simulated", "Simulated kubelet: many nodes in one process", "bench_simulated",
         ("--count", "1000", "--steady", "30"), ("--count", "50", "--steady", "0"), simulated),
    Spec("scale", "Scale: 1000 nodes and 30,000 pods in one API server, read by kubectl and an informer",
         "bench_scale", ("--nodes", "1000", "--pods", "30000"),
         ("--nodes", "10", "--pods", "200", "--namespaces", "2", "--runs", "1"), scale, timeout_full=3600),
    Spec("pod_start", "Docker kubelet: pod start latency against docker run, by concurrency",
         "bench_pod_start", ("--pods", "20", "--concurrency", "1", "5", "20"),
         ("--pods", "3", "--concurrency", "1", "3"), pod_start),
    Spec("gitops", "GitOps: commit-to-applied and drift-to-corrected", "bench_gitops",
         ("--commits", "20", "--drifts", "20", "--interval", "5"),
         ("--commits", "1", "--drifts", "1", "--interval", "1"), gitops),
    Spec("traffic", "Service traffic: ClusterIP, DNS name, NodePort and Ingress against pod IPs", "bench_traffic",
         ("--duration", "8", "--warmup", "1", "--rounds", "2"),
         ("--duration", "1", "--warmup", "0.3", "--rounds", "1", "--connections", "4", "--no-scale"), traffic),
    Spec("jobs", "Jobs on simulated nodes against the same pods created by hand", "bench_jobs",
         ("--nodes", "100", "--completions", "500"), ("--nodes", "5", "--completions", "20"), jobs),
    Spec("streams", "Exec and port-forward through the API server and the kubelet", "bench_streams",
         ("--runs", "30", "--tput-runs", "5"),
         ("--runs", "1", "--tput-runs", "1", "--duration", "1", "--warmup", "0.3", "--connections", "4",
          "--big-mb", "2"), streams),
    Spec("memory", "Memory of each component, idle on an empty cluster", "bench_memory", ("--settle", "10"),
         ("--settle", "1"), memory),
)


def by_name(names: list[str] | None) -> list[Spec]:
    """The specs asked for (all by default), in the suite's order; an unknown name is a ValueError."""
    known = {s.name for s in SUITE}
    unknown = sorted(set(names or ()) - known)
    if unknown:
        raise ValueError(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(s.name for s in SUITE)}")
    return [s for s in SUITE if not names or s.name in names]


def run(spec: Spec, *, quick: bool) -> Section:
    """Runs one benchmark in this process and converts its result (the child's side of the runner)."""
    mod = importlib.import_module(f"bench.{spec.module}")
    argv = spec.argv(quick)
    section = spec.adapt(mod.measure(argv), argv)
    section.name, section.title, section.command = spec.name, spec.title, spec.command(quick)
    return section
