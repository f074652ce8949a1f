"""The review APIs: create-only kinds answered at once and never stored.

authentication.k8s.io/v1: ``TokenReview`` (the authenticator's verdict on ``spec.token`` for
``spec.audiences``, by default the API audiences: kubelets and webhooks ask it) and
``SelfSubjectReview`` (the caller's own UserInfo: ``kubectl auth whoami``). authorization.k8s.io/v1:
``SubjectAccessReview`` (any user, cluster-wide), ``LocalSubjectAccessReview`` (one namespace),
``SelfSubjectAccessReview`` (the caller: ``kubectl auth can-i``) and ``SelfSubjectRulesReview``
(the caller's rules in a namespace: ``kubectl auth can-i --list``).

Data flow: the decoded body (JSON, YAML or kubectl's protobuf) -> Kubernetes' validation (422
Invalid with field causes, 400 for a namespace mismatch) -> ``Attributes`` -> the authorizer
chain (``Decision`` -> ``status.allowed``, ``status.denied``, ``status.reason``) or the
authenticator -> 201 with the object and its ``status``. The caller is ``context.request_user()``:
the secure port's user, or INSECURE_SUPERUSER on the plain-HTTP port and in process.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from machinery import errors
from machinery.errors import StatusCause
from machinery.userinfo import SYSTEM_MASTERS, UserInfo

from .auth.attributes import Attributes
from .auth.authn import Authenticator
from .auth.authorizer import AlwaysAllow, Authorizer, Decision
from .auth.context import request_user
from .auth.errors import AuthenticationError
from .resources import Resource

Obj = dict[str, Any]
AUTHN, AUTHZ = "authentication.k8s.io", "authorization.k8s.io"
KINDS = {(AUTHN, "tokenreviews"), (AUTHN, "selfsubjectreviews"), (AUTHZ, "subjectaccessreviews"),
         (AUTHZ, "localsubjectaccessreviews"), (AUTHZ, "selfsubjectaccessreviews"),
         (AUTHZ, "selfsubjectrulesreviews")}
WILDCARD_RULES = ([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                  [{"verbs": ["*"], "nonResourceURLs": ["*"]}])


def is_review(res: Resource) -> bool:
    return (res.group, res.plural) in KINDS


# ------------------------------------------------------------------------------ pure parts
def _check_type(res: Resource, body: Any) -> Obj:
    if not isinstance(body, dict):
        raise errors.BadRequestError(message=f"the body of the request was in an unknown format: "
                                             f"expected a {res.kind}")
    if body.get("kind") not in (None, "", res.kind):
        raise errors.BadRequestError(message=f'the kind in the data ({body.get("kind")}) does not match the expected '
                                             f"kind ({res.kind})")
    if body.get("apiVersion") not in (None, "", res.api_version):
        raise errors.BadRequestError(message=f'the API version in the data ({body.get("apiVersion")}) does not match '
                                             f"the expected API version ({res.api_version})")
    for part in ("metadata", "spec"):
        if body.get(part) is not None and not isinstance(body.get(part), dict):
            raise errors.BadRequestError(message=f"{res.kind}.{part} must be an object")
    return body


def _answer(res: Resource, body: Obj, status: Obj, *, spec: Obj | None = None) -> Obj:
    meta = dict(body.get("metadata") or {})
    meta.setdefault("creationTimestamp", None)
    out: Obj = {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}
    if spec is not None:
        out["spec"] = spec
    out["status"] = status
    return out


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _extra(value: Any) -> dict[str, tuple[str, ...]]:
    """``{key: [values]}``; protobuf bodies decode ExtraValue as ``{"items": [...]}``."""
    if not isinstance(value, dict):
        return {}
    return {str(k): _strings(v.get("items") if isinstance(v, dict) else v) for k, v in value.items()}


def _text(obj: Mapping[str, Any], name: str, path: str, causes: list[StatusCause]) -> str:
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        causes.append(StatusCause("FieldValueInvalid", "Invalid value: must be a string", f"{path}.{name}"))
        return ""
    return value


def attributes_from_spec(spec: Mapping[str, Any], user: UserInfo, causes: list[StatusCause]) -> Attributes:
    """Kubernetes' AuthorizationAttributesFrom (with ValidateSubjectAccessReviewSpec's shape rules)."""
    resource = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if resource is not None and non_resource is not None:
        causes.append(StatusCause("FieldValueInvalid", "Invalid value: cannot be specified in combination with "
                                  "resourceAttributes", "spec.nonResourceAttributes"))
    if resource is None and non_resource is None:
        causes.append(StatusCause("FieldValueInvalid", 'Invalid value: "null": exactly one of nonResourceAttributes '
                                  "or resourceAttributes must be specified", "spec.resourceAttributes"))
    if isinstance(resource, dict):
        path = "spec.resourceAttributes"
        return Attributes(user=user, verb=_text(resource, "verb", path, causes), resource_request=True, path="",
                          api_group=_text(resource, "group", path, causes),
                          api_version=_text(resource, "version", path, causes),
                          namespace=_text(resource, "namespace", path, causes),
                          resource=_text(resource, "resource", path, causes),
                          subresource=_text(resource, "subresource", path, causes),
                          name=_text(resource, "name", path, causes))
    if isinstance(non_resource, dict):
        path = "spec.nonResourceAttributes"
        return Attributes(user=user, verb=_text(non_resource, "verb", path, causes), resource_request=False,
                          path=_text(non_resource, "path", path, causes))
    for name, value in (("resourceAttributes", resource), ("nonResourceAttributes", non_resource)):
        if value is not None and not isinstance(value, dict):
            causes.append(StatusCause("FieldValueInvalid", "Invalid value: must be an object", f"spec.{name}"))
    return Attributes(user=user, verb="", resource_request=False, path="")


def access_status(decision: Decision, reason: str) -> Obj:
    status: Obj = {"allowed": decision is Decision.ALLOW}
    if decision is Decision.DENY:
        status["denied"] = True
    if reason:
        status["reason"] = reason
    return status


def rules_of(authorizer: Authorizer, user: UserInfo, namespace: str) -> tuple[list[Obj], list[Obj], bool]:
    """The rules of every authorizer in the chain that can list them (Kubernetes' RuleResolver union)."""
    chain = list(getattr(authorizer, "authorizers", [authorizer]))
    resource: list[Obj] = []
    non_resource: list[Obj] = []
    incomplete = False
    if SYSTEM_MASTERS in user.groups or any(isinstance(a, AlwaysAllow) for a in chain):
        resource, non_resource = [dict(r) for r in WILDCARD_RULES[0]], [dict(r) for r in WILDCARD_RULES[1]]
    for authz in chain:
        rules_for = getattr(authz, "rules_for", None)
        if rules_for is None:
            continue
        r, n, inc = rules_for(user, namespace)
        resource.extend(r)
        non_resource.extend(n)
        incomplete = incomplete or bool(inc)
    return resource, non_resource, incomplete


# ------------------------------------------------------------------------------ the handlers
class Reviews:
    def __init__(self, *, authenticator: Authenticator, authorizer: Authorizer) -> None:
        self.authenticator = authenticator
        self.authorizer = authorizer

    async def create(self, res: Resource, namespace: str | None, raw: Any) -> Obj:
        body = _check_type(res, raw)
        spec = dict(body.get("spec") or {})
        if res.plural == "tokenreviews":
            return await self._token_review(res, body, spec)
        if res.plural == "selfsubjectreviews":
            meta = {**(body.get("metadata") or {}),
                    "creationTimestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
            return _answer(res, {"metadata": meta}, {"userInfo": request_user().to_api()})
        if res.plural == "selfsubjectrulesreviews":
            ns = spec.get("namespace")
            if ns is not None and not isinstance(ns, str):
                raise errors.invalid(res.kind, "", [StatusCause("FieldValueInvalid", "Invalid value: must be a "
                                                                "string", "spec.namespace")], group=res.group)
            resource, non_resource, incomplete = rules_of(self.authorizer, request_user(), ns or "")
            return _answer(res, body, {"resourceRules": resource, "nonResourceRules": non_resource,
                                       "incomplete": incomplete}, spec=spec)
        return self._access_review(res, namespace, body, spec)

    async def _token_review(self, res: Resource, body: Obj, spec: Obj) -> Obj:
        token = spec.get("token")
        if not isinstance(token, str) or not token:
            raise errors.BadRequestError(message="token is required for TokenReview in authentication")
        audiences = _strings(spec.get("audiences"))
        status: Obj = {"user": {}}
        try:
            found = await self.authenticator.authenticate_token(token, audiences)
            if found is None:
                status["error"] = "invalid bearer token"
            else:
                status = {"authenticated": True, "user": found[0].to_api(), "audiences": found[1]}
        except AuthenticationError as e:
            status["error"] = str(e)
        return _answer(res, body, status, spec=spec)

    def _access_review(self, res: Resource, namespace: str | None, body: Obj, spec: Obj) -> Obj:
        causes: list[StatusCause] = []
        if res.plural in ("selfsubjectaccessreviews",):
            user = request_user()
        else:
            user = UserInfo(name=_text(spec, "user", "spec", causes), uid=_text(spec, "uid", "spec", causes),
                            groups=_strings(spec.get("groups")), extra=_extra(spec.get("extra")))
            if not user.name and not user.groups:
                causes.append(StatusCause("FieldValueInvalid", 'Invalid value: "": at least one of user or group '
                                          "must be specified", "spec.user"))
        attrs = attributes_from_spec(spec, user, causes)
        if res.plural == "localsubjectaccessreviews":
            self._check_local(body, spec, namespace or "", attrs, causes)
            body = {**body, "metadata": {**(body.get("metadata") or {}), "namespace": namespace}}
        if causes:
            raise errors.invalid(res.kind, "", causes, group=res.group)
        decision, reason = self.authorizer.authorize(attrs)
        return _answer(res, body, access_status(decision, reason), spec=spec)

    @staticmethod
    def _check_local(body: Obj, spec: Obj, namespace: str, attrs: Attributes, causes: list[StatusCause]) -> None:
        meta_ns = (body.get("metadata") or {}).get("namespace")
        if meta_ns not in (None, "", namespace):
            raise errors.BadRequestError(message="the namespace of the provided object does not match the namespace "
                                                 "sent on the request")
        if spec.get("nonResourceAttributes") is not None:
            causes.append(StatusCause("FieldValueInvalid", "Invalid value: disallowed on this kind of request",
                                      "spec.nonResourceAttributes"))
        if attrs.resource_request and attrs.namespace != namespace:
            causes.append(StatusCause("FieldValueInvalid", f'Invalid value: "{attrs.namespace}": must match '
                                      "metadata.namespace", "spec.resourceAttributes.namespace"))


__all__ = ["Reviews", "access_status", "attributes_from_spec", "is_review", "rules_of"]
