"""bench/RESULTS.md from the benchmarks' results: the machine, the date, one section per benchmark.

Data flow: ``python -m bench`` runs each benchmark in a child process, which turns its rows into a
``Section`` (figures, each with the baseline measured in the same run, the ratio and issue 15's
target where one exists) and hands it back as JSON -> ``render`` writes the Markdown: the machine
(``machine()``: CPU model and MHz, cores, memory, Python, kernel, etcd, Docker, load average at
the start and the end), the targets at a glance, the charts (``bench/charts.py``), one section per
benchmark with its table and its exact command, then the hand-kept notes (``bench/NOTES.md``:
what no script measures). Everything here is pure but ``machine`` and ``load``.
"""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    """One row of a section's table: what was measured against what, in the same run."""

    what: str
    value: str
    baseline: str = "-"
    ratio: float | None = None
    target: str = ""
    met: bool | None = None


@dataclass
class Section:
    """One benchmark's part of the report; ``error`` set when it failed (its figures may be partial)."""

    name: str
    title: str
    command: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    date: str = ""
    load: str = ""
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Section":
        return cls(**{**d, "figures": [Figure(**f) for f in d.get("figures") or []]})


def load() -> str:
    """The load average (1, 5, 15 min) now."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _first(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()
        return out[0] if out else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "not available"


def machine() -> dict[str, str]:
    """What the numbers were measured on (the load average is added by the caller, start and end)."""
    from cli.processes import etcd_binary

    try:
        etcd = _version([etcd_binary(), "--version"])
    except (OSError, RuntimeError):
        etcd = "not found"
    mem = _first("/proc/meminfo", "MemTotal")
    return {
        "CPU": f"{_first('/proc/cpuinfo', 'model name')}, {_first('/proc/cpuinfo', 'cpu MHz')} MHz",
        "cores": f"{os.cpu_count()} logical, {len(os.sched_getaffinity(0))} usable; etcd, the components and the "
                 "load generators all share them",
        "memory": f"{int(mem.split()[0]) / 1048576:.1f} GiB" if mem != "unknown" else mem,
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "OS": f"{platform.system()} {platform.release()}",
        "etcd": etcd,
        "Docker": _version(["docker", "version", "--format", "Engine {{.Server.Version}}"]),
    }


# ---------------------------------------------------------------------------- rendering
def cell(x: str) -> str:
    """A table cell: no newline or pipe breaks the row."""
    return " ".join(str(x).split()).replace("|", "\\|")


def verdict(met: bool | None) -> str:
    return "" if met is None else ("**met**" if met else "**missed**")


def table(figures: list[Figure]) -> list[str]:
    out = ["| figure | measured | baseline (same run) | ratio | target (issue 15) | met |",
           "|---|---:|---:|---:|---|---|"]
    for f in figures:
        ratio = "-" if f.ratio is None else f"{f.ratio:.2f}"
        out.append(f"| {cell(f.what)} | {cell(f.value)} | {cell(f.baseline)} | {ratio} | {cell(f.target)} "
                   f"| {verdict(f.met)} |")
    return out


def targets(sections: list[Section]) -> list[str]:
    """Every figure with a target, met or not, in one table."""
    rows = [(s, f) for s in sections for f in s.figures if f.target]
    if not rows:
        return []
    out = ["| benchmark | figure | measured | target | met |", "|---|---|---:|---|---|"]
    out += [f"| {cell(s.title)} | {cell(f.what)} | {cell(f.value)} | {cell(f.target)} | {verdict(f.met)} |"
            for s, f in rows]
    return out


def render(sections: list[Section], *, info: dict[str, str], started: str, quick: bool, total_s: float,
           charts: list[tuple[str, str]], notes: str = "") -> str:
    """The whole of RESULTS.md. ``charts`` are (title, path relative to the report)."""
    failed = [s for s in sections if s.error]
    # A run of a subset (--only) keeps the other sections of earlier runs: say when they all ran.
    dates = sorted(s.date for s in sections if s.date)
    ran = (f"started {started}, {total_s:.0f} s in all" if not dates or dates[0] >= started else
           f"last run started {started} ({total_s:.0f} s); the sections below ran between {dates[0]} and "
           f"{dates[-1]}, {sum(s.seconds for s in sections):.0f} s in all, each section dated")
    out = ["# Benchmark results", "",
           f"Written by `python -m bench{' --quick' if quick else ''}` (`bench/run`), {ran}; "
           "do not edit by hand: the hand-kept context is in `bench/NOTES.md`, "
           "included at the end. Every figure is next to its baseline, measured in the same run on the "
           "same machine; ratios, not absolute times, are what carries over to another machine.", ""]
    if quick:
        out += ["**A quick run** (`--quick`: small counts, one repetition): it shows that every benchmark "
                "works, its figures are not measurements.", ""]
    if failed:
        out += [f"**Failed:** {', '.join(s.name for s in failed)} (see their sections).", ""]
    out += ["## Machine", "", "| | |", "|---|---|"] + [f"| {k} | {cell(v)} |" for k, v in info.items()] + [""]
    summary = targets(sections)
    if summary:
        out += ["## Issue 15's targets", ""] + summary + [""]
    if charts:
        out += ["## Charts", ""] + [f"![{t}]({p})" for t, p in charts] + [""]
    for s in sections:
        out += [f"## {s.title}", "", "```", s.command, "```", ""]
        if s.date:
            out += [f"{s.date}, load average {s.load}, {s.seconds:.0f} s." if s.load else f"{s.date}.", ""]
        if s.error:
            out += [f"**FAILED:** {cell(s.error)}", ""]
        if s.figures:
            out += table(s.figures) + [""]
        out += [*s.notes, ""] if s.notes else []
    if notes.strip():
        out += [notes.strip(), ""]
    return "\n".join(out)
