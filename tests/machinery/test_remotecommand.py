"""machinery.remotecommand: the channel protocols' framing, status and port-forward helpers."""

from __future__ import annotations

import json

import pytest

from machinery import remotecommand as rc


@pytest.mark.parametrize("protocol,channel,payload,wire", [
    (rc.V5, rc.STDOUT, b"hi\n", b"\x01hi\n"),
    (rc.V4, rc.STDIN, b"", b"\x00"),
    (rc.V1, rc.STDERR, b"\xff\x00", b"\x02\xff\x00"),
    (rc.V4_BASE64, rc.STDOUT, b"hi\n", "1aGkK"),
    (rc.V1_BASE64, rc.ERROR, b"x", "3eA=="),
    (None, rc.STDOUT, b"a", b"\x01a"),  # the unnamed protocol is binary
])
def test_encode_decode_round_trip(protocol: str | None, channel: int, payload: bytes, wire: bytes | str) -> None:
    assert rc.encode(protocol, channel, payload) == wire
    assert rc.decode(protocol, wire) == (channel, payload)


@pytest.mark.parametrize("protocol,message", [(rc.V4, b""), (rc.V4, ""), (rc.V4_BASE64, ""),
                                              (rc.V4_BASE64, "xabc"), (rc.V1_BASE64, "1a\u00e9")])
def test_decode_rejects_junk(protocol: str, message: bytes | str) -> None:
    with pytest.raises(rc.ProtocolError):
        rc.decode(protocol, message)


def test_text_frames_of_binary_protocols_are_their_utf8_bytes() -> None:
    # the official Python client writes str stdin as a text frame on v4.channel.k8s.io
    assert rc.decode(rc.V4, "\x00abc") == (rc.STDIN, b"abc")
    assert rc.decode(rc.V5, "\x00\u00e9") == (rc.STDIN, "\u00e9".encode())


def test_choose_protocol_takes_the_first_known_offer() -> None:
    offered = ["v6.channel.k8s.io", "v5.channel.k8s.io", "v4.channel.k8s.io"]
    assert rc.choose_protocol(offered, rc.REMOTECOMMAND_PROTOCOLS) == rc.V5
    assert rc.choose_protocol([" v4.channel.k8s.io"], rc.REMOTECOMMAND_PROTOCOLS) == rc.V4
    assert rc.choose_protocol([], rc.REMOTECOMMAND_PROTOCOLS) is None
    assert rc.choose_protocol(["SPDY/3.1+portforward.k8s.io"], rc.REMOTECOMMAND_PROTOCOLS) is None
    assert rc.choose_protocol(["SPDY/3.1+portforward.k8s.io"], rc.PORTFORWARD_PROTOCOLS) == rc.SPDY_PORTFORWARD


def test_close_message_is_v5_only_shape() -> None:
    assert rc.close_message(rc.V5, rc.STDIN) == b"\xff\x00"
    assert rc.supports_close(rc.V5) and not rc.supports_close(rc.V4)


def test_resize_round_trip_and_errors() -> None:
    size = rc.TerminalSize(width=120, height=40)
    assert json.loads(rc.encode_resize(size)) == {"Width": 120, "Height": 40}
    assert rc.decode_resize(rc.encode_resize(size)) == size
    for bad in (b"nope", b'{"Width": -1, "Height": 2}', b"[1, 2]"):
        with pytest.raises(rc.ProtocolError):
            rc.decode_resize(bad)


def test_exit_status_is_what_kubectl_reads() -> None:
    status = rc.exit_status(3, ["sh", "-c", "exit 3"])
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert status["message"] == ("command terminated with non-zero exit code: "
                                 "error executing command [sh -c exit 3], exit code 3")
    assert rc.exit_status(0) == rc.success_status()


@pytest.mark.parametrize("protocol", [rc.V5, rc.V4, rc.V4_BASE64])
def test_json_status_round_trip(protocol: str) -> None:
    assert rc.exit_code_of(protocol, rc.status_payload(protocol, rc.exit_status(7, ["false"]))) == 7
    assert rc.exit_code_of(protocol, rc.status_payload(protocol, rc.success_status())) == 0
    failed = rc.status_payload(protocol, rc.error_status("container not found"))
    assert rc.exit_code_of(protocol, failed) == 1
    assert rc.status_message(protocol, failed) == "container not found"


@pytest.mark.parametrize("protocol", [rc.V1, rc.V2, rc.V3, rc.V1_BASE64])
def test_text_status_of_older_protocols(protocol: str) -> None:
    assert rc.status_payload(protocol, rc.success_status()) is None
    payload = rc.status_payload(protocol, rc.exit_status(2, ["x"]))
    assert payload is not None and payload.startswith(b"command terminated with non-zero exit code")
    assert rc.exit_code_of(protocol, payload) == 1  # the text carries no code
    assert rc.exit_code_of(protocol, None) == 0


def test_port_forward_helpers() -> None:
    assert rc.portforward_channels(0) == (0, 1)
    assert rc.portforward_channels(2) == (4, 5)
    assert rc.port_prefix(8080) == b"\x90\x1f"
    assert rc.parse_ports("8080, 9090") == [8080, 9090]
    assert rc.parse_ports(["80", "443"]) == [80, 443]
    for bad in ("http", "0", "70000"):
        with pytest.raises(rc.ProtocolError):
            rc.parse_ports(bad)
