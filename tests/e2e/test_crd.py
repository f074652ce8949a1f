"""CustomResourceDefinitions as Kubernetes users know them: the real ``kubectl`` (v1.32) and plain
HTTP against a real minik8s apiserver over real etcd.

The CRDs are the Kubernetes docs' own ("Extend the Kubernetes API with CustomResourceDefinitions":
the CronTab with its defaulting, printer-column and subresource sections, the Shirt of "field
selectors for custom resources"), each in a group of its own so the tests share the session's
apiserver in any order; every CRD a test creates is deleted when it ends (and with it its objects).
Every assertion states what Kubernetes itself answers or prints.
"""

from __future__ import annotations

import base64
import json
import queue
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from tests.cluster import ApiServerProcess, Etcd
from tests.e2e.conftest import Kubectl
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
SERVED_WITHIN_SECONDS = 1.0


# ---------------------------------------------------------------------------------- manifests
def new_group(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}.example.com"


def crontab_crd(group: str, *, scope: str = "Namespaced", categories: tuple[str, ...] = ("all",),
                short_names: tuple[str, ...] = ("ct",)) -> str:
    """The docs' CronTab CRD with the defaulting, printer-column and subresource sections (plus an
    Image column of priority 1 for ``-o wide``, a nested default and a description for explain)."""
    cats = "".join(f"    - {c}\n" for c in categories)
    shorts = "".join(f"    - {s}\n" for s in short_names)
    return f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  # name must match the spec fields below, and be in the form: <plural>.<group>
  name: crontabs.{group}
spec:
  # group name to use for REST API: /apis/<group>/<version>
  group: {group}
  # list of versions supported by this CustomResourceDefinition
  versions:
    - name: v1
      # Each version can be enabled/disabled by Served flag.
      served: true
      # One and only one version must be marked as the storage version.
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                cronSpec:
                  type: string
                  description: The cron schedule on which the job runs, in Cron format.
                  pattern: '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){{4}}$'
                  default: "5 0 * * *"
                image:
                  type: string
                replicas:
                  type: integer
                  minimum: 1
                  maximum: 10
                  default: 1
                backoff:
                  type: object
                  default: {{}}
                  properties:
                    limit:
                      type: integer
                      default: 6
                    delaySeconds:
                      type: integer
            status:
              type: object
              properties:
                replicas:
                  type: integer
                labelSelector:
                  type: string
      # subresources describes the subresources for custom resources.
      subresources:
        # status enables the status subresource.
        status: {{}}
        # scale enables the scale subresource.
        scale:
          # specReplicasPath defines the JSONPath inside of a custom resource that corresponds to Scale.Spec.Replicas.
          specReplicasPath: .spec.replicas
          # statusReplicasPath defines the JSONPath inside of a custom resource that corresponds to Scale.Status.Replicas.
          statusReplicasPath: .status.replicas
          # labelSelectorPath defines the JSONPath inside of a custom resource that corresponds to Scale.Status.Selector.
          labelSelectorPath: .status.labelSelector
      additionalPrinterColumns:
      - name: Spec
        type: string
        description: The cron spec defining the interval a CronJob is run
        jsonPath: .spec.cronSpec
      - name: Replicas
        type: integer
        description: The number of jobs launched by the CronJob
        jsonPath: .spec.replicas
      - name: Image
        type: string
        priority: 1
        jsonPath: .spec.image
      - name: Age
        type: date
        jsonPath: .metadata.creationTimestamp
  # either Namespaced or Cluster
  scope: {scope}
  names:
    # plural name to be used in the URL: /apis/<group>/<version>/<plural>
    plural: crontabs
    # singular name to be used as an alias on the CLI and for display
    singular: crontab
    # kind is normally the CamelCased singular type. Your resource manifests use this.
    kind: CronTab
    # shortNames allow shorter string to match your resource on the CLI
    shortNames:
{shorts}    # categories is a list of grouped resources the custom resource belongs to.
    categories:
{cats}"""


def crontab(group: str, name: str, *, namespace: str | None = None, cron: str = "* * * * */5",
            image: str = "my-awesome-cron-image", labels: dict[str, str] | None = None,
            extra_spec: str = "") -> str:
    """The docs' my-new-cron-object manifest."""
    ns = f"  namespace: {namespace}\n" if namespace else ""
    lab = ("  labels:\n" + "".join(f"    {k}: {v}\n" for k, v in labels.items())) if labels else ""
    return f"""\
apiVersion: "{group}/v1"
kind: CronTab
metadata:
  name: {name}
{ns}{lab}spec:
  cronSpec: "{cron}"
  image: {image}
{extra_spec}"""


def shirt_crd(group: str) -> str:
    """The Shirt of the docs' "Field selectors for custom resources"."""
    return f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: shirts.{group}
spec:
  group: {group}
  scope: Namespaced
  names:
    plural: shirts
    singular: shirt
    kind: Shirt
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              color:
                type: string
              size:
                type: string
    selectableFields:
    - jsonPath: .spec.color
    - jsonPath: .spec.size
    additionalPrinterColumns:
    - jsonPath: .spec.color
      name: Color
      type: string
    - jsonPath: .spec.size
      name: Size
      type: string
"""


def shirts(group: str, namespace: str) -> str:
    return "---\n".join(f"""\
apiVersion: {group}/v1
kind: Shirt
metadata:
  name: {name}
  namespace: {namespace}
  labels:
    size: {size}
spec:
  color: {color}
  size: {size}
""" for name, color, size in (("example1", "blue", "S"), ("example2", "blue", "M"), ("example3", "green", "M")))


def versioned_crd(group: str, *, storage: str = "v1beta1") -> str:
    """Two served versions with the same schema, one of them the storage version (conversion None)."""
    versions = ""
    for name in ("v1beta1", "v1"):
        versions += f"""\
  - name: {name}
    served: true
    storage: {str(name == storage).lower()}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size:
                type: string
"""
    return f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
  versions:
{versions}"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ---------------------------------------------------------------------------------- helpers
def conditions(crd: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (crd.get("status") or {}).get("conditions") or []}


def established(http: httpx.Client, name: str) -> dict[str, Any] | None:
    r = http.get(f"{CRDS}/{name}")
    if r.status_code != 200:
        return None
    crd = r.json()
    return crd if conditions(crd).get("Established", {}).get("status") == "True" else None


def discovered(http: httpx.Client, group_version: str, plural: str) -> dict[str, Any] | None:
    r = http.get(f"/apis/{group_version}")
    if r.status_code != 200:
        return None
    return next((x for x in r.json()["resources"] if x["name"] == plural), None)


class CRDs:
    """Creates CRDs (from YAML, over HTTP) and deletes every one of them, and their objects, at the end."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.names: list[str] = []

    def create(self, manifest: str, *, wait: bool = True) -> dict[str, Any]:
        body = yaml.safe_load(manifest)
        self.names.append(body["metadata"]["name"])
        r = self.http.post(CRDS, json=body)
        assert r.status_code == 201, r.text
        if wait:
            return wait_for(lambda: established(self.http, body["metadata"]["name"]), timeout=10,
                            what=f"CRD {body['metadata']['name']} established", interval=0.02)
        return r.json()

    def track(self, name: str) -> None:
        self.names.append(name)

    def cleanup(self) -> None:
        for name in self.names:
            self.http.delete(f"{CRDS}/{name}")
        for name in self.names:  # objects a failed test left with finalizers would hold their CRD forever
            r = self.http.get(f"{CRDS}/{name}")
            if r.status_code != 200:
                continue
            crd = r.json()
            version = next((v["name"] for v in crd["spec"]["versions"] if v.get("served")), None)
            listed = self.http.get(f"/apis/{crd['spec']['group']}/{version}/{crd['spec']['names']['plural']}")
            for item in listed.json().get("items", []) if listed.status_code == 200 else []:
                if item["metadata"].get("finalizers"):
                    ns = item["metadata"].get("namespace")
                    path = (f"/apis/{item['apiVersion']}" + (f"/namespaces/{ns}" if ns else "")
                            + f"/{crd['spec']['names']['plural']}/{item['metadata']['name']}")
                    self.http.patch(path, json={"metadata": {"finalizers": None}},
                                    headers={"Content-Type": "application/merge-patch+json"})
        for name in self.names:
            wait_for(lambda: self.http.get(f"{CRDS}/{name}").status_code == 404, timeout=30,
                     what=f"CRD {name} deleted")


@pytest.fixture
def kubectl(kubectl_env: dict[str, str], tmp_path: Path) -> Kubectl:
    """kubectl with a discovery cache of its own: the session's kubectl cache still lists the groups of
    CRDs that other tests deleted, and kubectl would resolve ``crontabs`` to one of those first (it
    would against Kubernetes too, until its cache expires)."""
    home = tmp_path / "kubectl-home"
    home.mkdir()
    return Kubectl(env={**kubectl_env, "HOME": str(home)}, cwd=tmp_path)


@pytest.fixture
def crds(http: httpx.Client) -> Iterator[CRDs]:
    c = CRDs(http)
    yield c
    c.cleanup()


@pytest.fixture
def other_namespace(http: httpx.Client) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    r = http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    yield name
    http.delete(f"/api/v1/namespaces/{name}")


def table_lines(out: str) -> list[list[str]]:
    """``kubectl get`` output as cells (columns are separated by two or more spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in out.strip().splitlines()]


def etcd_value(etcd: Etcd, key: str) -> dict[str, Any] | None:
    """What etcd itself stores under ``key`` (through etcd's JSON gRPC gateway)."""
    r = httpx.post(f"{etcd.url}/v3/kv/range", json={"key": base64.b64encode(key.encode()).decode()}, timeout=10)
    r.raise_for_status()
    kvs = r.json().get("kvs") or []
    return json.loads(base64.b64decode(kvs[0]["value"])) if kvs else None


def watch_lines(http_url: str, path: str, out: "queue.Queue[dict[str, Any]]", stop: threading.Event) -> threading.Thread:
    def run() -> None:
        with httpx.Client(base_url=http_url, timeout=httpx.Timeout(30, read=None)) as c:
            with c.stream("GET", path) as r:
                for line in r.iter_lines():
                    if line:
                        out.put(json.loads(line))
                    if stop.is_set():
                        return
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def take(q: "queue.Queue[dict[str, Any]]", n: int, timeout: float = 10) -> list[dict[str, Any]]:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        try:
            got.append(q.get(timeout=max(0.01, deadline - time.monotonic())))
        except queue.Empty:
            raise AssertionError(f"only {len(got)} of {n} watch events arrived: {got}")
    return got


# ---------------------------------------------------------------------------------- served at once
def test_new_crd_is_served_within_a_second(http: httpx.Client, crds: CRDs, kubectl: Kubectl, namespace: str,
                                           tmp_path: Path) -> None:
    group = new_group("served")
    name = f"crontabs.{group}"
    assert http.get(f"/apis/{group}/v1").status_code == 404
    start = time.monotonic()
    crds.create(crontab_crd(group), wait=False)
    entry = wait_for(lambda: discovered(http, f"{group}/v1", "crontabs"), timeout=10, interval=0.01,
                     what="crontabs in discovery")
    in_discovery = time.monotonic() - start
    crd = wait_for(lambda: established(http, name), timeout=10, interval=0.01, what="Established=True")
    is_established = time.monotonic() - start
    r = http.post(f"/apis/{group}/v1/namespaces/{namespace}/crontabs", json=yaml.safe_load(crontab(group, "first")))
    first_object = time.monotonic() - start
    print(f"\ntime to served: discovery {in_discovery * 1000:.0f} ms, Established {is_established * 1000:.0f} ms, "
          f"first object created {first_object * 1000:.0f} ms")
    assert r.status_code == 201, r.text
    assert in_discovery < SERVED_WITHIN_SECONDS and is_established < SERVED_WITHIN_SECONDS, (in_discovery, is_established)

    assert entry == {"name": "crontabs", "singularName": "crontab", "namespaced": True, "kind": "CronTab",
                     "verbs": ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"],
                     "shortNames": ["ct"], "categories": ["all"]}
    subs = {x["name"]: x for x in http.get(f"/apis/{group}/v1").json()["resources"]}
    assert sorted(subs["crontabs/status"]["verbs"]) == ["get", "patch", "update"]
    assert (subs["crontabs/scale"]["group"], subs["crontabs/scale"]["version"], subs["crontabs/scale"]["kind"]) == (
        "autoscaling", "v1", "Scale")

    # The status the naming and establishing controllers write.
    conds = conditions(crd)
    assert (conds["NamesAccepted"]["status"], conds["NamesAccepted"]["reason"], conds["NamesAccepted"]["message"]) == (
        "True", "NoConflicts", "no conflicts found")
    assert (conds["Established"]["status"], conds["Established"]["reason"], conds["Established"]["message"]) == (
        "True", "InitialNamesAccepted", "the initial names have been accepted")
    assert crd["status"]["acceptedNames"] == {"plural": "crontabs", "singular": "crontab", "kind": "CronTab",
                                              "listKind": "CronTabList", "shortNames": ["ct"], "categories": ["all"]}
    assert crd["status"]["storedVersions"] == ["v1"]
    assert crd["spec"]["conversion"] == {"strategy": "None"}

    # kubectl finds it right away.
    assert kubectl.ok("wait", "--for", "condition=established", "--timeout=10s", f"crd/{name}").strip() == (
        f"customresourcedefinition.apiextensions.k8s.io/{name} condition met")
    assert kubectl.ok("wait", "--for", "condition=NamesAccepted", "--timeout=10s", f"crd/{name}").strip() == (
        f"customresourcedefinition.apiextensions.k8s.io/{name} condition met")
    out = kubectl.ok("get", "crontabs", "-n", namespace)
    assert [row[:3] for row in table_lines(out)] == [["NAME", "SPEC", "REPLICAS"], ["first", "* * * * */5", "1"]]
    rows = [row for row in table_lines(kubectl.ok("api-resources")) if row[0] == "crontabs"]
    assert rows == [["crontabs", "ct", f"{group}/v1", "true", "CronTab"]]
    rows = table_lines(kubectl.ok("api-resources", "--api-group", group, "-o", "wide"))
    assert rows[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND", "VERBS", "CATEGORIES"]
    assert rows[1] == ["crontabs", "ct", f"{group}/v1", "true", "CronTab",
                       "delete,deletecollection,get,list,patch,create,update,watch", "all"]


def test_kubectl_apply_then_get_at_once(kubectl: Kubectl, crds: CRDs, namespace: str, tmp_path: Path) -> None:
    """The docs' sequence, without waiting in between: apply the CRD, then a CronTab, then get it."""
    group = new_group("atonce")
    crds.track(f"crontabs.{group}")
    start = time.monotonic()
    assert kubectl.ok("apply", "-f", str(write(tmp_path, "crd.yaml", crontab_crd(group)))).strip() == (
        f"customresourcedefinition.apiextensions.k8s.io/crontabs.{group} created")
    out = kubectl.ok("apply", "-n", namespace, "-f", str(write(tmp_path, "ct.yaml", crontab(group, "my-new-cron-object"))))
    assert out.strip() == f"crontab.{group}/my-new-cron-object created"
    print(f"\nkubectl apply CRD + apply CronTab: {(time.monotonic() - start) * 1000:.0f} ms")
    out = kubectl.ok("get", "crontab", "-n", namespace)
    assert [row[:3] for row in table_lines(out)] == [["NAME", "SPEC", "REPLICAS"],
                                                      ["my-new-cron-object", "* * * * */5", "1"]]


# ---------------------------------------------------------------------------------- CRUD and lists
def test_crud_lists_across_namespaces_and_label_selectors(http: httpx.Client, kubectl: Kubectl, crds: CRDs,
                                                          namespace: str, other_namespace: str,
                                                          tmp_path: Path) -> None:
    group = new_group("crud")
    crds.create(crontab_crd(group))
    base = f"/apis/{group}/v1"
    # create: kubectl (short name round trip) and HTTP
    out = kubectl.ok("create", "-f", str(write(tmp_path, "a.yaml", crontab(group, "a", namespace=namespace,
                                                                             labels={"tier": "gold"}))))
    assert out.strip() == f"crontab.{group}/a created"
    r = http.post(f"{base}/namespaces/{other_namespace}/crontabs",
                  json=yaml.safe_load(crontab(group, "b", labels={"tier": "silver"})))
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["apiVersion"] == f"{group}/v1" and b["kind"] == "CronTab"
    assert b["metadata"]["namespace"] == other_namespace and b["metadata"]["generation"] == 1
    assert b["metadata"]["uid"] and b["metadata"]["creationTimestamp"] and b["metadata"]["resourceVersion"]
    r = http.post(f"{base}/namespaces/{other_namespace}/crontabs", json=yaml.safe_load(crontab(group, "b")))
    assert r.status_code == 409 and r.json()["reason"] == "AlreadyExists", r.text
    assert r.json()["message"] == f'crontabs.{group} "b" already exists'
    r = http.post(f"{base}/namespaces/{namespace}/crontabs",
                  json=yaml.safe_load(crontab(group, "c", labels={"tier": "silver"})))
    assert r.status_code == 201, r.text

    # get, by plural, singular, short name, kind and fully qualified names
    for res in ("crontabs", "crontab", "ct", "CronTab", f"crontabs.{group}", f"crontabs.v1.{group}"):
        assert kubectl.ok("get", res, "a", "-n", namespace, "-o", "name").strip() == f"crontab.{group}/a"
    r = http.get(f"{base}/namespaces/{namespace}/crontabs/missing")
    assert r.status_code == 404 and r.json()["message"] == f'crontabs.{group} "missing" not found', r.text
    p = kubectl("get", "ct", "missing", "-n", namespace)
    assert p.returncode == 1 and p.stderr.strip() == (
        f'Error from server (NotFound): crontabs.{group} "missing" not found'), p.stderr

    # lists: one namespace, all namespaces, label selectors
    listed = http.get(f"{base}/namespaces/{namespace}/crontabs").json()
    assert listed["kind"] == "CronTabList" and listed["apiVersion"] == f"{group}/v1"
    assert sorted(i["metadata"]["name"] for i in listed["items"]) == ["a", "c"]
    everywhere = http.get(f"{base}/crontabs").json()
    assert sorted((i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere["items"]) == sorted(
        [(namespace, "a"), (namespace, "c"), (other_namespace, "b")])
    rows = table_lines(kubectl.ok("get", "ct", "-A"))
    assert rows[0][:4] == ["NAMESPACE", "NAME", "SPEC", "REPLICAS"]
    assert sorted((row[0], row[1]) for row in rows[1:]) == sorted(
        [(namespace, "a"), (namespace, "c"), (other_namespace, "b")])
    silver = http.get(f"{base}/crontabs", params={"labelSelector": "tier=silver"}).json()["items"]
    assert sorted(i["metadata"]["name"] for i in silver) == ["b", "c"]
    assert kubectl.ok("get", "ct", "-A", "-l", "tier in (gold)", "-o", "name").split() == [f"crontab.{group}/a"]
    assert kubectl.ok("get", "ct", "-n", namespace, "-l", "tier!=gold", "-o", "name").split() == [f"crontab.{group}/c"]
    assert kubectl.ok("get", "ct", "-A", "-l", "!tier", "-o", "name") == ""

    # update: PUT with the read resourceVersion, then a stale one
    a = http.get(f"{base}/namespaces/{namespace}/crontabs/a").json()
    a["spec"]["image"] = "newer-image"
    r = http.put(f"{base}/namespaces/{namespace}/crontabs/a", json=a)
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["image"] == "newer-image" and r.json()["metadata"]["generation"] == 2
    r = http.put(f"{base}/namespaces/{namespace}/crontabs/a", json=a)
    assert r.status_code == 409 and r.json()["reason"] == "Conflict"
    assert r.json()["message"] == (f'Operation cannot be fulfilled on crontabs.{group} "a": the object has been '
                                   "modified; please apply your changes to the latest version and try again")

    # delete: one by kubectl, a collection by label over HTTP
    assert kubectl.ok("delete", "ct", "a", "-n", namespace).strip() == f'crontab.{group} "a" deleted'
    assert http.get(f"{base}/namespaces/{namespace}/crontabs/a").status_code == 404
    r = http.delete(f"{base}/namespaces/{other_namespace}/crontabs", params={"labelSelector": "tier=silver"})
    assert r.status_code == 200 and [i["metadata"]["name"] for i in r.json()["items"]] == ["b"], r.text
    assert sorted(i["metadata"]["name"] for i in http.get(f"{base}/crontabs").json()["items"]) == ["c"]


def test_field_selectors_on_name_and_selectable_fields(http: httpx.Client, kubectl: Kubectl, crds: CRDs,
                                                       namespace: str, tmp_path: Path) -> None:
    group = new_group("shirts")
    crds.create(shirt_crd(group))
    kubectl.ok("apply", "-f", str(write(tmp_path, "shirts.yaml", shirts(group, namespace))))
    # The docs: kubectl get shirts.stable.example.com --field-selector spec.color=blue
    out = kubectl.ok("get", f"shirts.{group}", "-n", namespace, "--field-selector", "spec.color=blue")
    assert table_lines(out) == [["NAME", "COLOR", "SIZE"], ["example1", "blue", "S"], ["example2", "blue", "M"]]
    out = kubectl.ok("get", "shirts", "-n", namespace, "--field-selector", "spec.color=blue,spec.size=M", "-o", "name")
    assert out.split() == [f"shirt.{group}/example2"]
    out = kubectl.ok("get", "shirts", "-n", namespace, "--field-selector", "spec.color!=blue", "-o", "name")
    assert out.split() == [f"shirt.{group}/example3"]
    out = kubectl.ok("get", "shirts", "-A", "--field-selector", "metadata.name=example3", "-o", "name")
    assert out.split() == [f"shirt.{group}/example3"]
    items = http.get(f"/apis/{group}/v1/shirts", params={"fieldSelector": f"metadata.namespace={namespace},spec.size=S"}
                     ).json()["items"]
    assert [i["metadata"]["name"] for i in items] == ["example1"]
    # with a label selector at once
    out = kubectl.ok("get", "shirts", "-n", namespace, "-l", "size=M", "--field-selector", "spec.color=green", "-o", "name")
    assert out.split() == [f"shirt.{group}/example3"]

    # A field that is not selectable: 400, Kubernetes' message, for lists and watches alike.
    for params in ({"fieldSelector": "spec.fabric=cotton"}, {"fieldSelector": "spec.fabric=cotton", "watch": "1"}):
        r = http.get(f"/apis/{group}/v1/namespaces/{namespace}/shirts", params=params)
        assert r.status_code == 400, r.text
        assert r.json()["message"] == "field label not supported: spec.fabric"
    p = kubectl("get", "shirts", "-n", namespace, "--field-selector", "spec.fabric=cotton")
    assert p.returncode == 1
    assert p.stderr.strip() == (
        f'Error from server (BadRequest): Unable to find "{group}/v1, Resource=shirts" that match label selector "", '
        'field selector "spec.fabric=cotton": field label not supported: spec.fabric')

    # A watch on a selectable field: an object that starts matching is ADDED, one that changes and still
    # matches is MODIFIED, one that stops matching is DELETED (as the watch cache filters).
    rv = http.get(f"/apis/{group}/v1/namespaces/{namespace}/shirts").json()["metadata"]["resourceVersion"]
    http.patch(f"/apis/{group}/v1/namespaces/{namespace}/shirts/example3", json={"spec": {"color": "blue"}},
               headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
    http.patch(f"/apis/{group}/v1/namespaces/{namespace}/shirts/example1", json={"spec": {"size": "L"}},
               headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()

    def events(selector: str) -> list[tuple[str, str]]:
        r = http.get(f"/apis/{group}/v1/namespaces/{namespace}/shirts",
                     params={"watch": "1", "resourceVersion": rv, "fieldSelector": selector, "timeoutSeconds": "1"})
        return [(e["type"], e["object"]["metadata"]["name"]) for e in map(json.loads, r.text.splitlines())]
    assert events("spec.color=green") == [("DELETED", "example3")]
    assert events("spec.color=blue") == [("ADDED", "example3"), ("MODIFIED", "example1")]
    assert events("spec.size=M") == [("MODIFIED", "example3")]


def test_short_names_and_categories(http: httpx.Client, kubectl: Kubectl, crds: CRDs, namespace: str,
                                    tmp_path: Path) -> None:
    in_all, other = new_group("catall"), new_group("catnone")
    crds.create(crontab_crd(in_all, categories=("all", "cronstuff"), short_names=("ctall",)))
    crds.create(crontab_crd(other, categories=("cronstuff",), short_names=("ctnone",)))
    kubectl.ok("apply", "-n", namespace, "-f", str(write(tmp_path, "a.yaml", crontab(in_all, "in-all"))))
    kubectl.ok("apply", "-n", namespace, "-f", str(write(tmp_path, "b.yaml", crontab(other, "not-in-all"))))
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}
    assert http.post(f"/api/v1/namespaces/{namespace}/configmaps", json=cm).status_code == 201

    # kubectl get all: the custom resource in category "all" shows (fully qualified), the other does not.
    out = kubectl.ok("get", "all", "-n", namespace, "-o", "name")
    assert out.split() == [f"crontab.{in_all}/in-all"]
    out = kubectl.ok("get", "all", "-n", namespace)
    assert f"crontab.{in_all}/in-all" in out and "not-in-all" not in out
    assert table_lines(out)[0][:3] == ["NAME", "SPEC", "REPLICAS"]
    # a category of their own lists both
    out = kubectl.ok("get", "cronstuff", "-n", namespace, "-o", "name")
    assert sorted(out.split()) == sorted([f"crontab.{in_all}/in-all", f"crontab.{other}/not-in-all"])
    # short names
    assert kubectl.ok("get", "ctall", "-n", namespace, "-o", "name").split() == [f"crontab.{in_all}/in-all"]
    assert kubectl.ok("get", "ctnone", "-n", namespace, "-o", "name").split() == [f"crontab.{other}/not-in-all"]
    # api-resources --categories
    rows = table_lines(kubectl.ok("api-resources", "--categories", "cronstuff", "--no-headers"))
    assert sorted(row[2] for row in rows) == sorted([f"{in_all}/v1", f"{other}/v1"])


def test_cluster_scoped_crd(http: httpx.Client, kubectl: Kubectl, crds: CRDs, namespace: str, tmp_path: Path) -> None:
    group = new_group("cluster")
    crds.create(crontab_crd(group, scope="Cluster", short_names=("cct",)))
    assert discovered(http, f"{group}/v1", "crontabs")["namespaced"] is False  # type: ignore[index]
    rows = [row for row in table_lines(kubectl.ok("api-resources", "--api-group", group)) if row[0] == "crontabs"]
    assert rows == [["crontabs", "cct", f"{group}/v1", "false", "CronTab"]]

    out = kubectl.ok("apply", "-f", str(write(tmp_path, "c.yaml", crontab(group, "global-cron"))))
    assert out.strip() == f"crontab.{group}/global-cron created"
    obj = http.get(f"/apis/{group}/v1/crontabs/global-cron").json()
    assert "namespace" not in obj["metadata"]
    assert obj["spec"]["replicas"] == 1
    # kubectl get in any namespace lists it without a NAMESPACE column
    rows = table_lines(kubectl.ok("get", "cct", "-n", namespace))
    assert [row[:2] for row in rows] == [["NAME", "SPEC"], ["global-cron", "* * * * */5"]]
    # a namespaced path does not exist for it
    r = http.get(f"/apis/{group}/v1/namespaces/{namespace}/crontabs/global-cron")
    assert r.status_code == 404
    r = http.post(f"/apis/{group}/v1/namespaces/{namespace}/crontabs", json=yaml.safe_load(crontab(group, "x")))
    assert r.status_code == 404
    # metadata.name is a field selector; metadata.namespace is not for a cluster-scoped custom resource
    items = http.get(f"/apis/{group}/v1/crontabs", params={"fieldSelector": "metadata.name=global-cron"}).json()["items"]
    assert [i["metadata"]["name"] for i in items] == ["global-cron"]
    r = http.get(f"/apis/{group}/v1/crontabs", params={"fieldSelector": "metadata.namespace=default"})
    assert r.status_code == 400 and r.json()["message"] == "field label not supported: metadata.namespace", r.text
    # a namespace in the body is dropped
    body = yaml.safe_load(crontab(group, "with-ns", namespace=namespace))
    r = http.post(f"/apis/{group}/v1/crontabs", json=body)
    assert r.status_code == 201 and "namespace" not in r.json()["metadata"], r.text
    assert kubectl.ok("delete", "cct", "global-cron", "with-ns").split("\n")[0] == f'crontab.{group} "global-cron" deleted'
    assert http.get(f"/apis/{group}/v1/crontabs").json()["items"] == []


# ---------------------------------------------------------------------------------- schema
@pytest.fixture
def cron_group(crds: CRDs) -> str:
    """A fresh group serving the docs' CronTab (namespaced)."""
    group = new_group("cron")
    crds.create(crontab_crd(group))
    return group


def test_wrong_type_and_out_of_range_answer_422_naming_the_field(http: httpx.Client, kubectl: Kubectl, cron_group: str,
                                                                 namespace: str, tmp_path: Path) -> None:
    group = cron_group
    url = f"/apis/{group}/v1/namespaces/{namespace}/crontabs"
    body = yaml.safe_load(crontab(group, "bad"))
    body["spec"]["image"] = 42
    r = http.post(url, json=body)
    assert r.status_code == 422, r.text
    status = r.json()
    assert status["reason"] == "Invalid"
    assert status["message"] == (f'CronTab.{group} "bad" is invalid: spec.image: Invalid value: "integer": '
                                 'spec.image in body must be of type string: "integer"')
    assert status["details"] == {"name": "bad", "group": group, "kind": "CronTab", "causes": [{
        "reason": "FieldValueTypeInvalid", "field": "spec.image",
        "message": 'Invalid value: "integer": spec.image in body must be of type string: "integer"'}]}

    body = yaml.safe_load(crontab(group, "bad"))
    body["spec"]["replicas"] = 11
    r = http.post(url, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["message"] == (f'CronTab.{group} "bad" is invalid: spec.replicas: Invalid value: 11: '
                                   "spec.replicas in body should be less than or equal to 10")

    body = yaml.safe_load(crontab(group, "bad", cron="every minute"))
    r = http.post(url, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["message"] == (
        f'CronTab.{group} "bad" is invalid: spec.cronSpec: Invalid value: "every minute": spec.cronSpec in body '
        "should match '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'")

    # kubectl prints it the way it prints any Invalid error
    f = write(tmp_path, "bad.yaml", crontab(group, "bad", namespace=namespace, extra_spec="  replicas: many\n"))
    p = kubectl("apply", "-f", str(f))
    assert p.returncode == 1
    assert p.stderr.strip() == (
        'The CronTab "bad" is invalid: \n'
        '* spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"\n'
        '* .spec.replicas: Invalid value: 0: .spec.replicas accessor error: many is of the type string, expected int64'
    ), p.stderr
    assert http.get(f"{url}/bad").status_code == 404  # nothing was stored

    # an update is validated too
    assert http.post(url, json=yaml.safe_load(crontab(group, "good"))).status_code == 201
    r = http.patch(f"{url}/good", json={"spec": {"replicas": 0}}, headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 422 and r.json()["message"] == (
        f'CronTab.{group} "good" is invalid: spec.replicas: Invalid value: 0: '
        "spec.replicas in body should be greater than or equal to 1"), r.text


def test_unknown_fields_are_pruned_or_rejected_strictly(http: httpx.Client, kubectl: Kubectl, cron_group: str,
                                                        namespace: str, tmp_path: Path) -> None:
    group = cron_group
    url = f"/apis/{group}/v1/namespaces/{namespace}/crontabs"
    body = yaml.safe_load(crontab(group, "pruned"))
    body["spec"]["x"] = 1
    body["spec"]["backoff"] = {"limit": 2, "jitter": True}
    body["extra"] = {"a": 1}
    r = http.post(url, json=body)
    assert r.status_code == 201, r.text
    assert sorted(h.strip() for h in r.headers["warning"].split(",")) == sorted(
        ['299 - "unknown field \\"extra\\""', '299 - "unknown field \\"spec.backoff.jitter\\""',
         '299 - "unknown field \\"spec.x\\""'])
    stored = http.get(f"{url}/pruned").json()
    assert "extra" not in stored
    assert stored["spec"] == {"cronSpec": "* * * * */5", "image": "my-awesome-cron-image", "replicas": 1,
                              "backoff": {"limit": 2}}

    # fieldValidation=Strict (kubectl's default): 400 and nothing stored
    body["metadata"]["name"] = "strict"
    r = http.post(url, json=body, params={"fieldValidation": "Strict"})
    assert r.status_code == 400, r.text
    assert 'unknown field "spec.x"' in r.json()["message"]
    assert http.get(f"{url}/strict").status_code == 404
    f = write(tmp_path, "x.yaml", crontab(group, "strict", namespace=namespace, extra_spec="  x: 1\n"))
    p = kubectl("apply", "-f", str(f))
    assert p.returncode == 1
    assert p.stderr.startswith(f'Error from server (BadRequest): error when creating "{f}": '), p.stderr
    assert p.stderr.strip().endswith('strict decoding error: unknown field "spec.x"'), p.stderr
    assert http.get(f"{url}/strict").status_code == 404
    # --validate=false: pruned silently
    kubectl.ok("apply", "--validate=false", "-f", str(f))
    assert "x" not in http.get(f"{url}/strict").json()["spec"]
    # strict on an update (kubectl apply patches) names the field too
    f.write_text(crontab(group, "strict", namespace=namespace, extra_spec="  z: 1\n"))
    p = kubectl("apply", "-f", str(f))
    assert p.returncode == 1 and p.stderr.strip().endswith('strict decoding error: unknown field "spec.z"'), p.stderr


def test_defaults_appear_nested_ones_too(http: httpx.Client, cron_group: str, namespace: str) -> None:
    group = cron_group
    url = f"/apis/{group}/v1/namespaces/{namespace}/crontabs"
    r = http.post(url, json={"apiVersion": f"{group}/v1", "kind": "CronTab", "metadata": {"name": "bare"}, "spec": {}})
    assert r.status_code == 201, r.text
    # default: {} on backoff, then backoff.limit's own default inside it
    assert r.json()["spec"] == {"cronSpec": "5 0 * * *", "replicas": 1, "backoff": {"limit": 6}}
    assert http.get(f"{url}/bare").json()["spec"] == r.json()["spec"]
    # a given value wins; a given object gets its missing defaults
    r = http.post(url, json={"apiVersion": f"{group}/v1", "kind": "CronTab", "metadata": {"name": "given"},
                             "spec": {"replicas": 3, "backoff": {"delaySeconds": 10}}})
    assert r.status_code == 201, r.text
    assert r.json()["spec"] == {"cronSpec": "5 0 * * *", "replicas": 3, "backoff": {"limit": 6, "delaySeconds": 10}}
    # an update that removes a defaulted field gets the default back
    r = http.patch(f"{url}/given", json={"spec": {"replicas": None, "backoff": None}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert r.json()["spec"] == {"cronSpec": "5 0 * * *", "replicas": 1, "backoff": {"limit": 6}}
    # no spec at all: spec has no default, so nothing is defaulted inside it
    r = http.post(url, json={"apiVersion": f"{group}/v1", "kind": "CronTab", "metadata": {"name": "nospec"}})
    assert r.status_code == 201 and "spec" not in r.json(), r.text


def test_defaults_apply_when_reading_objects_stored_before(http: httpx.Client, cron_group: str, namespace: str) -> None:
    group = cron_group
    url = f"/apis/{group}/v1/namespaces/{namespace}/crontabs"
    assert http.post(url, json=yaml.safe_load(crontab(group, "old"))).status_code == 201
    crd = http.get(f"{CRDS}/crontabs.{group}").json()
    props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    props["timezone"] = {"type": "string", "default": "UTC"}
    assert http.put(f"{CRDS}/crontabs.{group}", json=crd).status_code == 200
    wait_for(lambda: http.post(url, json={"apiVersion": f"{group}/v1", "kind": "CronTab",
                                          "metadata": {"generateName": "new-"}, "spec": {}}
                               ).json()["spec"].get("timezone") == "UTC", timeout=5, what="new default served")
    assert http.get(f"{url}/old").json()["spec"]["timezone"] == "UTC"


def test_strict_field_validation_messages(http: httpx.Client, cron_group: str, namespace: str) -> None:
    group = cron_group
    url = f"/apis/{group}/v1/namespaces/{namespace}/crontabs"
    body = yaml.safe_load(crontab(group, "strict"))
    body["spec"]["x"] = 1
    r = http.post(url, json=body, params={"fieldValidation": "Strict"})
    assert r.status_code == 400
    assert r.json()["message"] == ('CronTab in version "v1" cannot be handled as a CronTab: '
                                   'strict decoding error: unknown field "spec.x"')
    assert http.post(url, json=yaml.safe_load(crontab(group, "strict"))).status_code == 201
    r = http.patch(f"{url}/strict", json={"spec": {"x": 1}}, params={"fieldValidation": "Strict"},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 422 and r.json()["reason"] == "Invalid", r.text
    assert r.json()["message"].startswith(' "" is invalid: patch: Invalid value: ')
    assert r.json()["message"].endswith(': strict decoding error: unknown field "spec.x"')


def test_printer_columns_in_kubectl_get(http: httpx.Client, kubectl: Kubectl, cron_group: str, namespace: str,
                                        tmp_path: Path) -> None:
    group = cron_group
    kubectl.ok("apply", "-n", namespace, "-f", str(write(tmp_path, "ct.yaml", crontab(group, "my-new-cron-object"))))
    rows = table_lines(kubectl.ok("get", "crontab", "-n", namespace))
    assert rows[0] == ["NAME", "SPEC", "REPLICAS", "AGE"]
    assert rows[1][:3] == ["my-new-cron-object", "* * * * */5", "1"] and rows[1][3].endswith("s")
    rows = table_lines(kubectl.ok("get", "crontab", "-n", namespace, "-o", "wide"))
    assert rows[0] == ["NAME", "SPEC", "REPLICAS", "IMAGE", "AGE"]
    assert rows[1][:4] == ["my-new-cron-object", "* * * * */5", "1", "my-awesome-cron-image"]
    # the Table itself: column definitions with their descriptions, the Name column first
    r = http.get(f"/apis/{group}/v1/namespaces/{namespace}/crontabs",
                 headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
    table = r.json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    cols = [(c["name"], c["type"], c["priority"]) for c in table["columnDefinitions"]]
    assert cols == [("Name", "string", 0), ("Spec", "string", 0), ("Replicas", "integer", 0), ("Image", "string", 1),
                    ("Age", "date", 0)]
    assert table["columnDefinitions"][1]["description"] == "The cron spec defining the interval a CronJob is run"
    assert table["rows"][0]["cells"][:4] == ["my-new-cron-object", "* * * * */5", 1, "my-awesome-cron-image"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    # a missing value is a null cell (Kubernetes' table convertor appends nil), which kubectl leaves blank
    http.patch(f"/apis/{group}/v1/namespaces/{namespace}/crontabs/my-new-cron-object", json={"spec": {"image": None}},
               headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
    r = http.get(f"/apis/{group}/v1/namespaces/{namespace}/crontabs/my-new-cron-object",
                 headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
    assert r.json()["rows"][0]["cells"][:4] == ["my-new-cron-object", "* * * * */5", 1, None]
    rows = table_lines(kubectl.ok("get", "crontab", "-n", namespace, "-o", "wide"))
    assert len(rows[1]) == 4 and rows[1][:3] == ["my-new-cron-object", "* * * * */5", "1"], rows
    # custom-columns and jsonpath read the object itself
    out = kubectl.ok("get", "ct", "-n", namespace, "-o", "jsonpath={.items[0].spec.backoff.limit}")
    assert out == "6"


# ---------------------------------------------------------------------------------- subresources
def test_status_subresource(http: httpx.Client, kubectl: Kubectl, cron_group: str, namespace: str) -> None:
    group = cron_group
    url = f"/apis/{group}/v1/namespaces/{namespace}/crontabs"
    merge = {"Content-Type": "application/merge-patch+json"}
    body = yaml.safe_load(crontab(group, "st"))
    body["status"] = {"replicas": 7}
    r = http.post(url, json=body)
    assert r.status_code == 201, r.text
    assert "status" not in r.json()  # a create cannot set status
    assert r.json()["metadata"]["generation"] == 1

    # /status writes only status and leaves generation alone
    r = http.patch(f"{url}/st/status", json={"status": {"replicas": 2, "labelSelector": "app=cron"},
                                             "spec": {"image": "ignored"}, "metadata": {"labels": {"ignored": "yes"}}},
                   headers=merge)
    assert r.status_code == 200, r.text
    obj = r.json()
    assert obj["status"] == {"replicas": 2, "labelSelector": "app=cron"}
    assert obj["spec"]["image"] == "my-awesome-cron-image"
    assert "labels" not in obj["metadata"]
    assert obj["metadata"]["generation"] == 1
    assert http.get(f"{url}/st/status").json() == http.get(f"{url}/st").json()  # GET /status: the whole object
    # PUT /status with the object
    obj["status"]["replicas"] = 3
    r = http.put(f"{url}/st/status", json=obj)
    assert r.status_code == 200 and r.json()["status"]["replicas"] == 3 and r.json()["metadata"]["generation"] == 1
    # status is validated against the schema too
    # (with the status schema's own root, as Kubernetes' statusSchemaValidator names it)
    r = http.patch(f"{url}/st/status", json={"status": {"labelSelector": 5}}, headers=merge)
    assert r.status_code == 422, r.text
    assert r.json()["message"] == (
        f'CronTab.{group} "st" is invalid: [status.labelSelector: Invalid value: "integer": labelSelector in body '
        'must be of type string: "integer", .status.labelSelector: Invalid value: "": .status.labelSelector '
        'accessor error: 5 is of the type int64, expected string]')

    # the main resource ignores status; a spec change moves generation, a metadata change does not
    r = http.patch(f"{url}/st", json={"status": {"replicas": 9}}, headers=merge)
    assert r.status_code == 200 and r.json()["status"]["replicas"] == 3 and r.json()["metadata"]["generation"] == 1
    r = http.patch(f"{url}/st", json={"metadata": {"labels": {"a": "b"}}}, headers=merge)
    assert r.status_code == 200 and r.json()["metadata"]["generation"] == 1
    r = http.patch(f"{url}/st", json={"spec": {"image": "v2"}, "status": {"replicas": 9}}, headers=merge)
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["image"] == "v2" and r.json()["status"]["replicas"] == 3
    assert r.json()["metadata"]["generation"] == 2
    obj = r.json()
    obj["status"] = {"replicas": 10}
    obj["spec"]["image"] = "v3"
    r = http.put(f"{url}/st", json=obj)
    assert r.status_code == 200 and r.json()["status"] == {"replicas": 3, "labelSelector": "app=cron"}
    assert r.json()["metadata"]["generation"] == 3
    # kubectl reads status through its subresource too
    out = kubectl.ok("get", "ct", "st", "-n", namespace, "--subresource", "status", "-o", "jsonpath={.status.replicas}")
    assert out == "3"


def test_scale_subresource(http: httpx.Client, kubectl: Kubectl, cron_group: str, namespace: str) -> None:
    group = cron_group
    url = f"/apis/{group}/v1/namespaces/{namespace}/crontabs"
    assert http.post(url, json=yaml.safe_load(crontab(group, "sc"))).status_code == 201
    http.patch(f"{url}/sc/status", json={"status": {"replicas": 1, "labelSelector": "app=cron"}},
               headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
    scale = http.get(f"{url}/sc/scale").json()
    obj = http.get(f"{url}/sc").json()
    assert scale == {"kind": "Scale", "apiVersion": "autoscaling/v1",
                     "metadata": {"name": "sc", "namespace": namespace, "uid": obj["metadata"]["uid"],
                                  "resourceVersion": obj["metadata"]["resourceVersion"],
                                  "creationTimestamp": obj["metadata"]["creationTimestamp"]},
                     "spec": {"replicas": 1}, "status": {"replicas": 1, "selector": "app=cron"}}

    assert kubectl.ok("scale", "crontab", "sc", "-n", namespace, "--replicas=5").strip() == f"crontab.{group}/sc scaled"
    obj = http.get(f"{url}/sc").json()
    assert obj["spec"]["replicas"] == 5 and obj["metadata"]["generation"] == 2
    assert obj["status"]["replicas"] == 1  # status is the controller's to write
    # kubectl scale with a precondition that no longer holds
    p = kubectl("scale", "ct", "sc", "-n", namespace, "--current-replicas=3", "--replicas=4")
    assert p.returncode == 1
    assert p.stderr.strip() == "error: Expected replicas to be 3, was 5", p.stderr
    # PUT /scale, and PATCH /scale with a merge patch
    r = http.put(f"{url}/sc/scale", json={"kind": "Scale", "apiVersion": "autoscaling/v1",
                                          "metadata": {"name": "sc", "namespace": namespace}, "spec": {"replicas": 2}})
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 2, r.text
    r = http.patch(f"{url}/sc/scale", json={"spec": {"replicas": 3}}, headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 3, r.text
    assert http.get(f"{url}/sc").json()["spec"]["replicas"] == 3
    # the schema still holds: maximum 10
    r = http.patch(f"{url}/sc/scale", json={"spec": {"replicas": 11}}, headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 422, r.text
    assert r.json()["message"] == (f'CronTab.{group} "sc" is invalid: spec.replicas: Invalid value: 11: '
                                   "spec.replicas in body should be less than or equal to 10")
    # a resource without the scale subresource has none
    assert http.get(f"{url}/sc/nothing").status_code == 404


# ---------------------------------------------------------------------------------- watch
def test_watch_delivers_every_event(http: httpx.Client, kubectl: Kubectl, cron_group: str, namespace: str,
                                    apiserver: Any) -> None:
    group = cron_group
    url = f"/apis/{group}/v1/namespaces/{namespace}/crontabs"
    merge = {"Content-Type": "application/merge-patch+json"}
    assert http.post(url, json=yaml.safe_load(crontab(group, "before"))).status_code == 201
    rv = http.get(url).json()["metadata"]["resourceVersion"]

    events: "queue.Queue[dict[str, Any]]" = queue.Queue()
    stop = threading.Event()
    watch_lines(apiserver.url, f"{url}?watch=1&resourceVersion={rv}", events, stop)
    proc = kubectl.popen("get", "crontabs", "-n", namespace, "-w", "--output-watch-events", "--no-headers")
    try:
        time.sleep(1.0)  # let kubectl list and start watching
        assert http.post(url, json=yaml.safe_load(crontab(group, "w1"))).status_code == 201
        http.patch(f"{url}/w1", json={"spec": {"image": "v2"}}, headers=merge).raise_for_status()
        http.patch(f"{url}/w1/status", json={"status": {"replicas": 4}}, headers=merge).raise_for_status()
        assert http.delete(f"{url}/w1").status_code == 200
        got = take(events, 4)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [
            ("ADDED", "w1"), ("MODIFIED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]
        assert all(e["object"]["apiVersion"] == f"{group}/v1" and e["object"]["kind"] == "CronTab" for e in got)
        assert got[1]["object"]["spec"]["image"] == "v2" and got[2]["object"]["status"] == {"replicas": 4}
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in got]
        assert rvs == sorted(rvs) and rvs[0] > int(rv)

        # kubectl get -w: the existing object, then every event, with the printer columns
        lines: list[str] = []
        deadline = time.monotonic() + 10
        assert proc.stdout is not None
        while len(lines) < 5 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.strip():
                lines.append(line)
        rows = [table_lines(line)[0][:4] for line in lines]
        assert rows == [["ADDED", "before", "* * * * */5", "1"], ["ADDED", "w1", "* * * * */5", "1"],
                        ["MODIFIED", "w1", "* * * * */5", "1"], ["MODIFIED", "w1", "* * * * */5", "1"],
                        ["DELETED", "w1", "* * * * */5", "1"]], (lines, proc.poll() is not None and proc.stderr
                                                                 and proc.stderr.read())
    finally:
        stop.set()
        proc.kill()
        proc.wait(10)

    # from an older resourceVersion: the same history again; a single object's watch by name
    r = http.get(url, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1"})
    assert [json.loads(line)["type"] for line in r.text.splitlines()] == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]
    r = http.get(url, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1",
                              "fieldSelector": "metadata.name=before"})
    assert r.text == ""
    # resourceVersion 0 (or none): the current objects as ADDED first
    r = http.get(url, params={"watch": "1", "resourceVersion": "0", "timeoutSeconds": "1"})
    assert [(json.loads(line)["type"], json.loads(line)["object"]["metadata"]["name"])
            for line in r.text.splitlines()] == [("ADDED", "before")]


# ---------------------------------------------------------------------------------- versions
def test_versions_share_one_storage_version(http: httpx.Client, kubectl: Kubectl, crds: CRDs, namespace: str,
                                            etcd: Etcd, apiserver: Any, tmp_path: Path) -> None:
    group = new_group("versions")
    crd = crds.create(versioned_crd(group, storage="v1beta1"))
    assert crd["status"]["storedVersions"] == ["v1beta1"]
    # discovery: both versions, the preferred (GA) one first, whatever the storage version is
    expected = [{"groupVersion": f"{group}/v1", "version": "v1"}, {"groupVersion": f"{group}/v1beta1", "version": "v1beta1"}]
    doc = http.get(f"/apis/{group}").json()
    assert doc["kind"] == "APIGroup" and doc["versions"] == expected and doc["preferredVersion"] == expected[0]
    listed = next(g for g in http.get("/apis").json()["groups"] if g["name"] == group)
    assert listed["versions"] == expected and listed["preferredVersion"] == expected[0]
    for version in ("v1", "v1beta1"):
        assert discovered(http, f"{group}/{version}", "widgets")["kind"] == "Widget"  # type: ignore[index]
    assert f"{group}/v1beta1" in kubectl.ok("api-versions").split()

    def url(version: str, name: str = "") -> str:
        return f"/apis/{group}/{version}/namespaces/{namespace}/widgets" + (f"/{name}" if name else "")

    def stored(name: str) -> dict[str, Any] | None:
        return etcd_value(etcd, f"/registry/{group}/widgets/{namespace}/{name}")

    # written through v1 (not the storage version): stored as v1beta1, read back through either
    r = http.post(url("v1"), json={"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "from-v1"},
                                   "spec": {"size": "L"}})
    assert r.status_code == 201 and r.json()["apiVersion"] == f"{group}/v1", r.text
    assert stored("from-v1")["apiVersion"] == f"{group}/v1beta1"  # type: ignore[index]
    got = http.get(url("v1beta1", "from-v1")).json()
    assert got["apiVersion"] == f"{group}/v1beta1" and got["spec"] == {"size": "L"}
    assert http.get(url("v1", "from-v1")).json()["apiVersion"] == f"{group}/v1"
    # written through v1beta1, read through v1
    r = http.post(url("v1beta1"), json={"apiVersion": f"{group}/v1beta1", "kind": "Widget",
                                        "metadata": {"name": "from-beta"}, "spec": {"size": "S"}})
    assert r.status_code == 201 and r.json()["apiVersion"] == f"{group}/v1beta1", r.text
    got = http.get(url("v1", "from-beta")).json()
    assert got["apiVersion"] == f"{group}/v1" and got["spec"] == {"size": "S"}
    assert got["metadata"]["uid"] == r.json()["metadata"]["uid"]
    # the body's apiVersion must match the URL's
    r = http.post(url("v1"), json={"apiVersion": f"{group}/v1beta1", "kind": "Widget", "metadata": {"name": "x"}})
    assert r.status_code == 400, r.text
    assert r.json()["message"] == (f"the API version in the data ({group}/v1beta1) does not match the expected "
                                   f"API version ({group}/v1)")
    # lists and updates answer in the version asked for; what is stored stays at the storage version
    for version in ("v1", "v1beta1"):
        lst = http.get(url(version)).json()
        assert lst["apiVersion"] == f"{group}/{version}" and lst["kind"] == "WidgetList"
        assert {i["apiVersion"] for i in lst["items"]} == {f"{group}/{version}"}
        obj = http.get(url(version, "from-beta")).json()
        obj["spec"]["size"] = f"M-{version}"
        r = http.put(url(version, "from-beta"), json=obj)
        assert r.status_code == 200 and r.json()["apiVersion"] == f"{group}/{version}", r.text
        assert stored("from-beta") == {**r.json(), "apiVersion": f"{group}/v1beta1",  # type: ignore[index]
                                       "metadata": {k: v for k, v in r.json()["metadata"].items()
                                                    if k != "resourceVersion"}}
    r = http.patch(url("v1beta1", "from-v1"), json={"spec": {"size": "XL"}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200 and r.json()["apiVersion"] == f"{group}/v1beta1", r.text

    # a watch through v1beta1 sees objects written through v1 as v1beta1
    rv = http.get(url("v1beta1")).json()["metadata"]["resourceVersion"]
    obj = http.get(url("v1", "from-v1")).json()
    obj["spec"]["size"] = "XXL"
    http.put(url("v1", "from-v1"), json=obj).raise_for_status()
    r = http.get(url("v1beta1"), params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1"})
    events = [json.loads(line) for line in r.text.splitlines()]
    assert [(e["type"], e["object"]["apiVersion"], e["object"]["spec"]["size"]) for e in events] == [
        ("MODIFIED", f"{group}/v1beta1", "XXL")]

    # kubectl: the preferred version by default, any version when asked
    assert kubectl.ok("get", "widgets", "from-beta", "-n", namespace, "-o", "jsonpath={.apiVersion}") == f"{group}/v1"
    assert kubectl.ok("get", f"widgets.v1beta1.{group}", "from-v1", "-n", namespace,
                      "-o", "jsonpath={.apiVersion}") == f"{group}/v1beta1"
    f = write(tmp_path, "w.yaml", f"apiVersion: {group}/v1beta1\nkind: Widget\nmetadata:\n  name: applied\n"
                                  f"  namespace: {namespace}\nspec:\n  size: S\n")
    assert kubectl.ok("apply", "-f", str(f)).strip() == f"widget.{group}/applied created"
    assert stored("applied")["apiVersion"] == f"{group}/v1beta1"  # type: ignore[index]


def test_patch_through_a_version_that_is_not_the_storage_version(http: httpx.Client, kubectl: Kubectl, crds: CRDs,
                                                                 namespace: str, tmp_path: Path) -> None:
    group = new_group("patchver")
    crds.create(versioned_crd(group, storage="v1beta1"))
    url = f"/apis/{group}/v1/namespaces/{namespace}/widgets"
    f = write(tmp_path, "w.yaml", f"apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: w\n"
                                  f"  namespace: {namespace}\nspec:\n  size: S\n")
    kubectl.ok("apply", "-f", str(f))
    r = http.patch(f"{url}/w", json={"spec": {"size": "M"}}, headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200 and r.json()["apiVersion"] == f"{group}/v1", r.text
    r = http.patch(f"{url}/w", json=[{"op": "test", "path": "/apiVersion", "value": f"{group}/v1"},
                                     {"op": "replace", "path": "/spec/size", "value": "L"}],
                   headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 200 and r.json()["spec"]["size"] == "L", r.text
    f.write_text(f.read_text().replace("size: S", "size: XL"))
    assert kubectl.ok("apply", "-f", str(f)).strip() == f"widget.{group}/w configured"


def test_storage_version_change_keeps_old_objects_readable(http: httpx.Client, crds: CRDs, namespace: str,
                                                           etcd: Etcd) -> None:
    group = new_group("storage")
    crds.create(versioned_crd(group, storage="v1beta1"))
    base = f"/apis/{group}/{{}}/namespaces/{namespace}/widgets"
    r = http.post(base.format("v1beta1"), json={"apiVersion": f"{group}/v1beta1", "kind": "Widget",
                                                "metadata": {"name": "old"}, "spec": {"size": "S"}})
    assert r.status_code == 201, r.text
    # move storage to v1: storedVersions lists both; the old object still reads through either version
    crd = http.get(f"{CRDS}/widgets.{group}").json()
    for v in crd["spec"]["versions"]:
        v["storage"] = v["name"] == "v1"
    r = http.put(f"{CRDS}/widgets.{group}", json=crd)
    assert r.status_code == 200, r.text
    assert r.json()["status"]["storedVersions"] == ["v1beta1", "v1"]
    assert http.get(base.format("v1") + "/old").json()["apiVersion"] == f"{group}/v1"

    def new_written_as_v1() -> bool:
        r = http.post(base.format("v1beta1"), json={"apiVersion": f"{group}/v1beta1", "kind": "Widget",
                                                    "metadata": {"generateName": "new-"}, "spec": {"size": "M"}})
        assert r.status_code == 201, r.text
        name = r.json()["metadata"]["name"]
        return etcd_value(etcd, f"/registry/{group}/widgets/{namespace}/{name}")["apiVersion"] == f"{group}/v1"  # type: ignore[index]
    wait_for(new_written_as_v1, timeout=5, interval=0.1, what="new objects stored at the new storage version")
    assert etcd_value(etcd, f"/registry/{group}/widgets/{namespace}/old")["apiVersion"] == f"{group}/v1beta1"  # type: ignore[index]
    # a served: false version disappears from discovery and answers 404
    crd = http.get(f"{CRDS}/widgets.{group}").json()
    for v in crd["spec"]["versions"]:
        v["served"] = v["name"] == "v1"
    assert http.put(f"{CRDS}/widgets.{group}", json=crd).status_code == 200
    wait_for(lambda: http.get(f"/apis/{group}/v1beta1").status_code == 404, timeout=5, interval=0.05,
             what="v1beta1 no longer served")
    assert http.get(base.format("v1beta1")).status_code == 404
    assert [v["version"] for v in http.get(f"/apis/{group}").json()["versions"]] == ["v1"]
    assert http.get(base.format("v1") + "/old").json()["spec"] == {"size": "S"}


# ---------------------------------------------------------------------------------- patches and apply
def test_patch_types_and_client_side_apply(http: httpx.Client, kubectl: Kubectl, cron_group: str, namespace: str,
                                           tmp_path: Path) -> None:
    group = cron_group
    url = f"/apis/{group}/v1/namespaces/{namespace}/crontabs"
    f = write(tmp_path, "ct.yaml", crontab(group, "my-new-cron-object", namespace=namespace,
                                          labels={"app": "cron", "team": "a"}, extra_spec="  replicas: 2\n"))
    assert kubectl.ok("apply", "-f", str(f)).strip() == f"crontab.{group}/my-new-cron-object created"

    # strategic merge patch: 415 with Kubernetes' message (custom resources have no patch strategies)
    r = http.patch(f"{url}/my-new-cron-object", content=b'{"spec":{"image":"x"}}',
                   headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status_code == 415, r.text
    assert r.json()["reason"] == "UnsupportedMediaType"
    assert r.json()["message"] == ("the body of the request was in an unknown format - accepted media types include: "
                                   "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
    p = kubectl("patch", "crontab", "my-new-cron-object", "-n", namespace, "-p", '{"spec":{"image":"x"}}')
    assert p.returncode == 1
    assert p.stderr.strip() == (
        f"error: application/strategic-merge-patch+json is not supported by {group}/v1, Kind=CronTab: the body of "
        "the request was in an unknown format - accepted media types include: application/json-patch+json, "
        "application/merge-patch+json, application/apply-patch+yaml"), p.stderr
    # JSON merge patch and JSON patch work
    assert kubectl.ok("patch", "crontab", "my-new-cron-object", "-n", namespace, "--type=merge",
                      "-p", '{"spec":{"image":"merged"}}').strip() == f"crontab.{group}/my-new-cron-object patched"
    r = http.patch(f"{url}/my-new-cron-object", json=[{"op": "replace", "path": "/spec/replicas", "value": 4}],
                   headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 4, r.text
    assert r.json()["spec"]["image"] == "merged"
    r = http.patch(f"{url}/my-new-cron-object", json=[{"op": "test", "path": "/spec/replicas", "value": 5}],
                   headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 422, r.text

    # client-side apply of a changed manifest: a three-way JSON merge patch (removing what the file dropped)
    f.write_text(crontab(group, "my-new-cron-object", namespace=namespace, image="another-image",
                         labels={"app": "cron"}))
    p = kubectl("apply", "-f", str(f), "-v=8")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"crontab.{group}/my-new-cron-object configured"
    patch_requests = [line for line in p.stderr.splitlines() if "round_trippers" in line and " PATCH " in line]
    assert len(patch_requests) == 1 and "fieldManager=kubectl-client-side-apply" in patch_requests[0], patch_requests
    assert "Content-Type: application/merge-patch+json" in p.stderr
    obj = http.get(f"{url}/my-new-cron-object").json()
    assert obj["spec"]["image"] == "another-image"
    assert obj["spec"]["replicas"] == 1  # dropped from the file: removed, then defaulted again
    assert obj["metadata"]["labels"] == {"app": "cron"}
    last = json.loads(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"] == {"cronSpec": "* * * * */5", "image": "another-image"}
    assert kubectl.ok("apply", "-f", str(f)).strip() == f"crontab.{group}/my-new-cron-object unchanged"
    # kubectl diff sees the difference between the file and the server
    f.write_text(crontab(group, "my-new-cron-object", namespace=namespace, image="third-image", labels={"app": "cron"}))
    p = kubectl("diff", "-f", str(f))
    assert p.returncode == 1, p.stderr
    assert "-  image: another-image" in p.stdout and "+  image: third-image" in p.stdout


def test_kubectl_explain_shows_the_schema(kubectl: Kubectl, cron_group: str) -> None:
    out = kubectl.ok("explain", "crontabs.spec.cronSpec")
    assert f"GROUP:      {cron_group}" in out and "KIND:       CronTab" in out and "VERSION:    v1" in out
    assert "FIELD: cronSpec <string>" in out
    assert "The cron schedule on which the job runs, in Cron format." in out
    out = kubectl.ok("explain", "crontabs.spec")
    assert "FIELD: spec <Object>" in out
    for field in ("backoff\t<Object>", "cronSpec\t<string>", "image\t<string>", "replicas\t<integer>"):
        assert field in out, out
    out = kubectl.ok("explain", "crontabs", "--recursive")
    assert "limit\t<integer>" in out and "labelSelector\t<string>" in out


# ---------------------------------------------------------------------------------- deleting a CRD
def test_deleting_the_crd_deletes_its_objects_finalizers_first(http: httpx.Client, kubectl: Kubectl, crds: CRDs,
                                                                namespace: str, other_namespace: str,
                                                                tmp_path: Path) -> None:
    group = new_group("delete")
    name = f"crontabs.{group}"
    crds.create(crontab_crd(group))
    base = f"/apis/{group}/v1"
    for ns, obj in ((namespace, "plain"), (other_namespace, "plain2")):
        assert http.post(f"{base}/namespaces/{ns}/crontabs", json=yaml.safe_load(crontab(group, obj))).status_code == 201
    held = yaml.safe_load(crontab(group, "held"))
    held["metadata"]["finalizers"] = ["example.com/hold"]
    assert http.post(f"{base}/namespaces/{namespace}/crontabs", json=held).status_code == 201
    assert kubectl.ok("get", "ct", "-A", "--no-headers").count("\n") == 3

    assert kubectl.ok("delete", "crd", name, "--wait=false").strip() == (
        f'customresourcedefinition.apiextensions.k8s.io "{name}" deleted')
    # the CRD waits for its objects: the cleanup finalizer holds it, Terminating says why
    crd = wait_for(lambda: (c := http.get(f"{CRDS}/{name}").json()).get("metadata", {}).get("deletionTimestamp") and c,
                   timeout=5, what="CRD marked for deletion")
    assert crd["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]
    wait_for(lambda: http.get(f"{base}/crontabs").json()["items"] and
             [i["metadata"]["name"] for i in http.get(f"{base}/crontabs").json()["items"]] == ["held"],
             timeout=10, what="the objects without finalizers deleted")
    remaining = http.get(f"{base}/namespaces/{namespace}/crontabs/held").json()
    assert remaining["metadata"]["deletionTimestamp"]
    crd = http.get(f"{CRDS}/{name}").json()
    terminating = conditions(crd)["Terminating"]
    assert (terminating["status"], terminating["reason"], terminating["message"]) == (
        "True", "InstanceDeletionInProgress", "CustomResource deletion is in progress")
    assert conditions(crd)["Established"]["status"] == "True"
    assert discovered(http, f"{group}/v1", "crontabs") is not None  # still served while its objects go
    # no new objects while the CRD is terminating (403, as Kubernetes' forbidCreateAdmission answers)
    r = http.post(f"{base}/namespaces/{namespace}/crontabs", json=yaml.safe_load(crontab(group, "late")))
    assert r.status_code == 403, r.text
    assert r.json()["reason"] == "Forbidden"
    assert r.json()["message"] == (f'crontabs.{group} "late" is forbidden: create not allowed while custom resource '
                                   "definition is terminating")
    # but the remaining object can still be read and updated: its controller removes its finalizer
    r = http.patch(f"{base}/namespaces/{namespace}/crontabs/held", json={"metadata": {"finalizers": None}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text

    wait_for(lambda: http.get(f"{CRDS}/{name}").status_code == 404, timeout=10, what="CRD gone")
    # the resource left discovery with it
    assert http.get(f"/apis/{group}/v1").status_code == 404
    assert http.get(f"/apis/{group}").status_code == 404
    assert group not in [g["name"] for g in http.get("/apis").json()["groups"]]
    assert http.get(f"{base}/crontabs").status_code == 404
    assert "crontabs" not in [row[0] for row in table_lines(kubectl.ok("api-resources", "--api-group", group))[1:]]
    p = kubectl("get", f"crontabs.{group}")
    assert p.returncode == 1
    assert p.stderr.strip() == 'error: the server doesn\'t have a resource type "crontabs"', p.stderr

    # a new CRD of the same name starts empty: the old objects really are gone from storage
    crds.create(crontab_crd(group))
    assert http.get(f"{base}/crontabs").json()["items"] == []


def test_deleting_a_crd_ends_the_watches_on_its_resource(http: httpx.Client, kubectl: Kubectl, crds: CRDs,
                                                          namespace: str, apiserver: Any) -> None:
    group = new_group("quick")
    crds.create(crontab_crd(group))
    url = f"/apis/{group}/v1/namespaces/{namespace}/crontabs"
    assert http.post(url, json=yaml.safe_load(crontab(group, "one"))).status_code == 201
    rv = http.get(url).json()["metadata"]["resourceVersion"]
    events: "queue.Queue[dict[str, Any]]" = queue.Queue()
    stop = threading.Event()
    watcher = watch_lines(apiserver.url, f"{url}?watch=1&resourceVersion={rv}", events, stop)
    time.sleep(0.3)
    start = time.monotonic()
    out = kubectl.ok("delete", "crd", f"crontabs.{group}")  # waits until it is gone
    assert out.strip() == f'customresourcedefinition.apiextensions.k8s.io "crontabs.{group}" deleted'
    assert time.monotonic() - start < 5
    assert http.get(f"{CRDS}/crontabs.{group}").status_code == 404
    assert http.get(f"/apis/{group}/v1").status_code == 404
    # the watch saw its object go, then the server ended it (the resource's storage is gone)
    got = take(events, 1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [("DELETED", "one")]
    watcher.join(10)
    assert not watcher.is_alive(), "the watch on a deleted CRD's resource must end"
    assert events.empty()


# ---------------------------------------------------------------------------------- names
def test_name_conflict_in_one_group(http: httpx.Client, kubectl: Kubectl, crds: CRDs, namespace: str) -> None:
    group = new_group("names")
    crds.create(crontab_crd(group, short_names=("ct",)))
    # a second CRD of the group whose kind is taken
    second = yaml.safe_load(crontab_crd(group, short_names=("ct2",)))
    second["metadata"]["name"] = f"crontables.{group}"
    second["spec"]["names"].update(plural="crontables", singular="crontable")
    crds.create(yaml.safe_dump(second), wait=False)

    def names_refused(name: str) -> dict[str, Any] | None:
        crd = http.get(f"{CRDS}/{name}").json()
        return crd if conditions(crd).get("NamesAccepted", {}).get("status") == "False" else None
    crd = wait_for(lambda: names_refused(f"crontables.{group}"), timeout=5, interval=0.05, what="NamesAccepted=False")
    conds = conditions(crd)
    # kind and listKind (CronTabList, defaulted) are both taken; as in Kubernetes the last check names it
    assert (conds["NamesAccepted"]["reason"], conds["NamesAccepted"]["message"]) == (
        "ListKindConflict", '"CronTabList" is already in use')
    assert (conds["Established"]["status"], conds["Established"]["reason"], conds["Established"]["message"]) == (
        "False", "NotAccepted", "not all names are accepted")
    # the names that are free are accepted, the taken ones are not
    assert crd["status"]["acceptedNames"].get("kind", "") == ""
    assert crd["status"]["acceptedNames"]["plural"] == "crontables"
    time.sleep(0.5)
    assert discovered(http, f"{group}/v1", "crontables") is None
    assert http.get(f"/apis/{group}/v1/namespaces/{namespace}/crontables").status_code == 404
    p = kubectl("wait", "--for", "condition=established", "--timeout=1s", f"crd/crontables.{group}")
    assert p.returncode == 1 and "timed out waiting for the condition" in p.stderr, p.stderr
    # the first one is untouched
    assert discovered(http, f"{group}/v1", "crontabs") is not None

    # a short name taken: ShortNamesConflict
    third = yaml.safe_load(crontab_crd(group, short_names=("ct",)))
    third["metadata"]["name"] = f"crontubs.{group}"
    third["spec"]["names"].update(plural="crontubs", singular="crontub", kind="CronTub")
    crds.create(yaml.safe_dump(third), wait=False)
    crd = wait_for(lambda: names_refused(f"crontubs.{group}"), timeout=5, interval=0.05, what="NamesAccepted=False")
    assert (conditions(crd)["NamesAccepted"]["reason"], conditions(crd)["NamesAccepted"]["message"]) == (
        "ShortNamesConflict", '"ct" is already in use')
    # the kind alone taken: KindConflict
    fourth = yaml.safe_load(crontab_crd(group, short_names=("ct4",)))
    fourth["metadata"]["name"] = f"crontoys.{group}"
    fourth["spec"]["names"].update(plural="crontoys", singular="crontoy", listKind="CronToyList")
    crds.create(yaml.safe_dump(fourth), wait=False)
    crd = wait_for(lambda: names_refused(f"crontoys.{group}"), timeout=5, interval=0.05, what="NamesAccepted=False")
    assert (conditions(crd)["NamesAccepted"]["reason"], conditions(crd)["NamesAccepted"]["message"]) == (
        "KindConflict", '"CronTab" is already in use')
    # the same names in another group are no conflict
    crds.create(crontab_crd(new_group("names")))

    # when the first CRD goes, its names are free: the second is accepted and served
    assert http.delete(f"{CRDS}/crontoys.{group}").status_code == 200  # (it would race for the kind)
    wait_for(lambda: http.get(f"{CRDS}/crontoys.{group}").status_code == 404, timeout=10, what="crontoys gone")
    assert http.delete(f"{CRDS}/crontabs.{group}").status_code == 200
    wait_for(lambda: established(http, f"crontables.{group}"), timeout=10, interval=0.05,
             what="the second CRD established once the names are free")
    wait_for(lambda: discovered(http, f"{group}/v1", "crontables"), timeout=5, interval=0.05, what="served")
    assert http.post(f"/apis/{group}/v1/namespaces/{namespace}/crontables",
                     json={"apiVersion": f"{group}/v1", "kind": "CronTab", "metadata": {"name": "x"}}).status_code == 201


# ---------------------------------------------------------------------------------- mixed files
def test_apply_mixed_file_with_a_kind_not_installed(http: httpx.Client, kubectl: Kubectl, crds: CRDs, namespace: str,
                                                    tmp_path: Path) -> None:
    group = new_group("mixed")
    f = write(tmp_path, "mixed.yaml", f"""\
apiVersion: v1
kind: ConfigMap
metadata:
  name: before-the-crontab
  namespace: {namespace}
data:
  a: b
---
{crontab(group, "my-new-cron-object", namespace=namespace)}---
apiVersion: v1
kind: Service
metadata:
  name: after-the-crontab
  namespace: {namespace}
spec:
  ports:
  - port: 80
""")
    p = kubectl("apply", "-f", str(f))
    assert p.returncode == 1
    assert p.stdout.splitlines() == ["configmap/before-the-crontab created", "service/after-the-crontab created"]
    assert p.stderr.strip() == (
        f'error: resource mapping not found for name: "my-new-cron-object" namespace: "{namespace}" from "{f}": '
        f'no matches for kind "CronTab" in version "{group}/v1"\nensure CRDs are installed first'), p.stderr
    assert http.get(f"/api/v1/namespaces/{namespace}/configmaps/before-the-crontab").status_code == 200
    assert http.get(f"/api/v1/namespaces/{namespace}/services/after-the-crontab").status_code == 200
    # kubectl create reports the same
    p = kubectl("create", "-f", str(f))
    assert p.returncode == 1 and "ensure CRDs are installed first" in p.stderr
    # with the CRD installed (in the same file, first), everything applies
    f.write_text(crontab_crd(group) + "---\n" + f.read_text())
    crds.track(f"crontabs.{group}")
    p = kubectl("apply", "-f", str(f))
    if p.returncode != 0:  # kubectl maps every document before creating the first: the kind may still be unknown
        assert "ensure CRDs are installed first" in p.stderr, p.stderr
        p = kubectl("apply", "-f", str(f))
    assert p.returncode == 0, p.stderr
    assert f"crontab.{group}/my-new-cron-object created" in p.stdout.splitlines()


# ---------------------------------------------------------------------------------- restarts
def test_crds_survive_an_apiserver_restart_and_serve_on_every_apiserver(tmp_path: Path) -> None:
    """A private etcd and apiserver: stored CRDs are served again after a restart (a CRD being deleted
    too, its finalizer-held objects kept), and a second apiserver on the same etcd serves them as well."""
    etcd = Etcd.start()
    servers: list[ApiServerProcess] = []
    try:
        servers.append(ApiServerProcess.start(etcd.url))
        http = httpx.Client(base_url=servers[0].url, timeout=30)
        group = new_group("restart")
        CRDs(http).create(crontab_crd(group))
        url = f"/apis/{group}/v1/namespaces/default/crontabs"
        held = yaml.safe_load(crontab(group, "held"))
        held["metadata"]["finalizers"] = ["example.com/hold"]
        assert http.post(url, json=held).status_code == 201
        assert http.post(url, json=yaml.safe_load(crontab(group, "plain"))).status_code == 201
        # a second apiserver on the same etcd serves the CRD it finds stored
        servers.append(ApiServerProcess.start(etcd.url))
        other = httpx.Client(base_url=servers[1].url, timeout=30)
        assert discovered(other, f"{group}/v1", "crontabs") is not None
        assert sorted(i["metadata"]["name"] for i in other.get(url).json()["items"]) == ["held", "plain"]
        # a CRD created through one apiserver is served by the other within a second
        group2 = new_group("restart")
        start = time.monotonic()
        r = http.post(CRDS, json=yaml.safe_load(shirt_crd(group2)))
        assert r.status_code == 201, r.text
        wait_for(lambda: discovered(other, f"{group2}/v1", "shirts"), timeout=5, interval=0.02,
                 what="the other apiserver serves the new CRD")
        print(f"\nserved by a second apiserver after {(time.monotonic() - start) * 1000:.0f} ms")
        assert time.monotonic() - start < SERVED_WITHIN_SECONDS
        other.close()
        servers.pop().stop()

        # deleting: the object without finalizers goes, the held one waits
        assert http.delete(f"{CRDS}/crontabs.{group}").status_code == 200
        wait_for(lambda: [i["metadata"]["name"] for i in http.get(url).json()["items"]] == ["held"], timeout=10,
                 what="plain deleted")
        http.close()
        servers.pop().stop()
        servers.append(ApiServerProcess.start(etcd.url))
        http = httpx.Client(base_url=servers[0].url, timeout=30)
        # after the restart: still served (creates forbidden), the held object untouched
        assert discovered(http, f"{group}/v1", "crontabs") is not None
        assert discovered(http, f"{group2}/v1", "shirts") is not None
        time.sleep(1.0)  # a cleanup pass would have run by now
        obj = http.get(f"{url}/held").json()
        assert obj["metadata"]["finalizers"] == ["example.com/hold"] and obj["metadata"]["deletionTimestamp"]
        r = http.post(url, json=yaml.safe_load(crontab(group, "late")))
        assert r.status_code == 403, r.text
        http.patch(f"{url}/held", json={"metadata": {"finalizers": None}},
                   headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
        wait_for(lambda: http.get(f"{CRDS}/crontabs.{group}").status_code == 404, timeout=10, what="CRD gone")
        assert http.get(f"/apis/{group}/v1").status_code == 404
        http.close()
    finally:
        for s in servers:
            s.stop()
        etcd.stop()
