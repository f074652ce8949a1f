"""The WebSocket channel protocols of exec, attach and port-forward, both ends (pure, no I/O).

Kubernetes multiplexes a remote command's streams over one WebSocket by prefixing every message
with a channel number (``k8s.io/apimachinery/pkg/util/httpstream/wsstream``):

    binary protocols   message = bytes([channel]) + payload
    base64 protocols   text message = str(channel) + base64(payload)   ("1aGkK" is "hi\\n" on stdout)

Channels of exec and attach: 0 stdin, 1 stdout, 2 stderr, 3 error (the final status), 4 resize
(JSON ``{"Width": 80, "Height": 24}``); ``v5.channel.k8s.io`` adds 255 "close": the message
``[255, 0]`` from the client means "stdin is at its end" (how ``kubectl cp`` into a pod ends tar).

The error channel carries, once, how the command ended. From ``v4`` on it is a ``metav1.Status``
(``{"metadata": {}, "status": "Success"}``, or ``"Failure"`` with reason ``NonZeroExitCode`` and a
cause of type ``ExitCode`` whose message is the code: what kubectl turns into its own exit code).
The older protocols (``channel.k8s.io``, ``base64.channel.k8s.io``, v2, v3) carry only an error's
text, and nothing on success.

Port-forward over WebSocket (``portforward.k8s.io`` / ``v4.channel.k8s.io`` with ``?ports=A,B``,
what the official Python client speaks): port i gets data channel 2i and error channel 2i+1, and the
first message the server sends on each carries the port as two little-endian bytes. kubectl itself
forwards through ``SPDY/3.1+portforward.k8s.io`` (SPDY frames tunnelled in WebSocket messages), which
the kubelet's ``kubelet.streaming.spdy`` speaks.

Used by the kubelet's streaming server (``kubelet.streaming``), by ``mkctl exec|attach|cp|
port-forward`` and by the tests; the API server relays the messages unchanged.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from typing import Any, Mapping

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255  # v5: the client closes one of its channels (payload: the channel number)

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
V3 = "v3.channel.k8s.io"
V2 = "v2.channel.k8s.io"
V1 = "channel.k8s.io"
V1_BASE64 = "base64.channel.k8s.io"

# What a server of exec and attach accepts, best first (the client's order does not matter:
# Kubernetes picks the first of the client's offers that it knows, and the clients offer best first).
REMOTECOMMAND_PROTOCOLS = (V5, V4, V4_BASE64, V3, V2, V1, V1_BASE64)
# Port-forward over WebSocket: the SPDY tunnel kubectl uses, and the channel protocol of the
# Python client (which offers v4.channel.k8s.io; "portforward.k8s.io" is the same protocol's name).
SPDY_PORTFORWARD = "SPDY/3.1+portforward.k8s.io"
PORTFORWARD = "portforward.k8s.io"
PORTFORWARD_PROTOCOLS = (SPDY_PORTFORWARD, PORTFORWARD, V4, V4_BASE64, V1, V1_BASE64)

NON_ZERO_EXIT_CODE = "NonZeroExitCode"
EXIT_CODE_CAUSE = "ExitCode"


def choose_protocol(offered: list[str] | tuple[str, ...], supported: tuple[str, ...]) -> str | None:
    """The first protocol the client offered that the server speaks, or None (Kubernetes' rule).
    An empty offer is the unnamed binary protocol, which behaves as ``channel.k8s.io``: None
    here, and the caller then answers without a ``Sec-WebSocket-Protocol`` header."""
    for p in offered:
        p = p.strip()
        if p in supported:
            return p
    return None


def is_base64(protocol: str | None) -> bool:
    return bool(protocol) and "base64" in str(protocol)


def status_is_json(protocol: str | None) -> bool:
    """Whether the error channel carries a JSON Status (v4 and v5) rather than plain text."""
    return protocol in (V5, V4, V4_BASE64)


def supports_close(protocol: str | None) -> bool:
    return protocol == V5


def encode(protocol: str | None, channel: int, payload: bytes) -> bytes | str:
    """One WebSocket message: bytes for the binary protocols, text for the base64 ones."""
    if is_base64(protocol):
        return str(channel) + base64.b64encode(payload).decode("ascii")
    return bytes([channel]) + payload


class ProtocolError(ValueError):
    """A message that does not follow the channel protocol."""


def decode(protocol: str | None, message: bytes | str) -> tuple[int, bytes]:
    """(channel, payload) of one WebSocket message, read by the negotiated protocol, not by the
    frame's type (as Kubernetes does): the official Python client sends str stdin as text frames
    ("\\x00abc") on v4.channel.k8s.io, which are its UTF-8 bytes."""
    if isinstance(message, str) and not is_base64(protocol):
        message = message.encode("utf-8")
    if isinstance(message, str):
        if not message:
            raise ProtocolError("empty text message")
        if not message[0].isdigit():
            raise ProtocolError(f"text message does not start with a channel digit: {message[:10]!r}")
        try:
            return int(message[0]), base64.b64decode(message[1:].encode("ascii"), validate=False)
        except (ValueError, UnicodeEncodeError) as e:
            raise ProtocolError(f"bad base64 payload: {e}") from None
    if not message:
        raise ProtocolError("empty binary message")
    return message[0], bytes(message[1:])


def close_message(protocol: str | None, channel: int) -> bytes | str:
    """v5: the client's "this channel is at its end" (``[255, channel]``)."""
    return encode(protocol, CLOSE, bytes([channel]))


@dataclass(frozen=True)
class TerminalSize:
    width: int
    height: int


def encode_resize(size: TerminalSize) -> bytes:
    return json.dumps({"Width": size.width, "Height": size.height}).encode()


def decode_resize(payload: bytes) -> TerminalSize:
    """The resize channel's JSON (Go's TerminalSize: ``{"Width": W, "Height": H}``)."""
    try:
        doc = json.loads(payload)
        w, h = int(doc.get("Width", 0)), int(doc.get("Height", 0))
    except (ValueError, TypeError, AttributeError) as e:
        raise ProtocolError(f"bad resize message {payload[:80]!r}: {e}") from None
    if not (0 <= w < 65536 and 0 <= h < 65536):
        raise ProtocolError(f"terminal size out of range: {w}x{h}")
    return TerminalSize(w, h)


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int, command: list[str] | None = None) -> dict[str, Any]:
    """The status of a command that ended with ``code`` (the kubelet's exact shape for non-zero)."""
    if code == 0:
        return success_status()
    what = f"error executing command [{' '.join(command)}], exit code {code}" if command else f"exit code {code}"
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: {what}",
            "reason": NON_ZERO_EXIT_CODE,
            "details": {"causes": [{"reason": EXIT_CODE_CAUSE, "message": str(code)}]}}


def error_status(message: str, *, reason: str = "InternalError", code: int = 500) -> dict[str, Any]:
    """The status of a stream that failed before or instead of a command's exit."""
    return {"metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}


def status_payload(protocol: str | None, status: Mapping[str, Any]) -> bytes | None:
    """What the error channel carries for ``status``: JSON from v4 on; the message alone before
    (and nothing at all on success)."""
    if status_is_json(protocol):
        return json.dumps(status, separators=(",", ":")).encode()
    if status.get("status") == "Success":
        return None
    return str(status.get("message") or "error").encode()


def exit_code_of(protocol: str | None, payload: bytes | None) -> int:
    """A client's reading of the error channel: 0 on success, the command's exit code, or 1 for a
    failure that carries no code (the text of the older protocols, a Status without cause)."""
    if not payload:
        return 0
    if not status_is_json(protocol):
        return 1
    try:
        doc = json.loads(payload)
    except ValueError:
        return 1
    if not isinstance(doc, dict) or doc.get("status") == "Success":
        return 0
    for cause in (doc.get("details") or {}).get("causes") or []:
        # Go's StatusCause.Type is serialised as "reason"
        if isinstance(cause, dict) and cause.get("reason") == EXIT_CODE_CAUSE:
            try:
                return int(cause.get("message", "1"))
            except ValueError:
                return 1
    return 1


def status_message(protocol: str | None, payload: bytes | None) -> str:
    """The human message of the error channel's payload ("" on success)."""
    if not payload:
        return ""
    if not status_is_json(protocol):
        return payload.decode("utf-8", "replace")
    try:
        doc = json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")
    if isinstance(doc, dict) and doc.get("status") != "Success":
        return str(doc.get("message") or "")
    return ""


# ---------------------------------------------------------------- port-forward channel protocol


def portforward_channels(index: int) -> tuple[int, int]:
    """(data channel, error channel) of the index-th port of ``?ports=``."""
    return 2 * index, 2 * index + 1


def port_prefix(port: int) -> bytes:
    """The first message on each of a port's channels: the port, little-endian (uint16)."""
    return struct.pack("<H", port)


def parse_ports(raw: list[str] | str) -> list[int]:
    """``?ports=8080,9090`` (or the parameter repeated) -> [8080, 9090]; ProtocolError on junk."""
    values = [raw] if isinstance(raw, str) else list(raw)
    out: list[int] = []
    for v in values:
        for part in str(v).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                port = int(part)
            except ValueError:
                raise ProtocolError(f'invalid port "{part}"') from None
            if not 0 < port < 65536:
                raise ProtocolError(f"port {port} out of range 1-65535")
            out.append(port)
    return out


__all__ = [
    "CLOSE", "ERROR", "EXIT_CODE_CAUSE", "NON_ZERO_EXIT_CODE", "PORTFORWARD", "PORTFORWARD_PROTOCOLS",
    "REMOTECOMMAND_PROTOCOLS", "RESIZE", "SPDY_PORTFORWARD", "STDERR", "STDIN", "STDOUT", "V1", "V1_BASE64",
    "V2", "V3", "V4", "V4_BASE64", "V5", "ProtocolError", "TerminalSize", "choose_protocol", "close_message",
    "decode", "decode_resize", "encode", "encode_resize", "error_status", "exit_code_of", "exit_status",
    "is_base64", "parse_ports", "port_prefix", "portforward_channels", "status_is_json", "status_message",
    "success_status", "supports_close",
]
