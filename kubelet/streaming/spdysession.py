"""The server's side of one SPDY/3.1 connection for ``kubectl port-forward`` (sans-I/O, pure).

After moby/spdystream's Connection with ``server=true``: client streams have odd, increasing ids,
the server's would be even (this session opens none, nor sends pings).

    bytes from the client --ServerSession.receive()--> kubelet.streaming.spdy.FrameReader --> events:
        StreamOpened(id, headers), StreamData(id, bytes), StreamEnded(id) (the peer's FIN),
        StreamReset(id), GoAwayReceived
    the caller's decisions --reply()/send_data()/finish()/reset()/goaway()--> encoded frames
        --data_to_send()--> bytes for the client, in encoding order (header compression needs it)

PINGs from the client (odd ids) are answered inside the session. Like spdystream, the session
neither sends nor enforces flow control: SETTINGS and WINDOW_UPDATE are read and ignored, which is
what Go's side expects. ``kubelet.streaming.portforward`` drives a session over aiohttp's WebSocket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence, Union

from .spdy import (
    CANCEL,
    FLAG_FIN,
    FLAG_UNIDIRECTIONAL,
    GOAWAY_OK,
    MAX_DATA_LENGTH,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    DataFrame,
    Frame,
    FrameReader,
    GoAwayFrame,
    HeaderCompressor,
    Headers,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SynStreamFrame,
    encode_data,
    encode_goaway,
    encode_ping,
    encode_rst_stream,
    encode_syn_reply,
)


@dataclass(frozen=True)
class StreamOpened:
    stream_id: int
    headers: Headers
    fin: bool = False  # the peer sends nothing on it (SYN_STREAM with FIN)


@dataclass(frozen=True)
class StreamData:
    stream_id: int
    data: bytes


@dataclass(frozen=True)
class StreamEnded:
    """The peer's FIN: it sends no more on this stream."""
    stream_id: int


@dataclass(frozen=True)
class StreamReset:
    stream_id: int
    status: int


@dataclass(frozen=True)
class GoAwayReceived:
    last_good_stream_id: int
    status: int


Event = Union[StreamOpened, StreamData, StreamEnded, StreamReset, GoAwayReceived]


@dataclass
class _Stream:
    replied: bool = False
    local_fin: bool = False
    remote_fin: bool = False


@dataclass
class ServerSession:
    """The server's side of one SPDY/3.1 connection (moby/spdystream's Connection with server=true):
    client streams have odd, increasing ids; server pings would be even (this session sends none)."""

    _reader: FrameReader = field(default_factory=FrameReader)
    _deflate: HeaderCompressor = field(default_factory=HeaderCompressor)
    _out: bytearray = field(default_factory=bytearray)
    _streams: dict[int, _Stream] = field(default_factory=dict)
    _next_remote_id: int = 1
    _last_accepted: int = 0
    gone_away: bool = False  # a GOAWAY went out or came in: no new streams

    # -- input

    def receive(self, data: bytes) -> list[Event]:
        """Feeds bytes from the peer; returns what happened. SpdyProtocolError: the stream is broken."""
        events: list[Event] = []
        for frame in self._reader.feed(data):
            self._handle(frame, events)
        return events

    def _handle(self, frame: Frame, events: list[Event]) -> None:
        if isinstance(frame, DataFrame):
            st = self._streams.get(frame.stream_id)
            if st is None or st.remote_fin:
                return  # gone away or finished: spdystream drops it too
            if frame.data:
                events.append(StreamData(frame.stream_id, frame.data))
            if frame.fin:
                self._remote_finished(frame.stream_id, st, events)
        elif isinstance(frame, SynStreamFrame):
            self._syn_stream(frame, events)
        elif isinstance(frame, RstStreamFrame):
            if self._streams.pop(frame.stream_id, None) is not None:
                events.append(StreamReset(frame.stream_id, frame.status))
        elif isinstance(frame, PingFrame):
            if frame.ping_id % 2 == 1:  # the client's ping: echo it (ours would be even)
                self._out += encode_ping(frame.ping_id)
        elif isinstance(frame, GoAwayFrame):
            self.gone_away = True
            events.append(GoAwayReceived(frame.last_good_stream_id, frame.status))
        elif isinstance(frame, HeadersFrame):
            st = self._streams.get(frame.stream_id)
            if st is not None and frame.flags & FLAG_FIN:
                self._remote_finished(frame.stream_id, st, events)
        # SETTINGS, WINDOW_UPDATE, SYN_REPLY (we open no streams) and unknown types: ignored

    def _syn_stream(self, frame: SynStreamFrame, events: list[Event]) -> None:
        sid = frame.stream_id
        if sid % 2 == 0 or sid < self._next_remote_id:
            self._out += encode_rst_stream(sid, PROTOCOL_ERROR)
            return
        self._next_remote_id = sid + 2
        if self.gone_away:
            self._out += encode_rst_stream(sid, REFUSED_STREAM)
            return
        self._last_accepted = sid
        st = _Stream(local_fin=bool(frame.flags & FLAG_UNIDIRECTIONAL))
        self._streams[sid] = st
        fin = bool(frame.flags & FLAG_FIN)
        events.append(StreamOpened(sid, frame.headers, fin))
        if fin:
            st.remote_fin = True

    def _remote_finished(self, sid: int, st: _Stream, events: list[Event]) -> None:
        st.remote_fin = True
        events.append(StreamEnded(sid))
        if st.local_fin:
            self._streams.pop(sid, None)

    # -- output

    def is_open(self, stream_id: int) -> bool:
        """Whether this side may still send on the stream (known, not reset, no FIN sent)."""
        st = self._streams.get(stream_id)
        return st is not None and not st.local_fin

    def reply(self, stream_id: int, headers: Mapping[str, Sequence[str]] | None = None) -> None:
        """SYN_REPLY: the stream is accepted (the kubelet replies with no headers)."""
        st = self._streams.get(stream_id)
        if st is None or st.replied:
            return
        st.replied = True
        self._out += encode_syn_reply(self._deflate, stream_id, headers or {})

    def send_data(self, stream_id: int, data: bytes, *, fin: bool = False) -> bool:
        """DATA frames on an open stream (split at the frame limit); False when it is closed."""
        st = self._streams.get(stream_id)
        if st is None or st.local_fin:
            return False
        for start in range(0, len(data), MAX_DATA_LENGTH):
            chunk = data[start:start + MAX_DATA_LENGTH]
            last = start + MAX_DATA_LENGTH >= len(data)
            self._out += encode_data(stream_id, chunk, fin=fin and last)
        if not data and fin:
            self._out += encode_data(stream_id, b"", fin=True)
        if fin:
            st.local_fin = True
            if st.remote_fin:
                self._streams.pop(stream_id, None)
        return True

    def finish(self, stream_id: int) -> bool:
        """An empty DATA frame with FIN: this side is done with the stream (spdystream's Close)."""
        return self.send_data(stream_id, b"", fin=True)

    def reset(self, stream_id: int, status: int = CANCEL) -> None:
        """RST_STREAM: the stream is torn down in both directions."""
        st = self._streams.pop(stream_id, None)
        if st is not None:
            self._out += encode_rst_stream(stream_id, status)

    def goaway(self, status: int = GOAWAY_OK) -> None:
        """GOAWAY naming the last stream accepted; new streams are refused from now on."""
        if not self.gone_away or status != GOAWAY_OK:
            self._out += encode_goaway(self._last_accepted, status)
        self.gone_away = True

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def data_to_send(self) -> bytes:
        """Every frame encoded since the last call, in order."""
        out = bytes(self._out)
        self._out.clear()
        return out


__all__ = ["Event", "GoAwayReceived", "ServerSession", "StreamData", "StreamEnded", "StreamOpened", "StreamReset"]
