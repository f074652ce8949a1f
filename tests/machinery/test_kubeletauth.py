"""machinery.kubeletauth: the API server's token for the kubelets, as a Secret and a header."""

from __future__ import annotations

from machinery import kubeletauth as ka


def test_secret_round_trip() -> None:
    token = ka.new_token()
    assert len(token) >= 40 and token != ka.new_token()
    body = ka.secret_body(token)
    assert body["metadata"] == body["metadata"] | {"name": ka.SECRET_NAME, "namespace": ka.SECRET_NAMESPACE}
    assert ka.token_of(body) == token


def test_token_of_tolerates_missing_or_broken_data() -> None:
    assert ka.token_of(None) is None
    assert ka.token_of({"data": {}}) is None
    assert ka.token_of({"data": {"token": "%%%not base64"}}) is None


def test_bearer_header_and_matching() -> None:
    header = ka.authorization_header("abc")["Authorization"]
    assert ka.bearer_of(header) == "abc"
    assert ka.bearer_of("Basic abc") is None and ka.bearer_of("Bearer ") is None and ka.bearer_of(None) is None
    assert ka.token_matches("abc", "abc")
    assert not ka.token_matches("abd", "abc") and not ka.token_matches(None, "abc") and not ka.token_matches("x", None)
