"""Negative fuzzing of the whole API on the secure port: without credentials, and as a user with no grant.

Data flow: the served OpenAPI (read as the admin) -> ``schemathesis`` cases for every operation,
schema-conforming and schema-violating alike (``tests/apiserver/test_fuzz.py``'s strategies, one
example per operation and mode: authentication and authorization come before the body is read) ->
each case sent over TLS twice: with no credential at all, and with the token of ``alice``, a user
of the token file that no binding names -> checks:

* no credential: every answer is 401, a ``Status`` with reason ``Unauthorized``;
* alice: every answer is 403, a ``Status`` with reason ``Forbidden``, except what Kubernetes grants
  every authenticated user: the self reviews of ``system:basic-user`` (SelfSubjectAccessReview,
  SelfSubjectRulesReview, SelfSubjectReview) and the discovery documents of ``system:discovery``
  (``/api/v1/``, ``/apis/GROUP/VERSION/``), which may answer anything but a 5xx;
* never a 5xx, never a 2xx for anything else;
* nothing persisted: a keys-only snapshot of etcd's ``/registry/`` (key -> mod_revision) is the
  same before and after both passes.

The fuzzing with every permission (the plain port) is tests/apiserver/test_fuzz.py.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
import requests
import schemathesis
from schemathesis import GenerationMode

from tests.apiserver.test_fuzz import CONNECT_SUBRESOURCES, EtcdSnapshots, case_strategy, diff, drive, merged_openapi
from tests.securecluster import DEFAULT_TOKEN_USERS, SecureCluster

pytestmark = pytest.mark.fuzz

SELF_REVIEWS = ("selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews")
ALICE_TOKEN = next(t for t, (user, _, _) in DEFAULT_TOKEN_USERS.items() if user == "alice")


def _discovery(path: str) -> bool:
    parts = [p for p in path.split("/") if p]
    return (parts[:1] == ["api"] and len(parts) <= 2) or (parts[:1] == ["apis"] and len(parts) <= 3)


@pytest.fixture(scope="module")
def fuzz_cluster(secure_cluster: SecureCluster) -> Iterator[tuple[SecureCluster, str]]:
    with secure_cluster.client("admin") as admin:
        ns = "fuzz-auth"
        assert admin.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code in (201, 409)
        # An object for the name-pinned operations to meet (a 401/403 must come before any 404).
        assert admin.post(f"/api/v1/namespaces/{ns}/configmaps",
                          json={"metadata": {"name": "fz"}, "data": {"a": "1"}}).status_code in (201, 409)
    yield secure_cluster, ns


def test_fuzz_api_without_credentials_and_without_grants(fuzz_cluster: tuple[SecureCluster, str]) -> None:
    cluster, ns = fuzz_cluster
    with cluster.client("admin") as admin:
        schema = schemathesis.openapi.from_dict(merged_openapi(admin))
    operations = sorted((op for op in (r.ok() for r in schema.get_all_operations())
                         if op.path.rsplit("/", 1)[-1] not in CONNECT_SUBRESOURCES), key=lambda op: op.label)
    assert len(operations) >= 100, f"only {len(operations)} operations in the served OpenAPI"
    anonymous = requests.Session()
    anonymous.verify = str(cluster.pki.ca_cert)
    alice = requests.Session()
    alice.verify = str(cluster.pki.ca_cert)
    alice.headers["Authorization"] = f"Bearer {ALICE_TOKEN}"
    problems: dict[str, list[str]] = {}
    counts = {"anonymous": 0, "alice": 0}
    generation_errors: list[str] = []
    snapshots = EtcdSnapshots(cluster.etcd.url)

    def check(who: str, case: Any, response: Any) -> None:
        counts[who] += 1
        code = response.status_code
        where = f"{case.method} {case.formatted_path} -> {code} {response.content[:200]!r}"
        try:
            status = json.loads(response.content)
        except ValueError:
            status = None
        expected, reason = (401, "Unauthorized") if who == "anonymous" else (403, "Forbidden")
        if who == "alice" and (case.operation.path.rsplit("/", 1)[-1] in SELF_REVIEWS
                               or (case.method == "GET" and _discovery(case.operation.path))):
            if code >= 500:
                problems.setdefault(f"alice: 5xx on a self review ({case.operation.label})", []).append(where)
            return
        if code != expected or not isinstance(status, dict) or status.get("kind") != "Status" \
                or status.get("reason") != reason or status.get("code") != expected:
            problems.setdefault(f"{who}: {case.operation.label} answered {code}, not a {expected} {reason} Status",
                                []).append(where)

    def send(case: Any) -> None:
        if str(case.query.get("watch", "") if case.query else "").lower() in ("1", "true", "yes"):
            case.query["timeoutSeconds"] = 0
        for who, session in (("anonymous", anonymous), ("alice", alice)):
            check(who, case, case.call(base_url=cluster.url, session=session, timeout=20,
                                       verify=str(cluster.pki.ca_cert)))

    try:
        before = snapshots.take()
        for op in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategy = case_strategy(op, mode, ns=ns, seeded_name="fz")
                drive(op, strategy, 1, send, generation_errors, mode)
        changed = diff(before, snapshots.take())
    finally:
        snapshots.close()
        anonymous.close()
        alice.close()
    print(f"\nfuzz-auth: {counts} requests over {len(operations)} operations; "
          f"{len(generation_errors)} operation/mode pairs had no case")
    assert counts["anonymous"] >= 2 * len(operations) * 0.8, counts
    report = [f"{len(v)}x {k}\n    e.g. {v[0]}" for k, v in sorted(problems.items())]
    assert not report, f"{len(report)} kind(s) of problem:\n" + "\n".join(report)
    assert not changed, f"etcd changed while every request was refused: {changed}"
