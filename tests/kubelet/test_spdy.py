"""kubelet.streaming.spdy and .spdysession: the SPDY/3.1 codec and the server session, in memory (no I/O).

The client's side is played with the module's own encoders plus a second FrameReader, so every
test checks both directions; tests/kubelet/test_portforward.py checks the same code against Go's
(kubectl's) implementation.
"""

from __future__ import annotations

import hashlib
import struct

import pytest

from kubelet.streaming import spdy, spdysession

# sha256 of moby/spdystream's spdy/dictionary.go bytes (the SPDY/3 dictionary Go's framer uses)
SPDYSTREAM_DICTIONARY_SHA256 = "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"


def test_dictionary_is_spdystreams_byte_for_byte() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert hashlib.sha256(spdy.DICTIONARY).hexdigest() == SPDYSTREAM_DICTIONARY_SHA256


@pytest.mark.parametrize("headers", [
    {},
    {"streamtype": ["error"], "port": ["8080"], "requestid": ["0"]},
    {"x": ["a", "b", ""]},  # several values of one name travel NUL-joined
    {"long": ["v" * 70000]},
])
def test_header_block_round_trip(headers: dict[str, list[str]]) -> None:
    assert spdy.decode_header_block(spdy.encode_header_block(headers)) == headers


def test_header_names_are_lower_cased() -> None:
    block = spdy.encode_header_block({"StreamType": ["data"]})
    assert spdy.decode_header_block(block) == {"streamtype": ["data"]}


@pytest.mark.parametrize("block", [b"", b"\x00\x00\x00\x01\x00\x00\x00\x05ab", b"\x00\x00\x00\x00extra"])
def test_bad_header_blocks(block: bytes) -> None:
    with pytest.raises(spdy.SpdyProtocolError):
        spdy.decode_header_block(block)


def test_header_compression_continues_across_frames() -> None:
    """One zlib stream per direction: each block depends on the ones before it."""
    c, d = spdy.HeaderCompressor(), spdy.HeaderDecompressor()
    blocks = [{"streamtype": ["error"], "port": ["8080"], "requestid": [str(i)]} for i in range(5)]
    compressed = [c.compress(b) for b in blocks]
    assert len(compressed[4]) < len(compressed[0])  # later blocks reuse the earlier ones' words
    assert [d.decompress(x) for x in compressed] == blocks
    with pytest.raises(spdy.SpdyProtocolError):  # a fresh inflater cannot read a later block alone
        spdy.HeaderDecompressor().decompress(compressed[3][2:])


def all_frames() -> tuple[bytes, list[spdy.Frame]]:
    c = spdy.HeaderCompressor()
    wire = b"".join([
        spdy.encode_syn_stream(c, 1, {"port": ["80"]}, flags=spdy.FLAG_FIN, priority=3),
        spdy.encode_syn_reply(c, 1, {}),
        spdy.encode_headers(c, 3, {"a": ["b"]}),
        spdy.encode_data(1, b"hello", fin=True),
        spdy.encode_data(3, b""),
        spdy.encode_rst_stream(5, spdy.CANCEL),
        spdy.encode_settings([(0, 7, 65536)]),
        spdy.encode_ping(7),
        spdy.encode_goaway(9, spdy.GOAWAY_OK),
        spdy.encode_window_update(1, 1000),
        struct.pack(">HHI", 0x8003, 0x20, 2) + b"zz",  # an unknown control type: skipped over
    ])
    frames: list[spdy.Frame] = [
        spdy.SynStreamFrame(1, {"port": ["80"]}, 0, 3, spdy.FLAG_FIN),
        spdy.SynReplyFrame(1, {}),
        spdy.HeadersFrame(3, {"a": ["b"]}),
        spdy.DataFrame(1, b"hello", True),
        spdy.DataFrame(3, b"", False),
        spdy.RstStreamFrame(5, spdy.CANCEL),
        spdy.SettingsFrame(((0, 7, 65536),)),
        spdy.PingFrame(7),
        spdy.GoAwayFrame(9, spdy.GOAWAY_OK),
        spdy.WindowUpdateFrame(1, 1000),
        spdy.UnknownControlFrame(0x20, 0, b"zz"),
    ]
    return wire, frames


def test_every_frame_type_round_trips() -> None:
    wire, frames = all_frames()
    assert spdy.FrameReader().feed(wire) == frames


@pytest.mark.parametrize("piece", [1, 3, 7, 64])
def test_frames_split_across_messages(piece: int) -> None:
    """A frame may span WebSocket messages and a message may hold several frames."""
    wire, frames = all_frames()
    reader = spdy.FrameReader()
    got: list[spdy.Frame] = []
    for i in range(0, len(wire), piece):
        got += reader.feed(wire[i:i + piece])
    assert got == frames


@pytest.mark.parametrize("wire", [
    struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\x00\x00\x00\x01",  # SPDY/2
    struct.pack(">II", 0, 0),  # data on stream 0
    struct.pack(">HHI", 0x8003, spdy.RST_STREAM, 2) + b"\x00\x01",  # too short
])
def test_broken_streams_raise(wire: bytes) -> None:
    with pytest.raises(spdy.SpdyProtocolError):
        spdy.FrameReader().feed(wire)


# ----------------------------------------------------------------------------------- session


class Client:
    """kubectl's side, in memory: encodes client frames and reads the server's."""

    def __init__(self) -> None:
        self.deflate = spdy.HeaderCompressor()
        self.reader = spdy.FrameReader()

    def syn(self, sid: int, stream_type: str, *, port: int = 8080, request_id: str = "0", flags: int = 0) -> bytes:
        return spdy.encode_syn_stream(self.deflate, sid, {"streamtype": [stream_type], "port": [str(port)],
                                                          "requestid": [request_id]}, flags=flags)

    def read(self, session: spdysession.ServerSession) -> list[spdy.Frame]:
        return self.reader.feed(session.data_to_send())


def test_kubectl_style_exchange() -> None:
    s, c = spdysession.ServerSession(), Client()
    events = s.receive(c.syn(1, "error") + spdy.encode_data(1, b"", fin=True))
    assert events == [spdysession.StreamOpened(1, {"streamtype": ["error"], "port": ["8080"], "requestid": ["0"]}),
                      spdysession.StreamEnded(1)]
    s.reply(1)
    s.reply(1)  # once only
    assert c.read(s) == [spdy.SynReplyFrame(1, {})]

    # the data stream's SYN in two pieces, then data in the same message as a PING
    syn = c.syn(3, "data")
    assert s.receive(syn[:5]) == []
    assert s.receive(syn[5:]) == [spdysession.StreamOpened(3, {"streamtype": ["data"], "port": ["8080"],
                                                       "requestid": ["0"]})]
    s.reply(3)
    events = s.receive(spdy.encode_data(3, b"GET /") + spdy.encode_ping(1) + spdy.encode_data(3, b" HTTP/1.0"))
    assert events == [spdysession.StreamData(3, b"GET /"), spdysession.StreamData(3, b" HTTP/1.0")]
    assert c.read(s) == [spdy.SynReplyFrame(3, {}), spdy.PingFrame(1)]  # the client's ping echoed

    assert s.send_data(3, b"HTTP/1.0 200 OK\r\n")
    assert s.finish(1) and s.finish(3)
    assert not s.send_data(3, b"late")  # FIN sent: nothing more on it
    assert c.read(s) == [spdy.DataFrame(3, b"HTTP/1.0 200 OK\r\n"), spdy.DataFrame(1, b"", True),
                         spdy.DataFrame(3, b"", True)]
    assert s.open_streams == 1  # stream 1 is closed both ways; 3 still waits for the client's FIN
    assert s.receive(spdy.encode_data(3, b"", fin=True)) == [spdysession.StreamEnded(3)]
    assert s.open_streams == 0


def test_pings_of_the_servers_parity_are_not_echoed() -> None:
    s = spdysession.ServerSession()
    assert s.receive(spdy.encode_ping(2)) == []
    assert s.data_to_send() == b""


def test_reset_by_the_client_ends_the_stream() -> None:
    s, c = spdysession.ServerSession(), Client()
    s.receive(c.syn(1, "data"))
    s.reply(1)
    assert s.receive(spdy.encode_rst_stream(1, spdy.CANCEL)) == [spdysession.StreamReset(1, spdy.CANCEL)]
    assert not s.is_open(1)
    assert not s.send_data(1, b"x")
    assert s.receive(spdy.encode_data(1, b"after reset")) == []  # dropped, as spdystream does
    assert c.read(s) == [spdy.SynReplyFrame(1, {})]


def test_server_reset_and_invalid_stream_ids() -> None:
    s, c = spdysession.ServerSession(), Client()
    s.receive(c.syn(5, "data"))
    s.reset(5)
    assert s.receive(c.syn(3, "data")) == []  # ids must increase
    assert s.receive(c.syn(8, "data")) == []  # clients use odd ids
    assert c.read(s) == [spdy.RstStreamFrame(5, spdy.CANCEL), spdy.RstStreamFrame(3, spdy.PROTOCOL_ERROR),
                         spdy.RstStreamFrame(8, spdy.PROTOCOL_ERROR)]


def test_goaway_both_ways() -> None:
    s, c = spdysession.ServerSession(), Client()
    s.receive(c.syn(1, "error"))
    assert s.receive(spdy.encode_goaway(0)) == [spdysession.GoAwayReceived(0, spdy.GOAWAY_OK)]
    assert s.receive(c.syn(3, "data")) == []  # refused after GOAWAY
    s.goaway()
    assert c.read(s) == [spdy.RstStreamFrame(3, spdy.REFUSED_STREAM)]  # we already know: no second GOAWAY
    s2, c2 = spdysession.ServerSession(), Client()
    s2.receive(c2.syn(5, "error"))
    s2.goaway(spdy.GOAWAY_PROTOCOL_ERROR)
    assert c2.read(s2) == [spdy.GoAwayFrame(5, spdy.GOAWAY_PROTOCOL_ERROR)]


def test_syn_with_fin_and_settings_and_window_updates_are_quiet() -> None:
    s, c = spdysession.ServerSession(), Client()
    events = s.receive(c.syn(1, "error", flags=spdy.FLAG_FIN) + spdy.encode_settings([(0, 7, 1 << 16)])
                       + spdy.encode_window_update(1, 4096))
    headers = {"streamtype": ["error"], "port": ["8080"], "requestid": ["0"]}
    assert events == [spdysession.StreamOpened(1, headers, True)]
    assert s.receive(spdy.encode_data(1, b"ignored")) == []  # the client said it sends nothing
    assert s.data_to_send() == b""


def test_large_data_is_split_at_the_frame_limit() -> None:
    s, c = spdysession.ServerSession(), Client()
    s.receive(c.syn(1, "data"))
    s.data_to_send()
    payload = b"x" * (spdy.MAX_DATA_LENGTH + 10)
    assert s.send_data(1, payload, fin=True)
    frames = c.reader.feed(s.data_to_send())
    assert [(len(f.data), f.fin) for f in frames if isinstance(f, spdy.DataFrame)] == [
        (spdy.MAX_DATA_LENGTH, False), (10, True)]
