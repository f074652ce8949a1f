"""The charts of bench/RESULTS.md: PNGs drawn with matplotlib (Agg backend, no display needed).

Data flow: ``python -m bench`` hands the ``series`` of two sections (``bench/suite.py`` fills them)
-> ``scheduler_chart``: pods scheduled per second against the node count, with the same run's
baseline (the pods' creates alone: what any scheduler could reach there) and issue 15's target
-> ``pod_start_chart``: pod start latency p50 and p99 against how many pods start at once, with
the same run's ``docker run`` p50 and p99 -> PNG files under the report's ``charts/`` folder. A
series that is missing or empty (its benchmark failed) still gives a chart that says so.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SCHEDULER_TARGET = 300.0  # pods/s on 1000 nodes (issue 15)


def _finish(fig: plt.Figure, ax: plt.Axes, path: Path, *, empty: bool) -> Path:
    if empty:
        ax.text(0.5, 0.5, "no data (the benchmark failed or was not run)", ha="center", va="center",
                transform=ax.transAxes)
    else:
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    ax.grid(True, alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def scheduler_chart(series: dict[str, list[float]], path: Path) -> Path:
    """Scheduled pods/s and creates alone/s against nodes (log x), plus the target line."""
    nodes, rate, creates = series.get("nodes", []), series.get("rate", []), series.get("creates", [])
    fig, ax = plt.subplots(figsize=(7.0, 4.8))
    if nodes:
        ax.plot(nodes, rate, "o-", label="minik8s: pods scheduled/s (binds, events, status)")
        ax.plot(nodes, creates, "s--", color="grey", label="baseline: the same pods' creates alone/s")
        ax.axhline(SCHEDULER_TARGET, color="tab:red", linestyle=":", label="issue 15 target (1000 nodes)")
        ax.set_xscale("log")
        ax.set_xticks(nodes, [str(int(n)) for n in nodes])
        ax.set_ylim(bottom=0)
    ax.set_xlabel("simulated nodes")
    ax.set_ylabel("pods per second")
    ax.set_title("Scheduler throughput against node count")
    return _finish(fig, ax, path, empty=not nodes)


def pod_start_chart(series: dict[str, list[float]], path: Path) -> Path:
    """Pod start p50/p99 and ``docker run`` p50/p99 (ms) against the pods started at once."""
    conc = series.get("concurrency", [])
    fig, ax = plt.subplots(figsize=(7.0, 4.8))
    if conc:
        ax.plot(conc, series["pod_p50"], "o-", color="tab:blue", label="minik8s pod p50")
        ax.plot(conc, series["pod_p99"], "o:", color="tab:blue", label="minik8s pod p99")
        ax.plot(conc, series["docker_p50"], "s-", color="grey", label="baseline: docker run p50")
        ax.plot(conc, series["docker_p99"], "s:", color="grey", label="baseline: docker run p99")
        ax.set_xticks(conc, [str(int(c)) for c in conc])
        ax.set_ylim(bottom=0)
    ax.set_xlabel("pods started at once (concurrency)")
    ax.set_ylabel("start latency, ms")
    ax.set_title("Pod start latency against concurrency")
    return _finish(fig, ax, path, empty=not conc)
