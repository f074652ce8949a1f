"""The CRD controller's naming decision (Kubernetes' NamingConditionController), as a pure table.

``accepted_names(crd, group_crds)`` -> (status.acceptedNames, NamesAccepted condition); the
end-to-end behaviour (conditions written, serving, re-looking once names are freed) is in
``tests/e2e/test_crd.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.crdcontroller import accepted_names, group_of

G = "stable.example.com"


def crd(plural: str, kind: str, *, short: list[str] | None = None, list_kind: str | None = None,
        categories: list[str] | None = None, accepted: dict[str, Any] | None = None) -> dict[str, Any]:
    names: dict[str, Any] = {"plural": plural, "singular": plural.rstrip("s"), "kind": kind,
                             "listKind": list_kind or f"{kind}List"}
    if short:
        names["shortNames"] = short
    if categories:
        names["categories"] = categories
    obj: dict[str, Any] = {"metadata": {"name": f"{plural}.{G}"}, "spec": {"group": G, "names": names}}
    if accepted is not None:
        obj["status"] = {"acceptedNames": accepted}
    return obj


def accepted(c: dict[str, Any]) -> dict[str, Any]:
    """A CRD whose requested names are all accepted."""
    return {**c, "status": {"acceptedNames": dict(c["spec"]["names"])}}


CRONTABS = accepted(crd("crontabs", "CronTab", short=["ct"]))


@pytest.mark.parametrize("new,condition,names", [
    # nothing else in the group: everything accepted
    (crd("widgets", "Widget", short=["w"], categories=["all"]), ("True", "NoConflicts", "no conflicts found"),
     {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["w"],
      "categories": ["all"]}),
    # kind and listKind taken: the last check (listKind) names the conflict; the free names are accepted
    (crd("crontables", "CronTab"), ("False", "ListKindConflict", '"CronTabList" is already in use'),
     {"plural": "crontables", "singular": "crontable", "kind": ""}),
    (crd("crontables", "CronTab", list_kind="CronTables"), ("False", "KindConflict", '"CronTab" is already in use'),
     {"plural": "crontables", "singular": "crontable", "kind": "", "listKind": "CronTables"}),
    # a short name taken
    (crd("crontubs", "CronTub", short=["ct", "cu"]), ("False", "ShortNamesConflict", '"ct" is already in use'),
     {"plural": "crontubs", "singular": "crontub", "kind": "CronTub", "listKind": "CronTubList"}),
    # a singular that is another CRD's plural (resources share one set of names)
    ({**crd("crontabz", "CronTabz"), "spec": {"group": G, "names": {
        "plural": "crontabz", "singular": "crontabs", "kind": "CronTabz", "listKind": "CronTabzList"}}},
     ("False", "SingularConflict", '"crontabs" is already in use'),
     {"plural": "crontabz", "kind": "CronTabz", "listKind": "CronTabzList"}),
    # a kind that equals another CRD's plural is fine: kinds and resources are different sets
    (crd("things", "crontabs"), ("True", "NoConflicts", "no conflicts found"),
     {"plural": "things", "singular": "thing", "kind": "crontabs", "listKind": "crontabsList"}),
])
def test_accepted_names(new: dict[str, Any], condition: tuple[str, str, str], names: dict[str, Any]) -> None:
    got_names, got_condition = accepted_names(new, [CRONTABS, new])
    assert got_condition == condition
    assert got_names == names


def test_a_crd_keeps_its_own_names_and_adds_free_ones() -> None:
    changed = accepted(crd("crontabs", "CronTab", short=["ct"]))
    changed["spec"]["names"]["shortNames"] = ["ct", "cron"]
    names, condition = accepted_names(changed, [changed])
    assert condition == ("True", "NoConflicts", "no conflicts found")
    assert names["shortNames"] == ["ct", "cron"]


def test_an_established_crd_keeps_its_old_names_when_new_ones_conflict() -> None:
    other = accepted(crd("widgets", "Widget", short=["w"]))
    changed = accepted(crd("crontabs", "CronTab", short=["ct"]))
    changed["spec"]["names"]["shortNames"] = ["w"]
    names, condition = accepted_names(changed, [other, changed])
    assert condition == ("False", "ShortNamesConflict", '"w" is already in use')
    assert names["shortNames"] == ["ct"]  # still served as ct


def test_several_short_names_taken_are_listed_together() -> None:
    other = accepted(crd("widgets", "Widget", short=["w", "wd"]))
    new = crd("gadgets", "Gadget", short=["w", "wd", "g"])
    _, condition = accepted_names(new, [other, new])
    assert condition == ("False", "ShortNamesConflict", '["w" is already in use, "wd" is already in use]')


def test_the_name_of_a_crd_tells_its_group() -> None:
    assert group_of(f"crontabs.{G}") == G
    assert group_of("widgets.example") == "example"
