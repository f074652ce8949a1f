"""Commit-to-applied and drift-to-corrected latency of ``minik8s gitops``, with webhooks and with polling.

Data flow: start a private etcd, ``minik8s apiserver`` and ``minik8s gitops`` (the test suite's
``Etcd``, ``ApiServerProcess`` and ``ComponentProcess``; no scheduler, controllers or nodes: the
synced objects are ConfigMaps, whose apply is the whole of their rollout) -> one namespace, one Git
repository per mode in a temporary directory (the ``git`` command line), served by ``file://`` URL,
each holding ConfigMaps -> one watch on the namespace's ConfigMaps and one on its GitSyncs (for
the whole run) -> the phases below. Every latency ends when the new value arrives on the
ConfigMap watch (``?watch=1`` on the apiserver), the moment any client of the cluster can see it.

  baseline  the work a sync of one commit cannot avoid, done by hand: commit, then (t0) ``git fetch
            --depth 1`` of that commit into a bare mirror (the reconciler's flags) + one server-side
            apply PATCH of the ConfigMap, until the watch shows it. The ratio column divides by its p50.
  webhook   GitSync with interval 1h and a webhook secret: commit a new value, t0 right after
            ``git commit`` returns, POST a correctly signed GitHub push webhook
            (``X-Hub-Signature-256``) to ``/hooks/{namespace}/{name}``, until the watch shows the
            value. The time includes the webhook request. Samples are at least 1 s apart (the
            receiver allows 1 webhook/s per GitSync after a burst of 10).
  polling   GitSync with interval ``--interval`` (default 5 s), no webhook: each commit comes a
            random delay after the previous one was applied (just after a poll), so commits fall
            uniformly over the poll cycle (a fixed spacing would lock to its phase); the delays are
            stratified (one in each 1/N of the interval, in random order) so that 20 samples
            already cover the cycle evenly. The expected mean is interval/2 + the time of one
            sync. Target: mean <= 0.6 x interval.
  drift     GitSync with interval 1h: a merge PATCH of one managed ConfigMap's value by another
            field manager (``fieldManager=bench-drift``), t0 right after the PATCH returns, until
            the watch shows Git's value again (put back by the reconciler's informer, not a poll).
            Each sample drifts a different ConfigMap of the revision: the reconciler backs off
            exponentially when it corrects the same object again within 60 s (a fight with another
            controller), which is not the latency of a drift. Baseline: the same PATCH's own
            watch event, from before the PATCH is sent (and from its return) to its delivery.

Percentiles are nearest-rank (with 20 samples p99 is the slowest). Each phase starts with one
uncounted warm-up sample. Run: ``.venv/bin/python bench/bench_gitops.py [--commits 20] [--drifts 20]
[--interval 5] [--phases baseline webhook polling drift]``; one full run takes about 2.5 minutes
at the default interval. Everything is removed at the end (the processes it started, by pid, and
its temporary directory).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench.bench_apiserver import machine  # noqa: E402
from machinery import errors  # noqa: E402
from machinery.client import ApiClient  # noqa: E402
from tests.cluster import ApiServerProcess, ComponentProcess, Etcd, free_port  # noqa: E402

NAMESPACE = "bench-gitops"
GITSYNCS = ("gitops.minik8s.io/v1", "gitsyncs")
CONFIGMAPS = ("v1", "configmaps")
TOKEN = b"bench-webhook-token"
DRIFT_MANAGER = "bench-drift"

# The reconciler's fetch: gitops/git.py (flags and config), repeated here for the baseline.
FETCH_FLAGS = ("--no-tags", "--no-recurse-submodules", "--no-write-fetch-head", "--quiet")
GIT_CONFIG = ("protocol.allow=never", "protocol.file.allow=always", "fetch.recurseSubmodules=false",
              "core.hooksPath=/dev/null", "gc.autoDetach=false", "credential.helper=")

TARGETS = {"webhook p50": 1.0, "webhook p99": 3.0, "polling mean/interval": 0.6, "drift p50": 2.0}


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (with 20 samples, p99 is the slowest one)."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def configmap_yaml(name: str, value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: {value}\n"


# ---------------------------------------------------------------------------- git, by its command line
class Repo:
    """A working repository whose commits the benchmark makes (branch main)."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root = root
        self.env = {**{k: v for k, v in os.environ.items() if k in ("PATH", "TMPDIR")},
                    "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
                    "LC_ALL": "C", "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
                    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}

    @property
    def url(self) -> str:
        return self.root.as_uri()

    async def git(self, *args: str, cwd: Path | None = None) -> str:
        p = await asyncio.create_subprocess_exec("git", *args, cwd=cwd or self.root, env=self.env,
                                                 stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)}: {err.decode(errors='replace')}")
        return out.decode().strip()

    async def init(self, files: dict[str, str]) -> None:
        self.root.mkdir(parents=True)
        await self.git("init", "-q", "-b", "main")
        await self.commit(files, "initial")

    async def commit(self, files: dict[str, str], message: str) -> None:
        """Writes the files and commits them; returns once ``git commit`` has (the commit is visible)."""
        for path, text in files.items():
            (self.root / path).write_text(text)
        await self.git("add", "-A")
        await self.git("commit", "-q", "-m", message)


# ---------------------------------------------------------------------------- the watches
Seen = tuple[float, dict[str, Any]]  # (monotonic time of the event, its object)


@dataclass
class Waiter:
    match: Callable[[dict[str, Any]], bool]
    future: asyncio.Future[Seen]


@dataclass
class Watch:
    """One watch on a resource of the namespace: resolves waiters with the monotonic time (and the
    object) of the first event after they were registered whose object matches."""

    client: ApiClient
    resource: tuple[str, str]
    waiters: list[Waiter] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        rv = (await self.client.list(self.resource, namespace=NAMESPACE))["metadata"]["resourceVersion"]
        self.task = asyncio.create_task(self._run(rv))

    def expect(self, match: Callable[[dict[str, Any]], bool]) -> asyncio.Future[Seen]:
        """Register before the action whose effect is awaited, so its event cannot be missed."""
        f: asyncio.Future[Seen] = asyncio.get_running_loop().create_future()
        self.waiters.append(Waiter(match, f))
        return f

    async def _run(self, rv: str) -> None:
        try:
            while True:
                try:
                    async for type_, obj in self.client.watch(self.resource, namespace=NAMESPACE,
                                                              resource_version=rv, allow_watch_bookmarks=True):
                        t = time.monotonic()
                        rv = obj["metadata"].get("resourceVersion") or rv
                        if type_ in ("BOOKMARK", "DELETED"):
                            continue
                        for w in list(self.waiters):
                            if w.future.done():
                                self.waiters.remove(w)
                            elif w.match(obj):
                                w.future.set_result((t, obj))
                                self.waiters.remove(w)
                except errors.GoneError:
                    rv = (await self.client.list(self.resource, namespace=NAMESPACE))["metadata"]["resourceVersion"]
        except Exception as e:  # a dead watch must fail the waiters, not hang them
            for w in self.waiters:
                if not w.future.done():
                    w.future.set_exception(e)
            raise

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


def cm_value(name: str, value: str) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: obj["metadata"]["name"] == name and (obj.get("data") or {}).get("value") == value


def sync_applied(name: str, sha: str) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: (obj["metadata"]["name"] == name
                        and str((obj.get("status") or {}).get("lastAppliedRevision", "")).endswith(sha))


# ---------------------------------------------------------------------------- the bench
@dataclass
class Bench:
    client: ApiClient
    http: aiohttp.ClientSession
    tmp: Path
    webhook_url: str
    cms: Watch
    syncs: Watch
    timeout: float = 60.0
    verbose: bool = False
    results: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    async def wait(self, f: asyncio.Future[Seen], what: str, timeout: float | None = None) -> float:
        return (await self.wait_obj(f, what, timeout))[0]

    async def wait_obj(self, f: asyncio.Future[Seen], what: str, timeout: float | None = None) -> Seen:
        try:
            return await asyncio.wait_for(f, timeout or self.timeout)
        except asyncio.TimeoutError:
            raise RuntimeError(f"timed out waiting for {what}") from None

    async def repo(self, name: str, files: dict[str, str]) -> Repo:
        r = Repo(self.tmp / name, self.tmp / "home")
        await r.init(files)
        return r

    async def gitsync(self, name: str, repo: Repo, **spec: Any) -> None:
        sha = await repo.git("rev-parse", "HEAD")
        applied = self.syncs.expect(sync_applied(name, sha))
        await self.client.create(GITSYNCS, {
            "apiVersion": "gitops.minik8s.io/v1", "kind": "GitSync",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"url": repo.url, "ref": {"branch": "main"}, "targetNamespace": NAMESPACE, **spec}},
            namespace=NAMESPACE)
        await self.wait(applied, f"GitSync {name} applying its first revision")

    # ------------------------------------------------------------------ baseline
    async def baseline(self, n: int) -> None:
        repo = await self.repo("repo-baseline", {"cm.yaml": configmap_yaml("cm-baseline", "v0")})
        mirror = self.tmp / "baseline-mirror"
        await repo.git("init", "--bare", "--quiet", "--template=", str(mirror), cwd=self.tmp)
        config = [a for c in GIT_CONFIG for a in ("-c", c)]
        fetch, apply, total = [], [], []
        for i in range(n + 1):
            value = f"b{i}"
            await repo.commit({"cm.yaml": configmap_yaml("cm-baseline", value)}, value)
            seen = self.cms.expect(cm_value("cm-baseline", value))
            t0 = time.monotonic()
            await repo.git(*config, f"--git-dir={mirror}", "fetch", "--depth", "1", *FETCH_FLAGS, "--end-of-options",
                           repo.url, "+refs/heads/main:refs/gitops/head", cwd=mirror)
            t1 = time.monotonic()
            await self.client.patch(CONFIGMAPS, "cm-baseline", {
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-baseline", "namespace": NAMESPACE},
                "data": {"value": value}}, namespace=NAMESPACE, patch_type="apply", field_manager="bench-baseline",
                force=True, field_validation="Strict")
            t2 = time.monotonic()
            t3 = await self.wait(seen, f"cm-baseline={value} on the watch")
            if i:  # the first is the warm-up
                fetch.append(t1 - t0)
                apply.append(t2 - t1)
                total.append(t3 - t0)
        self.results["baseline"] = {"total": total, "git fetch": fetch, "apply PATCH": apply}
        print(summary("baseline: git fetch + apply + watch", total), flush=True)

    # ------------------------------------------------------------------ webhook
    async def webhook(self, n: int) -> None:
        name = "hooked"
        repo = await self.repo("repo-webhook", {"cm.yaml": configmap_yaml("cm-webhook", "v0")})
        await self.client.create(("v1", "secrets"), {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook", "namespace": NAMESPACE},
            "data": {"token": base64.b64encode(TOKEN).decode()}}, namespace=NAMESPACE)
        await self.gitsync(name, repo, interval="1h", webhook={"secretRef": {"name": "hook"}})
        total, post, status, run = [], [], [], []
        for i in range(n + 1):
            await asyncio.sleep(1.0)  # the receiver's per-GitSync rate: 1/s after a burst of 10
            value = f"w{i}"
            await repo.commit({"cm.yaml": configmap_yaml("cm-webhook", value)}, value)
            sha = await repo.git("rev-parse", "HEAD")
            seen = self.cms.expect(cm_value("cm-webhook", value))
            written = self.syncs.expect(sync_applied(name, sha))
            t0 = time.monotonic()
            code = await self.post_hook(name)
            t1 = time.monotonic()
            if code != 202:
                raise RuntimeError(f"webhook answered {code}")
            t2 = await self.wait(seen, f"cm-webhook={value} on the watch")
            t3, obj = await self.wait_obj(written, f"GitSync {name} status with {sha[:7]}")
            if i:
                total.append(t2 - t0)
                post.append(t1 - t0)
                status.append(t3 - t0)
                run.append(run_seconds(obj, sha))
        self.results["webhook"] = {"total": total, "webhook POST": post, "status written": status,
                                   "reconciler's run (status.history)": run}
        print(summary("webhook: commit -> applied", total), flush=True)

    async def post_hook(self, name: str) -> int:
        body = b'{"ref": "refs/heads/main", "repository": {"full_name": "bench/repo"}}'
        sig = hmac.new(TOKEN, body, hashlib.sha256).hexdigest()
        async with self.http.post(f"{self.webhook_url}/hooks/{NAMESPACE}/{name}", data=body, headers={
                "X-Hub-Signature-256": f"sha256={sig}", "X-GitHub-Event": "push",
                "Content-Type": "application/json"}) as r:
            await r.read()
            return r.status

    # ------------------------------------------------------------------ polling
    async def polling(self, n: int, interval: float) -> None:
        name = "polled"
        repo = await self.repo("repo-poll", {"cm.yaml": configmap_yaml("cm-poll", "v0")})
        await self.gitsync(name, repo, interval=f"{interval:g}s")
        total, status, run = [], [], []
        rng = random.Random()
        # Stratified: the k-th of the n delays falls in [k/n, (k+1)/n) of the interval, in random
        # order, so 20 commits cover the poll cycle evenly (independent uniform draws leave the
        # mean of 20 samples with a standard error of 0.065 x interval).
        delays = [(k + rng.random()) / n * interval for k in range(n)]
        rng.shuffle(delays)
        delays.insert(0, rng.random() * interval)  # the warm-up
        for i in range(n + 1):
            await asyncio.sleep(delays[i])
            value = f"p{i}"
            await repo.commit({"cm.yaml": configmap_yaml("cm-poll", value)}, value)
            sha = await repo.git("rev-parse", "HEAD")
            seen = self.cms.expect(cm_value("cm-poll", value))
            written = self.syncs.expect(sync_applied(name, sha))
            t0 = time.monotonic()
            t1 = await self.wait(seen, f"cm-poll={value} on the watch", interval + self.timeout)
            t2, obj = await self.wait_obj(written, f"GitSync {name} status with {sha[:7]}")
            if i:
                total.append(t1 - t0)
                status.append(t2 - t0)
                run.append(run_seconds(obj, sha))
            if self.verbose:
                print(f"    commit {i}: {delays[i] * 1000:5.0f} ms after the previous status, applied after "
                      f"{(t1 - t0) * 1000:5.0f} ms, reconciler's run {run_seconds(obj, sha) * 1000:4.0f} ms", flush=True)
        self.results["polling"] = {"total": total, "status written": status,
                                   "reconciler's run (status.history)": run}
        print(summary(f"polling every {interval:g}s: commit -> applied", total)
              + f"   mean/interval {statistics.fmean(total) / interval:.2f}", flush=True)

    # ------------------------------------------------------------------ drift
    async def drift(self, n: int) -> None:
        name = "drifted"
        names = [f"cm-drift-{i:02d}" for i in range(n + 1)]
        repo = await self.repo("repo-drift", {"cms.yaml": "---\n".join(configmap_yaml(c, "git") for c in names)})
        await self.gitsync(name, repo, interval="1h")
        total, event_from_send, event_from_return = [], [], []
        for i, cm in enumerate(names):
            await asyncio.sleep(0.5)
            value = f"drift{i}"
            drifted = self.cms.expect(cm_value(cm, value))
            back = self.cms.expect(cm_value(cm, "git"))
            t_send = time.monotonic()
            await self.client.patch(CONFIGMAPS, cm, {"data": {"value": value}}, namespace=NAMESPACE,
                                    field_manager=DRIFT_MANAGER)
            t0 = time.monotonic()
            t1 = await self.wait(drifted, f"{cm}={value} on the watch")
            t2 = await self.wait(back, f"{cm} put back to Git's value")
            if i:
                total.append(t2 - t0)
                event_from_send.append(t1 - t_send)
                event_from_return.append(t1 - t0)
        self.results["drift"] = {"total": total, "watch event (from PATCH sent)": event_from_send,
                                 "watch event (from PATCH return)": event_from_return}
        print(summary("drift: PATCH -> put back", total), flush=True)


def run_seconds(sync: dict[str, Any], sha: str) -> float:
    """The reconciler's own timing of the run that applied ``sha`` (build, dry run, apply; the
    fetch before it is not included), from the GitSync's status.history."""
    for entry in (sync.get("status") or {}).get("history") or []:
        if str(entry.get("revision", "")).endswith(sha):
            return float(entry.get("durationSeconds") or 0.0)
    return math.nan


def summary(label: str, xs: list[float]) -> str:
    return (f"  {label:<42} n={len(xs):<3} p50 {pct(xs, 50) * 1000:7.0f} ms   p99 {pct(xs, 99) * 1000:7.0f} ms   "
            f"mean {statistics.fmean(xs) * 1000:7.0f} ms")


# ---------------------------------------------------------------------------- the report
def ms(x: float) -> str:
    return f"{round(x * 1000) or 0:,} ms"  # no "-0 ms" (a watch event may beat the PATCH's own answer)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(results: dict[str, dict[str, list[float]]], interval: float) -> list[str]:
    """The table: one row per measured series; the ratio column compares each mode's headline
    series with its baseline from this same run."""
    out = ["| phase | what | n | p50 | p99 | mean | ratio |", "|---|---|---:|---:|---:|---:|---:|"]
    base = results.get("baseline", {}).get("total")
    drift_base = results.get("drift", {}).get("watch event (from PATCH sent)")
    labels = {"baseline": "commit -> applied by hand (git fetch + apply PATCH + watch)",
              "webhook": "commit -> applied, webhook (incl. its POST)",
              "polling": f"commit -> applied, polling every {interval:g} s",
              "drift": "drift PATCH returned -> Git's value back on the watch"}
    for phase, series in results.items():
        for what, xs in series.items():
            ratio = ""
            if what == "total" and phase == "polling":
                ratio = f"mean / interval {statistics.fmean(xs) / interval:.2f}"
            elif what == "total" and phase == "drift" and drift_base:
                ratio = f"p50 / one write seen {pct(xs, 50) / pct(drift_base, 50):.2f}"
            elif what == "total" and base:
                ratio = f"p50 / baseline {pct(xs, 50) / pct(base, 50):.2f}"
            label = labels[phase] if what == "total" else f"... {what}"
            out.append(f"| {phase} | {label} | {len(xs)} | {ms(pct(xs, 50))} | {ms(pct(xs, 99))} "
                       f"| {ms(statistics.fmean(xs))} | {ratio} |")
    out += ["", "| target | measured | verdict |", "|---|---:|---|"]
    if "webhook" in results:
        w = results["webhook"]["total"]
        out.append(f"| webhook p50 < 1 s | {ms(pct(w, 50))} | {verdict(pct(w, 50) < TARGETS['webhook p50'])} |")
        out.append(f"| webhook p99 < 3 s | {ms(pct(w, 99))} | {verdict(pct(w, 99) < TARGETS['webhook p99'])} |")
    if "polling" in results:
        share = statistics.fmean(results["polling"]["total"]) / interval
        out.append(f"| polling mean <= 0.6 x interval ({interval:g} s) | {share:.2f} x "
                   f"({ms(statistics.fmean(results['polling']['total']))}) "
                   f"| {verdict(share <= TARGETS['polling mean/interval'])} |")
    if "drift" in results:
        d = results["drift"]["total"]
        out.append(f"| drift corrected p50 < 2 s | {ms(pct(d, 50))} | {verdict(pct(d, 50) < TARGETS['drift p50'])} |")
    return out


# ---------------------------------------------------------------------------- main
async def run(args: argparse.Namespace, api_url: str, webhook_url: str, tmp: Path) -> dict[str, dict[str, list[float]]]:
    async with ApiClient(api_url, timeout=60) as client, aiohttp.ClientSession() as http:
        await client.create(("v1", "namespaces"), {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": NAMESPACE}})
        cms, syncs = Watch(client, CONFIGMAPS), Watch(client, GITSYNCS)
        await cms.start()
        await syncs.start()
        b = Bench(client, http, tmp, webhook_url, cms, syncs, verbose=args.verbose)
        try:
            for phase in args.phases:
                if phase == "baseline":
                    await b.baseline(args.commits)
                elif phase == "webhook":
                    await b.webhook(args.commits)
                elif phase == "polling":
                    await b.polling(args.commits, args.interval)
                elif phase == "drift":
                    await b.drift(args.drifts)
        finally:
            await cms.stop()
            await syncs.stop()
        return b.results


async def wait_ready(api_url: str, webhook_url: str, gitops: ComponentProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            if gitops.proc.poll() is not None:
                raise SystemExit(f"minik8s gitops died:\n{gitops.logs()[-3000:]}")
            try:
                async with http.get(f"{api_url}/apis/gitops.minik8s.io/v1/gitsyncs") as r1, \
                        http.get(f"{webhook_url}/healthz") as r2:
                    if r1.status == 200 and r2.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"minik8s gitops not ready after {timeout:g}s:\n{gitops.logs()[-3000:]}")
            await asyncio.sleep(0.1)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None,
                                epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    phases = ("baseline", "webhook", "polling", "drift")
    p.add_argument("--commits", type=int, default=20, help="commits per mode (webhook, polling, baseline; default 20)")
    p.add_argument("--drifts", type=int, default=20, help="drifted ConfigMaps (default 20)")
    p.add_argument("--interval", type=float, default=5.0, help="poll interval of the polling mode, seconds (default 5)")
    p.add_argument("--phases", nargs="+", choices=phases, default=list(phases), help="which phases, in order")
    p.add_argument("--gitops-log-level", default="info", help="minik8s gitops --log-level (default info)")
    p.add_argument("--verbose", action="store_true", help="print every polling sample")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory and the logs")
    args = p.parse_args(argv)
    if min(args.commits, args.drifts) < 1:
        p.error("--commits and --drifts must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    info = machine()
    print(f"minik8s gitops latency benchmark, {dt.datetime.now().astimezone().isoformat(timespec='seconds')}")
    for k, v in info.items():
        print(f"  {k:<7} {v}")
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    print(f"  git     {git_version}")
    print(f"  load    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min) at the start")
    print(f"  command: {' '.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    started = time.monotonic()
    results = measure(argv)
    print(f"  load    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min) at the end")
    print()
    lines = report(results, args.interval)
    print("\n".join(lines))
    print(f"\ntotal {time.monotonic() - started:.1f}s")
    if min(args.commits, args.drifts) < 20:
        print("note: fewer than 20 samples per mode: a quick check, not figures for bench/RESULTS.md")
    return 0 if not any("MISS" in line for line in lines) else 1


def measure(argv: list[str] | None = None) -> dict[str, dict[str, list[float]]]:
    """The benchmark with these command-line flags: seconds per phase and series (``python -m bench``)."""
    args = parse(argv)
    tmp = Path(tempfile.mkdtemp(prefix="minik8s-bench-gitops-"))
    etcd = Etcd.start()
    api: ApiServerProcess | None = None
    gitops: ComponentProcess | None = None
    try:
        api = ApiServerProcess.start(etcd.url)
        port = free_port()
        gitops = ComponentProcess.start("gitops", "--server", api.url, "--cache-dir", str(tmp / "mirrors"),
                                        "--webhook-bind-address", "127.0.0.1", "--webhook-port", str(port),
                                        log_level=args.gitops_log_level)
        webhook_url = f"http://127.0.0.1:{port}"
        asyncio.run(wait_ready(api.url, webhook_url, gitops))
        print(f"  gitops pid {gitops.proc.pid} (log {gitops.log}), apiserver pid {api.proc.pid} (log {api.log})", flush=True)
        results = asyncio.run(run(args, api.url, webhook_url, tmp))
    except BaseException:
        if gitops is not None:
            print(f"--- minik8s gitops log (tail):\n{gitops.logs()[-4000:]}", file=sys.stderr)
        raise
    finally:
        if gitops is not None:
            gitops.stop()
        if api is not None:
            api.stop()
        etcd.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
            for proc in (gitops, api):
                if proc is not None:
                    proc.log.unlink(missing_ok=True)
    return results


if __name__ == "__main__":
    sys.exit(main())
