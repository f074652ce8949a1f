import pytest

from machinery.timefmt import parse_duration


@pytest.mark.parametrize("text,seconds", [
    ("15s", 15.0), ("1m30s", 90.0), ("1h", 3600.0), ("500ms", 0.5), ("90", 90.0), (" 2m ", 120.0), ("1.5s", 1.5),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "15x", "1m 30s", "-5s", "1d"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)
