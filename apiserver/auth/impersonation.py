"""``Impersonate-User`` / ``-Group`` / ``-Uid`` / ``-Extra-*`` headers (after apiserver's WithImpersonation).

Data flow: the authenticated user + the request's headers -> one ``impersonate`` check per thing
asked for (users or serviceaccounts, groups, uids and userextras/<key> in authentication.k8s.io),
each a 403 with Kubernetes' message when the authorizer does not allow it -> the impersonated
user: a ServiceAccount's fixed groups when no group was asked for, and ``system:authenticated``
added when neither it nor ``system:unauthenticated`` was asked for (not for system:anonymous).
``kubectl --as``/``--as-group`` send these headers.
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import unquote

from machinery import errors
from machinery.userinfo import (
    ANONYMOUS, AUTHENTICATED, SERVICEACCOUNT_USER_PREFIX, SERVICEACCOUNTS_GROUP, UNAUTHENTICATED, UserInfo,
)

from .attributes import Attributes
from .authorizer import Authorizer, Decision
from .errors import forbidden_status

EXTRA_PREFIX = b"impersonate-extra-"


def _headers(scope: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers") or []
            if k.lower().startswith(b"impersonate-")]


def impersonate(user: UserInfo, scope: Mapping[str, Any], authorizer: Authorizer) -> UserInfo:
    headers = _headers(scope)
    if not headers:
        return user
    name = next((v for k, v in headers if k == "impersonate-user"), "")
    groups = [v for k, v in headers if k == "impersonate-group"]
    uid = next((v for k, v in headers if k == "impersonate-uid"), "")
    extra: dict[str, list[str]] = {}
    for k, v in headers:
        if k.startswith(EXTRA_PREFIX.decode()):
            extra.setdefault(unquote(k[len(EXTRA_PREFIX):]), []).append(v)
    if not name and (groups or extra or uid):
        raise errors.BadRequestError(message="requested impersonation of groups, extra or uid without impersonating "
                                             "a user")
    if not name:
        return user

    def check(a: Attributes) -> None:
        decision, reason = authorizer.authorize(a)
        if decision is not Decision.ALLOW:
            raise forbidden_status(a, reason)

    def attrs(resource: str, target: str, *, group: str = "", namespace: str = "", sub: str = "") -> Attributes:
        return Attributes(user=user, verb="impersonate", resource_request=True, path="", api_group=group,
                          namespace=namespace, resource=resource, subresource=sub, name=target)

    new_groups: list[str] = []
    sa = name[len(SERVICEACCOUNT_USER_PREFIX):].split(":") if name.startswith(SERVICEACCOUNT_USER_PREFIX) else []
    if len(sa) == 2 and all(sa):
        check(attrs("serviceaccounts", sa[1], namespace=sa[0]))
        if not groups:
            new_groups = [SERVICEACCOUNTS_GROUP, f"{SERVICEACCOUNTS_GROUP}:{sa[0]}"]
    else:
        check(attrs("users", name))
    for g in groups:
        check(attrs("groups", g))
        new_groups.append(g)
    for key, values in extra.items():
        for value in values:
            check(attrs("userextras", value, group="authentication.k8s.io", sub=key))
    if uid:
        check(attrs("uids", uid, group="authentication.k8s.io"))
    if not groups and name != ANONYMOUS and AUTHENTICATED not in new_groups and UNAUTHENTICATED not in new_groups:
        new_groups.append(AUTHENTICATED)
    return UserInfo(name=name, uid=uid, groups=tuple(new_groups), extra={k: tuple(v) for k, v in extra.items()})


__all__ = ["impersonate"]
