"""How simulated containers finish: their lifetime, exit code, restarts and the pod's phase, pure.

Role: lets the simulated kubelet run Jobs. A container is finite when

- the pod says so with annotations: ``simulated.minik8s.io/exit-after: "2s"`` (Go-style
  durations: ``500ms``, ``2s``, ``1m30s``; a bare number is seconds) and
  ``simulated.minik8s.io/exit-code: "1"`` (default 0), for every container, or per container with
  the container's name appended: ``simulated.minik8s.io/exit-after.worker``; or
- its command is recognisably finite: ``true`` (0), ``false`` (1), ``sleep N``, ``exit N``,
  ``echo ...``, ``date``, or ``sh -c``/``bash -c`` scripts made only of those joined by ``;``,
  ``&&`` or newlines (the sleeps add up; the last ``exit N`` or ``false`` gives the code).

Anything else (a server, ``while true``, no command at all) runs until the pod is deleted.

Data flow: the pod, the status ``running_status`` built (every container running) and ``now``
-> ``finish(pod, running, now)`` -> (the status with terminated/waiting containers, restart
counts, phase Succeeded/Failed and Ready conditions as a kubelet writes them, the seconds until
the next container event or None). ``restartPolicy`` decides: Never keeps a finished container
terminated; OnFailure restarts it after a non-zero exit; Always restarts it every time, after
Kubernetes' crash-loop backoff (10 s doubling, at most 5 min; the ``exit-restart-delay``
annotation shortens it for tests).
"""

from __future__ import annotations

import copy
import re
import shlex
from datetime import datetime, timedelta
from typing import Any

from kubelet.nodestatus import rfc3339
from machinery.timefmt import parse_time

Obj = dict[str, Any]
PREFIX = "simulated.minik8s.io/"
EXIT_AFTER = PREFIX + "exit-after"
EXIT_CODE = PREFIX + "exit-code"
RESTART_DELAY = PREFIX + "exit-restart-delay"
BACKOFF_BASE_S = 10.0
BACKOFF_MAX_S = 300.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_SHELLS = ("sh", "/bin/sh", "bash", "/bin/bash", "ash", "/bin/ash")


def parse_duration(text: str) -> float | None:
    """``2s``, ``500ms``, ``1m30s``, ``1h``; a bare number is seconds; None if unreadable."""
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * scale[match.group(2)]
        pos = match.end()
    return total if pos == len(text) and pos > 0 else None


def _statement(words: list[str]) -> tuple[float, int | None] | None:
    """(seconds, exit code or None to go on) of one simple shell command; None if not recognisably finite."""
    if not words:
        return 0.0, None
    name, args = words[0].rsplit("/", 1)[-1], words[1:]
    if name in ("true", ":"):
        return 0.0, None
    if name == "false":
        return 0.0, 1
    if name in ("echo", "date", "printf", "env", "hostname", "cat") and not (name == "cat" and not args):
        return 0.0, None
    if name == "sleep" and len(args) == 1:
        seconds = parse_duration(args[0])
        return (seconds, None) if seconds is not None else None
    if name == "exit":
        if not args:
            return 0.0, 0
        return (0.0, int(args[0]) % 256) if args[0].isdigit() else None
    return None


def _script(text: str) -> tuple[float, int] | None:
    total, code = 0.0, 0
    for line in re.split(r"\n|;|&&", text):
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            return None
        if any(w in ("|", "||", "&", "while", "for", "until", "if") for w in words):
            return None
        step = _statement(words)
        if step is None:
            return None
        total += step[0]
        if step[1] is not None:
            code = step[1]
            if words[0].rsplit("/", 1)[-1] == "exit":
                return total, code
            if code != 0:
                return total, code  # ``false;`` ends an ``&&`` chain and, under ``sh -e``, the script
    return total, code


def command_lifetime(container: Obj) -> tuple[float, int] | None:
    """(seconds, exit code) a container's command runs for, if recognisably finite."""
    argv = [str(a) for a in (container.get("command") or [])] + [str(a) for a in (container.get("args") or [])]
    if not argv:
        return None
    if argv[0].rsplit("/", 1)[-1] in [s.rsplit("/", 1)[-1] for s in _SHELLS]:
        flags = [a for a in argv[1:] if a.startswith("-")]
        rest = [a for a in argv[1:] if not a.startswith("-")]
        if any("c" in f for f in flags) and rest:
            return _script(rest[0])
        return None
    step = _statement(argv)
    if step is None:
        return None
    return step[0], step[1] or 0


def lifetime(pod: Obj, container: Obj) -> tuple[float, int] | None:
    """(seconds, exit code) of one container: the annotations first, then its command."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    name = str(container.get("name") or "")
    after = annotations.get(f"{EXIT_AFTER}.{name}", annotations.get(EXIT_AFTER))
    code_text = annotations.get(f"{EXIT_CODE}.{name}", annotations.get(EXIT_CODE))
    if after is not None:
        seconds = parse_duration(str(after))
        code = int(code_text) if isinstance(code_text, str) and code_text.strip().isdigit() else 0
        if seconds is not None:
            return seconds, code
    found = command_lifetime(container)
    if found is not None and isinstance(code_text, str) and code_text.strip().isdigit():
        return found[0], int(code_text)
    return found


def _backoff(pod: Obj, restarts: int) -> float:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    override = annotations.get(RESTART_DELAY)
    if isinstance(override, str) and parse_duration(override) is not None:
        return parse_duration(override) or 0.0
    return min(BACKOFF_BASE_S * 2 ** max(0, restarts - 1), BACKOFF_MAX_S)


def _restarts(policy: str, code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and code != 0)


def _set_conditions(status: Obj, previous: Obj, *, reason: str, message: str, stamp: str) -> None:
    """Ready and ContainersReady False (their transition time kept when they were False already)."""
    before = {c.get("type"): c for c in previous.get("conditions") or [] if isinstance(c, dict)}
    for c in status.get("conditions") or []:
        if c.get("type") in ("Ready", "ContainersReady"):
            old = before.get(c.get("type")) or {}
            since = old.get("lastTransitionTime") if old.get("status") == "False" else None
            c.update(status="False", reason=reason, message=message, lastTransitionTime=since or stamp)
            if not message:
                c.pop("message", None)


def finish(pod: Obj, running: Obj, now: datetime) -> tuple[Obj, float | None]:
    """The pod's status with its finite containers finished (see the module docstring), and when to look again."""
    status = copy.deepcopy(running)
    spec = pod.get("spec") or {}
    policy = str(spec.get("restartPolicy") or "Always")
    previous = {s.get("name"): s for s in (pod.get("status") or {}).get("containerStatuses") or []
                if isinstance(s, dict)}
    stamp = rfc3339(now)
    wake: list[float] = []
    finite = False
    for entry, container in zip(status.get("containerStatuses") or [], spec.get("containers") or []):
        life = lifetime(pod, container)
        if life is None:
            continue
        finite = True
        seconds, code = life
        old = previous.get(entry.get("name")) or {}
        old_state = old.get("state") or {}
        restarts = int(old.get("restartCount") or 0)
        entry["restartCount"] = restarts
        entry["lastState"] = copy.deepcopy(old.get("lastState") or {})
        if old_state.get("terminated"):
            entry.update(state=copy.deepcopy(old_state), ready=False, started=False)
            continue
        started = parse_time((entry.get("state") or {}).get("running", {}).get("startedAt")) or now
        if old_state.get("waiting"):
            last = parse_time(((old.get("lastState") or {}).get("terminated") or {}).get("finishedAt")) or now
            resume = last + timedelta(seconds=_backoff(pod, restarts))
            if now < resume:
                entry.update(state=copy.deepcopy(old_state), ready=False, started=False)
                wake.append((resume - now).total_seconds())
                continue
            started = now
            entry.update(state={"running": {"startedAt": stamp}}, ready=True, started=True)
        end = started + timedelta(seconds=seconds)
        if now < end:
            wake.append((end - now).total_seconds())
            continue
        terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                      "startedAt": rfc3339(started), "finishedAt": rfc3339(end),
                      "containerID": entry.get("containerID")}
        if _restarts(policy, code):
            entry.update(lastState={"terminated": terminated}, restartCount=restarts + 1, ready=False, started=False,
                         state={"waiting": {"reason": "CrashLoopBackOff", "message": (
                             f"back-off {int(_backoff(pod, restarts + 1))}s restarting failed "
                             f"container={entry.get('name')} pod={(pod.get('metadata') or {}).get('name')}")}})
            wake.append(max(0.0, (end + timedelta(seconds=_backoff(pod, restarts + 1)) - now).total_seconds()))
        else:
            entry.update(state={"terminated": terminated}, ready=False, started=False)
    if not finite:
        return status, None
    entries = status.get("containerStatuses") or []
    done = [e for e in entries if (e.get("state") or {}).get("terminated")]
    if entries and len(done) == len(entries):
        failed = any(e["state"]["terminated"].get("exitCode") != 0 for e in done)
        status["phase"] = "Failed" if failed else "Succeeded"
        _set_conditions(status, pod.get("status") or {}, reason="PodCompleted", message="", stamp=stamp)
        return status, None
    unready = [str(e.get("name")) for e in entries if not e.get("ready")]
    if unready:
        _set_conditions(status, pod.get("status") or {}, reason="ContainersNotReady",
                        message=f"containers with unready status: [{' '.join(unready)}]", stamp=stamp)
    return status, (min(wake) if wake else None)


def killed(pod: Obj, now: datetime) -> Obj:
    """The status of a deleted pod whose containers were stopped: running ones terminated with 137
    (SIGKILL), the phase Failed unless every container had exited 0 (the kubelet writes this
    terminal phase before it removes a pod, so controllers holding a finalizer see how it ended)."""
    status = copy.deepcopy(pod.get("status") or {})
    stamp = rfc3339(now)
    codes = []
    for entry in status.get("containerStatuses") or []:
        state = entry.get("state") or {}
        if not state.get("terminated"):
            started = (state.get("running") or {}).get("startedAt") or stamp
            entry["state"] = {"terminated": {"exitCode": 137, "reason": "Error", "startedAt": started,
                                             "finishedAt": stamp, "containerID": entry.get("containerID")}}
        entry.update(ready=False, started=False)
        codes.append(entry["state"]["terminated"].get("exitCode"))
    status["phase"] = "Succeeded" if codes and all(c == 0 for c in codes) else "Failed"
    _set_conditions(status, pod.get("status") or {}, reason="PodCompleted", message="", stamp=stamp)
    return status
