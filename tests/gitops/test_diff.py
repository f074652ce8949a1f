"""gitops.diff: the text of an object's diff, as mkctl gitops diff prints it and status.nextSync
holds it; a Secret's values never appear in it."""

from __future__ import annotations

import base64

from gitops.diff import unified
from gitops.plan import ObjKey

KEY = ObjKey("", "Secret", "shop", "creds")


def secret(**data: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": "creds", "namespace": "shop", "resourceVersion": "7", "uid": "u-1",
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"data":{"password":"c2VjcmV0"}}'}},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_a_secrets_values_are_masked_and_a_change_still_shows() -> None:
    before = secret(user="admin", password="secret")
    after = secret(user="admin", password="changed", token="new")
    text = unified(before, after, key=KEY, revision="abc1234")
    for value in ("admin", "secret", "changed", "new"):
        assert base64.b64encode(value.encode()).decode() not in text, text
    assert "c2VjcmV0" not in text and "last-applied-configuration" not in text
    assert "-  password: '*** (before)'" in text and "+  password: '*** (after)'" in text
    assert "+  token: '*** (after)'" in text
    assert "  user: '***'" in text  # unchanged, and masked all the same
    # The caller's objects are not changed.
    assert before["data"]["user"] == base64.b64encode(b"admin").decode()


def test_a_new_or_pruned_secret_shows_no_value() -> None:
    created = unified(None, secret(password="secret"), key=KEY, revision="abc1234")
    pruned = unified(secret(password="secret"), None, key=KEY, revision="abc1234")
    assert "+  password: '*** (after)'" in created and "-  password: '*** (before)'" in pruned
    assert "c2VjcmV0" not in created + pruned


def test_other_kinds_show_their_values() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}, "data": {"k": "a"}}
    changed = {**cm, "data": {"k": "b"}}
    text = unified(cm, changed, key=ObjKey("", "ConfigMap", "shop", "c"), revision="abc1234")
    assert "-  k: a" in text and "+  k: b" in text
