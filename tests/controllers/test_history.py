"""controllers.history: Kubernetes' revision hashing and naming, history reading and truncation,
and the writer's collision probing against a fake client."""

from __future__ import annotations

import asyncio
import copy
from typing import Any, Mapping

import pytest

from controllers import history as h
from machinery import errors

DS = {"apiVersion": "apps/v1", "kind": "DaemonSet",
      "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "annotations": {"a": "b"}},
      "spec": {"template": {"metadata": {"labels": {"app": "web"}},
                            "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}}


@pytest.mark.parametrize("data,expected", [
    (b"", 0x811C9DC5),
    (b"a", 0x050C5D7E),  # Go: fnv.New32().Write("a").Sum32()
    (b"hello", 0xB6FA7167),
])
def test_fnv32_is_fnv1(data: bytes, expected: int) -> None:
    assert h.fnv32(data) == expected


def test_go_json_sorts_and_escapes_like_go() -> None:
    assert h.go_json({"b": 1, "a": "<x&y>"}) == b'{"a":"\\u003cx\\u0026y\\u003e","b":1}'
    assert h.go_json({"k": "é"}) == '{"k":"é"}'.encode()


def test_hash_and_name() -> None:
    data = {"spec": {"template": {"$patch": "replace"}}}
    plain, bumped = h.hash_revision(data), h.hash_revision(data, 1)
    assert plain != bumped and plain == h.hash_revision(copy.deepcopy(data))
    assert set(plain) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert h.revision_name("x" * 300, "abc") == "x" * 223 + "-abc"


def test_template_patch_and_undo_patch() -> None:
    patch = h.template_patch(DS)
    assert patch == {"spec": {"template": {**DS["spec"]["template"], "$patch": "replace"}}}
    assert "$patch" not in DS["spec"]["template"]
    rev = h.daemonset_revision(DS, revision=3, hash_="hhh")
    assert h.undo_patch(rev) == patch
    assert h.matches_owner(DS, rev)
    changed = copy.deepcopy(DS)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    assert not h.matches_owner(changed, rev)
    assert h.apply_revision(changed, rev)["spec"]["template"] == DS["spec"]["template"]


def test_daemonset_revision_body() -> None:
    rev = h.daemonset_revision(DS, revision=2, hash_="6d4b")
    assert rev["metadata"]["name"] == "web-6d4b"
    assert rev["metadata"]["labels"] == {"app": "web", "controller-revision-hash": "6d4b"}
    assert rev["metadata"]["annotations"] == {"a": "b"}
    ref = rev["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["uid"], ref["controller"]) == ("DaemonSet", "u1", True)
    assert rev["revision"] == 2


def test_new_revision_body() -> None:
    data = h.template_patch(DS)
    rev = h.new_revision(DS, data=data, revision=1, collision_count=None, api_version="apps/v1", kind="StatefulSet")
    hash_ = h.hash_revision(data)
    assert rev["metadata"]["name"] == f"web-{hash_}"
    assert rev["metadata"]["labels"] == {"app": "web", h.REVISION_HASH_LABEL: hash_}
    assert rev["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"


def _rev(name: str, number: int, *, uid: str = "u1", created: str = "2024-01-01T00:00:00Z",
         image: str = "i") -> dict[str, Any]:
    return {"metadata": {"name": name, "creationTimestamp": created,
                         "ownerReferences": [{"uid": uid, "controller": True, "kind": "DaemonSet"}]},
            "data": {"spec": {"template": {"spec": {"containers": [{"image": image}]}}}}, "revision": number}


def test_reading_history() -> None:
    revs = [_rev("c", 3), _rev("a", 1), _rev("b", 1, created="2023-01-01T00:00:00Z"), _rev("x", 9, uid="other")]
    owned = h.owned_revisions(DS, revs)
    assert [h.name_of(r) for r in owned] == ["c", "a", "b"]
    assert [h.name_of(r) for r in h.sort_revisions(owned)] == ["b", "a", "c"]
    assert h.next_revision(owned) == 4 and h.next_revision([]) == 1
    assert [h.name_of(r) for r in h.find_equal_revisions(owned, _rev("z", 0))] == ["c", "a", "b"]
    assert h.find_equal_revisions(owned, _rev("z", 0, image="j")) == []
    assert h.renumbered(revs[0], 8)["revision"] == 8 and revs[0]["revision"] == 3


@pytest.mark.parametrize("hash_a,hash_b,equal", [
    ("abc", "xyz", True),  # letters: ParseInt fails, only the data counts (as in Kubernetes)
    ("245", "245", True),
    ("245", "246", False),  # both numbers and different
    ("245", "b45", True),
])
def test_equal_data_compares_hash_labels_as_go_does(hash_a: str, hash_b: str, equal: bool) -> None:
    a, b = _rev("a", 1), _rev("b", 2)
    a["metadata"]["labels"] = {h.REVISION_HASH_LABEL: hash_a}
    b["metadata"]["labels"] = {h.REVISION_HASH_LABEL: hash_b}
    assert h.equal_data(a, b) is equal


@pytest.mark.parametrize("limit,live,expected", [
    (10, set(), []),
    (1, set(), ["r1", "r2", "r3"]),
    (1, {"r1"}, ["r2", "r3"]),
    (0, {"r4"}, ["r1", "r2", "r3"]),
    (2, {"r3", "r4"}, []),
])
def test_revisions_to_truncate(limit: int, live: set[str], expected: list[str]) -> None:
    revs = [_rev(f"r{i}", i) for i in (4, 2, 3, 1)]
    assert [h.name_of(r) for r in h.revisions_to_truncate(revs, live=live, limit=limit)] == expected


class FakeClient:
    """Stores revisions by name; create refuses a taken name as the API does."""

    def __init__(self) -> None:
        self.objs: dict[str, dict[str, Any]] = {}

    async def create(self, resource: Any, body: Mapping[str, Any], *, namespace: str | None = None) -> dict[str, Any]:
        name = body["metadata"]["name"]
        if name in self.objs:
            raise errors.AlreadyExistsError(message="exists")
        self.objs[name] = copy.deepcopy(dict(body))
        return self.objs[name]

    async def get(self, resource: Any, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        return self.objs[name]

    async def update(self, resource: Any, body: Mapping[str, Any], *, namespace: str | None = None) -> dict[str, Any]:
        self.objs[body["metadata"]["name"]] = copy.deepcopy(dict(body))
        return self.objs[body["metadata"]["name"]]

    async def delete(self, resource: Any, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        if name not in self.objs:
            raise errors.NotFoundError(message="gone")
        return self.objs.pop(name)


def test_writer_probes_collisions_and_reuses_equal_data() -> None:
    client = FakeClient()
    writer = h.RevisionWriter(client)
    data = h.template_patch(DS)
    rev = h.new_revision(DS, data=data, revision=1, collision_count=0, api_version="apps/v1", kind="StatefulSet")

    async def go() -> None:
        created, count = await writer.create(DS, rev, 0)
        assert count == 0 and created["metadata"]["name"] == f"web-{h.hash_revision(data, 0)}"
        again, count = await writer.create(DS, rev, 0)  # equal data under that name: reuse it
        assert count == 0 and again is created
        # another revision whose name collides: the writer bumps the count
        other = copy.deepcopy(rev)
        other["data"] = {"spec": {"template": {"x": 1}}}
        client.objs[f"web-{h.hash_revision(other['data'], 0)}"] = copy.deepcopy(rev)
        made, count = await writer.create(DS, other, 0)
        assert count == 1 and made["metadata"]["name"] == f"web-{h.hash_revision(other['data'], 1)}"
        renumbered = await writer.update_number(made, 5)
        assert renumbered["revision"] == 5
        await writer.delete(made)
        await writer.delete(made)  # already gone: fine
    asyncio.run(go())
