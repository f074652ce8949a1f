"""The authorizer chain of ``--authorization-mode``: ``build_authorizer("Node,RBAC", registry)``.

Data flow: the mode list (comma separated, in order: AlwaysAllow, AlwaysDeny, Node, RBAC) ->
``Union`` of the authorizers, preceded by Kubernetes' privileged-group rule (``system:masters``
is always allowed, whatever the modes) -> one synchronous decision per request. Node and RBAC
read the registry's watch caches through ``RegistrySnapshots`` (no I/O per decision).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from machinery.userinfo import SYSTEM_MASTERS

from .attributes import Attributes
from .authorizer import AlwaysAllow, Authorizer, Decision, Union
from .node import NodeAuthorizer
from .rbac import RBACAuthorizer

if TYPE_CHECKING:
    from ..registry import Registry

MODES = ("AlwaysAllow", "AlwaysDeny", "Node", "RBAC")


class RegistrySnapshots:
    """``rbac.Snapshots`` over the registry's watch caches (a resource it does not serve is empty)."""

    def __init__(self, registry: "Registry") -> None:
        self.registry = registry

    def revision(self, group_resource: str) -> int:
        cache = self.registry.caches.get(group_resource)
        return cache.revision if cache is not None else 0

    def objects(self, group_resource: str) -> Iterable[Mapping[str, Any]]:
        cache = self.registry.caches.get(group_resource)
        return [e.obj for e in cache.objects.values()] if cache is not None else []


class PrivilegedGroups:
    """authorizerfactory.NewPrivilegedGroups(system:masters): allow, or no opinion."""

    def __init__(self, *groups: str) -> None:
        self.groups = frozenset(groups)

    def authorize(self, a: Attributes) -> tuple[Decision, str]:
        if self.groups.intersection(a.user.groups):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""


class AlwaysDeny:
    def authorize(self, a: Attributes) -> tuple[Decision, str]:
        return Decision.NO_OPINION, "Everything is forbidden."


def parse_modes(modes: str) -> list[str]:
    """The modes in order; ValueError for an unknown or repeated one (as kube-apiserver refuses to start)."""
    out = [m.strip() for m in modes.split(",") if m.strip()]
    if not out:
        raise ValueError("at least one authorization-mode must be passed")
    for m in out:
        if m not in MODES:
            raise ValueError(f"authorization-mode {m!r} is not a valid mode (one of {', '.join(MODES)})")
    if len(set(out)) != len(out):
        raise ValueError(f"authorization-mode {modes!r} has mode specified more than once")
    return out


def build_authorizer(modes: str, registry: "Registry") -> Union:
    snapshots = RegistrySnapshots(registry)
    chain: list[Authorizer] = [PrivilegedGroups(SYSTEM_MASTERS)]
    for mode in parse_modes(modes):
        if mode == "AlwaysAllow":
            chain.append(AlwaysAllow())
        elif mode == "AlwaysDeny":
            chain.append(AlwaysDeny())
        elif mode == "Node":
            chain.append(NodeAuthorizer(snapshots))
        else:
            chain.append(RBACAuthorizer(snapshots))
    return Union(chain)


def rbac_of(authorizer: Authorizer) -> RBACAuthorizer | None:
    """The RBAC authorizer of a chain (SelfSubjectRulesReview asks it for the rules)."""
    if isinstance(authorizer, RBACAuthorizer):
        return authorizer
    for a in getattr(authorizer, "authorizers", ()):
        if isinstance(a, RBACAuthorizer):
            return a
    return None
