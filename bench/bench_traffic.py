"""Requests per second and latency through a Service's ClusterIP, its DNS name, a NodePort and the
Ingress, against the pods' own IPs in the same run (issue 11).

Data flow: a whole cluster on this machine (tests/e2e/trafficcluster.py: etcd, apiserver,
scheduler, controller-manager, two Docker kubelets, ``minik8s dns``, ``minik8s proxy``,
``minik8s ingress``) -> one namespace holding
  - Deployment ``web``: 2 replicas of ``minik8s/minik8s:dev`` running a tiny aiohttp server (uvloop)
    that answers ``GET /`` on 8080 with its pod name (HTTP/1.1 keep-alive, Content-Length);
  - Service ``web``, type NodePort, port 80 -> 8080 (so it has a ClusterIP and a NodePort);
  - Ingress ``web``: host ``bench.test`` -> Service ``web`` port 80;
  - Pod ``client``: the same image, sleeping; the in-pod load runs in it through ``docker exec``.
-> the load generator below (raw asyncio + uvloop, no HTTP library: a closed loop of C keep-alive
connections, each sending ``GET /`` and reading the whole response before the next; W seconds of
warm-up, then T seconds counted; a request counts when it started inside the window) against each
path, one after the other:

  in the client pod (its network namespace, as an application in a pod sees it):
    pod-direct   the pods' IPs, port 8080; connection i goes to pod i mod 2        (baseline a-c)
    clusterip    the ClusterIP, port 80: DNAT by the kubelet's nftables rules in the pod
    dns-name     ``web`` (search path, ndots:5 -> the ClusterIP), port 80; the name is resolved
                 once per connection (keep-alive), so this is the ClusterIP plus C lookups
  from the host:
    host-direct  the pods' IPs, port 8080, through the Docker bridge                 (baseline d-f)
    ingress      127.0.0.1:<ingress port>, ``Host: bench.test``: minik8s ingress (aiohttp proxy)
    nodeport     127.0.0.1:<nodePort>: minik8s proxy's user-space TCP relay

``--fresh`` adds three rows with one new connection per request (``Connection: close``): pod
IPs, the ClusterIP and the DNS name from the pod (the last one resolves ``web`` for every request).

Then (unless ``--no-scale``) the endpoint-change time: scale ``web`` to 3 and time, on the same
clock (the host's; containers share its kernel), the scale request, the new pod seen Ready in the
API, its endpoint in the EndpointSlice, and the first answer from the new pod through the ClusterIP
seen by a probe in the client pod that opens a new connection every 10 ms.

Percentiles are nearest-rank over every counted request. Run:
``.venv/bin/python bench/bench_traffic.py [--duration 10] [--warmup 1] [--connections 16] [--fresh]
[--keep]``; the default run takes about 2 minutes. Everything is removed at the end (the
processes it started, by pid, the containers, the network and the temporary directory) unless
``--keep``, which leaves the cluster up until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The kubelets use the local busybox image as their pods' sandbox (the default would be pulled from
# a registry); tests/conftest.py sets this for pytest runs, a benchmark must set it itself.
os.environ.setdefault("MINIK8S_SANDBOX_IMAGE", "minik8s/busybox:1")

from bench.bench_apiserver import machine  # noqa: E402
from tests.dockertest import checked_runtime  # noqa: E402  (the engine, as the e2e tests reach it)
from tests.e2e.trafficcluster import TrafficCluster, client_pod  # noqa: E402

IMAGE = "minik8s/minik8s:dev"
HOST = "bench.test"

SERVER = r"""
import socket, uvloop
from aiohttp import web
name = socket.gethostname().encode()
async def hello(request):
    return web.Response(body=name, content_type="text/plain")
app = web.Application()
app.router.add_get("/", hello)
uvloop.install()
web.run_app(app, port=8080, access_log=None, print=None)
"""

# The load generator: runs as ``python3 -c LOADGEN <json args>`` in the client pod and on the host.
# Prints one JSON line: counted requests, req/s, latency percentiles, errors, answers per backend.
LOADGEN = r"""
import asyncio, json, math, sys, time
try:
    import uvloop
    uvloop.install()
except ImportError:
    pass
a = json.loads(sys.argv[1])
targets, conns, warm, dur = a["targets"], a["connections"], a["warmup"], a["duration"]
fresh, host = a.get("fresh", False), a.get("host")
lat, answers, errors = [], {}, {}

def request(hostname):
    h = host or hostname
    c = b"close" if fresh else b"keep-alive"
    return b"GET / HTTP/1.1\r\nHost: " + h.encode() + b"\r\nConnection: " + c + b"\r\nUser-Agent: bench\r\n\r\n"

async def response(r):
    head = await r.readuntil(b"\r\n\r\n")
    length, chunked, close = None, False, False
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ", 2)[1]
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        k, v = k.strip().lower(), v.strip().lower()
        if k == b"content-length":
            length = int(v)
        elif k == b"transfer-encoding" and b"chunked" in v:
            chunked = True
        elif k == b"connection" and v == b"close":
            close = True
    if chunked:
        body = b""
        while True:
            size = int((await r.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await r.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the empty line
                    pass
                return status, body, close
            body += (await r.readexactly(size + 2))[:-2]
    if length is None:
        return status, await r.read(), True
    return status, await r.readexactly(length), close

def error(e):
    k = type(e).__name__ + ": " + str(e)[:80]
    errors[k] = errors.get(k, 0) + 1

async def worker(i, start, stop):
    hostname, port = targets[i % len(targets)]
    req = request(hostname)
    r = w = None
    while time.monotonic() < stop:
        try:
            t0 = time.monotonic()
            if w is None:
                r, w = await asyncio.open_connection(hostname, port)
            w.write(req)
            status, body, close = await response(r)
            t1 = time.monotonic()
            if t0 >= start and t0 < stop:
                if status == b"200":
                    lat.append(t1 - t0)
                    answers[body.decode(errors="replace")] = answers.get(body.decode(errors="replace"), 0) + 1
                else:
                    error(RuntimeError("HTTP " + status.decode()))
            if close or fresh:
                w.close()
                r = w = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError) as e:
            if time.monotonic() >= start:
                error(e)
            if w is not None:
                w.close()
            r = w = None
            await asyncio.sleep(0.01)
    if w is not None:
        w.close()

async def main():
    cpu0, wall0 = time.process_time(), time.monotonic()
    start = time.monotonic() + warm
    stop = start + dur
    await asyncio.gather(*(worker(i, start, stop) for i in range(conns)))
    lat.sort()
    def pct(p):
        return lat[max(0, math.ceil(p / 100 * len(lat)) - 1)] * 1000 if lat else float("nan")
    print(json.dumps({"n": len(lat), "rps": len(lat) / dur, "p50": pct(50), "p99": pct(99),
                      "mean": sum(lat) / len(lat) * 1000 if lat else float("nan"),
                      "errors": sum(errors.values()), "error_kinds": errors, "answers": answers,
                      "cpu": (time.process_time() - cpu0) / (time.monotonic() - wall0)}))

asyncio.run(main())
"""

# The endpoint-change probe (in the client pod): a new connection to the ClusterIP every 10 ms until
# one is answered by a pod not in ``known``; prints the host-clock time of that answer.
PROBE = r"""
import json, socket, sys, time
a = json.loads(sys.argv[1])
ip, known, deadline = a["ip"], set(a["known"]), time.time() + a["timeout"]
first = None
n = 0
while time.time() < deadline:
    n += 1
    try:
        s = socket.create_connection((ip, 80), timeout=1)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        body = data.split(b"\r\n\r\n", 1)[1].decode()
        if body and body not in known:
            print(json.dumps({"t": time.time(), "pod": body, "probes": n}))
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.01)
print(json.dumps({"t": None, "probes": n}))
"""


# One ``getaddrinfo("web", 80)`` at a time (AF_UNSPEC: A and AAAA, as the load generator's
# connections do), through the pod's resolv.conf (Docker's 127.0.0.11 -> kube-dns ClusterIP -> minik8s dns).
LOOKUPS = r"""
import json, math, socket, sys, time
n = int(sys.argv[1])
ts = []
for _ in range(n):
    t = time.monotonic()
    socket.getaddrinfo("web", 80, 0, socket.SOCK_STREAM)
    ts.append(time.monotonic() - t)
ts.sort()
pct = lambda p: ts[max(0, math.ceil(p / 100 * n) - 1)] * 1000
print(json.dumps({"n": n, "p50": pct(50), "p99": pct(99), "per_s": n / sum(ts)}))
"""


def manifests(ns: str) -> str:
    server = json.dumps(["python3", "-c", SERVER])
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: {IMAGE}
        command: {server}
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe:
          tcpSocket: {{port: http}}
          periodSeconds: 1
          failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {ns}}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: web, namespace: {ns}}}
spec:
  rules:
  - host: {HOST}
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
"""


def client_manifest(ns: str) -> str:
    # The helper's busybox client, with the Python image and a sleep that needs no shell.
    return client_pod(ns, image=IMAGE).replace(
        """command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]""",
        """command: ["python3", "-c", "import signal, sys; signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); signal.pause()"]""")


def load_in_pod(c: TrafficCluster, ns: str, args: dict[str, Any]) -> dict[str, Any]:
    cid = c.container(ns, "client")
    res = c.rt.exec(cid, ["python3", "-c", LOADGEN, json.dumps(args)],
                    timeout=args["warmup"] + args["duration"] + 60)
    out = res.output.decode(errors="replace")
    if res.exit_code != 0:
        raise RuntimeError(f"in-pod load generator failed ({res.exit_code}):\n{out[-3000:]}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def load_on_host(args: dict[str, Any]) -> dict[str, Any]:
    p = subprocess.run([sys.executable, "-c", LOADGEN, json.dumps(args)], capture_output=True, text=True,
                       timeout=args["warmup"] + args["duration"] + 60)
    if p.returncode != 0:
        raise RuntimeError(f"host load generator failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return dict(json.loads(p.stdout.strip().splitlines()[-1]))


def endpoints(c: TrafficCluster, ns: str) -> list[str]:
    items = c.http.get(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
                       params={"labelSelector": "kubernetes.io/service-name=web"}).json()["items"]
    return sorted(a for s in items for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")
                  for a in e.get("addresses") or [])


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs so far, from /proc/stat."""
    v = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


class CpuMeter:
    """CPU used by the cluster's processes, the backends and dockerd during one load run, in % of one
    core over the run's wall time (warm-up included), plus the whole machine's busy %."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def __enter__(self) -> "CpuMeter":
        self.t0 = time.monotonic()
        self.m0 = machine_busy()
        self.c0 = {k: cpu_seconds(p) for k, p in self.pids.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self.t0
        m1 = machine_busy()
        self.machine = 100 * (m1[0] - self.m0[0]) / max(1, m1[1] - self.m0[1])
        self.used = {k: 100 * (cpu_seconds(p) - self.c0[k]) / wall for k, p in self.pids.items()}


def wait_for_interrupt() -> None:
    """``--keep``: sleep until Ctrl-C or SIGTERM (also when the benchmark runs in the background)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine_line() -> str:
    m = machine()
    try:
        docker_v = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                                  text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        docker_v = "unknown"
    return (f"{m['cpu']}, {m['cores']}, {m['memory']}, {m['python']}, {m['os']}, Docker {docker_v}, "
            f"load average {loadavg()}")


def scale_timing(c: TrafficCluster, ns: str, cluster_ip: str, known: list[str]) -> dict[str, float | None]:
    """Scales web to 3; times Ready, EndpointSlice and first answer through the ClusterIP (host clock)."""
    probe: dict[str, Any] = {}

    def run_probe() -> None:
        cid = c.container(ns, "client")
        res = c.rt.exec(cid, ["python3", "-c", PROBE, json.dumps({"ip": cluster_ip, "known": known, "timeout": 60})],
                        timeout=75)
        probe.update(json.loads(res.output.decode(errors="replace").strip().splitlines()[-1]))

    t = threading.Thread(target=run_probe)
    t.start()
    time.sleep(1.0)  # the probe is running (python3 started) before the scale
    before = endpoints(c, ns)
    t_scale = time.time()
    r = c.http.patch(f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale", json={"spec": {"replicas": 3}},
                     headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    t_ready = t_slice = None
    deadline = time.monotonic() + 60
    while (t_ready is None or t_slice is None) and time.monotonic() < deadline:
        now = time.time()
        if t_ready is None and len(c.ready_pods(ns, "app=web")) >= 3:
            t_ready = now
        if t_slice is None and len(endpoints(c, ns)) > len(before):
            t_slice = now
        time.sleep(0.02)
    t.join(80)
    t_seen = probe.get("t")
    return {"ready": None if t_ready is None else t_ready - t_scale,
            "slice": None if t_slice is None else t_slice - t_scale,
            "reached": None if t_seen is None else t_seen - t_scale,
            "probes": probe.get("probes")}


def container_pid(container_id: str) -> int:
    out = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", container_id], capture_output=True, text=True,
                         timeout=20).stdout.strip()
    return int(out or 0)


def cpu_note(res: dict[str, Any], meter: CpuMeter) -> str:
    """``gen 97, web 61+58, ingress 99, ...``: who was busy (>= 3 % of a core), then the machine."""
    parts = [f"gen {100 * res['cpu']:.0f}"]
    web = [v for k, v in sorted(meter.used.items()) if k.startswith("web")]
    parts.append("web " + "+".join(f"{v:.0f}" for v in web))
    parts += [f"{k} {v:.0f}" for k, v in meter.used.items() if not k.startswith("web") and v >= 3]
    return ", ".join(parts) + f"; machine {meter.machine:.0f} % busy"


def fmt_ms(v: float) -> str:
    return "-" if v != v else f"{v:,.2f}"  # NaN -> "-"


Rows = list[tuple[str, str, dict[str, Any]]]  # (path key, label, one round's load result)


def bench(args: argparse.Namespace) -> tuple[Rows, dict[str, Any] | None, dict[str, Any] | None]:
    """Runs the paths; (the rounds' rows, the scale timing, the lookups) for ``report``."""
    os.environ.setdefault("MINIK8S_TEST_IMAGE", "minik8s/busybox:1")
    rt = checked_runtime()
    for image in (IMAGE, "minik8s/busybox:1"):
        if not rt.image_present(image):
            raise SystemExit(f"{image} is missing: run scripts/build-images --offline (minik8s, busybox)")
    print("machine:", machine_line(), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-traffic-"))
    started = time.monotonic()
    c = TrafficCluster(tmp, rt)
    rows: list[tuple[str, str, dict[str, Any]]] = []
    scale: dict[str, Any] | None = None
    lookups: dict[str, Any] | None = None
    try:
        c.wait("both nodes Ready", lambda: (lambda items: len(items) == len(c.nodes) and all(
            any(x["type"] == "Ready" and x["status"] == "True" for x in n["status"].get("conditions") or [])
            for n in items))(c.http.get("/api/v1/nodes").json().get("items") or []), 60)
        ns = c.namespace()
        c.apply(manifests(ns))
        c.apply(client_manifest(ns))
        pods = c.wait("2 ready web pods", lambda: (lambda p: p if len(p) == 2 else None)(
            c.ready_pods(ns, "app=web")), 90)
        c.wait("the client pod running", lambda: any(p["metadata"]["name"] == "client"
                                                     for p in c.ready_pods(ns, "")), 60)
        pod_ips = sorted(p["status"]["podIP"] for p in pods)
        names = sorted(p["metadata"]["name"] for p in pods)
        c.wait("both endpoints ready", lambda: endpoints(c, ns) == pod_ips, 30)
        svc = c.get(f"/api/v1/namespaces/{ns}/services/web")
        cluster_ip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
        # Every path answers once before it is measured (the proxy's listener, the ingress' routes).
        import httpx
        with httpx.Client(timeout=2) as h:
            c.wait("the ingress routing bench.test", lambda: h.get(
                f"http://127.0.0.1:{c.ingress_port}/", headers={"Host": HOST}).status_code == 200, 30)
            c.wait("the NodePort answering", lambda: h.get(f"http://127.0.0.1:{node_port}/").status_code == 200, 30)
        c.wait("the ClusterIP answering in the pod", lambda: c.sh(
            ns, "client", f"python3 -c \"import urllib.request as u; u.urlopen('http://{cluster_ip}/', timeout=2)\"",
            timeout=10)[0] == 0, 30)
        print(f"cluster up in {time.monotonic() - started:.1f} s: pods {dict(zip(names, pod_ips))}, ClusterIP "
              f"{cluster_ip}, NodePort {node_port}, ingress 127.0.0.1:{c.ingress_port}; load average {loadavg()}",
              flush=True)

        pids: dict[str, int] = {f"web{i + 1}": container_pid(c.container(ns, n)) for i, n in enumerate(names)}
        kubelets = 0
        for p in c.procs:
            if p.name == "kubelet":
                kubelets += 1
            pids[p.name if p.name != "kubelet" else f"kubelet{kubelets}"] = p.proc.pid
        pids["apiserver"] = c.api.proc.pid
        dockerd = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True).stdout.split()
        if dockerd:
            pids["dockerd"] = int(dockerd[0])
        base = {"connections": args.connections, "warmup": args.warmup, "duration": args.duration}
        direct = [[ip, 8080] for ip in pod_ips]
        plan: list[tuple[str, str, str, dict[str, Any]]] = [
            ("pod-direct", "pod", "pod: pod IPs :8080 (baseline)", {"targets": direct}),
            ("clusterip", "pod", "pod: ClusterIP :80 (nftables DNAT in the pod)", {"targets": [[cluster_ip, 80]]}),
            ("dns-name", "pod", "pod: http://web/ (DNS -> ClusterIP)", {"targets": [["web", 80]]}),
            ("host-direct", "host", "host: pod IPs :8080 (baseline)", {"targets": direct}),
            ("ingress", "host", "host: Ingress 127.0.0.1 Host: bench.test",
             {"targets": [["127.0.0.1", c.ingress_port]], "host": HOST}),
            ("nodeport", "host", "host: NodePort 127.0.0.1 (user-space relay)",
             {"targets": [["127.0.0.1", node_port]]}),
        ]
        if args.fresh:
            plan += [
                ("fresh-direct", "pod", "pod, new conn/request: pod IPs (baseline)", {"targets": direct, "fresh": True}),
                ("fresh-clusterip", "pod", "pod, new conn/request: ClusterIP",
                 {"targets": [[cluster_ip, 80]], "fresh": True}),
                ("fresh-dns", "pod", "pod, new conn/request: web (lookup each)",
                 {"targets": [["web", 80]], "fresh": True}),
            ]
        for rnd in range(args.rounds):
            for key, where, label, extra in plan:
                if args.paths and key not in args.paths:
                    continue
                a = {**base, **extra}
                with CpuMeter(pids) as meter:
                    res = load_in_pod(c, ns, a) if where == "pod" else load_on_host(a)
                res["cpu_note"] = cpu_note(res, meter)
                rows.append((key, label, res))
                print(f"round {rnd + 1} {label:<48} {res['rps']:9,.0f} req/s  p50 {fmt_ms(res['p50'])} ms  "
                      f"p99 {fmt_ms(res['p99'])} ms  errors {res['errors']}  answers "
                      f"{sorted(res['answers'].values())}  load {loadavg()}\n    cpu % of a core: {res['cpu_note']}",
                      flush=True)
                if res["errors"]:
                    print(f"  errors: {res['error_kinds']}", flush=True)
        if args.fresh:
            r = c.rt.exec(c.container(ns, "client"), ["python3", "-c", LOOKUPS, "300"], timeout=60)
            lookups = json.loads(r.output.decode(errors="replace").strip().splitlines()[-1])
            print(f"getaddrinfo('web') one at a time in the pod: {lookups}", flush=True)
        if not args.no_scale:
            scale = scale_timing(c, ns, cluster_ip, names)
            print(f"scale 2 -> 3: {scale}", flush=True)
        print(f"run took {time.monotonic() - started:.0f} s; load average {loadavg()}")
        if args.keep:
            print(f"--keep: cluster up (apiserver {c.url}, kubeconfig {c.kubeconfig}, namespace {ns}); "
                  "Ctrl-C stops it", flush=True)
            wait_for_interrupt()
    except Exception:
        print(c.diagnostics()[-6000:], file=sys.stderr)
        raise
    finally:
        c.stop()
        rt.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows, scale, lookups


def report(args: argparse.Namespace, rows: list[tuple[str, str, dict[str, Any]]], scale: dict[str, Any] | None,
           lookups: dict[str, Any] | None) -> None:
    """The table: per path, the median over the rounds of req/s, p50 and p99 (each round's req/s listed)."""
    keys: list[str] = []
    labels: dict[str, str] = {}
    runs: dict[str, list[dict[str, Any]]] = {}
    for key, label, r in rows:
        if key not in runs:
            keys.append(key)
            labels[key] = label
        runs.setdefault(key, []).append(r)
    med = {k: {m: statistics.median(r[m] for r in rs) for m in ("rps", "p50", "p99")} for k, rs in runs.items()}

    def baseline(key: str) -> str:
        if key.startswith("fresh"):
            return "fresh-direct"
        return "pod-direct" if labels[key].startswith("pod") else "host-direct"

    print()
    print(f"{args.connections} connections per path, {args.warmup:g} s warm-up + {args.duration:g} s counted, "
          f"{args.rounds} round(s); medians over the rounds")
    print("| path | req/s | req/s per round | p50 ms | p99 ms | req/s vs direct | p50 vs direct | errors | "
          "answers per pod | CPU % of a core (last round) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for key in keys:
        m, rs = med[key], runs[key]
        b = med.get(baseline(key))
        ratio = f"{m['rps'] / b['rps']:.2f}" if b and b["rps"] else "-"
        lratio = f"{m['p50'] / b['p50']:.2f}" if b and b["p50"] == b["p50"] and b["p50"] else "-"
        answers: dict[str, int] = {}
        for r in rs:
            for name, n in r["answers"].items():
                answers[name] = answers.get(name, 0) + n
        total = sum(answers.values()) or 1
        share = " / ".join(f"{100 * n / total:.0f} %" for _, n in sorted(answers.items()))
        per_round = ", ".join(f"{r['rps']:,.0f}" for r in rs)
        print(f"| {labels[key]} | {m['rps']:,.0f} | {per_round} | {fmt_ms(m['p50'])} | {fmt_ms(m['p99'])} | {ratio} | "
              f"{lratio} | {sum(r['errors'] for r in rs)} | {share} | {rs[-1]['cpu_note']} |")
    if lookups is not None:
        print()
        print(f"getaddrinfo('web') in the client pod, one at a time ({lookups['n']}): p50 {lookups['p50']:.2f} ms, "
              f"p99 {lookups['p99']:.2f} ms, {lookups['per_s']:,.0f} lookups/s")
    if scale is not None:
        def s(v: float | None) -> str:
            return "never" if v is None else f"{v * 1000:,.0f} ms"
        print()
        print("| endpoint change (scale 2 -> 3), from the scale request | time |")
        print("|---|---:|")
        print(f"| new pod Ready in the API | {s(scale['ready'])} |")
        print(f"| its address ready in the EndpointSlice | {s(scale['slice'])} |")
        print(f"| first answer from it through the ClusterIP in the client pod | {s(scale['reached'])} |")
        if scale["reached"] is not None and scale["slice"] is not None:
            print(f"| ... after the EndpointSlice | {(scale['reached'] - scale['slice']) * 1000:,.0f} ms |")


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--duration", type=float, default=8, help="seconds counted per path")
    ap.add_argument("--warmup", type=float, default=1, help="seconds of uncounted load before each path")
    ap.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    ap.add_argument("--rounds", type=int, default=2, help="times the whole list of paths is run (medians reported)")
    ap.add_argument("--fresh", action="store_true", help="also one new connection per request (pod-side paths)")
    ap.add_argument("--no-scale", action="store_true", help="skip the endpoint-change timing")
    ap.add_argument("--paths", nargs="*", help="only these paths (pod-direct clusterip dns-name host-direct "
                                               "ingress nodeport fresh-direct fresh-clusterip fresh-dns)")
    ap.add_argument("--keep", action="store_true", help="leave the cluster up at the end until Ctrl-C")
    return ap.parse_args(argv)


def measure(argv: list[str] | None = None) -> tuple[Rows, dict[str, Any] | None, dict[str, Any] | None]:
    """The benchmark with these command-line flags (``python -m bench`` calls this)."""
    return bench(parse(argv))


def main() -> None:
    args = parse(None)
    report(args, *bench(args))


if __name__ == "__main__":
    main()
