"""Property-based fuzzing of the whole REST API from the OpenAPI documents the apiserver serves.

Data flow: ``/openapi/v3`` (index) -> one document per group-version -> merged into one
OpenAPI 3 schema -> ``schemathesis.openapi.from_dict`` -> one Hypothesis strategy per operation
and generation mode (positive: data the schema allows; negative: data it forbids) -> each case
is sent over HTTP to the session's real apiserver process -> checks:

* no response is a 5xx;
* every error response (>= 400) is a Kubernetes ``Status`` with ``kind: Status``,
  ``status: Failure`` and ``code`` equal to the HTTP status;
* rejected writes leave etcd unchanged: during the negative pass over mutating operations a
  keys-only snapshot of ``/registry/`` (key -> mod_revision) is read with aetcd before and after
  every request; a request answered with anything but 2xx must leave it identical, and the
  difference over the whole pass must be explained by the requests that were accepted.

Every ``{namespace}`` is pinned to the test's own namespace. Each operation that names an object
draws its ``{name}`` half the time from an object seeded beforehand (so replace, patch and delete
also meet existing objects, not only 404s) and half the time from the generator. Cluster-scoped
objects the run creates are deleted at the end; cluster-wide ``deletecollection`` is pinned to a
label selector that matches nothing, so the fuzzer cannot wipe other tests' namespaces.

Generation is derandomized (a fixed seed per operation), so a CI run is reproducible. Bodies of
the pod-template kinds are slow to generate (the schema is large), so those operations get fewer
examples; ``EXAMPLES`` sets the budget.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import aetcd
import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException
from schemathesis import GenerationMode

from apiserver.storage.etcd import parse_endpoint

pytestmark = pytest.mark.fuzz

# Examples per (operation, mode). Tuned so the whole test stays under ~4 minutes on 2 cores.
EXAMPLES = {"heavy": 2, "body": 4, "light": 8}
# The operations are split into this many tests (each with its own namespace, seeds and etcd
# snapshots), so a parallel run (tests/conftest.py: each test of this module is a unit of its own)
# spreads the fuzzing over its workers instead of holding one of them for the whole pass.
SHARDS = 3
# Request bodies whose generation dominates the run time (PodSpec is a large, deep schema).
HEAVY_BODIES = ("V1Pod", "V1Deployment", "V1ReplicaSet", "V1Endpoints", "V1Job", "V1CronJob", "V1DaemonSet",
                "V1StatefulSet", "V1ReplicationController", "V1PersistentVolume")
# The Service allocator's claims (apiserver/allocators.py): one key per ClusterIP and per NodePort.
ALLOCATION_PREFIXES = ("/registry/networking.k8s.io/ipaddresses/", "/registry/minik8s.io/servicenodeports/")
MUTATING = ("POST", "PUT", "PATCH", "DELETE")
NOTHING_SELECTOR = "minik8s-fuzz/never=matches"
REQUEST_TIMEOUT = 20.0
# The connect subresources relay to a kubelet, a pod or a Service's endpoints: a missing backend is
# Kubernetes' 503, and a fuzzed pod IP would send the API server's requests off this machine. Their
# own tests are tests/apiserver/test_streamproxy.py and test_httpproxy.py.
CONNECT_SUBRESOURCES = ("exec", "attach", "portforward", "proxy")


# ---------------------------------------------------------------------------- the schema
def merged_openapi(client: httpx.Client) -> dict[str, Any]:
    """All per-group-version documents of ``/openapi/v3`` as one OpenAPI document."""
    index = client.get("/openapi/v3")
    assert index.status_code == 200, index.text
    merged: dict[str, Any] = {"openapi": "3.0.0", "info": {"title": "minik8s (merged)", "version": "fuzz"},
                              "paths": {}, "components": {"schemas": {}}}
    for gv, entry in index.json()["paths"].items():
        r = client.get(entry["serverRelativeURL"])
        assert r.status_code == 200, (gv, r.text)
        doc = r.json()
        for path, item in doc["paths"].items():
            assert path not in merged["paths"], f"{path} is served by two group-versions"
            merged["paths"][path] = item
        merged["components"]["schemas"].update(doc.get("components", {}).get("schemas", {}))
    return merged


def seed_objects(ns: str, *, node: str, victim_ns: str) -> dict[str, dict[str, Any]]:
    """One valid object per collection path, so named operations also hit existing objects."""
    labels = {"app": "fz"}
    pod_spec = {"containers": [{"name": "c", "image": "busybox"}]}
    template = {"metadata": {"labels": labels}, "spec": pod_spec}
    meta = {"name": "fz", "namespace": ns, "labels": labels}
    return {
        "/api/v1/namespaces": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": victim_ns}},
        "/api/v1/nodes": {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}},
        f"/api/v1/namespaces/{ns}/pods": {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec},
        f"/api/v1/namespaces/{ns}/services": {"apiVersion": "v1", "kind": "Service", "metadata": meta,
                                              "spec": {"selector": labels, "ports": [{"port": 80}]}},
        f"/api/v1/namespaces/{ns}/endpoints": {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta},
        f"/api/v1/namespaces/{ns}/events": {"apiVersion": "v1", "kind": "Event", "metadata": meta,
                                            "involvedObject": {"kind": "Pod", "name": "fz", "namespace": ns},
                                            "reason": "Fuzz", "message": "seeded by the fuzz test"},
        f"/api/v1/namespaces/{ns}/configmaps": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                                                "data": {"k": "v"}},
        f"/apis/apps/v1/namespaces/{ns}/deployments": {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template}},
        f"/apis/apps/v1/namespaces/{ns}/replicasets": {
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta,
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template}},
        f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases": {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
            "spec": {"holderIdentity": "fz"}},
        f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses": {
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta,
            "spec": {"defaultBackend": {"service": {"name": "fz", "port": {"number": 80}}}}},
    }


def ensure_seeded(client: httpx.Client, seeds: dict[str, dict[str, Any]]) -> None:
    for path, body in seeds.items():
        r = client.post(path, json=body)
        assert r.status_code in (201, 409), (path, r.status_code, r.text)


# ---------------------------------------------------------------------------- etcd snapshots
class EtcdSnapshots:
    """Keys-only reads of ``/registry/`` through aetcd, driven from this synchronous test."""

    def __init__(self, url: str) -> None:
        host, port = parse_endpoint(url)
        self._loop = asyncio.new_event_loop()
        self._client = aetcd.Client(host=host, port=port)

    def take(self) -> dict[bytes, int]:
        async def read() -> dict[bytes, int]:
            res = await self._client.get_prefix(b"/registry/", keys_only=True)
            return {kv.key: kv.mod_revision for kv in res.kvs}
        return self._loop.run_until_complete(read())

    def terminating_namespaces(self) -> set[str]:
        """Namespaces with a deletionTimestamp: the apiserver's finalizer empties them in the background."""
        async def read() -> set[str]:
            res = await self._client.get_prefix(b"/registry/core/namespaces/")
            out = set()
            for kv in res.kvs:
                meta = json.loads(kv.value).get("metadata") or {}
                if meta.get("deletionTimestamp"):
                    out.add(meta.get("name", ""))
            return out
        return self._loop.run_until_complete(read())

    def close(self) -> None:
        self._loop.run_until_complete(self._client.close())
        self._loop.close()


def diff(before: dict[bytes, int], after: dict[bytes, int]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k in before.keys() | after.keys():
        if before.get(k) != after.get(k):
            out[k.decode(errors="replace")] = f"{before.get(k)} -> {after.get(k)}"
    return out


def in_namespaces(key: str, namespaces: set[str]) -> bool:
    """Whether ``key`` is one of these namespaces or an object inside one of them."""
    parts = key.split("/")  # ['', 'registry', group, plural, (namespace,) name]
    if parts[2:4] == ["core", "namespaces"]:
        return len(parts) == 5 and parts[4] in namespaces
    return len(parts) == 6 and parts[4] in namespaces


# ---------------------------------------------------------------------------- the run
@dataclass
class Run:
    base_url: str
    session: requests.Session
    counts: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    # (problem, operation, status code, reason) -> the requests that showed it
    failures: dict[tuple[str, str, int, str], list[str]] = field(default_factory=dict)
    accepted_negative: list[str] = field(default_factory=list)
    generation_errors: list[str] = field(default_factory=list)

    def send(self, case: schemathesis.Case, mode: GenerationMode) -> Any:
        # A watch would stream for 30 minutes; timeoutSeconds=0 still sets it up and validates
        # its parameters, then ends the stream at once.
        if str(case.query.get("watch", "") if case.query else "").lower() in ("1", "true", "yes"):
            case.query["timeoutSeconds"] = 0
        response = case.call(base_url=self.base_url, session=self.session, timeout=REQUEST_TIMEOUT)
        self.counts[mode.value] += 1
        self.statuses[f"{response.status_code // 100}xx"] += 1
        self.check(case, response)
        return response

    def fail(self, problem: str, case: schemathesis.Case, response: Any) -> None:
        try:
            reason = str(json.loads(response.content).get("message", ""))[:80]
        except (ValueError, AttributeError):
            reason = ""
        key = (problem, case.operation.label, response.status_code, reason)
        self.failures.setdefault(key, []).append(
            f"{case.method} {case.formatted_path} query={_short(case.query)} body={_short(case.body)} -> "
            f"{response.status_code} {response.content[:300]!r}")

    def check(self, case: schemathesis.Case, response: Any) -> None:
        code = response.status_code
        if code >= 500:
            self.fail("5xx", case, response)
        if code >= 400:
            try:
                status = json.loads(response.content)
            except ValueError:
                self.fail("error body is not JSON", case, response)
                return
            if not (isinstance(status, dict) and status.get("kind") == "Status" and status.get("code") == code
                    and status.get("status") == "Failure"):
                self.fail("error body is not a Status with code == HTTP status", case, response)


def _short(value: Any, limit: int = 240) -> str:
    if type(value).__name__ == "NotSet":
        return "-"
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...(truncated)"


def _budget(op: Any) -> int:
    if op.method.upper() not in ("POST", "PUT"):
        return EXAMPLES["light"]
    raw = json.dumps(op.definition.raw.get("requestBody", {}))
    return EXAMPLES["heavy"] if any(f"/{m}\"" in raw for m in HEAVY_BODIES) else EXAMPLES["body"]


def _has_other_inputs(op: Any) -> bool:
    params = op.definition.raw.get("parameters", [])
    return any(p.get("in") != "path" for p in params) or "requestBody" in op.definition.raw


def case_strategy(op: Any, mode: GenerationMode, *, ns: str, seeded_name: str | None) -> st.SearchStrategy[Any]:
    fixed: dict[str, Any] = {"namespace": ns} if "{namespace}" in op.path else {}
    query: dict[str, Any] | None = None
    if op.method.upper() == "DELETE" and "{name}" not in op.path and "{namespace}" not in op.path:
        query = {"labelSelector": NOTHING_SELECTOR}  # cluster-wide deletecollection: match nothing
    generated = op.as_strategy(generation_mode=mode, path_parameters=fixed or None, query=query)
    if "{name}" not in op.path or seeded_name is None:
        return generated
    if mode is GenerationMode.NEGATIVE and not _has_other_inputs(op) and len(fixed) + 1 == op.path.count("{"):
        return generated  # with every path parameter pinned there is nothing left to make invalid
    pinned = op.as_strategy(generation_mode=mode, path_parameters={**fixed, "name": seeded_name}, query=query)
    return st.one_of(pinned, generated)


def drive(op: Any, strategy: st.SearchStrategy[Any], examples: int, body: Callable[[Any], None],
          errors: list[str], mode: GenerationMode) -> None:
    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(strategy)
    def run(case: Any) -> None:
        body(case)

    try:
        run()
    except HypothesisException as e:  # e.g. no negative variant exists for this operation
        errors.append(f"{op.label} [{mode.value}]: {type(e).__name__}: {str(e)[:200]}")


def _operation_order(op: Any) -> tuple[int, str]:
    # Deletes last, so replace/patch meet the seeded objects first.
    return ({"DELETE": 2}.get(op.method.upper(), 0) + ("{name}" not in op.path and op.method.upper() == "DELETE"),
            op.label)


def _cluster_objects(client: httpx.Client) -> dict[str, set[str]]:
    out = {}
    for plural in ("namespaces", "nodes"):
        r = client.get(f"/api/v1/{plural}")
        assert r.status_code == 200, r.text
        out[plural] = {i["metadata"]["name"] for i in r.json()["items"]}
    return out


@pytest.fixture
def fuzz_env(etcd: Any, apiserver: Any, http: httpx.Client, namespace: str) -> Iterator[dict[str, Any]]:
    before = _cluster_objects(http)
    tag = uuid.uuid4().hex[:8]
    env = {"ns": namespace, "node": f"fz-node-{tag}", "victim_ns": f"fz-victim-{tag}"}
    yield env
    after = _cluster_objects(http)
    for plural, names in after.items():
        for name in sorted(names - before[plural]):
            http.delete(f"/api/v1/{plural}/{name}")


@pytest.mark.parametrize("shard", range(SHARDS))
def test_fuzz_api_from_openapi(etcd: Any, apiserver: Any, http: httpx.Client,
                               fuzz_env: dict[str, Any], shard: int) -> None:
    started = time.monotonic()
    ns = fuzz_env["ns"]
    schema = schemathesis.openapi.from_dict(merged_openapi(http))
    operations = sorted((op for op in (r.ok() for r in schema.get_all_operations())
                         if op.path.rsplit("/", 1)[-1] not in CONNECT_SUBRESOURCES), key=_operation_order)
    assert len(operations) >= 100, f"only {len(operations)} operations in the served OpenAPI"
    # Every SHARDS-th operation, in the same (deletes-last) order: the shards cover every operation once.
    operations = operations[shard::SHARDS]
    seeds = seed_objects(ns, node=fuzz_env["node"], victim_ns=fuzz_env["victim_ns"])

    def seeded_name(op: Any) -> str:
        if op.path.startswith("/api/v1/nodes"):
            return fuzz_env["node"]
        if op.path.startswith("/api/v1/namespaces/{name}"):
            return fuzz_env["victim_ns"]
        return "fz"

    session = requests.Session()
    run = Run(base_url=apiserver.url, session=session)
    snapshots = EtcdSnapshots(etcd.url)
    try:
        # Pass 1: negative (schema-violating) requests to every mutating operation, with an etcd
        # snapshot around each one. Anything but a 2xx must leave /registry/ untouched.
        ensure_seeded(http, seeds)
        accepted_keys: set[str] = set()
        pass_before = snapshots.take()

        terminating = snapshots.terminating_namespaces()

        def foreground(changed: dict[str, str]) -> dict[str, str]:
            """The changes that the background writers did not make: the namespace finalizer, and the
            Service address allocator releasing a deleted Service's ClusterIP / NodePort claims (it
            frees them from the Service watch, after the deletion, so a claim's removal follows a
            Service change that is itself in the diff; a claim *made* by a rejected request still counts)."""
            if changed:
                terminating.update(snapshots.terminating_namespaces())
            return {k: v for k, v in changed.items() if not in_namespaces(k, terminating)
                    and not (k.startswith(ALLOCATION_PREFIXES) and v.endswith("-> None"))}

        def negative_write(case: Any) -> None:
            before = snapshots.take()
            response = run.send(case, GenerationMode.NEGATIVE)
            changed = diff(before, snapshots.take())
            if not 200 <= response.status_code < 300:
                changed = foreground(changed)
            where = f"{case.method} {case.formatted_path} query={_short(case.query)} body={_short(case.body)}"
            if 200 <= response.status_code < 300:
                accepted_keys.update(changed)
                run.accepted_negative.append(f"{where} -> {response.status_code}")
                # An accepted delete may have started a namespace's deletion: remember it now,
                # before the background finalizer removes it (and with it the evidence).
                terminating.update(snapshots.terminating_namespaces())
            elif changed:
                run.fail(f"answered {response.status_code} but etcd changed ({', '.join(sorted(changed))})",
                         case, response)

        for op in operations:
            if op.method.upper() in MUTATING:
                strategy = case_strategy(op, GenerationMode.NEGATIVE, ns=ns, seeded_name=seeded_name(op))
                drive(op, strategy, _budget(op), negative_write, run.generation_errors, GenerationMode.NEGATIVE)
        pass_changes = foreground(diff(pass_before, snapshots.take()))
        unexplained = {k: v for k, v in pass_changes.items() if k not in accepted_keys}
        negative_writes = run.counts["negative"]

        # Pass 2: negative requests to the read operations.
        for op in operations:
            if op.method.upper() not in MUTATING:
                strategy = case_strategy(op, GenerationMode.NEGATIVE, ns=ns, seeded_name=seeded_name(op))
                drive(op, strategy, _budget(op), lambda c: run.send(c, GenerationMode.NEGATIVE),
                      run.generation_errors, GenerationMode.NEGATIVE)

        # Pass 3: positive (schema-conforming) requests to every operation, deletes last.
        ensure_seeded(http, seeds)
        for op in operations:
            strategy = case_strategy(op, GenerationMode.POSITIVE, ns=ns, seeded_name=seeded_name(op))
            drive(op, strategy, _budget(op), lambda c: run.send(c, GenerationMode.POSITIVE),
                  run.generation_errors, GenerationMode.POSITIVE)
    finally:
        snapshots.close()
        session.close()

    total = sum(run.counts.values())
    elapsed = time.monotonic() - started
    print(f"\nfuzz: {total} requests over {len(operations)} operations in {elapsed:.1f}s "
          f"(positive {run.counts['positive']}, negative {run.counts['negative']} of which "
          f"{negative_writes} to mutating operations); statuses {dict(sorted(run.statuses.items()))}")
    if run.accepted_negative:
        print(f"fuzz: {len(run.accepted_negative)} schema-violating writes were accepted (2xx), e.g.:")
        for line in run.accepted_negative[:10]:
            print("   ", line)
    for line in run.generation_errors:
        print("fuzz: could not generate:", line)

    assert total >= 1000 // SHARDS, f"only {total} requests were made"
    assert run.counts["negative"] > 0 and run.counts["positive"] > 0
    problems = [f"{len(examples)}x {problem}: {label} -> {code} {reason!r}\n    e.g. {examples[0]}"
                for (problem, label, code, reason), examples in sorted(run.failures.items())]
    if unexplained:
        problems.append(f"etcd changed during the negative pass by keys no accepted request explains: {unexplained}")
    assert not problems, f"{len(problems)} kind(s) of problem:\n" + "\n".join(problems)
