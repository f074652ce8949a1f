"""Go ``regexp`` (RE2 syntax) patterns for CRD ``pattern`` keywords, evaluated with Python's ``re``.

Role: a CRD schema's ``pattern`` is compiled by Go's ``regexp.Compile`` when the CRD is written (an
error rejects the CRD with Go's own message) and matched with ``MatchString`` (unanchored: ``^`` and
``$`` are only there if the author wrote them) on every write of a custom object. This module parses
the RE2 syntax, reports Go's error text (``error parsing regexp: invalid or unsupported Perl
syntax: `(?=```), and translates a valid pattern into an equivalent Python pattern.

Data flow: ``compile_go(pattern)`` -> ``GoRegexError`` (the CRD is invalid) or a ``GoPattern`` whose
``matches(text)`` is ``MatchString``.

Translation keeps RE2's meaning where Python's differs: ``\\d \\w \\s \\b`` are ASCII, ``$`` without
``(?m)`` is the very end of the text (Python's ``$`` also matches before a final newline),
``{,n}`` is a literal, flags set mid-group (``a(?i)b``) last to the end of the group, POSIX classes
(``[[:alpha:]]``), ``\\Q...\\E``, octal and ``\\x{...}`` escapes. Unicode classes (``\\pL``) and the
ungreedy flag ``U`` have no ``re`` equivalent: such a valid pattern is accepted and not enforced
(``GoPattern.enforced`` is False), never wrongly rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_REPEAT_MAX = 1000
_PERL = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}
_POSIX = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ", "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9", "graph": "!-~", "lower": "a-z", "print": " -~", "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z", "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}
_SIMPLE_ESCAPES = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
_WORD = "[0-9A-Za-z_]"
_COUNT = re.compile(r"\{(\d+)(,(\d*))?\}")


class GoRegexError(ValueError):
    """What ``regexp.Compile`` returns, worded as Go words it."""

    def __init__(self, code: str, expr: str) -> None:
        super().__init__(f"error parsing regexp: {code}: `{expr}`")


class _Unsupported(Exception):
    """A valid RE2 construct that Python's ``re`` cannot express."""


@dataclass(frozen=True)
class GoPattern:
    source: str
    regex: re.Pattern[str] | None  # None: valid in Go, not expressible in ``re``: not enforced

    @property
    def enforced(self) -> bool:
        return self.regex is not None

    def matches(self, text: str) -> bool:
        """``MatchString``: does the pattern match anywhere in ``text``."""
        return self.regex is None or self.regex.search(text) is not None


def _lit(code: int) -> str:
    return re.escape(chr(code))


class _Translator:
    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.pos = 0
        self.out: list[str] = []
        # One frame per open group: the scoped flag groups opened inside it and its multiline state.
        self.frames: list[tuple[list[str], bool]] = [([], False)]
        self.names: set[str] = set()
        self.can_repeat = False  # is there an atom before the current position
        self.last_repeat = -1  # source index where the previous repetition operator began

    # ------------------------------------------------------------------ helpers
    def peek(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.src[i] if i < len(self.src) else ""

    def multiline(self) -> bool:
        return self.frames[-1][1]

    # ------------------------------------------------------------------ main loop
    def run(self) -> str:
        src = self.src
        while self.pos < len(src):
            c = src[self.pos]
            count = self.repeat_count() if c == "{" else None
            if c in "*+?":
                self.repeat(self.pos + 1)
                continue
            if count is not None:
                end, lo, hi = count
                if lo > _REPEAT_MAX or (hi is not None and (hi > _REPEAT_MAX or hi < lo)):
                    raise GoRegexError("invalid repeat count", src[self.pos:end])
                self.repeat(end)
                continue
            self.last_repeat = -1
            if c == "(":
                self.group()
            elif c == ")":
                self.close_group()
            elif c == "|":
                self.pos += 1
                pending = self.frames[-1][0]
                self.out.append(")" * len(pending) + "|" + "".join(pending))
                self.can_repeat = False
            elif c == "[":
                self.char_class()
                self.can_repeat = True
            elif c == "\\":
                self.escape()
            elif c == "$":
                self.pos += 1
                self.out.append("$" if self.multiline() else "\\Z")
                self.can_repeat = True
            elif c == "^" or c == ".":
                self.pos += 1
                self.out.append(c)
                self.can_repeat = True
            else:
                self.pos += 1
                self.out.append(_lit(ord(c)))
                self.can_repeat = True
        if len(self.frames) > 1:
            raise GoRegexError("missing closing )", src)
        self.out.append(")" * len(self.frames[0][0]))
        return "".join(self.out)

    def repeat(self, end: int) -> None:
        """A repetition operator ``src[pos:end]`` (``*``, ``{2,3}``), with an optional non-greedy ``?``."""
        src, start = self.src, self.pos
        if src[end:end + 1] == "?":
            end += 1
        if self.last_repeat >= 0:
            raise GoRegexError("invalid nested repetition operator", src[self.last_repeat:end])
        if not self.can_repeat:
            raise GoRegexError("missing argument to repetition operator", src[start:end])
        self.out.append(src[start:end])
        self.pos = end
        self.last_repeat = start

    def repeat_count(self) -> tuple[int, int, int | None] | None:
        m = _COUNT.match(self.src, self.pos)
        if not m:
            return None
        lo = int(m.group(1))
        hi: int | None = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
        return m.end(), lo, hi

    # ------------------------------------------------------------------ groups
    def group(self) -> None:
        src, start = self.src, self.pos
        rest = src[start:]
        if not rest.startswith("(?"):
            self.pos += 1
            self.open_frame("(")
            return
        if rest.startswith("(?P<") or rest.startswith("(?<"):
            name_start = 4 if rest.startswith("(?P<") else 3
            end = rest.find(">")
            if end < 0:
                raise GoRegexError("invalid named capture", rest)
            name = rest[name_start:end]
            if not name or not re.fullmatch(r"[0-9A-Za-z_]+", name):
                raise GoRegexError("invalid named capture", rest[:end + 1])
            if name in self.names:
                raise GoRegexError("duplicate capture group name", name)
            self.names.add(name)
            self.pos = start + end + 1
            self.open_frame(f"(?P<{name}>")
            return
        i = start + 2
        on, off, negate, saw = "", "", False, False
        while i < len(src):
            c = src[i]
            i += 1
            if c in "imsU":
                if c == "U":
                    raise _Unsupported("ungreedy flag")
                if negate:
                    off += c
                else:
                    on += c
                saw = True
            elif c == "-" and not negate:
                negate, saw = True, False
            elif c in ":)" and not (negate and not saw):
                flags = on + ("-" + off if off else "")
                multiline = ("m" in on) or (self.multiline() and "m" not in off)
                self.pos = i
                if c == ":":
                    self.open_frame(f"(?{flags}:" if flags else "(?:", multiline=multiline)
                elif flags:
                    opener = f"(?{flags}:"
                    self.out.append(opener)
                    pending, _ = self.frames[-1]
                    pending.append(opener)
                    self.frames[-1] = (pending, multiline)
                return
            else:
                break
        raise GoRegexError("invalid or unsupported Perl syntax", src[start:i])

    def open_frame(self, opener: str, *, multiline: bool | None = None) -> None:
        self.out.append(opener)
        self.frames.append(([], self.multiline() if multiline is None else multiline))
        self.can_repeat = False

    def close_group(self) -> None:
        if len(self.frames) == 1:
            raise GoRegexError("unexpected )", self.src)
        pending, _ = self.frames.pop()
        self.out.append(")" * len(pending) + ")")
        self.pos += 1
        self.can_repeat = True

    # ------------------------------------------------------------------ escapes
    def escape(self) -> None:
        src, start = self.src, self.pos
        c = self.peek(1)
        if c == "":
            raise GoRegexError("trailing backslash at end of expression", "")
        if c in "AzbB":
            self.pos += 2
            self.out.append({"A": "\\A", "z": "\\Z",
                             "b": f"(?:(?<={_WORD})(?!{_WORD})|(?<!{_WORD})(?={_WORD}))",
                             "B": f"(?:(?<={_WORD})(?={_WORD})|(?<!{_WORD})(?!{_WORD}))"}[c])
            self.can_repeat = True
            return
        if c == "Q":
            end = src.find("\\E", start + 2)
            text = src[start + 2:] if end < 0 else src[start + 2:end]
            self.pos = len(src) if end < 0 else end + 2
            if text:
                self.out.append("(?:" + re.escape(text) + ")")
                self.can_repeat = True
            return
        if c in "dDsSwW":
            self.pos += 2
            cls = _PERL[c.lower()]
            self.out.append(f"[{cls}]" if c.islower() else f"[^{cls}]")
            self.can_repeat = True
            return
        if c in "pP":
            self.unicode_class()
            raise _Unsupported("unicode class")
        code = self.escape_char()
        self.out.append(_lit(code))
        self.can_repeat = True

    def unicode_class(self) -> None:
        src, start = self.src, self.pos
        if self.peek(2) == "{":
            end = src.find("}", start)
            if end < 0:
                raise GoRegexError("invalid character class range", src[start:])
            self.pos = end + 1
        elif self.peek(2):
            self.pos += 3
        else:
            raise GoRegexError("invalid character class range", src[start:])

    def escape_char(self) -> int:
        """One escaped character (``\\n``, ``\\x41``, ``\\101``, ``\\.``); consumes it and returns its code."""
        src, start = self.src, self.pos
        c = self.peek(1)
        if "1" <= c <= "7" and not ("0" <= self.peek(2) <= "7"):
            raise GoRegexError("invalid escape sequence", src[start:start + 2])
        if "0" <= c <= "7":
            m = re.compile("[0-7]{1,3}").match(src, start + 1)
            assert m is not None
            self.pos = m.end()
            return int(m.group(), 8)
        if c == "x":
            m = re.compile(r"x(\{([0-9A-Fa-f]+)\}|([0-9A-Fa-f]{2}))").match(src, start + 1)
            if not m or int(m.group(2) or m.group(3), 16) > 0x10FFFF:
                raise GoRegexError("invalid escape sequence", src[start:start + 2 + (len(m.group(1)) if m else 0)])
            self.pos = m.end()
            return int(m.group(2) or m.group(3), 16)
        if c in _SIMPLE_ESCAPES:
            self.pos += 2
            return _SIMPLE_ESCAPES[c]
        if ord(c) < 0x80 and not c.isalnum():
            self.pos += 2
            return ord(c)
        raise GoRegexError("invalid escape sequence", src[start:start + 2])

    # ------------------------------------------------------------------ classes
    def char_class(self) -> None:
        src, start = self.src, self.pos
        self.pos += 1
        parts: list[str] = []
        negated = self.peek() == "^"
        if negated:
            self.pos += 1
        first = True
        while first or self.peek() != "]":
            if self.pos >= len(src):
                raise GoRegexError("missing closing ]", src[start:])
            first = False
            if src.startswith("[:", self.pos) and src.find(":]", self.pos + 2) >= 0:
                end = src.find(":]", self.pos + 2)
                name = src[self.pos + 2:end]
                if name.lstrip("^") not in _POSIX:
                    raise GoRegexError("invalid character class range", src[self.pos:end + 2])
                if name.startswith("^"):
                    raise _Unsupported("negated POSIX class")
                parts.append(_POSIX[name])
                self.pos = end + 2
                continue
            if self.peek() == "\\" and self.peek(1) in "dDsSwW":
                c = self.peek(1)
                parts.append(_PERL[c] if c.islower() else {"d": "\\D", "s": "\\S", "w": "\\W"}[c.lower()])
                self.pos += 2
                continue
            if self.peek() == "\\" and self.peek(1) in "pP":
                self.unicode_class()
                raise _Unsupported("unicode class")
            range_start = self.pos
            lo = self.class_char(start)
            hi = lo
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.pos += 1
                hi = self.class_char(start)
                if hi < lo:
                    raise GoRegexError("invalid character class range", src[range_start:self.pos])
            parts.append(_lit(lo) + ("" if hi == lo else "-" + _lit(hi)))
        self.pos += 1
        self.out.append("[" + ("^" if negated else "") + "".join(parts) + "]")

    def class_char(self, class_start: int) -> int:
        if self.pos >= len(self.src):
            raise GoRegexError("missing closing ]", self.src[class_start:])
        if self.peek() == "\\":
            return self.escape_char()
        self.pos += 1
        return ord(self.src[self.pos - 1])


@lru_cache(maxsize=1024)
def compile_go(pattern: str) -> GoPattern:
    """``regexp.Compile``: a GoPattern, or GoRegexError with Go's message for an invalid pattern."""
    try:
        translated = _Translator(pattern).run()
    except _Unsupported:
        return GoPattern(pattern, None)
    try:
        return GoPattern(pattern, re.compile(translated))
    except re.error:
        return GoPattern(pattern, None)


def go_regex_error(pattern: str) -> str | None:
    """Go's compile error for ``pattern``, or None when it compiles."""
    try:
        compile_go(pattern)
    except GoRegexError as err:
        return str(err)
    return None
