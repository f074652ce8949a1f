"""The authorizer interface: one decision per request, chained like ``--authorization-mode=Node,RBAC``.

Data flow: ``Attributes`` -> each authorizer of the chain in order -> the first ALLOW or DENY
wins; when all have no opinion the request is denied (403). Authorizers are synchronous and read
only in-memory state (the registry's watch caches), so one decision costs no I/O.

``Union`` also collects the reasons for the 403 message and the SubjectAccessReview status.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol, Sequence

from .attributes import Attributes


class Decision(Enum):
    ALLOW = "allow"
    DENY = "deny"
    NO_OPINION = "no-opinion"


class Authorizer(Protocol):
    def authorize(self, a: Attributes) -> tuple[Decision, str]:
        """The decision and a reason (shown in 403 messages and SubjectAccessReview status)."""
        ...


class AlwaysAllow:
    def authorize(self, a: Attributes) -> tuple[Decision, str]:
        return Decision.ALLOW, ""


class Union:
    def __init__(self, authorizers: Sequence[Authorizer]) -> None:
        self.authorizers = list(authorizers)

    def authorize(self, a: Attributes) -> tuple[Decision, str]:
        reasons = []
        for authz in self.authorizers:
            decision, reason = authz.authorize(a)
            if decision is not Decision.NO_OPINION:
                return decision, reason
            if reason:
                reasons.append(reason)
        return Decision.NO_OPINION, ", ".join(reasons)
