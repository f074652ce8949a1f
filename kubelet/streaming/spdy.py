"""SPDY/3.1 frames and header compression for ``kubectl port-forward`` (pure, no I/O).

kubectl 1.32 forwards ports through ``SPDY/3.1+portforward.k8s.io``: a WebSocket whose binary
messages, taken together, are one byte stream of SPDY/3.1 frames (client-go's TunnelingConnection;
a frame may span messages and a message may hold several). This module is that stream's codec,
after moby/spdystream's ``spdy`` package (what Go's side runs):

    bytes --FrameReader.feed()--> frames (incremental parse; one zlib inflate stream, with the
        SPDY/3 dictionary, for every header block of the direction)
    encode_*() --> bytes (header blocks through one HeaderCompressor: zlib, best compression, the
        dictionary, sync-flushed after each block as Go's framer does)

Header compression is stateful, so frames must reach the wire in the order they were encoded.
``kubelet.streaming.spdysession`` is the server's session on top of this codec.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Mapping, Sequence, Union

VERSION = 3

# Control frame types (SPDY/3 section 2.6)
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS = 1, 2, 3, 4
PING, GOAWAY, HEADERS, WINDOW_UPDATE = 6, 7, 8, 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, UNSUPPORTED_VERSION = 1, 2, 3, 4
CANCEL, INTERNAL_ERROR, FLOW_CONTROL_ERROR, STREAM_IN_USE = 5, 6, 7, 8
STREAM_ALREADY_CLOSED, INVALID_CREDENTIALS, FRAME_TOO_LARGE = 9, 10, 11

# GOAWAY status codes
GOAWAY_OK, GOAWAY_PROTOCOL_ERROR, GOAWAY_INTERNAL_ERROR = 0, 1, 2

MAX_DATA_LENGTH = (1 << 24) - 1  # the 24-bit length field
MAX_STREAM_ID = 0x7FFFFFFF

# The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1): length-prefixed words, then
# a tail; 1423 bytes, the same as moby/spdystream's spdy/dictionary.go (pinned by tests/kubelet/test_spdy.py).
_DICTIONARY_WORDS = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
    "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
    "content-base", "content-encoding", "content-language", "content-length", "content-location", "content-md5",
    "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host", "if-match",
    "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
    "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after",
    "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
    "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie",
    "keep-alive", "origin")
_DICTIONARY_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _DICTIONARY_WORDS) + _DICTIONARY_TAIL.encode()

Headers = dict[str, list[str]]  # lower-case names; several values of one name travel NUL-joined


class SpdyProtocolError(ValueError):
    """A byte stream that is not SPDY/3.1: the session cannot go on (GOAWAY, then close)."""


# ------------------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class DataFrame:
    stream_id: int
    data: bytes
    fin: bool = False


@dataclass(frozen=True)
class SynStreamFrame:
    stream_id: int
    headers: Headers
    associated_to: int = 0
    priority: int = 0
    flags: int = 0


@dataclass(frozen=True)
class SynReplyFrame:
    stream_id: int
    headers: Headers
    flags: int = 0


@dataclass(frozen=True)
class RstStreamFrame:
    stream_id: int
    status: int


@dataclass(frozen=True)
class SettingsFrame:
    values: tuple[tuple[int, int, int], ...]  # (flags, id, value)
    flags: int = 0


@dataclass(frozen=True)
class PingFrame:
    ping_id: int


@dataclass(frozen=True)
class GoAwayFrame:
    last_good_stream_id: int
    status: int


@dataclass(frozen=True)
class HeadersFrame:
    stream_id: int
    headers: Headers
    flags: int = 0


@dataclass(frozen=True)
class WindowUpdateFrame:
    stream_id: int
    delta: int


@dataclass(frozen=True)
class UnknownControlFrame:
    frame_type: int
    flags: int
    payload: bytes


Frame = Union[DataFrame, SynStreamFrame, SynReplyFrame, RstStreamFrame, SettingsFrame, PingFrame, GoAwayFrame,
              HeadersFrame, WindowUpdateFrame, UnknownControlFrame]


# --------------------------------------------------------------------------- header blocks


def encode_header_block(headers: Mapping[str, Sequence[str]]) -> bytes:
    """The uncompressed name/value block: count, then (length, name, length, NUL-joined values)."""
    out = [struct.pack(">I", len(headers))]
    for name, values in headers.items():
        n = name.lower().encode("utf-8")
        v = "\x00".join(values).encode("utf-8")
        out += [struct.pack(">I", len(n)), n, struct.pack(">I", len(v)), v]
    return b"".join(out)


def decode_header_block(block: bytes) -> Headers:
    """The inverse of ``encode_header_block``; SpdyProtocolError on a short or overlong block."""
    try:
        (count,) = struct.unpack_from(">I", block, 0)
        pos = 4
        headers: Headers = {}
        for _ in range(count):
            (n_len,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4:pos + 4 + n_len]
            pos += 4 + n_len
            (v_len,) = struct.unpack_from(">I", block, pos)
            value = block[pos + 4:pos + 4 + v_len]
            pos += 4 + v_len
            if len(name) != n_len or len(value) != v_len:
                raise SpdyProtocolError("header block is shorter than its lengths")
            key = name.decode("utf-8", "replace").lower()
            headers.setdefault(key, []).extend(value.decode("utf-8", "replace").split("\x00"))
    except struct.error:
        raise SpdyProtocolError("header block is shorter than its lengths") from None
    if pos != len(block):
        raise SpdyProtocolError("compressed payload size was incorrect")
    return headers


class HeaderCompressor:
    """One direction's deflate stream (zlib, best compression, the SPDY/3 dictionary), sync-flushed
    after each block as Go's framer does."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)

    def compress(self, headers: Mapping[str, Sequence[str]]) -> bytes:
        return self._z.compress(encode_header_block(headers)) + self._z.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    """The other direction's inflate stream: every header block continues the same stream."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(zdict=DICTIONARY)

    def decompress(self, payload: bytes) -> Headers:
        try:
            block = self._z.decompress(payload)
        except zlib.error as e:
            raise SpdyProtocolError(f"header block does not inflate: {e}") from None
        return decode_header_block(block)


# ------------------------------------------------------------------------------- encoding


def _control(frame_type: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_DATA_LENGTH:
        raise SpdyProtocolError("control frame too large")
    return struct.pack(">HHI", 0x8000 | VERSION, frame_type, (flags << 24) | len(payload)) + payload


def encode_data(stream_id: int, data: bytes, *, fin: bool = False) -> bytes:
    """One DATA frame (``data`` at most MAX_DATA_LENGTH bytes)."""
    if not 0 < stream_id <= MAX_STREAM_ID or len(data) > MAX_DATA_LENGTH:
        raise SpdyProtocolError("invalid data frame")
    return struct.pack(">II", stream_id, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data


def encode_syn_stream(compressor: HeaderCompressor, stream_id: int, headers: Mapping[str, Sequence[str]], *,
                      flags: int = 0, associated_to: int = 0, priority: int = 0) -> bytes:
    block = compressor.compress(headers)
    return _control(SYN_STREAM, flags, struct.pack(">IIBB", stream_id, associated_to, (priority & 7) << 5, 0) + block)


def encode_syn_reply(compressor: HeaderCompressor, stream_id: int, headers: Mapping[str, Sequence[str]], *,
                     flags: int = 0) -> bytes:
    return _control(SYN_REPLY, flags, struct.pack(">I", stream_id) + compressor.compress(headers))


def encode_headers(compressor: HeaderCompressor, stream_id: int, headers: Mapping[str, Sequence[str]], *,
                   flags: int = 0) -> bytes:
    return _control(HEADERS, flags, struct.pack(">I", stream_id) + compressor.compress(headers))


def encode_rst_stream(stream_id: int, status: int) -> bytes:
    return _control(RST_STREAM, 0, struct.pack(">II", stream_id, status))


def encode_settings(values: Sequence[tuple[int, int, int]], *, flags: int = 0) -> bytes:
    body = struct.pack(">I", len(values)) + b"".join(
        struct.pack(">II", (f << 24) | (i & 0xFFFFFF), v) for f, i, v in values)
    return _control(SETTINGS, flags, body)


def encode_ping(ping_id: int) -> bytes:
    return _control(PING, 0, struct.pack(">I", ping_id))


def encode_goaway(last_good_stream_id: int, status: int = GOAWAY_OK) -> bytes:
    return _control(GOAWAY, 0, struct.pack(">II", last_good_stream_id, status))


def encode_window_update(stream_id: int, delta: int) -> bytes:
    return _control(WINDOW_UPDATE, 0, struct.pack(">II", stream_id, delta))


# ------------------------------------------------------------------------------- decoding


class FrameReader:
    """Frames out of a byte stream fed in arbitrary pieces; header blocks inflated in order."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._inflate = HeaderDecompressor()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while len(self._buf) >= 8:
            first, second = struct.unpack_from(">II", self._buf, 0)
            length = second & 0xFFFFFF
            if len(self._buf) < 8 + length:
                break
            payload = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            flags = second >> 24
            if first & 0x80000000:
                version = (first >> 16) & 0x7FFF
                if version != VERSION:
                    raise SpdyProtocolError(f"unsupported SPDY version {version}")
                frames.append(self._control(first & 0xFFFF, flags, payload))
            else:
                if first == 0:
                    raise SpdyProtocolError("stream id zero is disallowed")
                frames.append(DataFrame(first & MAX_STREAM_ID, payload, bool(flags & FLAG_FIN)))
        return frames

    def _control(self, frame_type: int, flags: int, p: bytes) -> Frame:
        try:
            if frame_type == SYN_STREAM:
                sid, assoc, prio, _slot = struct.unpack_from(">IIBB", p, 0)
                return SynStreamFrame(sid & MAX_STREAM_ID, self._inflate.decompress(p[10:]),
                                      assoc & MAX_STREAM_ID, prio >> 5, flags)
            if frame_type in (SYN_REPLY, HEADERS):
                (sid,) = struct.unpack_from(">I", p, 0)
                headers = self._inflate.decompress(p[4:])
                if frame_type == SYN_REPLY:
                    return SynReplyFrame(sid & MAX_STREAM_ID, headers, flags)
                return HeadersFrame(sid & MAX_STREAM_ID, headers, flags)
            if frame_type == RST_STREAM:
                sid, status = struct.unpack_from(">II", p, 0)
                return RstStreamFrame(sid & MAX_STREAM_ID, status)
            if frame_type == SETTINGS:
                (count,) = struct.unpack_from(">I", p, 0)
                values = tuple((fid >> 24, fid & 0xFFFFFF, v)
                               for fid, v in (struct.unpack_from(">II", p, 4 + 8 * i) for i in range(count)))
                return SettingsFrame(values, flags)
            if frame_type == PING:
                (pid,) = struct.unpack_from(">I", p, 0)
                return PingFrame(pid)
            if frame_type == GOAWAY:
                last, status = struct.unpack_from(">II", p, 0) if len(p) >= 8 else (*struct.unpack_from(">I", p, 0), 0)
                return GoAwayFrame(last & MAX_STREAM_ID, status)
            if frame_type == WINDOW_UPDATE:
                sid, delta = struct.unpack_from(">II", p, 0)
                return WindowUpdateFrame(sid & MAX_STREAM_ID, delta & 0x7FFFFFFF)
        except struct.error:
            raise SpdyProtocolError(f"control frame of type {frame_type} is too short") from None
        return UnknownControlFrame(frame_type, flags, p)


__all__ = [
    "CANCEL", "DICTIONARY", "FLAG_FIN", "FLAG_UNIDIRECTIONAL", "GOAWAY_OK", "GOAWAY_PROTOCOL_ERROR",
    "MAX_DATA_LENGTH", "PROTOCOL_ERROR", "REFUSED_STREAM", "VERSION", "DataFrame", "Frame", "FrameReader",
    "GoAwayFrame", "HeaderCompressor", "HeaderDecompressor", "Headers", "HeadersFrame", "PingFrame",
    "RstStreamFrame", "SettingsFrame", "SpdyProtocolError", "SynReplyFrame", "SynStreamFrame",
    "UnknownControlFrame", "WindowUpdateFrame", "decode_header_block", "encode_data", "encode_goaway",
    "encode_header_block", "encode_headers", "encode_ping", "encode_rst_stream", "encode_settings",
    "encode_syn_reply", "encode_syn_stream", "encode_window_update",
]
