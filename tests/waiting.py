"""The one polling helper of the tests: wait until a check returns something truthy.

``wait_for(check, timeout, what, diagnose)`` calls ``check`` every ``interval`` seconds and
returns its first truthy result; when time runs out it fails with ``what``, the last result and
``diagnose()`` (component logs, say). Transport errors (``retry_on``) count as "not yet", so a
check may talk to a component that is restarting.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import httpx


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition",
             diagnose: Callable[[], str] = lambda: "", *, interval: float = 0.2,
             retry_on: tuple[type[BaseException], ...] = (httpx.TransportError, ConnectionError)) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except retry_on as e:
            last = e
        if last and not isinstance(last, BaseException):
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}\n{diagnose()}")
        time.sleep(interval)


__all__ = ["wait_for"]
