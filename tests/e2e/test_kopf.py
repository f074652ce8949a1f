"""A real kopf operator (from PyPI, run as ``kopf run``) against the real apiserver over real etcd.

The operator is ``tests/e2e/operators/greetings.py``: for each ``Greeting`` custom object it
writes a ConfigMap and reports it in ``status`` (create, at the second attempt), rewrites it and
records the change (update of ``spec.message``), removes it (delete), and posts Events. kopf
itself adds its finalizer, keeps its progress and last-handled state in annotations (merge
patches, null to remove), writes ``status`` through the ``/status`` subresource (merge patches)
and its finalizer through JSON patches guarded by a ``test`` of ``/metadata/resourceVersion``,
lists and watches (with bookmarks) the custom resource, the CRDs and the namespaces, and posts
``core/v1`` Events of types Normal and Error: everything it asks of the API must be answered as
a Kubernetes apiserver answers it. Two focused tests pin kopf's finalizer patches and its Events
request by request.

The operator runs as a process with a kubeconfig for the session apiserver, restricted to the
test's namespace; its output goes to a log file that failures show, and it is stopped by its pid
with SIGTERM, after which it must exit cleanly. ``--standalone`` turns kopf's peering off; the
peering test runs it with a ``KopfPeering`` object instead, as kopf's docs set it up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

OPERATOR = Path(__file__).resolve().parent / "operators" / "greetings.py"
KOPF = Path(sys.executable).with_name("kopf")
FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
LAST_HANDLED = "kopf.zalando.org/last-handled-configuration"
PROGRESS = "kopf.zalando.org/create_fn"  # kopf's record of the create handler's attempts, while it retries
RETRIED = "Handler 'create_fn' failed temporarily: not ready yet"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"

Obj = dict[str, Any]


def greetings_crd(group: str) -> Obj:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"greetings.{group}"},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "greetings", "singular": "greeting", "kind": "Greeting", "shortNames": ["gr"]},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "message": {"type": "string"}, "to": {"type": "string"}}},
                    # kopf keeps its bookkeeping (handler results, progress) in status, which its
                    # docs therefore leave open to fields the schema does not name.
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                }}},
                "additionalPrinterColumns": [
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Message", "type": "string", "jsonPath": ".status.message"}],
            }],
        },
    }


# kopf's own peering CRD, as its docs publish it (peering.yaml): no status subresource.
PEERING_CRD: Obj = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "kopfpeerings.kopf.dev"},
    "spec": {
        "scope": "Namespaced", "group": "kopf.dev",
        "names": {"kind": "KopfPeering", "plural": "kopfpeerings", "singular": "kopfpeering"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
            "type": "object", "properties": {
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}],
    },
}


def install_crd(http: httpx.Client, crd: Obj, *, exist_ok: bool = False) -> None:
    """Create a CRD and wait until it is Established and its group-version is discoverable."""
    r = http.post(CRDS, json=crd)
    assert r.status_code == 201 or (exist_ok and r.status_code == 409), r.text
    name, group = crd["metadata"]["name"], crd["spec"]["group"]

    def established() -> bool:
        conds = http.get(f"{CRDS}/{name}").json().get("status", {}).get("conditions", [])
        return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

    wait_for(established, 30, f"CRD {name} to be Established")
    wait_for(lambda: http.get(f"/apis/{group}/v1").status_code == 200, 30, f"discovery of {group}/v1")


class Operator:
    """``kopf run`` as a child process; its output in ``log``."""

    def __init__(self, *args: str, kubeconfig: Path, group: str, log: Path, pod_id: str | None = None) -> None:
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        env.update(KUBECONFIG=str(kubeconfig), GREETINGS_GROUP=group, PYTHONUNBUFFERED="1")
        env.pop("POD_ID", None)
        if pod_id:
            env["POD_ID"] = pod_id  # kopf's peering identity
        self.proc = subprocess.Popen([str(KOPF), "run", *args, "--verbose", str(OPERATOR)],
                                     env=env, cwd=log.parent, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def diagnose(self) -> str:
        return f"--- kopf operator log ({self.log}, exit code {self.proc.poll()}) ---\n{self.logs()}"

    def check(self) -> None:
        """Fail at once (with the log) rather than wait for a deadline: if the operator died, or if
        the apiserver refused one of its patches (nothing else writes these objects meanwhile, so
        kopf would wait for a change that never comes)."""
        assert self.proc.poll() is None, f"kopf exited early\n{self.diagnose()}"
        assert "Could not apply the patch in full" not in self.logs(), f"a patch was refused\n{self.diagnose()}"

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM by pid and wait; SIGKILL only if it hangs (which fails the test)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError(f"kopf did not exit within {timeout}s of SIGTERM\n{self.diagnose()}")
        return self.proc.returncode

    def assert_clean_exit(self) -> None:
        """SIGTERM; exit code 0 and nothing worse than INFO in the whole log (but the create
        handler's planned failure): no refused Event, patch or watch."""
        rc = self.stop()
        assert rc == 0, self.diagnose()
        assert "Signal SIGTERM is received. Operator is stopping." in self.logs(), self.diagnose()
        problems = [ln for ln in self.logs().splitlines()
                    if ("[WARNING" in ln or "[ERROR" in ln or "Traceback" in ln) and not ln.endswith(RETRIED)]
        assert problems == [], self.diagnose()


@pytest.fixture
def group(http: httpx.Client) -> Iterator[str]:
    """The Greeting CRD in a group of its own (CRDs are cluster-scoped), Established; at the end
    (after the operators stopped) kopf's finalizers are taken off what is left, so that the CRD
    and the test's namespace can go."""
    g = f"g{uuid.uuid4().hex[:8]}.kopf.minik8s.test"
    install_crd(http, greetings_crd(g))
    yield g
    for item in http.get(f"/apis/{g}/v1/greetings").json().get("items", []):
        meta = item["metadata"]
        if meta.get("finalizers"):
            http.patch(f"/apis/{g}/v1/namespaces/{meta['namespace']}/greetings/{meta['name']}",
                       content=json.dumps({"metadata": {"finalizers": None}}),
                       headers={"Content-Type": "application/merge-patch+json"})
    http.delete(f"{CRDS}/greetings.{g}")


@pytest.fixture
def start_operator(kubeconfig: Path, group: str, tmp_path: Path) -> Iterator[Callable[..., Operator]]:
    started: list[Operator] = []

    def start(*args: str, pod_id: str | None = None) -> Operator:
        op = Operator(*args, kubeconfig=kubeconfig, group=group, pod_id=pod_id,
                      log=tmp_path / f"kopf-{len(started)}.log")
        started.append(op)
        return op

    yield start
    for op in started:
        try:
            op.stop()
        finally:
            print(op.diagnose())  # pytest shows it only when the test failed


def getter(http: httpx.Client, base: str, operator: Operator | None = None) -> Callable[[str], Obj | None]:
    def get(name: str) -> Obj | None:
        if operator is not None:
            operator.check()
        r = http.get(f"{base}/{name}")
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text
        return r.json()
    return get


def test_kopf_operator_handles_create_update_delete(http: httpx.Client, namespace: str, group: str,
                                                    start_operator: Callable[..., Operator]) -> None:
    operator = start_operator("--standalone", "--namespace", namespace)
    diagnose = operator.diagnose
    base = f"/apis/{group}/v1/namespaces/{namespace}/greetings"
    get = getter(http, base, operator)

    def configmap(name: str) -> Obj | None:
        r = http.get(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        return None if r.status_code == 404 else r.json()

    # ---------------------------------------------------------------- create
    r = http.post(base, json={"apiVersion": f"{group}/v1", "kind": "Greeting", "metadata": {"name": "hello"},
                              "spec": {"message": "hello", "to": "minik8s"}})
    assert r.status_code == 201, r.text
    uid, created_rv = r.json()["metadata"]["uid"], r.json()["metadata"]["resourceVersion"]

    obj = wait_for(lambda: (o := get("hello")) and o.get("status", {}).get("phase") == "Ready"
                   and LAST_HANDLED in o["metadata"].get("annotations", {}) and o,
                   60, "the create handler's status", diagnose)
    assert obj["status"]["message"] == "hello"
    assert obj["status"]["create_fn"] == {"configmap": "hello-greeting"}  # the handler's return value
    assert obj["metadata"]["finalizers"] == [FINALIZER]
    # kopf's record of what it handled: the object's essence, without status and kopf's own marks;
    # the progress of the retried handler is gone (merge-patched to null) once it succeeded.
    assert set(obj["metadata"]["annotations"]) == {LAST_HANDLED}, obj["metadata"]
    assert json.loads(obj["metadata"]["annotations"][LAST_HANDLED]) == {"spec": {"message": "hello", "to": "minik8s"}}
    cm = configmap("hello-greeting")
    assert cm is not None, diagnose()
    assert cm["data"] == {"greeting": "hello, minik8s!"}
    assert cm["metadata"]["ownerReferences"] == [{
        "apiVersion": f"{group}/v1", "kind": "Greeting", "name": "hello", "uid": uid,
        "controller": True, "blockOwnerDeletion": True}]

    # ---------------------------------------------------------------- update
    r = http.patch(f"{base}/hello", content=json.dumps({"spec": {"message": "bonjour"}}),
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    obj = wait_for(lambda: (o := get("hello")) and o.get("status", {}).get("message") == "bonjour" and o,
                   60, "the update handler's status", diagnose)
    assert obj["status"]["history"] == [{"from": "hello", "to": "bonjour"}]
    assert obj["status"]["phase"] == "Ready"
    assert obj["metadata"]["finalizers"] == [FINALIZER]
    wait_for(lambda: (c := configmap("hello-greeting")) and c["data"] == {"greeting": "bonjour, minik8s!"},
             30, "the ConfigMap rewritten by the update handler", diagnose)
    # The CRD's printer columns read the status that kopf wrote.
    table = http.get(f"{base}/hello", headers={"Accept": TABLE}).json()
    assert table["rows"][0]["cells"][:3] == ["hello", "Ready", "bonjour"]

    # ---------------------------------------------------------------- delete
    r = http.delete(f"{base}/hello")
    assert r.status_code in (200, 202), r.text
    # The finalizer holds the object until the delete handler ran; then kopf removes it and it goes.
    wait_for(lambda: get("hello") is None, 60, "the object to go once kopf released it", diagnose)
    assert configmap("hello-greeting") is None, "the delete handler did not clean up"

    # The object's whole life from a watch: kopf's finalizer came first, then its record of the
    # failed first attempt, and deletion was requested while the finalizer still held the object.
    # Removing the last finalizer of an object being deleted deletes it in that write, so (as in
    # Kubernetes) DELETED carries the last stored state, finalizer included; that kopf removed
    # it, its log says.
    history = watch_history(http, base, since=created_rv)
    states = [(t, o["metadata"].get("finalizers", []), "deletionTimestamp" in o["metadata"]) for t, o in history]
    assert states[0] == ("MODIFIED", [FINALIZER], False), states
    assert states[-2:] == [("MODIFIED", [FINALIZER], True), ("DELETED", [FINALIZER], True)], states
    assert all(o["metadata"]["uid"] == uid for _, o in history)
    progress = [json.loads(a[PROGRESS]) for _, o in history if PROGRESS in (a := o["metadata"].get("annotations", {}))]
    assert progress and progress[0]["retries"] == 1 and progress[0]["message"] == "not ready yet", progress

    # ---------------------------------------------------------------- events
    def reasons() -> dict[str, list[str]]:
        """The object's Events by reason: "type: message" for each."""
        r = http.get(f"/api/v1/namespaces/{namespace}/events",
                     params={"fieldSelector": f"involvedObject.name=hello,involvedObject.uid={uid}"})
        assert r.status_code == 200, r.text
        out: dict[str, list[str]] = {}
        for ev in r.json()["items"]:
            assert ev["involvedObject"]["kind"] == "Greeting"
            assert ev["involvedObject"]["apiVersion"] == f"{group}/v1"
            assert ev["source"]["component"] == "kopf"
            out.setdefault(ev["reason"], []).append(f"{ev['type']}: {ev['message']}")
        return out

    succeeded = ["Handler 'create_fn' succeeded.", "Handler 'update_fn/spec.message' succeeded.",
                 "Handler 'delete_fn' succeeded."]
    logged = [f"Error: {RETRIED}", *(f"Normal: {m}" for m in succeeded)]

    def all_posted() -> dict[str, list[str]] | None:
        got = reasons()
        complete = {"Greeted", "Regreeted", "Cleaned"} <= got.keys() and all(
            m in got.get("Logging", []) for m in logged)
        return got if complete else None

    events = wait_for(all_posted, 30, "kopf's Events for the object", lambda: f"{reasons()}\n{diagnose()}")
    assert events["Greeted"] == ["Normal: greeting 'hello' written to hello-greeting"]
    assert events["Regreeted"] == ["Normal: greeting changed from 'hello' to 'bonjour'"]
    assert events["Cleaned"] == ["Normal: configmap hello-greeting deleted"]
    assert "Normal: created configmap hello-greeting" in events["Logging"]
    # kubectl describe's view: the Events table of the namespace lists them too.
    table = http.get(f"/api/v1/namespaces/{namespace}/events", headers={"Accept": TABLE}).json()
    assert any("Greeted" in row["cells"] for row in table["rows"]), table

    # ---------------------------------------------------------------- the handlers, from kopf's log
    log = operator.logs()
    for line in (RETRIED, *succeeded, "Creation is processed: 1 succeeded; 0 failed.",
                 "Updating is processed: 1 succeeded; 0 failed.", "Deletion is processed: 1 succeeded; 0 failed.",
                 "Removing the finalizer, thus allowing the actual deletion.",
                 "Deleted, really deleted, and we are notified."):
        assert line in log, f"{line!r} not in the operator's log\n{diagnose()}"
    # Every patch applied at its first try and as sent.
    assert "Could not apply the patch in full" not in log, diagnose()
    assert "Merge-patching finished with inconsistencies" not in log, diagnose()

    # ---------------------------------------------------------------- SIGTERM
    operator.assert_clean_exit()


def test_kopf_finalizer_json_patches(http: httpx.Client, namespace: str, group: str) -> None:
    """kopf's finalizer writes, request by request: a JSON patch whose first op tests the
    resourceVersion. Kubernetes applies a JSON patch to the stored object as it is, resourceVersion
    included: a matching ``test`` lets the patch through, a stale one fails the patch with 422
    (kopf then retries on the next event), and a patched resourceVersion that differs from the
    stored one is a 409 Conflict (the optimistic lock)."""
    base = f"/apis/{group}/v1/namespaces/{namespace}/greetings"
    json_patch = {"Content-Type": "application/json-patch+json"}

    def patch(ops: list[Obj], sub: str = "") -> httpx.Response:
        return http.patch(f"{base}/hello{sub}", content=json.dumps(ops), headers=json_patch)

    r = http.post(base, json={"apiVersion": f"{group}/v1", "kind": "Greeting", "metadata": {"name": "hello"},
                              "spec": {"message": "hello"}})
    assert r.status_code == 201, r.text
    rv0 = r.json()["metadata"]["resourceVersion"]

    r = patch([{"op": "test", "path": "/metadata/resourceVersion", "value": rv0},
               {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}])
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["finalizers"] == [FINALIZER]
    rv1 = r.json()["metadata"]["resourceVersion"]
    assert int(rv1) > int(rv0)

    r = patch([{"op": "test", "path": "/metadata/resourceVersion", "value": rv0},
               {"op": "remove", "path": "/metadata/finalizers"}])
    assert r.status_code == 422, r.text
    assert (r.json()["kind"], r.json()["reason"]) == ("Status", "Invalid"), r.text

    r = patch([{"op": "replace", "path": "/metadata/resourceVersion", "value": rv0},
               {"op": "remove", "path": "/metadata/finalizers"}])
    assert r.status_code == 409, r.text
    assert r.json()["reason"] == "Conflict", r.text

    # The same guard on the status subresource (kopf's JSON patches of status fields).
    r = patch([{"op": "test", "path": "/metadata/resourceVersion", "value": rv1},
               {"op": "add", "path": "/status", "value": {"phase": "Ready"}}], "/status")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == {"phase": "Ready"}
    rv2 = r.json()["metadata"]["resourceVersion"]
    r = patch([{"op": "test", "path": "/metadata/resourceVersion", "value": rv1},
               {"op": "replace", "path": "/status/phase", "value": "Gone"}], "/status")
    assert r.status_code == 422, r.text

    r = patch([{"op": "test", "path": "/metadata/resourceVersion", "value": rv2},
               {"op": "remove", "path": "/metadata/finalizers"}])
    assert r.status_code == 200, r.text
    assert "finalizers" not in r.json()["metadata"]
    assert r.json()["status"] == {"phase": "Ready"}


@pytest.mark.parametrize("event_type", ["Normal", "Warning", "Error", "Debug", "Fatal"])
def test_kopf_events_of_every_type_are_accepted(http: httpx.Client, namespace: str, event_type: str) -> None:
    """kopf posts core/v1 Events of the log record's level: Debug, Normal, Warning, Error, Fatal.
    Kubernetes checks an Event's type only when it is created through events.k8s.io/v1; core/v1
    keeps accepting any type, for backwards compatibility (ValidateEventCreate)."""
    now = datetime.now(timezone.utc).isoformat()  # as kopf writes them: microseconds, +00:00
    body = {  # kopf's request, field for field (kopf/_cogs/clients/events.py)
        "metadata": {"namespace": namespace, "generateName": "kopf-event-"},
        "action": "Action?", "type": event_type, "reason": "Logging", "message": "Handler 'x' failed.",
        "reportingComponent": "kopf", "reportingInstance": "dev", "source": {"component": "kopf"},
        "involvedObject": {"apiVersion": "example.com/v1", "kind": "Greeting", "name": "hello",
                           "uid": str(uuid.uuid4()), "namespace": namespace},
        "firstTimestamp": now, "lastTimestamp": now, "eventTime": now,
    }
    r = http.post(f"/api/v1/namespaces/{namespace}/events", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["type"] == event_type
    assert r.json()["metadata"]["name"].startswith("kopf-event-")


@pytest.fixture
def peering_crd(http: httpx.Client) -> Iterator[None]:
    install_crd(http, PEERING_CRD, exist_ok=True)
    yield
    http.delete(f"{CRDS}/kopfpeerings.kopf.dev")


def test_kopf_peering(http: httpx.Client, namespace: str, group: str, peering_crd: None,
                      start_operator: Callable[..., Operator]) -> None:
    """Without ``--standalone`` and with a KopfPeering ``default`` in its namespace, kopf announces
    itself in the peering object's status (merge patches of a custom object without a status
    subresource), handles objects (no other peer outranks it), and takes itself out on SIGTERM."""
    peerings = f"/apis/kopf.dev/v1/namespaces/{namespace}/kopfpeerings"
    r = http.post(peerings, json={"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "default"}})
    assert r.status_code == 201, r.text

    identity = f"kopf-e2e-{uuid.uuid4().hex[:6]}"
    operator = start_operator("--namespace", namespace, pod_id=identity)
    get_peering = getter(http, peerings, operator)
    peering = wait_for(lambda: (p := get_peering("default")) and identity in p.get("status", {}) and p,
                       60, "kopf's keep-alive in the KopfPeering", operator.diagnose)
    peer = peering["status"][identity]
    assert (peer["priority"], peer["lifetime"]) == (0, 60), peer
    assert peer["lastseen"], peer

    base = f"/apis/{group}/v1/namespaces/{namespace}/greetings"
    r = http.post(base, json={"apiVersion": f"{group}/v1", "kind": "Greeting", "metadata": {"name": "peered"},
                              "spec": {"message": "hi"}})
    assert r.status_code == 201, r.text
    get = getter(http, base, operator)
    wait_for(lambda: (o := get("peered")) and o.get("status", {}).get("phase") == "Ready",
             60, "the create handler under peering", operator.diagnose)

    operator.assert_clean_exit()
    peering = http.get(f"{peerings}/default").json()
    assert identity not in peering.get("status", {}), f"{peering}\n{operator.diagnose()}"


def watch_history(http: httpx.Client, base: str, *, since: str) -> list[tuple[str, Obj]]:
    """Every watch event of the collection after ``since``, up to the first DELETED one."""
    events: list[tuple[str, Obj]] = []
    with http.stream("GET", base, params={"watch": "1", "resourceVersion": since, "timeoutSeconds": "10"}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if not line:
                continue
            ev = json.loads(line)
            assert ev["type"] != "ERROR", ev
            if ev["type"] == "BOOKMARK":
                continue
            events.append((ev["type"], ev["object"]))
            if ev["type"] == "DELETED":
                break
    return events
