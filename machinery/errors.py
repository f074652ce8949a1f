"""Typed API errors and their wire form, the Kubernetes ``Status`` object.

Data flow: storage raises these (NotFound, AlreadyExists, Conflict, Gone) -> the apiserver turns
any ``ApiError`` into a ``Status`` response in one exception handler -> the client reads a
``Status`` body back into the same class with ``ApiError.from_status``. Components catch these
classes only, never httpx or etcd exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class StatusCause:
    """One field-level reason of an ``Invalid`` error (``details.causes[]`` on the wire)."""

    reason: str  # FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, FieldValueDuplicate, ...
    message: str
    field: str

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass
class ApiError(Exception):
    """An API error that maps 1:1 onto a Kubernetes ``Status`` with ``status: Failure``."""

    message: str
    name: str | None = None
    group: str | None = None
    kind: str | None = None
    causes: list[StatusCause] = field(default_factory=list)
    retry_after_seconds: int | None = None

    code: ClassVar[int] = 500
    reason: ClassVar[str] = "InternalError"

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        details: dict[str, Any] = {}
        if self.name is not None:
            details["name"] = self.name
        if self.group:  # omitted for the core group, as Kubernetes does (omitempty)
            details["group"] = self.group
        if self.kind is not None:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after_seconds is not None:
            details["retryAfterSeconds"] = self.retry_after_seconds
        # A NotFound always carries details (clients such as kubectl debug read details.name).
        if details or self.reason == "NotFound":
            status["details"] = details
        # Last, as Kubernetes' metav1.Status serializes its fields (details before code): clients
        # compare the body as text (the official client's FailToCreateError messages, say).
        status["code"] = self.code
        return status

    @staticmethod
    def from_status(status: dict[str, Any], http_code: int | None = None) -> "ApiError":
        """Rebuild the typed error from a ``Status`` body (or a bare HTTP code)."""
        reason = str(status.get("reason") or "")
        code = int(status.get("code") or http_code or 500)
        details = status.get("details") or {}
        causes = [
            StatusCause(reason=c.get("reason", ""), message=c.get("message", ""), field=c.get("field", ""))
            for c in details.get("causes") or []
        ]
        cls = _BY_REASON.get(reason) or _BY_CODE.get(code) or ApiError
        err = cls(
            message=str(status.get("message") or reason or f"HTTP {code}"),
            name=details.get("name"),
            group=details.get("group"),
            kind=details.get("kind"),
            causes=causes,
            retry_after_seconds=details.get("retryAfterSeconds"),
        )
        return err


def qualified_kind(resource: str, group: str) -> str:
    """``pods`` / ``deployments.apps``: how Kubernetes names a resource in error messages."""
    return f"{resource}.{group}" if group else resource


class BadRequestError(ApiError):
    code, reason = 400, "BadRequest"


class UnauthorizedError(ApiError):
    code, reason = 401, "Unauthorized"


class ForbiddenError(ApiError):
    code, reason = 403, "Forbidden"


class NotFoundError(ApiError):
    code, reason = 404, "NotFound"


class MethodNotAllowedError(ApiError):
    code, reason = 405, "MethodNotAllowed"


class NotAcceptableError(ApiError):
    code, reason = 406, "NotAcceptable"


class AlreadyExistsError(ApiError):
    code, reason = 409, "AlreadyExists"


class ConflictError(ApiError):
    code, reason = 409, "Conflict"


class GoneError(ApiError):
    """The requested resourceVersion is older than the retained history (etcd compacted it)."""

    code, reason = 410, "Expired"


class RequestEntityTooLargeError(ApiError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaTypeError(ApiError):
    code, reason = 415, "UnsupportedMediaType"


class InvalidError(ApiError):
    code, reason = 422, "Invalid"


class TooManyRequestsError(ApiError):
    code, reason = 429, "TooManyRequests"


class InternalError(ApiError):
    code, reason = 500, "InternalError"


class ServiceUnavailableError(ApiError):
    code, reason = 503, "ServiceUnavailable"


class TimeoutError_(ApiError):
    code, reason = 504, "Timeout"


_ALL: list[type[ApiError]] = [
    BadRequestError, UnauthorizedError, ForbiddenError, NotFoundError, MethodNotAllowedError,
    NotAcceptableError, AlreadyExistsError, ConflictError, GoneError, RequestEntityTooLargeError,
    UnsupportedMediaTypeError, InvalidError, TooManyRequestsError, InternalError,
    ServiceUnavailableError, TimeoutError_,
]
_BY_REASON: dict[str, type[ApiError]] = {c.reason: c for c in _ALL}
_BY_REASON["Gone"] = GoneError
_BY_CODE: dict[int, type[ApiError]] = {}
for _c in _ALL:
    _BY_CODE.setdefault(_c.code, _c)


def invalid(kind: str, name: str, causes: list[StatusCause], *, group: str = "") -> InvalidError:
    """The 422 Kubernetes answers for a rejected object, message shaped like its own."""
    what = f"{kind}.{group}" if group else kind
    joined = ", ".join(str(c) for c in causes)
    message = f'{what} "{name}" is invalid: ' + (f"[{joined}]" if len(causes) > 1 else joined)
    return InvalidError(message=message, name=name, group=group, kind=kind, causes=causes)
