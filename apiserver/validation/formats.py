"""Name and value formats: apimachinery's ``validation.Is*`` functions, as lists of messages.

Each function returns the detail messages of the matching Kubernetes function (empty = valid),
with Kubernetes' wording and regex hints; callers wrap them into field errors with ``each``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from machinery import selectors

# Each returns the detail messages of the matching apimachinery function (empty = valid).

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_WILDCARD_FMT = "\\*\\." + _DNS1123_SUBDOMAIN_FMT
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
PERCENT_FMT = "[0-9]+%"

_DNS1123_LABEL_RE = re.compile(f"^{_DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_DNS1035_LABEL_RE = re.compile(f"^{_DNS1035_LABEL_FMT}$")
_WILDCARD_RE = re.compile(f"^{_WILDCARD_FMT}$")
_CONFIG_KEY_RE = re.compile(f"^{_CONFIG_KEY_FMT}$")
PERCENT_RE = re.compile(f"^{PERCENT_FMT}$")
_PORT_NAME_CHARSET_RE = re.compile("^[-a-z0-9]+$")
_PORT_NAME_LETTER_RE = re.compile("[a-z]")


def max_len_message(n: int) -> str:
    return f"must be no more than {n} characters"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """RegexError: the message, examples and the regex Kubernetes shows to users."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}'" for e in examples)
    return f"{msg} (e.g. {shown}, regex used for validation is '{fmt}')"


def full_match(regex: re.Pattern[str], value: str) -> bool:
    # fullmatch, not match: Python's $ also matches before a trailing newline, Go's does not.
    return regex.fullmatch(value) is not None


def dns1123_label_errors(value: str) -> list[str]:
    errs = [max_len_message(63)] if len(value) > 63 else []
    if not full_match(_DNS1123_LABEL_RE, value):
        if full_match(_DNS1123_SUBDOMAIN_RE, value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                "and must start and end with an alphanumeric character",
                _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def _format_errors(value: str, *, max_len: int, regex: re.Pattern[str], fmt: str, msg: str,
                   examples: tuple[str, ...]) -> list[str]:
    """A length limit and a pattern, checked as the IsDNS1123Subdomain family checks them."""
    errs = [max_len_message(max_len)] if len(value) > max_len else []
    if not full_match(regex, value):
        errs.append(regex_error(msg, fmt, *examples))
    return errs


def dns1123_subdomain_errors(value: str) -> list[str]:
    return _format_errors(
        value, max_len=253, regex=_DNS1123_SUBDOMAIN_RE, fmt=_DNS1123_SUBDOMAIN_FMT, examples=("example.com",),
        msg="a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character")


def dns1035_label_errors(value: str) -> list[str]:
    return _format_errors(
        value, max_len=63, regex=_DNS1035_LABEL_RE, fmt=_DNS1035_LABEL_FMT, examples=("my-name", "abc-123"),
        msg="a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
            "alphabetic character, and end with an alphanumeric character")


def wildcard_subdomain_errors(value: str) -> list[str]:
    return _format_errors(
        value, max_len=253, regex=_WILDCARD_RE, fmt=_WILDCARD_FMT, examples=("*.example.com",),
        msg="a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which "
            "must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric "
            "character")


def qualified_name_errors(value: str) -> list[str]:
    """IsQualifiedName / IsLabelKey: ``[prefix/]name`` with a DNS subdomain prefix."""
    return selectors.qualified_name_errors(
        value, noun="a valid label key", regex_error=regex_error, subdomain_errors=dns1123_subdomain_errors)


def label_value_errors(value: str) -> list[str]:
    return selectors.label_value_errors(value, regex_error=regex_error)


def port_name_errors(value: str) -> list[str]:
    """IsValidPortName: an IANA_SVC_NAME."""
    errs = [max_len_message(15)] if len(value) > 15 else []
    if not full_match(_PORT_NAME_CHARSET_RE, value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_LETTER_RE.search(value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def port_num_errors(value: int) -> list[str]:
    return [] if 1 <= value <= 65535 else [range_error(1, 65535)]


def config_map_key_errors(value: str) -> list[str]:
    errs = [max_len_message(253)] if len(value) > 253 else []
    if not full_match(_CONFIG_KEY_RE, value):
        errs.append(regex_error("a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                                _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def env_var_name_errors(value: str) -> list[str]:
    """IsRelaxedEnvVarName (RelaxedEnvironmentVariableValidation is on by default)."""
    if any(not (" " <= ch <= "~") or ch == "=" for ch in value):
        return ["a valid environment variable name must consist only of printable ASCII characters other than '='"]
    return []


def ip_errors(value: str) -> list[str]:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    return []


def mask_trailing_dash(name: str) -> str:
    """A generateName may end in '-': the generated suffix makes the final name valid."""
    return name[:-1] + "a" if len(name) > 1 and name.endswith("-") else name


NameFn = Callable[[str], list[str]]


def path_segment_errors(name: str) -> list[str]:
    """IsValidPathSegmentName: every name is also a URL path segment."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]
