"""``python -m bench`` (or ``bench/run``): run every benchmark and write bench/RESULTS.md with its charts.

Data flow: the benchmarks asked for (``--only NAME...``, default all of ``bench.suite.SUITE``) run
one after the other, each in a child process of its own (``python -m bench --child NAME``: the
benchmark's ``measure(argv)``, its adapter, the ``Section`` written as JSON), so a benchmark that
fails, hangs (killed after its timeout: SIGINT to its process group, so its clean-up runs, then
SIGKILL) or leaves state behind does not stop the others -> the sections (merged with the earlier
ones of the same report when ``--only`` ran a subset) -> ``bench.report.render`` with the machine,
the load average at the start and the end, the charts (``bench.charts``) and ``bench/NOTES.md`` ->
``--output`` (default bench/RESULTS.md; its charts in ``charts/`` beside it, the sections in
``results.json`` beside it). ``--quick`` runs every benchmark in a reduced form (small counts, one
repetition) and writes to a temporary folder unless ``--output`` says otherwise; it refuses to
overwrite bench/RESULTS.md. The exit code is 1 when any benchmark failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import charts
from bench.report import Section, load, machine, render
from bench.suite import BENCH, Spec, by_name, run

RESULTS = BENCH / "RESULTS.md"
NOTES = BENCH / "NOTES.md"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="every benchmark in a reduced form (CI); writes to a "
                                                        "temporary folder unless --output is given")
    p.add_argument("--output", type=Path, help="the report to write (default bench/RESULTS.md; with --quick a "
                                               "temporary folder)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks: " +
                   " ".join(s.name for s in by_name(None)))
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        by_name(args.only)
    except ValueError as e:
        p.error(str(e))
    if args.quick and args.output is not None and args.output.resolve() == RESULTS.resolve():
        p.error("--quick does not overwrite bench/RESULTS.md: its figures are not measurements")
    return args


def stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------------------- the child
def child(name: str, *, quick: bool, result: Path) -> int:
    """Runs one benchmark here and writes its section (or its failure) to ``result``."""
    spec = by_name([name])[0]
    started, at, load0 = time.monotonic(), stamp(), load()
    try:
        section = run(spec, quick=quick)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - a failed benchmark is a result to report
        detail = e.code if isinstance(e, SystemExit) else e
        section = Section(spec.name, spec.title, spec.command(quick), error=f"{type(e).__name__}: {detail}")
        print(f"benchmark {name} failed: {section.error}", file=sys.stderr, flush=True)
    section.date, section.seconds, section.load = at, time.monotonic() - started, f"{load0} at the start, " \
                                                                                 f"{load()} at the end"
    result.write_text(json.dumps(section.to_json()))
    return 1 if section.error else 0


# ---------------------------------------------------------------------------- the parent
def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def run_child(spec: Spec, *, quick: bool, logs: Path) -> Section:
    result, log = logs / f"{spec.name}.json", logs / f"{spec.name}.log"
    cmd = [sys.executable, "-m", "bench", "--child", spec.name, "--result", str(result), *(["--quick"] if quick else [])]
    timeout = spec.timeout_quick if quick else spec.timeout_full
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=BENCH.parent, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            for sig, grace in ((signal.SIGINT, 60.0), (signal.SIGKILL, 10.0)):
                try:
                    os.killpg(proc.pid, sig)
                    proc.wait(grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
                except ProcessLookupError:
                    break
            return Section(spec.name, spec.title, spec.command(quick), date=stamp(), seconds=timeout,
                           error=f"timed out after {timeout:.0f} s", notes=["```", tail(log), "```"])
    if not result.exists():
        return Section(spec.name, spec.title, spec.command(quick), date=stamp(),
                       error=f"exited with {proc.returncode} without a result", notes=["```", tail(log), "```"])
    section = Section.from_json(json.loads(result.read_text()))
    if section.error:
        section.notes += ["Its output's end:", "", "```", tail(log, 2000), "```"]
    return section


def previous(path: Path) -> dict[str, Section]:
    """The sections an earlier run wrote beside the report (kept when ``--only`` runs a subset)."""
    try:
        return {d["name"]: Section.from_json(d) for d in json.loads(path.read_text())["sections"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def draw(sections: dict[str, Section], out: Path) -> list[tuple[str, str]]:
    empty = Section("", "", "")
    made = [("Scheduler throughput against node count",
             charts.scheduler_chart(sections.get("scheduler", empty).series, out / "charts" / "scheduler.png")),
            ("Pod start latency against concurrency",
             charts.pod_start_chart(sections.get("pod_start", empty).series, out / "charts" / "pod_start.png"))]
    return [(title, str(path.relative_to(out))) for title, path in made]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.child:
        return child(args.child, quick=args.quick, result=args.result)
    output: Path = args.output or (Path(tempfile.mkdtemp(prefix="minik8s-bench-quick-")) / "RESULTS.md"
                                   if args.quick else RESULTS)
    output.parent.mkdir(parents=True, exist_ok=True)
    store = output.parent / "results.json"
    logs = Path(tempfile.mkdtemp(prefix="minik8s-bench-logs-"))
    specs = [s for s in by_name(args.only) if s.present()]
    print(f"python -m bench{' --quick' if args.quick else ''}: {', '.join(s.name for s in specs)} -> {output} "
          f"(logs in {logs})", flush=True)
    info, load0, begun, t0 = machine(), load(), stamp(), time.monotonic()
    sections = previous(store) if args.only else {}
    failed: list[str] = []
    for spec in specs:
        print(f"[{stamp()}] {spec.name}: {spec.command(args.quick)}", flush=True)
        section = run_child(spec, quick=args.quick, logs=logs)
        sections[spec.name] = section
        if section.error:
            failed.append(spec.name)
        print(f"  {'FAILED: ' + section.error if section.error else 'ok'} ({section.seconds:.0f} s, "
              f"{len(section.figures)} figures)", flush=True)
    info["load average"] = (f"{load0} (1 / 5 / 15 min) at the start, {load()} at the end"
                            + (" of the last run (each section gives its own)" if args.only else ""))
    order = [s.name for s in by_name(None)]
    ordered = sorted(sections.values(), key=lambda s: order.index(s.name) if s.name in order else len(order))
    text = render(ordered, info=info, started=begun, quick=args.quick, total_s=time.monotonic() - t0,
                  charts=draw(sections, output.parent), notes=NOTES.read_text() if NOTES.exists() else "")
    output.write_text(text)
    store.write_text(json.dumps({"sections": [s.to_json() for s in ordered]}, indent=1))
    print(f"wrote {output}" + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
