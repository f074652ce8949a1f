"""gitops.build (and the kustomize subset of gitops.kustomize): repository files -> objects + errors.

Pure tests: each case is a small repository written as {path: YAML text}, built in memory.
"""

from __future__ import annotations

import copy
import textwrap
from typing import Any

import pytest

from gitops.build import BuildError, BuildResult, Item, build
from gitops.kustomize import split_image
from machinery.manifests import read_documents


def _repo(files: dict[str, str]) -> dict[str, bytes]:
    return {path: textwrap.dedent(text).encode() for path, text in files.items()}


def _build(files: dict[str, str], path: str = "") -> BuildResult:
    return build(_repo(files), path)


def _where(result: BuildResult) -> list[tuple[str, int, str, str]]:
    return [(i.file, i.document, i.obj["kind"], i.obj["metadata"]["name"]) for i in result.items]


def _by_name(result: BuildResult) -> dict[str, dict[str, Any]]:
    assert not result.errors, result.errors
    return {f"{i.obj['kind']}/{i.obj['metadata']['name']}": i.obj for i in result.items}


def _cm(name: str, extra: str = "") -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}{extra}}}\n"


# ---------------------------------------------------------------- plain directories

PLAIN_CASES: dict[str, tuple[dict[str, str], str, list[tuple[str, int, str, str]]]] = {
    "nested directories in walk order": (
        {"b.yaml": _cm("b"), "a.yaml": _cm("a1"), "a/x.yaml": _cm("ax"), "a/c/y.yml": _cm("acy")},
        "",
        [("a/c/y.yml", 0, "ConfigMap", "acy"), ("a/x.yaml", 0, "ConfigMap", "ax"),
         ("a.yaml", 0, "ConfigMap", "a1"), ("b.yaml", 0, "ConfigMap", "b")],
    ),
    "only under the path, not a sibling sharing its prefix": (
        {"deploy/a.yaml": _cm("a"), "deployment/b.yaml": _cm("b"), "c.yaml": _cm("c")},
        "deploy",
        [("deploy/a.yaml", 0, "ConfigMap", "a")],
    ),
    "multi-document with empty and comment-only documents counted": (
        {"m.yaml": "# leading comment\n---\n" + _cm("zero") + "---\n---\n# nothing\n---\n" + _cm("three")
         + "---\n"},
        "",
        [("m.yaml", 0, "ConfigMap", "zero"), ("m.yaml", 3, "ConfigMap", "three")],
    ),
    "a List expanded, its items at the List's index": (
        {"l.yaml": _cm("first") + "---\napiVersion: v1\nkind: List\nitems:\n"
                   "- {apiVersion: v1, kind: ConfigMap, metadata: {name: i1}}\n"
                   "- {apiVersion: v1, kind: Secret, metadata: {name: i2}}\n"},
        "",
        [("l.yaml", 0, "ConfigMap", "first"), ("l.yaml", 1, "ConfigMap", "i1"), ("l.yaml", 1, "Secret", "i2")],
    ),
    "JSON is one document": (
        {"j.json": '{"apiVersion": "v1", "kind": "ConfigMap",\n\t"metadata": {"name": "j"}}'},
        "",
        [("j.json", 0, "ConfigMap", "j")],
    ),
    "a subdirectory with a kustomization is one unit": (
        {"a.yaml": _cm("a"),
         "app/kustomization.yaml": "resources: [cm.yaml]\nnamePrefix: p-\n",
         "app/cm.yaml": _cm("cm"),
         "app/unlisted.yaml": _cm("not-included"),
         "app/sub/deep.yaml": _cm("not-included-either"),
         "z.yaml": _cm("z")},
        "",
        [("a.yaml", 0, "ConfigMap", "a"), ("app/cm.yaml", 0, "ConfigMap", "p-cm"), ("z.yaml", 0, "ConfigMap", "z")],
    ),
}


@pytest.mark.parametrize("case", sorted(PLAIN_CASES))
def test_plain_directory(case: str) -> None:
    files, path, expected = PLAIN_CASES[case]
    result = _build(files, path)
    assert result.errors == []
    assert _where(result) == expected


def test_timestamps_stay_strings_and_keys_become_strings() -> None:
    obj = _build({"a.yaml": _cm("a", ", annotations: {at: 2024-01-01}") + "data: {1: one, 'on': yes}\n"}).items[0].obj
    assert obj["metadata"]["annotations"] == {"at": "2024-01-01"}
    assert obj["data"] == {"1": "one", "on": True}


# ---------------------------------------------------------------- errors: all of them, with their places

def test_every_error_is_reported_and_the_rest_still_builds() -> None:
    result = _build({
        "a.yaml": _cm("good-a") + "---\nkey: [unclosed\n---\n- not\n- a mapping\n---\n" + _cm("good-a2"),
        "b.yaml": "apiVersion: v1\nmetadata: {name: nokind}\n---\nkind: Secret\nmetadata: {name: noversion}\n"
                  "---\napiVersion: v1\nkind: Secret\nmetadata: {labels: {}}\n---\n"
                  "apiVersion: v1\nkind: Pod\nmetadata: {generateName: web-}\n",
        "c.json": '{"apiVersion": "v1",',
        "d.yaml": "a: b: c\n",
    })
    assert _where(result) == [("a.yaml", 0, "ConfigMap", "good-a"), ("a.yaml", 3, "ConfigMap", "good-a2")]
    found = [(e.file, e.document, e.kind, e.name, e.message.split(":")[0]) for e in result.errors]
    assert found == [
        ("a.yaml", 1, "", "", "error converting YAML to JSON"),
        ("a.yaml", 2, "", "", "a document is not an object"),
        ("b.yaml", 0, "", "nokind", "kind not set"),
        ("b.yaml", 1, "Secret", "noversion", "apiVersion not set"),
        ("b.yaml", 2, "Secret", "", "metadata.name not set"),
        ("b.yaml", 3, "Pod", "", "metadata.name not set (generateName cannot be used"),
        ("c.json", 0, "", "", "error converting JSON"),
        ("d.yaml", 0, "", "", "error converting YAML to JSON"),
    ]
    # the YAML error's line is the file's, not the document's
    assert "yaml: line 5:" in result.errors[0].message
    assert str(result.errors[2]) == "b.yaml (document 0): nokind: kind not set"


def test_non_utf8_file() -> None:
    result = build({"bin.yaml": b"\xff\xfe\x00"}, "")
    assert [(e.file, e.document) for e in result.errors] == [("bin.yaml", None)]
    assert "UTF-8" in result.errors[0].message


@pytest.mark.parametrize("files, path, message", [
    ({"a.yaml": _cm("a")}, "nope", "path nope has no .yaml, .yml or .json files"),
    ({}, "", "the repository has no .yaml"),
    ({"a.yaml": _cm("a")}, "a.yaml", "is a file"),
])
def test_nothing_to_build_is_an_error(files: dict[str, str], path: str, message: str) -> None:
    result = _build(files, path)
    assert result.items == [] and len(result.errors) == 1
    assert message in result.errors[0].message


# ---------------------------------------------------------------- duplicates

def test_an_object_defined_twice() -> None:
    result = _build({
        "deploy/a.yaml": _cm("x") + "---\n" + _cm("y") + "---\n" + _cm("y"),
        "deploy/b.yaml": _cm("x"),
        # not the same object: another namespace, kind or API group
        "deploy/c.yaml": _cm("x", ", namespace: other")
                         + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: x}\n"
                         "---\napiVersion: example.com/v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    })
    assert [(e.file, e.document, e.kind, e.name, e.message) for e in result.errors] == [
        ("deploy/a.yaml", 2, "ConfigMap", "y", "may not be defined twice: also in deploy/a.yaml (document 1)"),
        ("deploy/b.yaml", 0, "ConfigMap", "x", "may not be defined twice: also in deploy/a.yaml"),
    ]


def test_same_api_group_in_two_versions_is_the_same_object() -> None:
    result = _build({"a.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\n"
                               "apiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: d}\n"})
    assert [e.document for e in result.errors] == [1]


# ---------------------------------------------------------------- kustomizations

DEPLOYMENT = """\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, labels: {app: web}}
    spec:
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          serviceAccountName: runner
          imagePullSecrets: [{name: pull}]
          initContainers: [{name: init, image: busybox}]
          containers:
          - name: web
            image: registry.local:5000/web:1.0
            env:
            - {name: A, valueFrom: {configMapKeyRef: {name: settings, key: a}}}
            - {name: B, valueFrom: {secretKeyRef: {name: external, key: b}}}
            envFrom: [{configMapRef: {name: settings}}, {secretRef: {name: creds}}]
          volumes:
          - {name: v1, configMap: {name: settings}}
          - {name: v2, secret: {secretName: creds}}
          - name: v3
            projected: {sources: [{configMap: {name: settings}}, {secret: {name: creds}}]}
    """
APP = {
    "app/deployment.yaml": DEPLOYMENT,
    "app/service.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}}\n",
    "app/config.yaml": _cm("settings") + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: creds}\n"
                       "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: runner}\n",
    "app/cluster.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n---\n"
                        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\n---\n"
                        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
                        "metadata: {name: widgets.example.com}\n",
    "app/job.yaml": "apiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\n"
                    "spec: {template: {spec: {containers: [{name: c, image: busybox:1.36}]}}}\n",
}
RESOURCES = "resources: [deployment.yaml, service.yaml, config.yaml, cluster.yaml, job.yaml]\n"


def _kustomize(extra: str) -> dict[str, dict[str, Any]]:
    return _by_name(_build({**APP, "app/kustomization.yaml": RESOURCES + textwrap.dedent(extra)}, "app"))


def test_resources_only_keeps_objects_as_written_in_order() -> None:
    result = _build({**APP, "app/kustomization.yaml": RESOURCES}, "app")
    assert result.errors == []
    assert [(i.file, i.document, i.obj["metadata"]["name"]) for i in result.items][:3] == [
        ("app/deployment.yaml", 0, "web"), ("app/service.yaml", 0, "web"), ("app/config.yaml", 0, "settings")]
    assert [i.obj for i in result.items[:1]] == [_repo_obj(DEPLOYMENT)]


def _repo_obj(text: str) -> dict[str, Any]:
    manifests, errors = read_documents(textwrap.dedent(text), source="x")
    assert not errors
    return manifests[0].obj


def test_namespace_on_all_but_well_known_cluster_scoped_kinds() -> None:
    objs = _kustomize("namespace: team\n")
    namespaces = {key: obj["metadata"].get("namespace") for key, obj in objs.items()}
    assert namespaces == {
        "Deployment/web": "team", "Service/web": "team", "ConfigMap/settings": "team", "Secret/creds": "team",
        "ServiceAccount/runner": "team", "Job/once": "team",
        "Namespace/team": None, "ClusterRole/reader": None, "CustomResourceDefinition/widgets.example.com": None,
    }


def test_namespace_replaces_the_written_one() -> None:
    objs = _by_name(_build({"kustomization.yaml": "resources: [a.yaml]\nnamespace: new\n",
                            "a.yaml": _cm("a", ", namespace: old")}))
    assert objs["ConfigMap/a"]["metadata"]["namespace"] == "new"


def test_common_labels_reach_selectors_and_templates() -> None:
    objs = _kustomize("commonLabels: {team: blue}\n")
    deployment = objs["Deployment/web"]
    assert deployment["metadata"]["labels"] == {"app": "web", "team": "blue"}
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": "web", "team": "blue"}
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"app": "web", "team": "blue"}
    assert objs["Service/web"]["spec"]["selector"] == {"app": "web", "team": "blue"}
    assert objs["ConfigMap/settings"]["metadata"]["labels"] == {"team": "blue"}
    job = objs["Job/once"]
    # a Job's selector is generated: kustomize adds to it only where one is written
    assert "selector" not in job["spec"]
    assert job["spec"]["template"]["metadata"]["labels"] == {"team": "blue"}


@pytest.mark.parametrize("entry, selector, template", [
    ("{pairs: {team: blue}}", False, False),
    ("{pairs: {team: blue}, includeTemplates: true}", False, True),
    ("{pairs: {team: blue}, includeSelectors: true}", True, True),
])
def test_labels_with_include_flags(entry: str, selector: bool, template: bool) -> None:
    objs = _kustomize(f"labels:\n- {entry}\n")
    deployment = objs["Deployment/web"]
    assert deployment["metadata"]["labels"] == {"app": "web", "team": "blue"}
    assert ("team" in deployment["spec"]["selector"]["matchLabels"]) is selector
    assert ("team" in objs["Service/web"]["spec"]["selector"]) is selector
    assert ("team" in deployment["spec"]["template"]["metadata"]["labels"]) is template


def test_common_annotations_reach_pod_templates() -> None:
    objs = _kustomize("commonAnnotations: {owner: ops}\n")
    assert objs["Service/web"]["metadata"]["annotations"] == {"owner": "ops"}
    assert objs["Deployment/web"]["spec"]["template"]["metadata"]["annotations"] == {"owner": "ops"}


def test_name_prefix_and_suffix_update_pod_spec_references() -> None:
    objs = _kustomize("namePrefix: dev-\nnameSuffix: -v2\n")
    assert sorted(objs) == sorted([
        "Deployment/dev-web-v2", "Service/dev-web-v2", "ConfigMap/dev-settings-v2", "Secret/dev-creds-v2",
        "ServiceAccount/dev-runner-v2", "Job/dev-once-v2",
        # kustomize never renames these
        "Namespace/team", "ClusterRole/dev-reader-v2", "CustomResourceDefinition/widgets.example.com"])
    spec = objs["Deployment/dev-web-v2"]["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert spec["serviceAccountName"] == "dev-runner-v2"
    assert spec["imagePullSecrets"] == [{"name": "pull"}]  # not in the kustomization: left alone
    assert container["env"][0]["valueFrom"]["configMapKeyRef"]["name"] == "dev-settings-v2"
    assert container["env"][1]["valueFrom"]["secretKeyRef"]["name"] == "external"
    assert container["envFrom"] == [{"configMapRef": {"name": "dev-settings-v2"}},
                                    {"secretRef": {"name": "dev-creds-v2"}}]
    assert [v.get("configMap", v.get("secret")) for v in spec["volumes"][:2]] == [
        {"name": "dev-settings-v2"}, {"secretName": "dev-creds-v2"}]
    assert spec["volumes"][2]["projected"]["sources"] == [
        {"configMap": {"name": "dev-settings-v2"}}, {"secret": {"name": "dev-creds-v2"}}]
    # the selector is not a name reference
    assert objs["Service/dev-web-v2"]["spec"]["selector"] == {"app": "web"}


def test_references_across_namespaces_are_not_renamed() -> None:
    objs = _by_name(_build({
        "kustomization.yaml": "resources: [a.yaml]\nnamePrefix: p-\n",
        "a.yaml": _cm("settings", ", namespace: one") + "---\napiVersion: v1\nkind: Pod\n"
                  "metadata: {name: pod, namespace: two}\n"
                  "spec: {containers: [{name: c, image: x, envFrom: [{configMapRef: {name: settings}}]}]}\n",
    }))
    assert objs["Pod/p-pod"]["spec"]["containers"][0]["envFrom"] == [{"configMapRef": {"name": "settings"}}]


@pytest.mark.parametrize("image, entry, expected", [
    ("nginx", "{name: nginx, newTag: '1.25'}", "nginx:1.25"),
    ("nginx:1.0", "{name: nginx, newTag: '1.25'}", "nginx:1.25"),
    ("nginx:1.0@sha256:aaa", "{name: nginx, newTag: '1.25'}", "nginx:1.25"),
    ("nginx:1.0", "{name: nginx, digest: 'sha256:bbb'}", "nginx@sha256:bbb"),
    ("nginx:1.0", "{name: nginx, newTag: '2', digest: 'sha256:bbb'}", "nginx:2@sha256:bbb"),
    ("nginx:1.0", "{name: nginx, newName: mirror.local/nginx}", "mirror.local/nginx:1.0"),
    ("nginx@sha256:aaa", "{name: nginx, newName: other, newTag: v3}", "other:v3"),
    ("registry.local:5000/web:1.0", "{name: registry.local:5000/web, newTag: '2.0'}", "registry.local:5000/web:2.0"),
    ("registry.local:5000/web", "{name: registry.local:5000/web, newTag: '2.0'}", "registry.local:5000/web:2.0"),
    # by whole name only
    ("nginx-extra:1.0", "{name: nginx, newTag: '2'}", "nginx-extra:1.0"),
    ("library/nginx:1.0", "{name: nginx, newTag: '2'}", "library/nginx:1.0"),
])
def test_images(image: str, entry: str, expected: str) -> None:
    pod = f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec: {{containers: [{{name: c, image: '{image}'}}]}}\n"
    objs = _by_name(_build({"kustomization.yaml": f"resources: [p.yaml]\nimages:\n- {entry}\n", "p.yaml": pod}))
    assert objs["Pod/p"]["spec"]["containers"][0]["image"] == expected


def test_images_in_pod_templates_and_init_containers() -> None:
    objs = _kustomize("images:\n- {name: busybox, newTag: '1.37'}\n- {name: registry.local:5000/web, newTag: '9'}\n")
    spec = objs["Deployment/web"]["spec"]["template"]["spec"]
    assert spec["initContainers"][0]["image"] == "busybox:1.37"
    assert spec["containers"][0]["image"] == "registry.local:5000/web:9"
    assert objs["Job/once"]["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.37"


@pytest.mark.parametrize("image, expected", [
    ("nginx", ("nginx", "", "")),
    ("nginx:1", ("nginx", "1", "")),
    ("host:5000/a/b", ("host:5000/a/b", "", "")),
    ("host:5000/a/b:2@sha256:x", ("host:5000/a/b", "2", "sha256:x")),
])
def test_split_image(image: str, expected: tuple[str, str, str]) -> None:
    assert split_image(image) == expected


def test_overlay_over_a_base_inside_the_repository() -> None:
    files = {
        "base/kustomization.yaml": "resources: [cm.yaml, ../shared/sa.yaml]\nnamePrefix: base-\n"
                                   "commonLabels: {layer: base}\n",
        "base/cm.yaml": _cm("settings"),
        "shared/sa.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: runner}\n",
        "overlays/prod/kustomization.yaml": "resources: [../../base, pod.yaml]\nnamePrefix: prod-\nnamespace: prod\n"
                                            "commonLabels: {env: prod}\n",
        "overlays/prod/pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
                                  "spec: {containers: [{name: c, image: x}]}\n",
    }
    result = _build(files, "overlays/prod")
    assert result.errors == []
    assert [(i.file, i.obj["metadata"]["name"], i.obj["metadata"]["namespace"], i.obj["metadata"]["labels"])
            for i in result.items] == [
        ("base/cm.yaml", "prod-base-settings", "prod", {"layer": "base", "env": "prod"}),
        ("shared/sa.yaml", "prod-base-runner", "prod", {"layer": "base", "env": "prod"}),
        ("overlays/prod/pod.yaml", "prod-p", "prod", {"env": "prod"}),
    ]


def test_bases_is_an_alias_of_resources_and_kustomization_yml_is_found() -> None:
    result = _build({"k/kustomization.yml": "bases: [../b]\n", "b/kustomization.yaml": "resources: [a.yaml]\n",
                     "b/a.yaml": _cm("a")}, "k")
    assert _where(result) == [("b/a.yaml", 0, "ConfigMap", "a")]


def test_input_is_never_mutated_and_objects_are_fresh() -> None:
    files = _repo({"base/kustomization.yaml": "resources: [a.yaml]\n", "base/a.yaml": _cm("a"),
                   "one/kustomization.yaml": "resources: [../base]\nnamePrefix: one-\n",
                   "two/kustomization.yaml": "resources: [../base]\nnamePrefix: two-\n",
                   "kustomization.yaml": "resources: [one, two]\n"})
    before = copy.deepcopy(files)
    result = build(files, "")
    assert files == before and result.errors == []
    assert [i.obj["metadata"]["name"] for i in result.items] == ["one-a", "two-a"]
    assert result.items[0].obj["metadata"] is not result.items[1].obj["metadata"]


KUSTOMIZATION_ERRORS: dict[str, tuple[dict[str, str], str, list[tuple[str, int | None, str]]]] = {
    "a resource leaving the repository": (
        {"deploy/prod/kustomization.yaml": "resources: [../../../etc, /etc/passwd]\n"}, "deploy/prod",
        [("deploy/prod/kustomization.yaml", 0, "resource ../../../etc leaves the repository"),
         ("deploy/prod/kustomization.yaml", 0, "resource /etc/passwd leaves the repository")],
    ),
    "remote resources": (
        {"kustomization.yaml": "resources:\n- https://github.com/org/repo//deploy?ref=v1\n"
                               "- github.com/org/repo/deploy\n- git@github.com:org/repo.git\n"}, "",
        [("kustomization.yaml", 0, "resource https://github.com/org/repo//deploy?ref=v1: remote resources are not "
                                   "supported by minik8s gitops"),
         ("kustomization.yaml", 0, "resource github.com/org/repo/deploy: remote resources are not supported by "
                                   "minik8s gitops"),
         ("kustomization.yaml", 0, "resource git@github.com:org/repo.git: remote resources are not supported by "
                                   "minik8s gitops")],
    ),
    "unsupported, unknown and mistyped fields": (
        {"kustomization.yaml": "resources: [a.yaml]\npatches: [{path: p.yaml}]\nconfigMapGenerator: [{name: x}]\n"
                               "resorces: [b.yaml]\nnamespace: [x]\ncommonLabels: {version: 1.10}\n"
                               "images: [{name: a, newTag: 1.10}, {newTag: '2'}, {name: b, tagSuffix: -x}]\n"
                               "labels: [{pairs: {a: b}, fields: [{path: x}]}]\n"
                               "transformers: []\n",
         "a.yaml": _cm("a")}, "",
        [("kustomization.yaml", 0, "kustomization field patches is not supported by minik8s gitops"),
         ("kustomization.yaml", 0, "kustomization field configMapGenerator is not supported by minik8s gitops"),
         ("kustomization.yaml", 0, "kustomization field resorces is unknown (and not supported by minik8s gitops)"),
         ("kustomization.yaml", 0, "kustomization field commonLabels: the value of version must be a string "
                                   "(quote it)"),
         ("kustomization.yaml", 0, "kustomization field labels[0].fields is not supported by minik8s gitops"),
         ("kustomization.yaml", 0, "kustomization field namespace must be a string, not ['x']"),
         ("kustomization.yaml", 0, "kustomization field images[0].newTag must be a string (quote it), not 1.1"),
         ("kustomization.yaml", 0, "kustomization field images[1].name is not set"),
         ("kustomization.yaml", 0, "kustomization field images[2].tagSuffix is not supported by minik8s gitops")],
    ),
    "a component is not a kustomization": (
        {"kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"}, "",
        [("kustomization.yaml", 0, "kustomization kind Component is not supported by minik8s gitops "
                                   "(only Kustomization)")],
    ),
    "missing resources": (
        {"kustomization.yaml": "resources: [gone.yaml, gone/, plain]\n", "plain/a.yaml": _cm("a")}, "",
        [("kustomization.yaml", 0, "resource gone.yaml not found: gone.yaml is neither a manifest file "
                                   "(.yaml, .yml, .json) nor a directory of the repository"),
         ("kustomization.yaml", 0, "resource gone/ not found: gone is neither a manifest file "
                                   "(.yaml, .yml, .json) nor a directory of the repository"),
         ("kustomization.yaml", 0, "resource plain: directory plain has no kustomization (kustomization.yaml, "
                                   "kustomization.yml, Kustomization)")],
    ),
    "a cycle": (
        {"a/kustomization.yaml": "resources: [../b]\n", "b/kustomization.yaml": "resources: [../c]\n",
         "c/kustomization.yaml": "resources: [../a]\n"}, "a",
        [("c/kustomization.yaml", 0, "resource ../a: the kustomizations include each other: a -> b -> c -> a")],
    ),
    "itself": (
        {"kustomization.yaml": "resources: [.]\n"}, "",
        [("kustomization.yaml", 0, "resource .: the kustomizations include each other: . -> .")],
    ),
    "an empty kustomization, a bad one, two in one directory": (
        {"a/kustomization.yaml": "# nothing\n", "b/kustomization.yaml": "resources: [\n",
         "c/kustomization.yaml": "- a list\n", "d/kustomization.yaml": "resources: []\n",
         "d/kustomization.yml": "resources: []\n"}, "",
        [("a/kustomization.yaml", None, "the kustomization is empty"),
         ("b/kustomization.yaml", 0, "error converting YAML to JSON: yaml: line 2: expected the node content, "
                                     "but found '<stream end>'"),
         ("c/kustomization.yaml", 0, "a kustomization must be a mapping"),
         ("d/kustomization.yml", None, "found more than one kustomization file in d: d/kustomization.yaml, "
                                       "d/kustomization.yml")],
    ),
    "errors of objects inside a kustomization keep their own file": (
        {"kustomization.yaml": "resources: [a.yaml]\ncommonLabels: {x: y}\n",
         "a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: [wrong]}\n---\nkind: ConfigMap\n"},
        "",
        [("a.yaml", 1, "apiVersion not set"), ("a.yaml", 0, "metadata.labels is not a mapping")],
    ),
}


@pytest.mark.parametrize("case", sorted(KUSTOMIZATION_ERRORS))
def test_kustomization_errors(case: str) -> None:
    files, path, expected = KUSTOMIZATION_ERRORS[case]
    result = _build(files, path)
    assert [(e.file, e.document, e.message) for e in result.errors] == expected


def test_empty_resources_builds_nothing_without_error() -> None:
    assert _build({"kustomization.yaml": "resources: []\n", "a.yaml": _cm("a")}) == BuildResult([], [])


def test_diamond_includes_are_duplicates() -> None:
    result = _build({"kustomization.yaml": "resources: [x, y]\n",
                     "x/kustomization.yaml": "resources: [../base]\n", "y/kustomization.yaml": "resources: [../base]\n",
                     "base/kustomization.yaml": "resources: [a.yaml]\n", "base/a.yaml": _cm("a")})
    assert result.errors == [BuildError("base/a.yaml", 0, "may not be defined twice: also in base/a.yaml (document 0)",
                                        "ConfigMap", "a")]
    assert [i.file for i in result.items] == ["base/a.yaml", "base/a.yaml"]
    assert isinstance(result.items[0], Item)


def test_common_labels_on_statefulset_claims_and_cronjob_templates() -> None:
    objs = _by_name(_build({
        "kustomization.yaml": "resources: [w.yaml]\ncommonLabels: {team: blue}\n",
        "w.yaml": "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\n"
                  "spec: {selector: {matchLabels: {app: db}}, template: {metadata: {labels: {app: db}}},\n"
                  "       volumeClaimTemplates: [{metadata: {name: data}}]}\n---\n"
                  "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: tick}\n"
                  "spec: {jobTemplate: {spec: {template: {spec: {}}}}}\n",
    }))
    statefulset, cronjob = objs["StatefulSet/db"]["spec"], objs["CronJob/tick"]["spec"]
    assert statefulset["selector"]["matchLabels"] == {"app": "db", "team": "blue"}
    assert statefulset["volumeClaimTemplates"][0]["metadata"]["labels"] == {"team": "blue"}
    assert cronjob["jobTemplate"]["metadata"]["labels"] == {"team": "blue"}
    assert cronjob["jobTemplate"]["spec"]["template"]["metadata"]["labels"] == {"team": "blue"}
    assert "selector" not in cronjob["jobTemplate"]["spec"]
