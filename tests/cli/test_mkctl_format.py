"""Pure tests of mkctl's formatting and planning: tables, tabwriter, ages, apply patches, errors, args."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from cli.mkctl.app import normalize_args
from cli.mkctl.describe import Related, describe
from machinery.discovery import ResourceInfo, UnknownResourceType, category, for_kind, parse_resource_list, resolve
from machinery.manifests import ManifestError, parse_documents
from cli.mkctl.printing import (TableBlock, cell_text, human_duration, render_api_resources, render_objects,
                                render_tables, tabwrite, to_yaml, ResourceRow)
from cli.mkctl.session import CliError, format_error, parse_duration
from cli.mkctl.threeway import LAST_APPLIED, last_applied_value, three_way_patch, with_last_applied
from machinery import errors
from machinery.client import ConnectionFailedError
from tests.apiserver.kindtools import kind_schema

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def _col(name: str, priority: int = 0, fmt: str = "") -> dict:
    return {"name": name, "type": "string", "format": fmt, "priority": priority, "description": ""}


DEPLOY_TABLE = {
    "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "5"},
    "columnDefinitions": [_col("Name", fmt="name"), _col("Ready"), _col("Age"), _col("Containers", 1)],
    "rows": [
        {"cells": ["nginx", "1/1", "5m", "nginx"],
         "object": {"metadata": {"name": "nginx", "namespace": "demo", "labels": {"app": "nginx", "a": "b"}}}},
        {"cells": ["a-much-longer-name", "0/3", "10s", "c1,c2"],
         "object": {"metadata": {"name": "a-much-longer-name", "namespace": "other"}}},
    ],
}


# ------------------------------------------------------------------------------- tabwriter
@pytest.mark.parametrize(("text", "kw", "expected"), [
    ("a\tbb\tc\naaa\tb\tc\n", {"padding": 1}, "a   bb c\naaa b  c\n"),
    ("NAME\tAGE\nx\t1s\n", {"minwidth": 6, "padding": 3}, "NAME   AGE\nx      1s\n"),
    # A line without a tab ends the column block: alignment restarts below it.
    ("Name:\tx\nLonger key:\ty\nBlock\nk:\tv\n", {"padding": 2}, "Name:        x\nLonger key:  y\nBlock\nk:  v\n"),
    # The trailing cell is never padded.
    ("a\tb\n", {"padding": 2}, "a  b\n"),
    ("", {}, ""),
])
def test_tabwrite(text: str, kw: dict, expected: str) -> None:
    assert tabwrite(text, **kw) == expected


@pytest.mark.parametrize(("seconds", "expected"), [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (130, "2m10s"), (600, "10m"),
    (3 * 3600, "3h"), (3 * 3600 + 60 * 5, "3h5m"), (30 * 3600, "30h"), (50 * 3600, "2d2h"),
    (24 * 3600 * 30, "30d"), (24 * 3600 * 365 * 3, "3y"), (24 * 3600 * (365 * 3 + 4), "3y4d"),
])
def test_human_duration(seconds: int, expected: str) -> None:
    assert human_duration(seconds) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (None, "<none>"), (True, "true"), (3, "3"), (2.0, "2"), ("a\tb", "a b"), ([1, 2], "[1,2]")])
def test_cell_text(value: object, expected: str) -> None:
    assert cell_text(value) == expected


# ------------------------------------------------------------------------------- tables
def test_render_table_default_hides_wide_columns_and_uppercases() -> None:
    out = render_tables([TableBlock(DEPLOY_TABLE, "deployment.apps")])
    assert out == ("NAME                 READY   AGE\n"
                   "nginx                1/1     5m\n"
                   "a-much-longer-name   0/3     10s\n")


def test_render_table_wide_all_namespaces_labels() -> None:
    out = render_tables([TableBlock(DEPLOY_TABLE, "deployment.apps")], wide=True, all_namespaces=True,
                        show_labels=True)
    lines = out.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "READY", "AGE", "CONTAINERS", "LABELS"]
    assert lines[1].split() == ["demo", "nginx", "1/1", "5m", "nginx", "a=b,app=nginx"]
    assert lines[2].split() == ["other", "a-much-longer-name", "0/3", "10s", "c1,c2", "<none>"]


def test_render_several_types_prefixes_names_and_separates_blocks() -> None:
    svc = {"columnDefinitions": [_col("Name", fmt="name"), _col("Type")],
           "rows": [{"cells": ["web", "ClusterIP"], "object": {"metadata": {"name": "web"}}}]}
    empty = {"columnDefinitions": [_col("Name", fmt="name")], "rows": []}
    out = render_tables([TableBlock(DEPLOY_TABLE, "deployment.apps"), TableBlock(empty, "pod"),
                         TableBlock(svc, "service")])
    blocks = out.split("\n\n")
    assert len(blocks) == 2
    assert blocks[0].splitlines()[1].startswith("deployment.apps/nginx ")
    assert blocks[1] == "NAME          TYPE\nservice/web   ClusterIP\n"


def test_render_cluster_scoped_with_all_namespaces_has_no_namespace_column() -> None:
    ns = {"columnDefinitions": [_col("Name", fmt="name"), _col("Status")],
          "rows": [{"cells": ["default", "Active"], "object": {"metadata": {"name": "default"}}}]}
    out = render_tables([TableBlock(ns, "namespace", namespaced=False)], all_namespaces=True)
    assert out.splitlines()[0].split() == ["NAME", "STATUS"]


def test_render_no_headers() -> None:
    out = render_tables([TableBlock(DEPLOY_TABLE, "deployment.apps")], headers=False)
    assert out.splitlines()[0].split() == ["nginx", "1/1", "5m"]


def test_render_api_resources() -> None:
    out = render_api_resources([ResourceRow("pods", ("po",), "v1", True, "Pod"),
                                ResourceRow("deployments", ("deploy",), "apps/v1", True, "Deployment")])
    assert out.splitlines() == [
        "NAME          SHORTNAMES   APIVERSION   NAMESPACED   KIND",
        "pods          po           v1           true         Pod",
        "deployments   deploy       apps/v1      true         Deployment",
    ]


def test_objects_yaml_is_go_style() -> None:
    obj = {"kind": "ConfigMap", "metadata": {"name": "x", "resourceVersion": "7",
                                             "annotations": {"a": '{"k":1}\n'}}, "data": {"on": "yes"}}
    text = to_yaml(obj)
    assert 'resourceVersion: "7"' in text
    assert "a: |\n      {\"k\":1}\n" in text
    assert '"on": "yes"' in text  # YAML 1.1 booleans are quoted, keys too, as go-yaml does
    listed = render_objects([obj, obj], "yaml", single=False)
    assert listed.startswith("apiVersion: v1\nitems:\n- data:\n")
    assert "*id" not in listed
    assert "kind: List" in listed


# ------------------------------------------------------------------------------- discovery
RESOURCES = parse_resource_list({"groupVersion": "v1", "resources": [
    {"name": "pods", "singularName": "pod", "kind": "Pod", "namespaced": True, "shortNames": ["po"],
     "categories": ["all"]},
    {"name": "pods/status", "kind": "Pod", "namespaced": True},
    {"name": "services", "singularName": "service", "kind": "Service", "namespaced": True,
     "shortNames": ["svc"], "categories": ["all"]},
]}) + parse_resource_list({"groupVersion": "apps/v1", "resources": [
    {"name": "deployments", "singularName": "deployment", "kind": "Deployment", "namespaced": True,
     "shortNames": ["deploy"], "categories": ["all"]},
]})


@pytest.mark.parametrize("typed", ["po", "pod", "pods", "Pod", "PODS"])
def test_resolve_core_names(typed: str) -> None:
    assert resolve(RESOURCES, typed).plural == "pods"


@pytest.mark.parametrize("typed", ["deploy", "deployments.apps", "deployment.v1.apps", "Deployment"])
def test_resolve_grouped_names(typed: str) -> None:
    res = resolve(RESOURCES, typed)
    assert (res.plural, res.group, res.prefix) == ("deployments", "apps", "deployment.apps")


def test_resolve_unknown_and_subresources_dropped() -> None:
    assert len(RESOURCES) == 3
    with pytest.raises(UnknownResourceType):
        resolve(RESOURCES, "foo")
    assert [r.plural for r in category(RESOURCES, "all")] == ["pods", "services", "deployments"]
    assert category(RESOURCES, "pods") == []
    assert for_kind(RESOURCES, "apps/v1", "Deployment").plural == "deployments"
    with pytest.raises(UnknownResourceType):
        for_kind(RESOURCES, "v1", "Deployment")


# ------------------------------------------------------------------------------- three-way patch
def _deploy(containers: list[dict], **spec: object) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {**spec, "template": {"spec": {"containers": containers}}}}


def test_last_applied_is_compact_sorted_json_with_newline() -> None:
    obj = {"kind": "X", "apiVersion": "v1", "metadata": {"name": "a", "annotations": {LAST_APPLIED: "old"}}}
    assert last_applied_value(obj) == '{"apiVersion":"v1","kind":"X","metadata":{"name":"a"}}\n'
    assert with_last_applied(obj)["metadata"]["annotations"][LAST_APPLIED] == last_applied_value(obj)


def test_unchanged_when_live_has_extra_fields() -> None:
    applied = with_last_applied(_deploy([{"name": "c", "image": "i"}], replicas=2))
    live = _deploy([{"name": "c", "image": "i", "imagePullPolicy": "Always"}], replicas=2, paused=False)
    live["metadata"] = {**applied["metadata"], "uid": "u", "resourceVersion": "3"}
    assert three_way_patch(applied, applied, live, schema=kind_schema("Deployment")) == {}


def test_removed_field_is_deleted_and_others_kept() -> None:
    original = _deploy([{"name": "c", "image": "i", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}],
                       replicas=2, minReadySeconds=3)
    modified = _deploy([{"name": "c", "image": "j", "env": [{"name": "A", "value": "1"}]}], replicas=2)
    live = _deploy([{"name": "c", "image": "i", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                    {"name": "sidecar", "image": "s"}], replicas=5, minReadySeconds=3, paused=True)
    patch = three_way_patch(original, modified, live, schema=kind_schema("Deployment"))
    assert patch == {"spec": {"minReadySeconds": None, "replicas": 2, "template": {"spec": {"containers": [
        {"name": "c", "image": "j", "env": [{"name": "B", "$patch": "delete"}]}]}}}}


def test_removed_container_and_finalizer() -> None:
    original = {"metadata": {"finalizers": ["a", "b"]}, "spec": {"containers": [{"name": "x"}, {"name": "y"}]}}
    modified = {"metadata": {"finalizers": ["a", "c"]}, "spec": {"containers": [{"name": "x"}]}}
    live = {"metadata": {"finalizers": ["a", "b"]}, "spec": {"containers": [{"name": "x"}, {"name": "y"}]}}
    patch = three_way_patch(original, modified, live, schema=kind_schema("Pod"))
    assert patch == {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"], "finalizers": ["c"]},
                     "spec": {"containers": [{"name": "y", "$patch": "delete"}]}}


def test_replace_lists_are_sent_whole_and_retain_keys() -> None:
    original = {"spec": {"selector": {"app": "a"}, "ports": [{"port": 80}],
                         "strategy": {"type": "RollingUpdate"}}}
    modified = {"spec": {"selector": {"app": "a"}, "ports": [{"port": 80}, {"port": 81}],
                         "strategy": {"type": "Recreate"}}}
    live = {"spec": {"selector": {"app": "a"}, "ports": [{"port": 80, "targetPort": 80}],
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    assert three_way_patch(original, modified, live, schema=kind_schema("Service")) == {"spec": {
        "ports": [{"port": 81}], "strategy": {"type": "Recreate"}}}
    patch = three_way_patch(original, modified, live, schema=kind_schema("Deployment"))
    assert patch["spec"]["strategy"] == {"type": "Recreate", "$retainKeys": ["type"]}


def test_first_apply_over_existing_object_without_annotation() -> None:
    modified = {"metadata": {"labels": {"a": "1"}}, "data": {"k": "v"}}
    live = {"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"k": "old", "other": "x"}}
    assert three_way_patch(None, modified, live, schema=kind_schema("ConfigMap")) == {"data": {"k": "v"}}


# ------------------------------------------------------------------------------- manifests
def test_manifests_multi_document_json_and_lists() -> None:
    text = """
apiVersion: v1
kind: Namespace
metadata: {name: a}
---
---
{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}},
  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c2", "namespace": "n"}}]}
"""
    found = parse_documents(text, source="f.yaml")
    assert [(m.obj["kind"], m.name, m.namespace) for m in found] == [
        ("Namespace", "a", ""), ("ConfigMap", "c1", ""), ("ConfigMap", "c2", "n")]


def test_manifests_errors() -> None:
    with pytest.raises(ManifestError, match=r"^error parsing bad.yaml: error converting YAML to JSON: yaml: line"):
        parse_documents("a: [\n", source="bad.yaml")
    with pytest.raises(ManifestError, match="kind not set"):
        parse_documents("apiVersion: v1\nmetadata: {name: x}\n", source="f.yaml")


# ------------------------------------------------------------------------------- errors and args
def test_error_lines() -> None:
    server = "http://127.0.0.1:8080"
    assert format_error(errors.NotFoundError(message='pods "x" not found'), server=server) == \
        'Error from server (NotFound): pods "x" not found'
    invalid = errors.InvalidError(message="ignored", name="x", kind="Deployment", causes=[
        errors.StatusCause("FieldValueInvalid", "Invalid value: -1: must be >= 0", "spec.replicas")])
    assert format_error(invalid, server=server) == \
        'The Deployment "x" is invalid: spec.replicas: Invalid value: -1: must be >= 0'
    two = errors.InvalidError(message="m", name="x", kind="Pod", causes=[
        errors.StatusCause("r", "Required value", "spec.a"), errors.StatusCause("r", "Required value", "spec.b")])
    assert format_error(two, server=server) == \
        'The Pod "x" is invalid: [spec.a: Required value, spec.b: Required value]'
    refused = ConnectionFailedError(message="GET /api failed: ConnectError: refused")
    refused.__cause__ = httpx.ConnectError("refused")
    assert format_error(refused, server=server) == \
        "The connection to the server 127.0.0.1:8080 was refused - did you specify the right host or port?"
    assert format_error(CliError("error: x"), server=server) == "error: x"


@pytest.mark.parametrize(("args", "expected"), [
    (["get", "pods", "-n", "x"], ["--namespace", "x", "get", "pods"]),
    (["get", "pods", "-nx", "--server=http://h:1"], ["--namespace", "x", "--server", "http://h:1", "get", "pods"]),
    (["delete", "pod", "a", "--wait=false"], ["delete", "pod", "a", "--no-wait"]),
    (["get", "po", "--", "-n"], ["get", "po", "--", "-n"]),
    (["apply", "-f", "x.yaml", "--context", "c"], ["--context", "c", "apply", "-f", "x.yaml"]),
])
def test_normalize_args(args: list[str], expected: list[str]) -> None:
    assert normalize_args(args) == expected


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("30", 30.0), ("5s", 5.0), ("1m30s", 90.0),
                                                ("500ms", 0.5)])
def test_parse_duration(value: str, seconds: float) -> None:
    assert parse_duration(value) == seconds


# ------------------------------------------------------------------------------- describe
def test_describe_deployment_with_events() -> None:
    created = (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "nginx", "namespace": "demo", "creationTimestamp": created,
                           "labels": {"app": "nginx"}, "annotations": {LAST_APPLIED: "{}", "x": "y"}},
              "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx"}},
                       "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                       "template": {"metadata": {"labels": {"app": "nginx"}},
                                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25",
                                                             "ports": [{"containerPort": 80}]}]}}},
              "status": {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 2, "unavailableReplicas": 1}}
    event = {"type": "Normal", "reason": "ScalingReplicaSet", "message": "Scaled up to 3 ",
             "source": {"component": "deployment-controller"}, "count": 2,
             "firstTimestamp": created, "lastTimestamp": (NOW - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    text = describe(deploy, Related(events=[event]), now=NOW)
    lines = text.splitlines()
    assert lines[0] == "Name:                   nginx"
    assert "Annotations:            x: y" in lines  # last-applied is hidden like kubectl
    assert "Replicas:               3 desired | 3 updated | 3 total | 2 available | 1 unavailable" in lines
    assert "StrategyType:           RollingUpdate" in lines
    assert "  Containers:" in lines and "   nginx:" in lines
    assert [line.split() for line in lines if line.startswith("    Image:")] == [["Image:", "nginx:1.25"]]
    assert lines[-4] == "Events:"
    assert lines[-3].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert lines[-1] == "  Normal  ScalingReplicaSet  30s (x2 over 5m)  deployment-controller  Scaled up to 3"
    # Columns of the events table line up (tabwriter, padding 2).
    assert lines[-3].index("From") == lines[-1].index("deployment-controller")


def test_describe_generic_and_no_events() -> None:
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "l", "namespace": "n", "uid": "u"},
             "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}}
    text = describe(lease, Related(), now=NOW)
    assert "Kind:         Lease" in text
    assert "Spec:\n  Holder Identity:         me\n  Lease Duration Seconds:  15\n" in text
    assert text.splitlines()[-1].split() == ["Events:", "<none>"]
