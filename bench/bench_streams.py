"""What exec and port-forward through the API server and the kubelet cost, against Docker and the
pod's own IP on the same container in the same run (issue 13).

Data flow: a whole cluster on this machine (tests/e2e/dockercluster.py's DockerCluster: etcd,
apiserver, scheduler, controller-manager, one Docker kubelet on a test network) -> one pod ``web``
of ``minik8s/busybox:1`` that writes ``/www/index.html`` (``--small`` bytes) and ``/www/big``
(``--big-mb`` MB) and runs ``httpd -f -p 8080 -h /www`` (one connection per request: busybox httpd
does no keep-alive) -> then, one after the other:

  exec latency     ``kubectl exec web -- true`` (kubectl -> WebSocket v5.channel.k8s.io -> apiserver
                   relay -> kubelet -> Docker exec) against ``docker exec CONTAINER true`` on the same
                   container, ``--runs`` each, interleaved; plus ``kubectl get pod web`` (kubectl's
                   own start and one API request: the part of the exec time that is not the stream),
                   ``mkctl exec`` when mkctl has it, and in one process: the official client's
                   ``stream(connect_get_namespaced_pod_exec)`` against the Docker SDK's exec.
  exec throughput  ``kubectl exec web -- cat /www/big`` against ``docker exec CONTAINER cat /www/big``,
                   stdout read to the end and counted (MB/s from process start to exit).
  port-forward     ``kubectl port-forward pod/web LOCAL:8080`` (and ``mkctl port-forward`` when mkctl
                   has it); bench_traffic's load generator on the host, one new connection per request,
                   1 and ``--connections`` at a time, ``GET /`` through 127.0.0.1:LOCAL against the pod
                   IP directly through the Docker bridge, interleaved; the download rate of ``/big``
                   through the forward against direct; how long the server's close takes to reach the
                   client through the forward; and in this process (bench.forwardclients), one v4
                   port-forward WebSocket per GET through the API server against straight to the
                   kubelet (with the API server's bearer token): the relay's share. The CPU of the
                   apiserver, the kubelet, the forwarder and dockerd during each load run is measured
                   (bench_traffic.CpuMeter); ``--profile`` records the apiserver and the kubelet with
                   py-spy (bench.pyspy) during the concurrent kubectl forward run, the kubectl
                   downloads and the kubectl exec cat, and prints the functions that dominate.

Percentiles are nearest-rank. Run: ``.venv/bin/python bench/bench_streams.py [--runs 30]
[--duration 5] [--connections 16] [--big-mb 20] [--profile]``; a run takes about 2 minutes.
Everything is removed at the end (the processes it started, by pid, the pod's containers, the
network and the temporary directory).
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("MINIK8S_SANDBOX_IMAGE", "minik8s/busybox:1")  # no registry: the local sandbox

from bench.bench_pod_start import pct  # noqa: E402
from bench.bench_traffic import (  # noqa: E402
    CpuMeter, container_pid, fmt_ms, load_on_host, loadavg, machine_line, wait_for_interrupt,
)
from bench.forwardclients import Forward, download, get_through_forward  # noqa: E402
from bench.pyspy import Profiles  # noqa: E402
from cli.processes import free_port  # noqa: E402
from machinery import kubeletauth  # noqa: E402
from tests.dockertest import IMAGE, checked_runtime  # noqa: E402
from tests.e2e.dockercluster import DockerCluster, node_ready  # noqa: E402

POD = "web"
MKCTL = [sys.executable, "-m", "cli.mkctl"]  # this checkout's mkctl (env PYTHONPATH names it)


def pod_manifest(ns: str, *, small: int, big_mb: int) -> dict[str, Any]:
    script = (f"mkdir -p /www && head -c {small} /dev/zero | tr '\\0' x > /www/index.html && "
              f"dd if=/dev/urandom of=/www/big bs=1048576 count={big_mb} 2>/dev/null && "
              "exec httpd -f -p 8080 -h /www")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD, "namespace": ns},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                "name": "httpd", "image": IMAGE, "command": ["sh", "-c", script],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1, "failureThreshold": 1}}]}}


@dataclass(frozen=True)
class Row:
    """One line of the table: the minik8s path, its baseline, ratio = minik8s / baseline."""

    what: str
    ours: str
    base: str
    ratio: float | None


def timed(argv: list[str], env: dict[str, str] | None = None, *, timeout: float = 120) -> tuple[float, int, int, str]:
    """Runs ``argv`` to its end: (seconds from start to exit, exit code, stdout bytes, stderr tail)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert p.stdout is not None and p.stderr is not None
    n = 0
    while chunk := os.read(p.stdout.fileno(), 1 << 20):
        n += len(chunk)
    err = p.stderr.read()
    rc = p.wait(timeout)
    return time.monotonic() - t0, rc, n, err.decode(errors="replace")[-500:]


def repeat(cases: Mapping[str, Callable[[], object]], runs: int, failed: dict[str, str]) -> dict[str, list[float]]:
    """Each case once to warm up, then ``runs`` times interleaved (a, b, c, a, b, c ...) so machine noise
    hits all alike; seconds per run. A case that fails is dropped, its error kept in ``failed``."""
    out: dict[str, list[float]] = {}
    for k, fn in cases.items():
        try:
            fn()
            out[k] = []
        except Exception as e:  # noqa: BLE001 - a path that fails is reported, the rest measured
            failed[k] = f"{type(e).__name__}: {e}"
            print(f"!! {k} failed: {failed[k]}", file=sys.stderr, flush=True)
    for _ in range(runs):
        for k in out:
            t0 = time.monotonic()
            cases[k]()
            out[k].append(time.monotonic() - t0)
    return out


def checked(argv: list[str], env: dict[str, str] | None, *, out_bytes: int | None = None) -> Callable[[], object]:
    """A case that runs ``argv`` and fails loudly on a non-zero exit or a short output."""
    def run() -> None:
        _, rc, n, err = timed(argv, env)
        if rc != 0 or (out_bytes is not None and n != out_bytes):
            raise RuntimeError(f"{' '.join(argv)}: exit {rc}, {n} bytes of stdout (want {out_bytes}): {err}")
    return run


def compared(what: str, times: dict[str, list[float]], *, ours: str, base: str, failed: dict[str, str],
             rate: bool = False, ratio: bool = True) -> Row:
    """Case ``ours`` against case ``base``: latencies in seconds (p50 / p90), or rates in MB/s (the
    median, with the slowest and fastest run); the error in place of a case that failed."""
    def cell(k: str) -> str:
        v = times.get(k)
        if not v:
            return "failed: " + " ".join(failed.get(k, "not run").split())[:300]
        if rate:
            return f"{statistics.median(v):,.0f} MB/s ({min(v):,.0f}-{max(v):,.0f})"
        return f"p50 {statistics.median(v) * 1000:,.1f} / p90 {pct(v, 90) * 1000:,.1f} ms"
    both = ratio and times.get(ours) and times.get(base)
    return Row(what, cell(ours), cell(base),
               statistics.median(times[ours]) / statistics.median(times[base]) if both else None)


def has_verb(verb: str) -> bool:
    """Whether mkctl has ``verb`` yet."""
    return subprocess.run([*MKCTL, verb, "--help"], capture_output=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}).returncode == 0


def exec_rows(c: DockerCluster, ns: str, *, cid: str, env: dict[str, str], pids: dict[str, int],
              args: argparse.Namespace, big: int, tmp: Path) -> list[Row]:
    """Exec latency (kubectl, mkctl, the official client) and throughput against Docker's exec."""
    kexec = ["kubectl", "-n", ns, "exec", POD, "--"]
    mexec = [*MKCTL, "-n", ns, "exec", POD, "--"]
    dexec = ["docker", "exec", cid]
    mkctl = has_verb("exec")
    failed: dict[str, str] = {}
    cases = {"kubectl": checked([*kexec, "true"], env), "docker": checked([*dexec, "true"], None),
             "get": checked(["kubectl", "-n", ns, "get", "pod", POD, "-o", "name"], env)}
    if mkctl:
        cases["mkctl"] = checked([*mexec, "true"], env)
        cases["mkctl get"] = checked([*MKCTL, "-n", ns, "get", "pod", POD, "-o", "name"], env)
    lat = repeat(cases, args.runs, failed)
    rows = [compared("`kubectl exec web -- true` vs `docker exec C true`", lat, ours="kubectl", base="docker",
                     failed=failed),
            compared("`kubectl get pod web` (kubectl's start + 1 GET, for reference) vs `docker exec C true`", lat,
                     ours="get", base="docker", failed=failed)]
    if mkctl:
        rows.append(compared("`mkctl exec web -- true` vs `docker exec C true`", lat, ours="mkctl", base="docker",
                             failed=failed))
        rows.append(compared("`mkctl get pod web` (mkctl's start + 1 GET, for reference) vs `docker exec C true`", lat,
                             ours="mkctl get", base="docker", failed=failed))
    rows.append(in_process_exec(c, ns, cid=cid, runs=args.runs))
    tput = {"kubectl": checked([*kexec, "cat", "/www/big"], env, out_bytes=big),
            "docker": checked([*dexec, "cat", "/www/big"], None, out_bytes=big)}
    if mkctl:
        tput["mkctl"] = checked([*mexec, "cat", "/www/big"], env, out_bytes=big)
    mbs = {k: [big / 1e6 / s for s in v] for k, v in repeat(tput, args.tput_runs, failed).items()}
    if "kubectl" in mbs:
        with Profiles(pids, ("apiserver", "kubelet"), out=tmp, label="3 runs of kubectl exec cat /www/big",
                      enabled=args.profile):
            for _ in range(3):
                tput["kubectl"]()
    for who in [k for k in tput if k != "docker"]:
        rows.append(compared(f"`{who} exec web -- cat /www/big` ({big >> 20} MiB) vs `docker exec`", mbs, ours=who,
                             base="docker", failed=failed, rate=True))
    return rows


def in_process_exec(c: DockerCluster, ns: str, *, cid: str, runs: int) -> Row:
    """The official client's ``stream()`` exec against the Docker SDK's exec, both in this process."""
    from kubernetes import client as kclient, config as kconfig
    from kubernetes.stream import stream

    api = kclient.CoreV1Api(kconfig.new_client_from_config(str(c.kubeconfig)))

    def k8s() -> None:
        stream(api.connect_get_namespaced_pod_exec, POD, ns, command=["true"], stderr=True, stdin=False,
               stdout=True, tty=False)

    def docker() -> None:
        if c.rt.exec(cid, ["true"], timeout=30).exit_code != 0:
            raise RuntimeError("Docker SDK exec true failed")

    failed: dict[str, str] = {}
    t = repeat({"client": k8s, "docker": docker}, runs, failed)
    return compared("in one process: the official client's `stream()` exec true vs the Docker SDK's exec", t,
                    ours="client", base="docker", failed=failed)


def forward_rows(ns: str, pod_ip: str, *, env: dict[str, str], pids: dict[str, int], args: argparse.Namespace,
                 big: int, tmp: Path) -> list[Row]:
    """HTTP through ``port-forward`` (kubectl, and mkctl when it has it) against the pod IP directly,
    interleaved: at each concurrency the direct run, then each forward's."""
    argvs = {"kubectl": ["kubectl", "-n", ns, "port-forward", f"pod/{POD}"]}
    if has_verb("port-forward"):
        argvs["mkctl"] = [*MKCTL, "-n", ns, "port-forward", f"pod/{POD}"]
    levels = (1, args.connections)
    fwds: dict[str, Forward] = {}
    failed: dict[str, str] = {}
    for name, argv in argvs.items():
        try:
            fwds[name] = Forward(argv, env, port=free_port(), log=tmp / f"{name}-port-forward.log")
        except RuntimeError as e:
            failed[name] = str(e)
            print(f"!! {name} port-forward failed: {e}", file=sys.stderr, flush=True)
    try:
        res: dict[tuple[str, int], dict[str, Any]] = {}
        targets = {"direct": (pod_ip, 8080), **{k: ("127.0.0.1", f.port) for k, f in fwds.items()}}
        for conns in levels:
            for name, (host, port) in targets.items():
                extra = {name: fwds[name].proc.pid} if name in fwds else {}
                with CpuMeter({**pids, **extra}) as meter, Profiles(
                        pids, ("apiserver", "kubelet"), out=tmp, label=f"{conns} at a time through the {name} forward",
                        enabled=args.profile and conns > 1 and name == "kubectl"):
                    res[name, conns] = load_on_host({"fresh": True, "warmup": args.warmup, "duration": args.duration,
                                                     "targets": [[host, port]], "connections": conns})
                print(f"{name:>7} {conns:>2} at a time: {describe(res[name, conns], meter)}", flush=True)
        cases: dict[str, Callable[[], object]] = {"direct": partial(download, pod_ip, 8080, path="/big", size=big)}
        cases.update({name: partial(download, "127.0.0.1", f.port, path="/big", size=big) for name, f in fwds.items()})
        mbs = {k: [big / 1e6 / s for s in v] for k, v in repeat(cases, args.tput_runs, failed).items()}
        eof = {k: [download(*t, path="/", size=args.small, to_eof=True) for _ in range(3)] for k, t in targets.items()}
        if "kubectl" in mbs:
            with Profiles(pids, ("apiserver", "kubelet"), out=tmp,
                          label="3 downloads of /big through the kubectl forward", enabled=args.profile):
                for _ in range(3):
                    cases["kubectl"]()
    finally:
        for name, f in fwds.items():
            print(f"{name} port-forward's output (tail): {f.output()[-300:]!r}", flush=True)
            f.stop()
    rows: list[Row] = []
    for name in argvs:
        for conns in levels:
            base, r = res["direct", conns], res.get((name, conns))
            ours = http_cell(r) if r else "failed: " + " ".join(failed.get(name, "not run").split())[:300]
            rows.append(Row(f"{name} port-forward, {conns} at a time, `GET /` ({args.small} B) vs pod IP", ours,
                            http_cell(base), r["rps"] / base["rps"] if r and base["rps"] else None))
        rows.append(compared(f"{name} port-forward, `GET /big` ({big >> 20} MiB) vs pod IP", mbs, ours=name,
                             base="direct", failed=failed, rate=True))
        rows.append(compared(f"{name} port-forward: the server's close reaches the client after the answer's last "
                             "byte (3 runs) vs pod IP", eof, ours=name, base="direct", failed=failed, ratio=False))
    return rows


def ws_forward_rows(c: DockerCluster, ns: str, *, node: str, args: argparse.Namespace, big: int) -> list[Row]:
    """In this process, one v4 port-forward WebSocket per GET (bench.wsforward): through the API
    server against straight to the kubelet (with the API server's bearer token): the relay's share."""
    status = (c.get(f"/api/v1/nodes/{node}") or {}).get("status") or {}
    ip = next(a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP")
    kubelet = f"http://{ip}:{status['daemonEndpoints']['kubeletEndpoint']['Port']}"
    secret = c.get(f"/api/v1/namespaces/{kubeletauth.SECRET_NAMESPACE}/secrets/{kubeletauth.SECRET_NAME}") or {}
    token = base64.b64decode((secret.get("data") or {}).get(kubeletauth.TOKEN_KEY, "")).decode()
    paths = {"apiserver": (c.url, f"/api/v1/namespaces/{ns}/pods/{POD}/portforward", None),
             "kubelet": (kubelet, f"/portforward/{ns}/{POD}", token)}
    failed: dict[str, str] = {}
    small = {k: partial(get_through_forward, url, path, token=tok, request_path="/", size=args.small)
             for k, (url, path, tok) in paths.items()}
    lat = repeat(small, args.runs, failed)
    large = {k: partial(get_through_forward, url, path, token=tok, request_path="/big", size=big)
             for k, (url, path, tok) in paths.items()}
    mbs = {k: [big / 1e6 / s for s in v] for k, v in repeat(large, args.tput_runs, failed).items()}
    return [compared(f"in one process, a v4 port-forward WebSocket per `GET /` ({args.small} B): through the API "
                     "server vs straight to the kubelet", lat, ours="apiserver", base="kubelet", failed=failed),
            compared(f"in one process, v4 port-forward `GET /big` ({big >> 20} MiB): through the API server vs "
                     "straight to the kubelet", mbs, ours="apiserver", base="kubelet", failed=failed, rate=True)]


def http_cell(r: dict[str, Any]) -> str:
    errors = f", **{r['errors']} errors**" if r["errors"] else ""
    return f"{r['rps']:,.0f} req/s, p50 {fmt_ms(r['p50'])} / p99 {fmt_ms(r['p99'])} ms{errors}"


def describe(res: dict[str, Any], meter: CpuMeter) -> str:
    cpu = ", ".join(f"{k} {v:.0f}" for k, v in meter.used.items() if v >= 3)
    errors = f", errors {res['error_kinds']}" if res["errors"] else ""
    return (f"{res['rps']:,.0f} req/s, p50 {fmt_ms(res['p50'])} ms, p99 {fmt_ms(res['p99'])} ms{errors}; "
            f"cpu % of a core: load generator {100 * res['cpu']:.0f}, {cpu}; machine {meter.machine:.0f} % busy")


def report(rows: list[Row]) -> None:
    print()
    print("| measurement | minik8s | baseline | ratio minik8s/baseline |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r.what} | {r.ours} | {r.base} | {'-' if r.ratio is None else f'{r.ratio:.2f}'} |")


def bench(args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    """Runs the parts: (the table's rows, what failed)."""
    rt = checked_runtime()
    print("machine:", machine_line(), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    node = f"bench-streams-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    c = DockerCluster(tmp, rt, prefix="mk-bench-streams", label="bench-streams", docker_nodes=(node,))
    rows: list[Row] = []
    failed: list[str] = []
    try:
        c.wait(f"node {node} Ready", lambda: node_ready(c, node), 60)
        ns = c.namespace()
        r = c.http.post(f"/api/v1/namespaces/{ns}/pods", json=pod_manifest(ns, small=args.small, big_mb=args.big_mb))
        assert r.status_code == 201, r.text
        pod = c.wait("pod web Ready", lambda: ready(c.get(f"/api/v1/namespaces/{ns}/pods/{POD}")), 90)
        pod_ip = pod["status"]["podIP"]
        cid = pod["status"]["containerStatuses"][0]["containerID"].removeprefix("docker://")
        big = args.big_mb * 1048576
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(c.home), "KUBECONFIG": str(c.kubeconfig),
               "PYTHONPATH": str(ROOT)}
        print(f"cluster and pod up in {time.monotonic() - started:.1f} s: pod IP {pod_ip}, container {cid[:12]}; "
              f"load average {loadavg()}", flush=True)
        pids = {"apiserver": c.api.proc.pid, "httpd (parent)": container_pid(cid),
                **{p.name: p.proc.pid for p in c.procs if p.name == "kubelet"}}
        dockerd = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True).stdout.split()
        if dockerd:
            pids["dockerd"] = int(dockerd[0])
        for part in args.parts:
            try:
                if part == "exec":
                    rows += exec_rows(c, ns, cid=cid, env=env, pids=pids, args=args, big=big, tmp=tmp)
                else:
                    rows += forward_rows(ns, pod_ip, env=env, pids=pids, args=args, big=big, tmp=tmp)
                    rows += ws_forward_rows(c, ns, node=node, args=args, big=big)
            except Exception as e:  # noqa: BLE001 - say what failed, measure the rest
                failed.append(f"{part}: {type(e).__name__}: {e}")
                print(f"!! {failed[-1]}", file=sys.stderr, flush=True)
        print(f"run took {time.monotonic() - started:.0f} s; load average {loadavg()}", flush=True)
        if args.keep:
            print(f"--keep: cluster up (KUBECONFIG={c.kubeconfig}, namespace {ns}, pod {POD}); Ctrl-C stops it",
                  flush=True)
            wait_for_interrupt()
    except Exception:
        print(c.diagnostics()[-6000:], file=sys.stderr)
        raise
    finally:
        c.stop()
        rt.close()
        shutil.rmtree(tmp, ignore_errors=True)
    failed += [r.what for r in rows if r.ours.startswith("failed") or r.base.startswith("failed")]
    return rows, failed


def measure(argv: list[str] | None = None) -> tuple[list[Row], list[str]]:
    """The benchmark with these command-line flags (``python -m bench`` calls this)."""
    return bench(parse(argv))


def main() -> None:
    rows, failed = bench(parse(None))
    report(rows)
    if failed:
        print("\nfailed:\n" + "\n".join(failed))
        raise SystemExit(1)


def ready(pod: dict[str, Any] | None) -> dict[str, Any] | None:
    conditions = ((pod or {}).get("status") or {}).get("conditions") or []
    return pod if any(x["type"] == "Ready" and x["status"] == "True" for x in conditions) else None


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=30, help="exec latency runs per command")
    ap.add_argument("--tput-runs", type=int, default=5, help="large transfers per path (exec cat, forward GET)")
    ap.add_argument("--duration", type=float, default=5, help="seconds counted per HTTP load run")
    ap.add_argument("--warmup", type=float, default=1, help="seconds of uncounted load before each run")
    ap.add_argument("--connections", type=int, default=16, help="concurrent connections of the concurrent runs")
    ap.add_argument("--small", type=int, default=1024, help="bytes of /www/index.html")
    ap.add_argument("--big-mb", type=int, default=20, help="MiB of /www/big")
    ap.add_argument("--parts", nargs="*", default=["exec", "forward"], choices=["exec", "forward"])
    ap.add_argument("--profile", action="store_true",
                    help="py-spy the apiserver and the kubelet under exec and port-forward load")
    ap.add_argument("--keep", action="store_true", help="leave the cluster up at the end until Ctrl-C")
    return ap.parse_args(argv)


if __name__ == "__main__":
    main()
