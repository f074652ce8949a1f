"""The string formats a CRD schema's ``format`` enforces, as kube-openapi's strfmt registry checks them.

Role: apiextensions keeps a format only where Kubernetes supports it
(``StripUnsupportedFormatsPostProcessorForVersion``): on strings (or untyped and int-or-string
nodes) the formats below, on integers ``int32``/``int64``, on numbers ``float``/``double``; any other
format is dropped before validation and so never fails a value. A kept string format is then
checked by strfmt's validator of that name ("date-time" and "datetime" are one name: strfmt drops
dashes). Numeric formats are not checked here but by the type and range checks of the validator.

Data flow: ``effective_format(types, format)`` once per schema node at compile time ->
``format_ok(name, text)`` per string value.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable
from datetime import date

# Every format apiextensions supports on strings today (1.0 and 1.34 sets), dash-free as strfmt names them.
SUPPORTED_STRING_FORMATS = frozenset(f.replace("-", "") for f in (
    "bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "uuid3", "uuid4",
    "uuid5", "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor", "byte", "password",
    "date", "duration", "datetime", "k8s-short-name", "k8s-long-name"))


def effective_format(types: tuple[str, ...], fmt: str) -> str:
    """The format left after apiextensions strips the unsupported ones for this node's type."""
    if not fmt:
        return ""
    kind = types[0] if len(types) == 1 else ""
    if kind in ("", "string"):
        return fmt if fmt.replace("-", "") in SUPPORTED_STRING_FORMATS else ""
    if kind == "integer":
        return fmt if fmt in ("int32", "int64") else ""
    if kind == "number":
        return fmt if fmt in ("float", "double") else ""
    return ""


# strfmt's HostnamePattern with \p{L} (letters) and \p{S} (symbols; the ASCII ones here) spelled for ``re``.
_LSD = r"(?:[^\W_]|[$+<=>^`|~])"
_LSDH = r"(?:[^\W_]|[$+<=>^`|~-])"
_HOSTNAME = re.compile(rf"^(?:{_LSD}(?:-?{_LSD}{{0,62}})?|(?:{_LSD}(?:{_LSDH}{{0,61}}{_LSD})?\.)+[^\W\d_]{{2,63}})\Z")
_UUID = {
    "uuid": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\Z"),
    "uuid3": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}\Z"),
    "uuid4": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}\Z"),
    "uuid5": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}\Z"),
}
_DATETIME_TIME = re.compile(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))\Z")
_BASE64 = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})\Z")
_HEXCOLOR = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})\Z")
_RGB_PART = r"\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*"
_RGBCOLOR = re.compile(rf"^rgb\({_RGB_PART},{_RGB_PART},{_RGB_PART}\)\Z")
_SSN = re.compile(r"^\d{3}[- ]?\d{2}[- ]?\d{4}\Z")
_CREDITCARD = re.compile(
    r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|(222[1-9]|22[3-9][0-9]|2[3-6][0-9]{2}|27[01][0-9]|2720)[0-9]{12}"
    r"|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35\d{3})\d{11}"
    r"|6[27][0-9]{14})\Z")
_SHORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_LONG_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_EMAIL_ADDR = re.compile(r"^[^\s@<>()\[\]\\,;:\"]+@[^\s@<>()\[\]\\,;:\"]+\Z")
_MAC = re.compile(r"^(?:[0-9A-Fa-f]{2}([:-]))(?:[0-9A-Fa-f]{2}\1){4,18}[0-9A-Fa-f]{2}\Z|"
                  r"^(?:[0-9A-Fa-f]{4}\.){2,9}[0-9A-Fa-f]{4}\Z")
_DURATION_GO = re.compile(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+\Z|^[-+]?0\Z")
_DURATION_UNIT = re.compile(r"(\d+)\s*([A-Za-zµ]+)")
_DURATION_UNITS = (("ns", "nano"), ("us", "µs", "micro"), ("ms", "milli"), ("s", "sec"), ("m", "min"),
                   ("h", "hr", "hour"), ("d", "day"), ("w", "wk", "week"))
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def is_date(text: str) -> bool:
    """time.Parse("2006-01-02"): exactly four-digit year, two-digit month and day, a real date."""
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text)
    if not m:
        return False
    try:
        date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return False
    return True


def is_datetime(text: str) -> bool:
    """strfmt.IsDateTime: a full-date, "t" (any case), and an RFC 3339 time with zone."""
    if len(text) < 4:
        return False
    parts = text.lower().split("t")
    if len(parts) < 2 or not is_date(parts[0]):
        return False
    m = _DATETIME_TIME.match(parts[1])
    return m is not None and m.group(1) <= "23" and m.group(2) <= "59" and m.group(3) <= "59"


def is_duration(text: str) -> bool:
    """strfmt.ParseDuration: Go's time.ParseDuration, or "<n> <unit>" pairs like "3 days"."""
    if _DURATION_GO.match(text):
        return True
    for _, unit in _DURATION_UNIT.findall(text):
        unit = unit.strip().lower()
        for variants in _DURATION_UNITS:
            if any((i == len(variants) - 1 and unit.startswith(v)) or unit == v.lower()
                   for i, v in enumerate(variants)):
                return True
    return False


def is_hostname(text: str) -> bool:
    if not _HOSTNAME.match(text) or len(text) > 255:
        return False
    return all(len(part) <= 63 for part in text.split("."))


def _parse_ip(text: str) -> bool:
    """netutils.ParseIPSloppy: Go's net.ParseIP that also accepts leading zeros in IPv4 octets."""
    if "%" in text:
        return False
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() and p.isascii() and int(p) <= 255 for p in parts):
        return True
    return False


def is_cidr(text: str) -> bool:
    address, sep, prefix = text.partition("/")
    if not sep or not prefix.isdigit() or not prefix.isascii() or not _parse_ip(address):
        return False
    return int(prefix) <= (32 if "." in address and ":" not in address else 128)


def is_email(text: str) -> bool:
    """net/mail.ParseAddress, for the two common forms: "a@b" and "Name <a@b>"."""
    m = re.fullmatch(r"\s*(?:\"[^\"]*\"|[^<>\"]*)?\s*<([^<>]+)>\s*", text)
    address = m.group(1) if m else text.strip()
    return bool(_EMAIL_ADDR.match(address))


def is_uri(text: str) -> bool:
    """url.ParseRequestURI: an absolute URI (with a scheme) or an absolute path."""
    if not text or any(c.isspace() for c in text):
        return False
    return text.startswith("/") or bool(_URI_SCHEME.match(text))


def _isbn10(text: str) -> bool:
    s = re.sub("[ -]", "", text)
    if not re.fullmatch(r"[0-9]{9}X|[0-9]{10}", s):
        return False
    total = sum((10 - i) * (10 if c == "X" else int(c)) for i, c in enumerate(s))
    return total % 11 == 0


def _isbn13(text: str) -> bool:
    s = re.sub("[ -]", "", text)
    if not re.fullmatch("[0-9]{13}", s):
        return False
    total = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(s[:12]))
    return (10 - total % 10) % 10 == int(s[12])


def _luhn(text: str) -> bool:
    digits = re.sub("[^0-9]", "", text)
    if not _CREDITCARD.match(digits):
        return False
    total, double = 0, False
    for c in reversed(digits):
        n = int(c) * (2 if double else 1)
        total += n - 9 if n > 9 else n
        double = not double
    return total % 10 == 0


def _base64(text: str) -> bool:
    if not _BASE64.match(text):
        return False
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        return False
    return True


_CHECKS: dict[str, Callable[[str], bool]] = {
    "bsonobjectid": lambda s: re.fullmatch("[0-9a-fA-F]{24}", s) is not None,
    "uri": is_uri,
    "email": is_email,
    "hostname": is_hostname,
    "ipv4": lambda s: _parse_ip(s) and "." in s,
    "ipv6": lambda s: _parse_ip(s) and ":" in s,
    "cidr": is_cidr,
    "mac": lambda s: _MAC.match(s) is not None and len(re.sub("[^0-9A-Fa-f]", "", s)) in (12, 16, 40),
    **{name: (lambda rx: lambda s: rx.match(s) is not None)(rx) for name, rx in _UUID.items()},
    "isbn": lambda s: _isbn10(s) or _isbn13(s),
    "isbn10": _isbn10,
    "isbn13": _isbn13,
    "creditcard": _luhn,
    "ssn": lambda s: len(s) == 11 and _SSN.match(s) is not None,
    "hexcolor": lambda s: _HEXCOLOR.match(s) is not None,
    "rgbcolor": lambda s: _RGBCOLOR.match(s) is not None,
    "byte": _base64,
    "password": lambda s: True,
    "date": is_date,
    "duration": is_duration,
    "datetime": is_datetime,
    "k8sshortname": lambda s: len(s) <= 63 and _SHORT_NAME.match(s) is not None,
    "k8slongname": lambda s: len(s) <= 253 and _LONG_NAME.match(s) is not None,
}


def is_known_format(name: str) -> bool:
    """strfmt.Default.ContainsName: is there a validator of this (dash-insensitive) name."""
    return name.replace("-", "") in _CHECKS


def format_ok(name: str, text: str) -> bool:
    """strfmt.Default.Validates(name, text)."""
    check = _CHECKS.get(name.replace("-", ""))
    return True if check is None else check(text)
