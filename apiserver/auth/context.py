"""The identity of the request being served, for code deep in the call (admission, SelfSubject*Review).

The secure port's middleware sets ``current_user`` before the handler runs (a ContextVar: each
request task sees its own). Unset means the plain-HTTP test port or a call from inside the API
server (bootstrap, controllers in process): ``request_user()`` is then the insecure superuser.
"""

from __future__ import annotations

from contextvars import ContextVar

from machinery.userinfo import INSECURE_SUPERUSER, UserInfo

current_user: ContextVar[UserInfo | None] = ContextVar("minik8s_current_user", default=None)


def request_user() -> UserInfo:
    return current_user.get() or INSECURE_SUPERUSER


# The request's audit annotations (Kubernetes' auditAnnotations: pod-security.kubernetes.io/
# audit-violations, ...): the audit middleware sets the dict it logs (scope["state"]
# ["audit_annotations"]) before the handler runs; admission adds to it. Unset: nothing is logged.
audit_annotations: ContextVar[dict[str, str] | None] = ContextVar("minik8s_audit_annotations", default=None)


def add_audit_annotation(key: str, value: str) -> None:
    annotations = audit_annotations.get()
    if annotations is not None:
        annotations[key] = value
