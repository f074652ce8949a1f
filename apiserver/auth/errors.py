"""The secure port's refusals: ``AuthenticationError`` (401) and ``forbidden_status`` (403).

``AuthenticationError`` is raised by the authenticators (token file, X.509, ServiceAccount JWT)
for credentials that were presented and are not valid; its message is what Kubernetes'
authenticator would say (a TokenReview shows it in ``status.error``); the 401 itself always says
only "Unauthorized". ``forbidden_status`` is Kubernetes' responsewriters.Forbidden: the 403's
message and details from the request's attributes and the authorizer's reason. Pure.
"""

from __future__ import annotations

from machinery import errors

from .attributes import Attributes


class AuthenticationError(Exception):
    pass


def forbidden_status(a: Attributes, reason: str) -> errors.ForbiddenError:
    """Kubernetes' responsewriters.Forbidden: the message and details of the 403."""
    user = a.user.name
    if not a.resource_request:
        text = f'User "{user}" cannot {a.verb} path "{a.path}"'
    elif a.namespace:
        text = (f'User "{user}" cannot {a.verb} resource "{a.resource_and_sub}" in API group "{a.api_group}" '
                f'in the namespace "{a.namespace}"')
    else:
        text = (f'User "{user}" cannot {a.verb} resource "{a.resource_and_sub}" in API group "{a.api_group}" '
                "at the cluster scope")
    if reason:
        text = f"{text}: {reason}"
    if not a.resource_request or not a.resource:
        return errors.ForbiddenError(message=f"forbidden: {text}")
    qualified = errors.qualified_kind(a.resource, a.api_group)
    if a.name:
        return errors.ForbiddenError(message=f'{qualified} "{a.name}" is forbidden: {text}', name=a.name,
                                     group=a.api_group, kind=a.resource)
    return errors.ForbiddenError(message=f"{qualified} is forbidden: {text}", group=a.api_group, kind=a.resource)


__all__ = ["AuthenticationError", "forbidden_status"]
