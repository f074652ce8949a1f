"""Pure plugin tables: every filter reason, tolerations, affinity operators, scores, the FitError text."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler import plugins as p
from scheduler import scoring as sc
from scheduler.cache import SchedulerCache
from scheduler.scheduler import num_feasible_nodes_to_find


def node(name: str = "n1", *, cpu: str = "4", memory: str = "8Gi", pods: str = "110", ready: str = "True",
         labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None,
         unschedulable: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"taints": taints or []}
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec,
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
                       "conditions": [{"type": "Ready", "status": ready}]}}


def pod(name: str = "p", *, cpu: str | None = None, memory: str | None = None, node_name: str = "",
        ports: list[dict[str, Any]] | None = None, tolerations: list[dict[str, Any]] | None = None,
        selector: dict[str, str] | None = None, affinity: list[dict[str, Any]] | None = None,
        init: list[dict[str, Any]] | None = None, labels: dict[str, str] | None = None,
        owner: str | None = None) -> dict[str, Any]:
    req = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    c: dict[str, Any] = {"name": "c", "image": "x", "resources": {"requests": req} if req else {}}
    if ports:
        c["ports"] = ports
    spec: dict[str, Any] = {"containers": [c]}
    if node_name:
        spec["nodeName"] = node_name
    if tolerations:
        spec["tolerations"] = tolerations
    if selector:
        spec["nodeSelector"] = selector
    if affinity is not None:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                                             {"nodeSelectorTerms": affinity}}}
    if init:
        spec["initContainers"] = init
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": owner,
                                    "controller": True}]
    return {"metadata": meta, "spec": spec}


def info_with(n: dict[str, Any], *pods: dict[str, Any]) -> p.NodeInfo:
    ni = p.NodeInfo(p.node_facts(n))
    for x in pods:
        ni.add_pod(p.pod_info(x))
    return ni


def reasons(pd: dict[str, Any], n: dict[str, Any], *on_node: dict[str, Any]) -> list[str] | None:
    return p.run_filters(p.pod_info(pd), info_with(n, *on_node))


UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}


@pytest.mark.parametrize("pd,n,on_node,want", [
    (pod(), node(), [], None),
    (pod(cpu="4"), node(cpu="4"), [], None),
    (pod(cpu="4001m"), node(cpu="4"), [], ["Insufficient cpu"]),
    (pod(cpu="2"), node(cpu="4"), [pod("a", cpu="2500m")], ["Insufficient cpu"]),
    (pod(memory="9Gi"), node(memory="8Gi"), [], ["Insufficient memory"]),
    (pod(cpu="5", memory="9Gi"), node(), [], ["Insufficient cpu", "Insufficient memory"]),
    (pod(), node(pods="1"), [pod("a")], ["Too many pods"]),
    # init containers count as their max, not added to the containers' sum
    (pod(cpu="1", init=[{"name": "i", "image": "x", "resources": {"requests": {"cpu": "4"}}}]), node(cpu="4"), [], None),
    (pod(cpu="1", init=[{"name": "i", "image": "x", "resources": {"requests": {"cpu": "5"}}}]), node(cpu="4"), [],
     ["Insufficient cpu"]),
    (pod(), node(ready="False"), [], ["node(s) were not ready"]),
    (pod(), node(ready="Unknown"), [], ["node(s) had unknown conditions"]),
    (pod(), node(unschedulable=True), [], ["node(s) were unschedulable"]),
    (pod(tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]),
     node(unschedulable=True), [], None),
    (pod(), node(taints=[UNREACHABLE]), [], ["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]),
    (pod(), node(taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]), [],
     ["node(s) had untolerated taint {dedicated: gpu}"]),
    (pod(), node(taints=[{"key": "soft", "effect": "PreferNoSchedule"}]), [], None),
    (pod(selector={"disk": "ssd"}), node(labels={"disk": "hdd"}), [], ["node(s) didn't match Pod's node affinity/selector"]),
    (pod(selector={"disk": "ssd"}), node(labels={"disk": "ssd"}), [], None),
    (pod(ports=[{"containerPort": 80, "hostPort": 8080}]), node(),
     [pod("a", ports=[{"containerPort": 80, "hostPort": 8080}])],
     ["node(s) didn't have free ports for the requested pod ports"]),
    (pod(ports=[{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]), node(),
     [pod("a", ports=[{"containerPort": 80, "hostPort": 8080}])], None),
    (pod(ports=[{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}]), node(),
     [pod("a", ports=[{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.2"}])], None),
    (pod(ports=[{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}]), node(),
     [pod("a", ports=[{"containerPort": 80, "hostPort": 8080}])],
     ["node(s) didn't have free ports for the requested pod ports"]),
    # the first failing plugin decides: a tainted full node reports the taint only
    (pod(cpu="5"), node(taints=[UNREACHABLE]), [], ["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]),
])
def test_filters(pd: dict[str, Any], n: dict[str, Any], on_node: list[dict[str, Any]], want: list[str] | None) -> None:
    assert reasons(pd, n, *on_node) == want


TAINT = {"key": "k", "value": "v", "effect": "NoSchedule"}


@pytest.mark.parametrize("toleration,taint,want", [
    ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}, TAINT, True),
    ({"key": "k", "value": "v"}, TAINT, True),  # operator defaults to Equal, empty effect matches all
    ({"key": "k", "operator": "Equal", "value": "w"}, TAINT, False),
    ({"key": "k", "operator": "Exists"}, TAINT, True),
    ({"key": "other", "operator": "Exists"}, TAINT, False),
    ({"operator": "Exists"}, TAINT, True),  # empty key + Exists tolerates everything
    ({"key": "k", "operator": "Exists", "effect": "NoExecute"}, TAINT, False),
    ({"key": "k", "operator": "Exists", "effect": "NoExecute"}, {**TAINT, "effect": "NoExecute"}, True),
    ({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
      "tolerationSeconds": 300}, UNREACHABLE, True),
    ({"key": "k", "operator": "Bogus", "value": "v"}, TAINT, False),
])
def test_tolerations(toleration: dict[str, Any], taint: dict[str, Any], want: bool) -> None:
    assert p.tolerates(toleration, taint) is want
    got = reasons(pod(tolerations=[toleration]), node(taints=[taint]))
    assert (got is None) is want


LABELS = {"zone": "a", "gen": "5", "disk": "ssd"}


@pytest.mark.parametrize("expr,want", [
    ({"key": "zone", "operator": "In", "values": ["a", "b"]}, True),
    ({"key": "zone", "operator": "In", "values": ["b"]}, False),
    ({"key": "missing", "operator": "In", "values": ["a"]}, False),
    ({"key": "zone", "operator": "NotIn", "values": ["b"]}, True),
    ({"key": "zone", "operator": "NotIn", "values": ["a"]}, False),
    ({"key": "missing", "operator": "NotIn", "values": ["a"]}, True),
    ({"key": "disk", "operator": "Exists"}, True),
    ({"key": "missing", "operator": "Exists"}, False),
    ({"key": "missing", "operator": "DoesNotExist"}, True),
    ({"key": "disk", "operator": "DoesNotExist"}, False),
    ({"key": "gen", "operator": "Gt", "values": ["4"]}, True),
    ({"key": "gen", "operator": "Gt", "values": ["5"]}, False),
    ({"key": "gen", "operator": "Lt", "values": ["6"]}, True),
    ({"key": "gen", "operator": "Lt", "values": ["5"]}, False),
    ({"key": "zone", "operator": "Gt", "values": ["1"]}, False),  # not an integer label
    ({"key": "missing", "operator": "Lt", "values": ["1"]}, False),
])
def test_affinity_operators(expr: dict[str, Any], want: bool) -> None:
    assert p.match_expression(expr, LABELS) is want
    got = reasons(pod(affinity=[{"matchExpressions": [expr]}]), node(labels=LABELS))
    assert (got is None) is want


@pytest.mark.parametrize("terms,want", [
    ([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}], True),
    ([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}], False),
    ([{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n2"]}]}], True),
    # terms are ORed, expressions inside a term ANDed
    ([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
      {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}], True),
    ([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]},
                            {"key": "disk", "operator": "DoesNotExist"}]}], False),
    ([{}], False),  # an empty term matches nothing
    ([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}],
       "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}], True),
])
def test_affinity_terms(terms: list[dict[str, Any]], want: bool) -> None:
    got = reasons(pod(affinity=terms), node("n1", labels=LABELS))
    assert (got is None) is want


def test_least_allocated_prefers_free_node() -> None:
    pd = p.pod_info(pod(cpu="1", memory="1Gi"))
    empty = info_with(node("a"))
    busy = info_with(node("b"), pod("x", cpu="2", memory="4Gi"))
    assert sc.least_allocated_score(pd, empty) > sc.least_allocated_score(pd, busy)
    # (4000-1000)/4000 = 75, (8-1)/8 = 87 -> 81
    assert sc.least_allocated_score(pd, empty) == (75 + 87) // 2


def test_requestless_pods_still_count_when_scoring() -> None:
    pd = p.pod_info(pod())
    empty = info_with(node("a"))
    busy = info_with(node("b"), *[pod(f"x{i}") for i in range(10)])
    assert sc.least_allocated_score(pd, empty) > sc.least_allocated_score(pd, busy)
    assert busy.milli_cpu == 0  # but filtering sees no requests


def test_spread_by_owner_then_labels() -> None:
    a = info_with(node("a"), pod("x", owner="u1"), pod("y", owner="u1"))
    b = info_with(node("b"), pod("z", owner="u2"))
    mine = p.pod_info(pod(owner="u1"))
    scores = sc.score(mine, [a, b])
    assert scores[1] > scores[0]
    assert sc.spread_score(mine, a, 2) == 0 and sc.spread_score(mine, b, 2) == 100
    # no owner: the same labels (same namespace) are one group
    la = info_with(node("a"), pod("x", labels={"app": "w"}))
    lb = info_with(node("b"))
    assert sc.spread_score(p.pod_info(pod(labels={"app": "w"})), la, 1) == 0
    assert sc.spread_score(p.pod_info(pod(labels={"app": "w"})), lb, 1) == 100
    assert p.owner_key(pod()) is None


def test_fit_error_message_shape() -> None:
    msg = p.fit_error_message(3, {"a": ["Insufficient cpu"], "b": ["Insufficient cpu"],
                                  "c": ["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]})
    # Kubernetes sorts the "<count> <reason>" strings as strings (Go's sort.Strings)
    assert msg == ("0/3 nodes are available: 1 node(s) had untolerated taint "
                   "{node.kubernetes.io/unreachable: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: "
                   "1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.")
    two = p.fit_error_message(1, {"a": ["Insufficient cpu", "Insufficient memory"]})
    assert two == ("0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. preemption: "
                   "0/1 nodes are available: 1 No preemption victims found for incoming pod.")
    assert p.fit_error_message(0, {}) == "no nodes available to schedule pods"


def test_num_feasible_nodes() -> None:
    assert num_feasible_nodes_to_find(50) == 50
    assert num_feasible_nodes_to_find(100) == 100
    assert num_feasible_nodes_to_find(1000) == 420
    assert num_feasible_nodes_to_find(5000) == 500
    assert num_feasible_nodes_to_find(1000, 100) == 1000


def test_cache_assume_confirm_forget() -> None:
    cache = SchedulerCache()
    cache.set_node(node("a", cpu="2"))
    pd = pod("x", cpu="1")
    cache.assume(p.pod_info(pd), "a")
    assert cache.nodes["a"].milli_cpu == 1000 and cache.is_assumed("ns/x")
    bound = {**pd, "spec": {**pd["spec"], "nodeName": "a"}}
    assert cache.set_pod(bound) is False
    assert cache.nodes["a"].milli_cpu == 1000 and not cache.is_assumed("ns/x")  # confirmed, not counted twice
    finished = {**bound, "status": {"phase": "Succeeded"}}
    assert cache.set_pod(finished) is True
    assert cache.nodes["a"].milli_cpu == 0 and cache.nodes["a"].pods == 0
    cache.assume(p.pod_info(pod("y", cpu="1")), "a")
    cache.forget("ns/y")
    assert cache.nodes["a"].milli_cpu == 0
    # a pod bound to a node not seen yet counts once the node arrives
    cache.set_pod(pod("z", cpu="1", node_name="later"))
    cache.set_node(node("later"))
    assert cache.nodes["later"].milli_cpu == 1000
    # a node update keeps the pod totals
    cache.set_node(node("later", cpu="8"))
    assert cache.nodes["later"].milli_cpu == 1000 and cache.nodes["later"].facts.alloc_cpu == 8000


def test_inlined_score_equals_the_plugins() -> None:
    nodes = [info_with(node("a", cpu="3"), pod("x", cpu="1", owner="u")),
             info_with(node("b", memory="3Gi")), info_with(node("c"), pod("y", owner="u"), pod("z", owner="u"))]
    for pd in (p.pod_info(pod(cpu="500m", owner="u")), p.pod_info(pod(memory="1Gi")), p.pod_info(pod())):
        max_count = max(n.owners.get(pd.owner_key, 0) for n in nodes) if pd.owner_key else 0
        assert sc.score(pd, nodes) == [sc.least_allocated_score(pd, n) + sc.spread_score(pd, n, max_count)
                                      for n in nodes]


def test_fast_path_equals_the_filter_chain() -> None:
    cases = [(pod(cpu="1"), node(cpu="1"), [pod("a", cpu="1")]), (pod(), node(pods="1"), [pod("a")]),
             (pod(memory="9Gi"), node(), []), (pod(cpu="1"), node(), [])]
    for pd, n, on in cases:
        info, ni = p.pod_info(pd), info_with(n, *on)
        assert info.simple and ni.facts.plain
        chain = next((r for f in p.FILTERS if (r := f(info, ni))), None)
        assert p.run_filters(info, ni) == chain


# ------------------------------------------------------------------ the hot path equals the plugin chain
def _ring(seed: int) -> list[p.NodeInfo]:
    """A mixed cluster: plain nodes of different sizes and fill, tainted, cordoned, unready, labelled."""
    import random
    rng = random.Random(seed)
    out = []
    for i in range(40):
        kind = rng.choice(["plain", "plain", "plain", "tainted", "cordoned", "unready", "ssd"])
        n = node(f"n{i}", cpu=rng.choice(["1", "2", "4"]), memory=rng.choice(["1Gi", "4Gi"]), pods=rng.choice(["3", "110"]),
                 ready="False" if kind == "unready" else "True", unschedulable=kind == "cordoned",
                 labels={"disk": "ssd"} if kind == "ssd" else {},
                 taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}] if kind == "tainted" else [])
        out.append(info_with(n, *[pod(f"x{i}-{j}", cpu="500m", memory="256Mi", owner=rng.choice(["u1", "u2"]))
                                  for j in range(rng.randrange(4))]))
    return out


def _slow_scan(pd: p.PodInfo, nodes: list[p.NodeInfo], start: int, want: int) -> tuple[list[str], dict[str, list[str]], int]:
    feasible: list[str] = []
    rejected: dict[str, list[str]] = {}
    for i in range(len(nodes)):
        ni = nodes[(start + i) % len(nodes)]
        why = next((r for f in p.FILTERS if (r := f(pd, ni))), None)
        if why is None:
            feasible.append(ni.name)
            if len(feasible) >= want:
                return feasible, rejected, i + 1
        else:
            rejected[ni.name] = why
    return feasible, rejected, len(nodes)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("want", [1, 5, 100])
@pytest.mark.parametrize("kind", ["simple", "big", "selector", "owned", "best-effort"])
def test_scan_and_top_scored_equal_the_plugin_chain_and_score(seed: int, want: int, kind: str) -> None:
    nodes = _ring(seed)
    pd = p.pod_info({"simple": pod(cpu="500m", memory="256Mi"), "big": pod(cpu="2", memory="2Gi"),
                     "selector": pod(cpu="100m", selector={"disk": "ssd"}), "owned": pod(cpu="250m", owner="u1"),
                     "best-effort": pod(labels={"app": "w"})}[kind])
    for start in (0, 7, 39):
        feasible, rejected, evaluated = sc.scan(pd, nodes, start, want)
        assert ([n.name for n in feasible], rejected, evaluated) == _slow_scan(pd, nodes, start, want)
        for _ in range(3):  # top_scored keeps a memo on the nodes: it must follow their changes
            if not feasible:
                break
            scores = sc.score(pd, feasible)
            top = sc.top_scored(pd, feasible)
            assert [n.name for n in top] == [n.name for n, s in zip(feasible, scores) if s == max(scores)]
            top[0].add_pod(p.pod_info(pod("more", cpu="300m", memory="1Gi", owner="u1")))


def test_top_scored_memo_follows_new_allocatable() -> None:
    cache = SchedulerCache()
    for name in ("a", "b"):
        cache.set_node(node(name, cpu="4", memory="8Gi"))
    pd = p.pod_info(pod(cpu="1", memory="1Gi"))
    assert [n.name for n in sc.top_scored(pd, cache.node_infos)] == ["a", "b"]
    cache.set_node(node("b", cpu="8", memory="8Gi"))  # b grows: its memoized score must not stay
    assert [n.name for n in sc.top_scored(pd, cache.node_infos)] == ["b"]


def test_scan_runs_the_extra_filter_only_on_nodes_the_plugins_pass() -> None:
    nodes = [info_with(node("a")), info_with(node("b", ready="False")), info_with(node("c"))]
    seen: list[str] = []

    def extra(ni: p.NodeInfo) -> list[str] | None:
        seen.append(ni.name)
        return ["volume node affinity conflict"] if ni.name == "a" else None
    feasible, rejected, evaluated = sc.scan(p.pod_info(pod(cpu="1")), nodes, 0, 5, extra=extra)
    assert [n.name for n in feasible] == ["c"] and seen == ["a", "c"] and evaluated == 3
    assert rejected == {"a": ["volume node affinity conflict"], "b": [p.REASON_NOT_READY]}
