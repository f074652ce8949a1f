"""ServiceAccount: validation, the SECRETS column, merge of ``secrets`` by name; over the real API too."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import httpx

from apiserver.kinds import validate_object
from apiserver.kinds.core.serviceaccount import STRATEGY

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def account(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder", "namespace": "ns"},
            **fields}


def test_valid_and_invalid_accounts() -> None:
    assert validate_object(STRATEGY, account(secrets=[{"name": "token"}], imagePullSecrets=[{"name": "reg"}],
                                             automountServiceAccountToken=False)) == []
    bad = validate_object(STRATEGY, account(secrets=[{"name": "Not_A_Name"}], automountServiceAccountToken="no"))
    assert {(c.field, c.reason) for c in bad} == {("secrets[0].name", "FieldValueInvalid"),
                                                  ("automountServiceAccountToken", "FieldValueInvalid")}
    assert [c.field for c in validate_object(STRATEGY, account(metadata={"name": "UPPER", "namespace": "ns"}))] \
        == ["metadata.name"]


def test_table_row_counts_secrets() -> None:
    obj = account(secrets=[{"name": "a"}, {"name": "b"}])
    obj["metadata"]["creationTimestamp"] = "2024-05-01T11:00:00Z"
    assert [c.name for c in STRATEGY.columns] == ["Name", "Secrets", "Age"]
    assert STRATEGY.row(obj, NOW) == ["builder", 2, "60m"]


def test_service_accounts_over_the_api(http: httpx.Client, namespace: str) -> None:
    url = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    r = http.post(url, json=account(metadata={"name": "builder"}, secrets=[{"name": "one"}]))
    assert r.status_code == 201, r.text
    # secrets merge by name under a strategic merge patch, as Kubernetes' patchMergeKey says.
    r = http.patch(f"{url}/builder", json={"secrets": [{"name": "two"}]},
                   headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status_code == 200, r.text
    assert [s["name"] for s in r.json()["secrets"]] == ["two", "one"]
    discovery = http.get("/api/v1").json()["resources"]
    entry = next(x for x in discovery if x["name"] == "serviceaccounts")
    assert entry["kind"] == "ServiceAccount" and entry["namespaced"] and entry["shortNames"] == ["sa"]
