"""The audit log: one audit.k8s.io/v1 ``Event`` per request and stage, one JSON object per line.

After k8s.io/apiserver pkg/audit (request.go, format) and endpoints/filters/audit.go. Data flow:
``audit_middleware`` is the outermost ASGI layer of each listener -> a request gets its auditID
(the client's ``Audit-ID`` header, else a new UUID; sent back as the ``Audit-ID`` response
header) and its received timestamp -> the inner layers run; the authentication middleware leaves
``scope["state"]["user"]`` and ``["attributes"]`` (the plain-HTTP port: the insecure superuser)
-> when the response starts, the policy (``auditpolicy``) gives the level and omitted stages from
the attributes (computed here from the path when the request never got that far, as a 401)
-> events are built at ResponseStarted (long-running requests only: watches, exec, attach,
port-forward, logs, proxy) and ResponseComplete, serialized once, and handed to an ``AuditWriter``
thread that appends them in batches, so the event loop never waits on the disk.

Request and RequestResponse levels add the JSON request and response bodies (never for Secrets,
ConfigMaps and TokenReviews: ``auditpolicy.capped_level``); a failed response's Status gives
``responseStatus`` its status, reason and message, as Kubernetes logs them.
"""

from __future__ import annotations

import atexit
import logging
import queue
import random
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import IO, Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from machinery.userinfo import INSECURE_SUPERUSER, UserInfo

from .auditpolicy import LEVELS, Policy, capped_level, load_policy
from .auth import context
from .auth.attributes import Attributes, request_attributes

log = logging.getLogger(__name__)

LONG_RUNNING_VERBS = frozenset({"watch", "proxy"})
LONG_RUNNING_SUBRESOURCES = frozenset({"attach", "exec", "proxy", "log", "portforward"})
BODY_LIMIT = 1 << 20  # bodies beyond this are not logged (the event says so in an annotation)
STATUS_LIMIT = 64 << 10  # a failed response's Status is read when it is at most this long
BATCH_SECONDS = 0.05  # the writer thread's pause after the first event of a batch


_second: tuple[int, str] = (-1, "")


def timestamp(now: datetime | None = None) -> str:
    """metav1.MicroTime: RFC 3339 with microseconds, UTC (the second's text formatted once)."""
    global _second
    if now is not None:
        return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    t = time.time()
    sec = int(t)
    if _second[0] != sec:
        _second = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
    return f"{_second[1]}.{int((t - sec) * 1e6):06d}Z"


def new_audit_id() -> str:
    """A random (version 4) UUID without a getrandom() system call per request: not a secret."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


def long_running(a: Attributes) -> bool:
    return a.verb in LONG_RUNNING_VERBS or (a.resource_request and a.subresource in LONG_RUNNING_SUBRESOURCES)


def object_ref(a: Attributes) -> dict[str, str] | None:
    if not a.resource_request:
        return None
    ref = {"resource": a.resource, "namespace": a.namespace, "name": a.name, "apiGroup": a.api_group,
           "apiVersion": a.api_version, "subresource": a.subresource}
    return {k: v for k, v in ref.items() if v}


def response_status(code: int, body: bytes) -> dict[str, Any]:
    """``responseStatus``: the code, and for a failure the Status' status, message and reason."""
    out: dict[str, Any] = {"metadata": {}, "code": code}
    if code >= 400 and body:
        try:
            status = orjson.loads(body)
        except orjson.JSONDecodeError:
            return out
        if isinstance(status, dict) and status.get("kind") == "Status":
            for k in ("status", "message", "reason"):
                if status.get(k):
                    out[k] = status[k]
            if isinstance(status.get("details"), dict):
                out["details"] = status["details"]
    return out


def build_event(*, audit_id: str, stage: str, level: str, scope: Scope, a: Attributes, user: UserInfo | None,
                code: int, received: str, annotations: dict[str, str], error_body: bytes = b"",
                request_object: Any = None, response_object: Any = None) -> dict[str, Any]:
    """One audit.k8s.io/v1 Event, its fields in Kubernetes' order."""
    query = (scope.get("query_string") or b"").decode("latin-1")
    ev: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": audit_id, "stage": stage,
        "requestURI": (scope.get("path") or "/") + (f"?{query}" if query else ""), "verb": a.verb,
        "user": user.to_api() if user is not None else {},
        "sourceIPs": source_ips(scope),
    }
    agent = _header(scope, b"user-agent")
    if agent:
        ev["userAgent"] = agent
    ref = object_ref(a)
    if ref is not None:
        ev["objectRef"] = ref
    if code:
        ev["responseStatus"] = response_status(code, error_body)
    if request_object is not None:
        ev["requestObject"] = request_object
    if response_object is not None:
        ev["responseObject"] = response_object
    ev["requestReceivedTimestamp"] = received
    ev["stageTimestamp"] = timestamp()
    if annotations:
        ev["annotations"] = annotations
    return ev


def _header(scope: Scope, name: bytes) -> str:
    for k, v in scope.get("headers") or []:
        if k.lower() == name:
            return str(v.decode("latin-1"))
    return ""


def source_ips(scope: Scope) -> list[str]:
    """X-Forwarded-For, then X-Real-Ip, then the peer, without repeats (as Kubernetes' SourceIPs)."""
    ips = [ip.strip() for ip in _header(scope, b"x-forwarded-for").split(",") if ip.strip()]
    real = _header(scope, b"x-real-ip").strip()
    client = scope.get("client")
    for ip in (real, client[0] if client else ""):
        if ip and ip not in ips:
            ips.append(ip)
    return ips


def _json_body(body: bytes, *, truncated: bool) -> Any:
    if not body or truncated:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None  # protobuf, YAML or a stream: not logged as an object


# ------------------------------------------------------------------------------ the writer
class AuditWriter:
    """Appends serialized events from a daemon thread, in batches; ``-`` writes to stdout."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stream: IO[bytes] = sys.stdout.buffer if path == "-" else open(path, "ab")  # noqa: SIM115
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._flushed = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name=f"audit-writer {path}", daemon=True)
        self._thread.start()

    def write(self, line: bytes) -> None:
        with self._flushed:
            self._pending += 1
        self._queue.put(line)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            time.sleep(BATCH_SECONDS)  # gather what else arrives: one write and one wake-up per batch
            batch = [item]
            while len(batch) < 4096:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            lines = [b for b in batch if b is not None]
            try:
                self._stream.write(b"".join(lines))
                self._stream.flush()
            except (OSError, ValueError) as e:  # a full disk or a closed stdout loses events, never requests
                log.error("cannot write the audit log %s: %s", self.path, e)
            with self._flushed:
                self._pending -= len(lines)
                self._flushed.notify_all()
            if None in batch:
                return

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every event written so far is on disk (tests, shutdown)."""
        with self._flushed:
            return self._flushed.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        self.flush()
        self._queue.put(None)
        self._thread.join(5)
        if self.path != "-":
            self._stream.close()


_writers: dict[str, AuditWriter] = {}
_writers_lock = threading.Lock()


def writer_for(path: str) -> AuditWriter:
    """One writer per file, shared by both listeners (whole lines, never interleaved)."""
    with _writers_lock:
        if path not in _writers:
            _writers[path] = AuditWriter(path)
        return _writers[path]


@atexit.register
def _flush_all() -> None:
    for w in list(_writers.values()):
        w.flush(2.0)


# ------------------------------------------------------------------------------ the middleware
class _Request:
    """What one request's events need, gathered as it is served."""

    def __init__(self, scope: Scope, audit_id: str, policy: Policy) -> None:
        self.scope, self.audit_id, self.policy = scope, audit_id, policy
        self.received = timestamp()
        self.state: dict[str, Any] = scope.setdefault("state", {})
        self.code = 0
        self.level = ""
        self.omit: frozenset[str] = frozenset()
        self.attributes: Attributes | None = None
        self.request_body = bytearray()
        self.response_body = bytearray()
        self.request_truncated = self.response_truncated = False

    @property
    def user(self) -> UserInfo | None:
        user = self.state.get("user")
        if isinstance(user, UserInfo):
            return user
        # No identity left by the inner layers: refused (401, or a 403 of the authorizer), or an
        # in-process caller, who acts as the insecure superuser (``auth.context.request_user``).
        return None if self.code in (401, 403) else INSECURE_SUPERUSER

    def decide(self) -> None:
        """Level and stages, once the inner layers have identified the request."""
        if self.level:
            return
        a = self.state.get("attributes")
        if not isinstance(a, Attributes):
            scope = self.scope
            method = "GET" if scope["type"] == "websocket" else str(scope.get("method") or "GET")
            query = dict(parse_qsl((scope.get("query_string") or b"").decode("latin-1"), keep_blank_values=True))
            a = request_attributes(self.user or UserInfo(name=""), method, scope.get("path") or "/", query)
        self.attributes = a
        level, self.omit = self.policy.level_and_stages(a)
        self.level = capped_level(level, a)

    def annotations(self) -> dict[str, str]:
        out: dict[str, str] = {}
        extra = self.state.get("audit_annotations")
        if isinstance(extra, dict):
            out.update({str(k): str(v) for k, v in extra.items()})
        if "authorization.k8s.io/decision" not in out:
            authorized = isinstance(self.state.get("attributes"), Attributes)
            if authorized and self.state.get("user") is not INSECURE_SUPERUSER:
                out["authorization.k8s.io/decision"] = "allow"
            elif not authorized and self.code == 403 and self.state.get("user") is not INSECURE_SUPERUSER:
                out["authorization.k8s.io/decision"] = "forbid"
        if self.request_truncated or self.response_truncated:
            out["audit.minik8s.io/truncated"] = "body larger than 1 MiB not logged"
        return out

    def event(self, stage: str) -> bytes | None:
        self.decide()
        assert self.attributes is not None
        if self.level == "None" or stage in self.omit:
            return None
        with_request = LEVELS.index(self.level) >= 2 and stage != "RequestReceived"
        with_response = self.level == "RequestResponse" and stage == "ResponseComplete"
        ev = build_event(
            audit_id=self.audit_id, stage=stage, level=self.level, scope=self.scope, a=self.attributes,
            user=self.user, code=self.code if stage != "RequestReceived" else 0, received=self.received,
            annotations=self.annotations(), error_body=bytes(self.response_body) if self.code >= 400 else b"",
            request_object=_json_body(bytes(self.request_body), truncated=self.request_truncated) if with_request else None,
            response_object=_json_body(bytes(self.response_body), truncated=self.response_truncated) if with_response else None)
        return orjson.dumps(ev) + b"\n"


class _AuditMiddleware:
    def __init__(self, app: ASGIApp, *, writer: AuditWriter, policy: Policy) -> None:
        self.app, self.writer, self.policy = app, writer, policy

    def _emit(self, r: _Request, stage: str) -> None:
        try:
            line = r.event(stage)
        except Exception:  # noqa: BLE001 - auditing must never fail the request it describes
            log.exception("cannot build the audit event of %s", r.scope.get("path"))
            return
        if line is not None:
            self.writer.write(line)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        r = _Request(scope, _header(scope, b"audit-id") or new_audit_id(), self.policy)
        bodies = self.policy.logs_bodies
        started = False

        async def receive_wrapper() -> Message:
            message = await receive()
            if bodies and message.get("type") == "http.request" and not r.request_truncated:
                r.request_body += message.get("body", b"")
                if len(r.request_body) > BODY_LIMIT:
                    r.request_truncated, r.request_body = True, bytearray()
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            kind = message["type"]
            if kind in ("http.response.start", "websocket.accept", "websocket.http.response.start") and not started:
                started = True
                r.code = int(message.get("status") or (101 if kind == "websocket.accept" else 0))
                message = {**message, "headers": [*(message.get("headers") or []),
                                                  (b"audit-id", r.audit_id.encode("latin-1"))]}
                self._emit(r, "RequestReceived")
                if r.attributes is not None and long_running(r.attributes):
                    self._emit(r, "ResponseStarted")
            elif kind in ("http.response.body", "websocket.http.response.body"):
                keep = (r.code >= 400 and len(r.response_body) < STATUS_LIMIT) or \
                       (r.level == "RequestResponse" and r.attributes is not None and not long_running(r.attributes))
                if keep and not r.response_truncated:
                    r.response_body += message.get("body", b"")
                    if len(r.response_body) > BODY_LIMIT:
                        r.response_truncated, r.response_body = True, bytearray()
            await send(message)

        # Admission adds its annotations (Pod Security's audit violations) to this request's dict.
        annotations = context.audit_annotations.set(r.state.setdefault("audit_annotations", {}))
        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except BaseException:
            if not started:
                r.code = 500
            self._emit(r, "ResponseComplete" if started else "Panic")
            raise
        finally:
            context.audit_annotations.reset(annotations)
        if scope["type"] == "websocket" and not started:
            r.code = r.code or 403  # a handshake closed before it was accepted
        self._emit(r, "ResponseComplete")


def audit_middleware(app: ASGIApp, *, log_path: str, policy_file: str) -> ASGIApp:
    """Wrap a listener's app; a bad policy file raises ``auditpolicy.AuditPolicyError`` at start-up."""
    policy = load_policy(policy_file)
    return _AuditMiddleware(app, writer=writer_for(log_path), policy=policy)
