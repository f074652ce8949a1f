"""The console's services, events and YAML views in a real browser against a real cluster
(tests/console/conftest.py): a Service's endpoints follow its Deployment's pods live, with the
Ingress in front of it; the events list filtered by type, reason, namespace and text, newest first;
an object's YAML edited, dry-run (nothing stored) and applied (stored), and the API's own messages
for a conflict and a YAML mistake; the page's YAML emitter and parser read back what they write."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import httpx

from tests.console.conftest import ConsoleCluster, logged_in, screenshot
from tests.waiting import wait_for


def namespace(admin: httpx.Client, prefix: str = "ui") -> str:
    ns = f"{prefix}-{uuid.uuid4().hex[:6]}"
    assert admin.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
    return ns


def deployment(ns: str, name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": "minik8s/busybox:1"}]}}}}


def stamp(seconds_ago: float) -> str:
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def event(ns: str, name: str, kind: str, obj: str, type_: str, reason: str, message: str, seconds_ago: float) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns},
            "involvedObject": {"apiVersion": "v1", "kind": kind, "name": obj, "namespace": ns},
            "type": type_, "reason": reason, "message": message, "count": 1, "source": {"component": "console-test"},
            "firstTimestamp": stamp(seconds_ago), "lastTimestamp": stamp(seconds_ago)}


def rows(page: Any, selector: str, attribute: str) -> list[str]:
    return page.eval_on_selector_all(selector, f"els => els.map(e => e.getAttribute('{attribute}'))")


def test_services_show_their_endpoints_and_ingresses_live(page: Any, console_cluster: ConsoleCluster) -> None:
    with console_cluster.admin() as admin:
        ns = namespace(admin, "svc")
        assert admin.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=deployment(ns, "web", 2)).status_code == 201
        r = admin.post(f"/api/v1/namespaces/{ns}/services", json={
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
        assert r.status_code == 201, r.text
        cluster_ip = r.json()["spec"]["clusterIP"]
        # A Service without a selector and its hand-made EndpointSlice: one endpoint ready, one not.
        assert admin.post(f"/api/v1/namespaces/{ns}/services", json={
            "metadata": {"name": "manual"}, "spec": {"ports": [{"port": 5432}]}}).status_code == 201
        r = admin.post(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", json={
            "metadata": {"name": "manual-1", "labels": {"kubernetes.io/service-name": "manual"}},
            "addressType": "IPv4", "ports": [{"name": "", "port": 5432, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.99.0.1"], "conditions": {"ready": True}},
                          {"addresses": ["10.99.0.2"], "conditions": {"ready": False}}]})
        assert r.status_code == 201, r.text
        r = admin.post(f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses", json={
            "metadata": {"name": "front"},
            "spec": {"rules": [{"host": "shop.example", "http": {"paths": [
                {"path": "/api", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})
        assert r.status_code == 201, r.text
        ing = r.json()
        ing["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}
        r = admin.put(f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/front/status", json=ing)
        assert r.status_code == 200, r.text

        logged_in(page, console_cluster, "admin", route=f"services/{ns}")
        web = f'[data-service="{ns}/web"]'
        page.wait_for_function(f"""() => document.querySelectorAll('{web} [data-endpoint][data-ready="true"]').length === 2""",
                               timeout=30000)
        assert page.inner_text(f"{web} [data-cluster-ip]") == cluster_ip
        assert page.inner_text(f"{web} [data-ports]") == "http 80/TCP→8080"
        assert page.inner_text(f"{web} [data-selector]") == "app=web"
        pods = sorted(p["metadata"]["name"] for p in admin.get(f"/api/v1/namespaces/{ns}/pods").json()["items"])
        assert sorted(rows(page, f"{web} [data-endpoint-pod]", "data-endpoint-pod")) == pods
        manual = f'[data-service="{ns}/manual"]'
        assert page.get_attribute(f'{manual} [data-endpoint="10.99.0.1"]', "data-ready") == "true"
        assert page.get_attribute(f'{manual} [data-endpoint="10.99.0.2"]', "data-ready") == "false"
        assert "1 ready of 2" in page.inner_text(manual)
        assert "none (endpoints are managed by hand)" in page.inner_text(f"{manual} [data-selector]")
        rule = f'[data-ingress="{ns}/front"]'
        assert page.inner_text(f"{rule} [data-backend]") == "web:80"
        assert page.get_attribute(rule, "data-rule") == "shop.example/api"
        page.wait_for_function(f"""() => document.querySelector('{rule} [data-address]').textContent === '192.0.2.10'""")
        # Live: a third replica becomes a third ready endpoint with no reload.
        r = admin.patch(f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale", json={"spec": {"replicas": 3}},
                        headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 200, r.text
        page.wait_for_function(f"""() => document.querySelectorAll('{web} [data-endpoint][data-ready="true"]').length === 3""",
                               timeout=30000)
        screenshot(page, "services")


def test_events_are_newest_first_live_and_filterable(page: Any, console_cluster: ConsoleCluster) -> None:
    with console_cluster.admin() as admin:
        ns = namespace(admin, "ev")
        other = namespace(admin, "ev-other")
        for e in (event(ns, "e1", "Pod", "alpha", "Normal", "Scheduled", "Successfully assigned alpha to sim-1", 240),
                  event(ns, "e2", "Pod", "beta", "Warning", "BackOff", "Back-off restarting failed container", 180),
                  event(ns, "e3", "Pod", "gamma", "Warning", "FailedMount", "MountVolume.SetUp failed for volume cfg", 120),
                  event(ns, "e4", "Pod", "alpha", "Normal", "Pulled", "Container image already present on machine", 60),
                  event(other, "o1", "Pod", "delta", "Warning", "BackOff", "Back-off in another namespace", 30)):
            r = admin.post(f"/api/v1/namespaces/{e['metadata']['namespace']}/events", json=e)
            assert r.status_code == 201, r.text

        logged_in(page, console_cluster, "admin", route=f"events/{ns}")
        shown = lambda: rows(page, "[data-event]", "data-event")  # noqa: E731
        wait_for(lambda: shown() == [f"{ns}/e4", f"{ns}/e3", f"{ns}/e2", f"{ns}/e1"], 15, "the four events, newest first",
                 lambda: repr(shown()))
        assert page.get_attribute("[data-count]", "data-shown") == "4"
        # Every filter is found by its label and used from the keyboard.
        page.get_by_label("Type", exact=True).select_option("Warning")
        wait_for(lambda: shown() == [f"{ns}/e3", f"{ns}/e2"], 5, "Warning events only", lambda: repr(shown()))
        page.get_by_label("Reason", exact=True).focus()
        page.keyboard.type("back")
        wait_for(lambda: shown() == [f"{ns}/e2"], 5, "reason BackOff only", lambda: repr(shown()))
        page.get_by_label("Reason", exact=True).fill("")
        page.get_by_label("Object or message", exact=True).focus()
        page.keyboard.type("pod/gamma")
        wait_for(lambda: shown() == [f"{ns}/e3"], 5, "the object filter", lambda: repr(shown()))
        # Live, under the filters: a new matching Warning appears, a new Normal one does not.
        for e in (event(ns, "e5", "Pod", "gamma", "Warning", "FailedMount", "MountVolume.SetUp failed again", 0),
                  event(ns, "e6", "Pod", "gamma", "Normal", "Pulled", "pulled for gamma", 0)):
            assert admin.post(f"/api/v1/namespaces/{ns}/events", json=e).status_code == 201
        wait_for(lambda: shown() == [f"{ns}/e5", f"{ns}/e3"], 10, "the new Warning event on top", lambda: repr(shown()))
        wait_for(lambda: page.inner_text("[data-count]").startswith(f"2 of 6 events in {ns}"), 10,
                 "the Normal one counted but not shown", lambda: page.inner_text("[data-count]"))
        screenshot(page, "events")
        page.get_by_role("button", name="Clear filters").click()
        wait_for(lambda: len(shown()) == 6, 5, "all six events again", lambda: repr(shown()))
        page.get_by_label("Object or message", exact=True).fill("image already present")
        wait_for(lambda: shown() == [f"{ns}/e4"], 5, "the message filter", lambda: repr(shown()))
        page.get_by_label("Object or message", exact=True).fill("")
        # The namespace filter is the list's scope: emptied, every namespace's events; set, one's.
        page.get_by_label("Namespace", exact=True).fill("")
        page.get_by_label("Namespace", exact=True).press("Enter")
        wait_for(lambda: f"{other}/o1" in shown() and f"{ns}/e1" in shown(), 15, "events of every namespace",
                 lambda: repr(shown()))
        assert page.evaluate("location.hash") == "#/events"
        page.get_by_label("Namespace", exact=True).fill(other)
        page.get_by_label("Namespace", exact=True).press("Enter")
        wait_for(lambda: shown() == [f"{other}/o1"], 15, "the other namespace's event only", lambda: repr(shown()))
        assert page.evaluate("location.hash") == f"#/events/{other}"


def test_yaml_dry_run_changes_nothing_and_apply_changes_the_object(page: Any, console_cluster: ConsoleCluster) -> None:
    with console_cluster.admin() as admin:
        ns = namespace(admin, "yaml")
        url = f"/api/v1/namespaces/{ns}/configmaps/settings"
        assert admin.post(f"/api/v1/namespaces/{ns}/configmaps", json={
            "metadata": {"name": "settings", "labels": {"tier": "front"}},
            "data": {"mode": "blue", "script": "#!/bin/sh\necho hello\n", "port": "8080"}}).status_code == 201
        logged_in(page, console_cluster, "admin", route=f"yaml/v1/configmaps/{ns}/settings")
        editor = "#yaml-text"
        page.wait_for_function("() => document.querySelector('#yaml-text')?.value.includes('mode: blue')")
        text = page.input_value(editor)
        assert "managedFields" not in text
        assert 'port: "8080"' in text and "script: |\n    #!/bin/sh\n    echo hello\n" in text
        edited = text.replace("mode: blue", "mode: green").replace("tier: front", "tier: front\n    owner: console")
        page.fill(editor, edited)
        page.get_by_role("button", name="Dry run").click()
        result = "[data-yaml-result]"
        page.wait_for_selector(f'{result}[data-outcome="ok"]')
        said = page.inner_text(result)
        assert said.startswith("Dry run: the API server accepts this; nothing was changed.")
        assert "data.mode" in said and "metadata.labels.owner" in said
        live = admin.get(url).json()
        assert live["data"]["mode"] == "blue" and "owner" not in live["metadata"]["labels"]

        page.get_by_role("button", name="Apply").click()
        page.wait_for_selector(f'{result}[data-outcome="ok"]:text("Applied")')
        live = admin.get(url).json()
        assert live["data"] == {"mode": "green", "script": "#!/bin/sh\necho hello\n", "port": "8080"}
        assert live["metadata"]["labels"] == {"tier": "front", "owner": "console"}
        assert f"resourceVersion: \"{live['metadata']['resourceVersion']}\"" in page.input_value(editor)
        screenshot(page, "yaml")

        # Someone else changes it: applying the stale text is the API's 409, in its own words.
        live["data"]["mode"] = "red"
        assert admin.put(url, json=live).status_code == 200
        page.fill(editor, page.input_value(editor).replace("mode: green", "mode: yellow"))
        page.get_by_role("button", name="Apply").click()
        page.wait_for_selector(f'{result}[data-outcome="error"]')
        assert "the object has been modified" in page.inner_text(result)
        assert admin.get(url).json()["data"]["mode"] == "red"
        # A YAML mistake is named by its line, and nothing is sent.
        page.fill(editor, "data:\n  mode: [unclosed\n")
        page.get_by_role("button", name="Dry run").click()
        page.wait_for_function("() => document.querySelector('[data-yaml-result]').textContent.startsWith('YAML line 2')")
        # Reload shows the stored object again.
        page.get_by_role("button", name="Reload").click()
        page.wait_for_function("() => document.querySelector('#yaml-text')?.value.includes('mode: red')")


def test_the_pods_list_links_each_pod_to_its_yaml(page: Any, console_cluster: ConsoleCluster) -> None:
    with console_cluster.admin() as admin:
        ns = namespace(admin, "link")
        assert admin.post(f"/api/v1/namespaces/{ns}/pods", json={
            "metadata": {"name": "solo"},
            "spec": {"containers": [{"name": "c", "image": "minik8s/busybox:1"}]}}).status_code == 201
    logged_in(page, console_cluster, "admin", route=f"pods/{ns}")
    page.wait_for_selector(f'[data-pod="{ns}/solo"] a[data-yaml]')
    screenshot(page, "pods")
    page.click(f'[data-pod="{ns}/solo"] a[data-yaml]')
    page.wait_for_function("() => document.querySelector('#yaml-text') && "
                           "document.querySelector('#yaml-text').value.includes('name: solo')")
    assert page.evaluate("location.hash") == f"#/yaml/v1/pods/{ns}/solo"
    assert page.inner_text("h1") == f"Pod {ns}/solo"


TRICKY: dict[str, Any] = {
    "plain": "web", "yes": "yes", "no": "NO", "on": "on", "null": "null", "tilde": "~", "empty": "",
    "int": "1", "float": "1.5", "exp": "1e3", "hex": "0x1F", "date": "2024-01-01", "colon": "a: b",
    "trailing-colon": "x:", "hash": "a #b", "lead-hash": "#x", "dash": "- x", "flag": "--flag=1",
    "lead-space": " x", "tab": "a\tb", "quotes": "\"q\" and 'q'", "unicode": "é ü 日本", "ctrl": "\u0007\u2028",
    "literal": "line 1\n  line 2\n", "strip": "no newline\nend", "keep": "two\n\n", "blank-inside": "a\n\nb\n",
    "shebang": "#!/bin/sh\nexit 0\n", "lead-space-multi": "  x\ny", "crlf": "a\r\nb",
    "numbers": [0, -1, 1.5, 12345678901, True, False, None], "nested": [[1, [2]], [], {}, [{"a": {"b": []}}]],
    "": "empty key", "key: with colon": 1, "1": "numeric key", "true": "bool key",
    "items": [{"name": "a", "value": "1"}, {"name": "b", "ports": [{"containerPort": 80}]}],
}


def test_the_pages_yaml_reads_back_what_it_writes_and_hand_edits(page: Any, console_cluster: ConsoleCluster) -> None:
    page.goto(console_cluster.url + "/")
    back = page.evaluate("""async (value) => {
        const y = await import('/static/yamltext.js');
        return y.parseYaml(y.toYaml(value));
    }""", TRICKY)
    assert back == TRICKY
    hand = page.evaluate("""async () => {
        const y = await import('/static/yamltext.js');
        return y.parseYaml(`# edited by hand
---
apiVersion: v1   # a comment
kind: ConfigMap
metadata:
  name: 'it''s'
  labels: {app: web, "tier": front}
data:
  a: 1
  b: |
    one
    two
  c: >-
    folded
    text
list:
- x
- k: v
  k2: [1, 2]
-   - nested
...
`);
    }""")
    assert hand == {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "it's", "labels": {"app": "web", "tier": "front"}},
                    "data": {"a": 1, "b": "one\ntwo\n", "c": "folded text"},
                    "list": ["x", {"k": "v", "k2": [1, 2]}, ["nested"]]}
    errors = page.evaluate("""async () => {
        const y = await import('/static/yamltext.js');
        return ["a: b\\n  c: d\\n", "a: 1\\na: 2\\n", "a: &x 1\\n", "\\ta: 1\\n", "a: [1\\n"].map((t) => {
            try { y.parseYaml(t); return null; } catch (e) { return e.message; }
        });
    }""")
    assert errors == ["YAML line 2: a value continued on the next line is not supported: keep it on one line, or use a | block",
                      'YAML line 2: the key "a" appears twice',
                      "YAML line 1: anchors, aliases and tags are not supported",
                      "YAML line 1: indent with spaces, not tabs",
                      "YAML line 1: a [ list is not closed (on this line)"]


# Manifests as the Kubernetes docs write them: comments, a flow sequence, a block scalar, a
# cluster-scoped object, and objects without a namespace (the page's namespace field gives it).
DOCS_YAML = """# from the docs
apiVersion: v1
kind: ConfigMap
metadata:
  name: game-config
data:
  game.properties: |
    enemies=aliens
    lives=3
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 2
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: minik8s/busybox:1
        args: ["sleep", "3600"]
        ports:
        - containerPort: 80
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {role}
rules:
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list"]
"""


def apply_results(page: Any, action: str) -> list[tuple[str, str]]:
    """Clicks Dry run or Apply and returns (outcome, text) per document once the summary is in."""
    page.click(f"[data-view=apply] button[data-action={action}]")
    page.wait_for_function("""() => /^(Dry run:|Applied:|Nothing was applied)/.test(document.querySelector('#apply-summary')
        ?.textContent || '')""", timeout=30000)
    return [(li.get_attribute("data-outcome"), li.inner_text()) for li in page.query_selector_all("#apply-results li")]


def test_manifests_pasted_are_dry_run_then_applied_server_side(page: Any, console_cluster: ConsoleCluster) -> None:
    with console_cluster.admin() as admin:
        ns = namespace(admin, "apply")
        role = f"console-{uuid.uuid4().hex[:6]}"
        logged_in(page, console_cluster, "admin", route="apply")
        page.fill("#apply-text", DOCS_YAML.format(role=role))
        page.fill("#apply-namespace", ns)

        dry = apply_results(page, "dry-run")
        assert [o for o, _ in dry] == ["ok"] * 3, dry
        assert [t.split(" ", 1)[1] for _, t in dry] == ["created (server dry run)"] * 3
        assert admin.get(f"/apis/apps/v1/namespaces/{ns}/deployments/nginx-deployment").status_code == 404

        done = apply_results(page, "apply")
        assert [t for _, t in done] == ["configmap/game-config created", "deployment.apps/nginx-deployment created",
                                        f"clusterrole.rbac.authorization.k8s.io/{role} created"], done
        cm = admin.get(f"/api/v1/namespaces/{ns}/configmaps/game-config").json()
        assert cm["data"] == {"game.properties": "enemies=aliens\nlives=3\n"}
        deploy = admin.get(f"/apis/apps/v1/namespaces/{ns}/deployments/nginx-deployment").json()
        assert deploy["spec"]["template"]["spec"]["containers"][0]["args"] == ["sleep", "3600"]
        assert {(m["manager"], m["operation"]) for m in deploy["metadata"]["managedFields"]} >= {("minik8s-console", "Apply")}
        assert admin.get(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}").json()["rules"][0]["verbs"] == \
            ["get", "list"]
        # Each line links to the object's YAML view.
        assert page.get_attribute("#apply-results li[data-doc='2'] a", "href") == \
            f"#/yaml/apps~v1/deployments/{ns}/nginx-deployment"
        screenshot(page, "apply")

        # The same text again changes nothing.
        assert [t.rsplit(" ", 1)[1] for _, t in apply_results(page, "apply")] == ["unchanged"] * 3

        # kubectl scale takes spec.replicas: applying 2 again is a conflict the API names, until forced.
        r = console_cluster.api.kubectl("admin", "scale", "deployment/nginx-deployment", "--replicas=5", "-n", ns)
        assert r.returncode == 0, r.stderr
        refused = apply_results(page, "apply")
        assert refused[1][0] == "error" and "conflict" in refused[1][1].lower() and ".spec.replicas" in refused[1][1]
        assert admin.get(f"/apis/apps/v1/namespaces/{ns}/deployments/nginx-deployment").json()["spec"]["replicas"] == 5
        page.check("#apply-force")
        forced = apply_results(page, "apply")
        assert forced[1] == ("ok", "deployment.apps/nginx-deployment configured")
        assert admin.get(f"/apis/apps/v1/namespaces/{ns}/deployments/nginx-deployment").json()["spec"]["replicas"] == 2
        admin.delete(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}")


def test_a_manifest_that_cannot_be_read_applies_nothing(page: Any, console_cluster: ConsoleCluster) -> None:
    with console_cluster.admin() as admin:
        ns = namespace(admin, "apply")
        logged_in(page, console_cluster, "admin", route="apply")
        page.fill("#apply-namespace", ns)
        page.fill("#apply-text", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\n---\n"
                                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [broken\n")
        assert apply_results(page, "apply") == []
        summary = page.text_content("#apply-summary") or ""
        assert summary.startswith("Nothing was applied: document 2 (line 6)"), summary
        assert admin.get(f"/api/v1/namespaces/{ns}/configmaps/first").status_code == 404
        # A kind the server does not serve, and a name missing: kubectl's words, the others applied.
        page.fill("#apply-text", "apiVersion: v1\nkind: Nonsense\nmetadata:\n  name: x\n---\n"
                                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: y-\n---\n"
                                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\n")
        results = apply_results(page, "apply")
        assert [o for o, _ in results] == ["error", "error", "ok"], results
        assert 'no matches for kind "Nonsense" in version "v1"' in results[0][1]
        assert "generateName" in results[1][1]
        assert admin.get(f"/api/v1/namespaces/{ns}/configmaps/fine").status_code == 200
