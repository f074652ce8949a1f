"""py-spy around a block of a benchmark: which functions of a running process dominate under load.

Data flow: ``with Profiles(pids, ("apiserver", "kubelet"), out=DIR, label=..., enabled=...)`` starts
``py-spy record --format raw`` (collapsed stacks of the active threads, 100 samples/s) on each named
process -> the block runs its load -> SIGINT makes py-spy write its file -> ``profile_summary``
prints how many samples, the functions most often on top of the stack (self time) and this
project's functions most often anywhere on it (inclusive). py-spy is a PyPI package the project
does not depend on: without it a benchmark says so and runs unprofiled.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

OURS = ("apiserver/", "kubelet/", "machinery/")


class Profiles:
    """``with Profiles(...)``: py-spy records the named processes (raw collapsed stacks, active threads
    only, 100 samples/s) while the block runs, then prints what dominated. Does nothing unless enabled."""

    def __init__(self, pids: dict[str, int], who: tuple[str, ...], *, out: Path, label: str, enabled: bool) -> None:
        self.pids, self.who, self.out, self.label = pids, who, out, label
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if enabled and not os.path.exists(spy):
            print("--profile: py-spy is not installed (pip install py-spy)", file=sys.stderr)
        self.spy = spy if enabled and os.path.exists(spy) else None
        self.procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}

    def __enter__(self) -> "Profiles":
        self.t0 = time.monotonic()
        for name in self.who if self.spy else ():
            path = self.out / f"profile-{name}-{len(list(self.out.glob('profile-*')))}.txt"
            self.procs[name] = (subprocess.Popen([str(self.spy), "record", "-p", str(self.pids[name]), "-r", "100",
                                                  "-f", "raw", "-o", str(path), "--nonblocking"],
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), path)
        return self

    def __exit__(self, *exc: object) -> None:
        seconds = time.monotonic() - self.t0
        for name, (proc, path) in self.procs.items():
            proc.send_signal(signal.SIGINT)  # py-spy writes its file and exits
            try:
                proc.wait(30)
                text = path.read_text(errors="replace")
            except (subprocess.TimeoutExpired, OSError) as e:
                proc.kill()
                text = ""
                print(f"py-spy of {name} failed: {e}", file=sys.stderr)
            print(f"py-spy {name}, {self.label}:\n{profile_summary(text, seconds)}", flush=True)


def profile_summary(raw: str, seconds: float, top: int = 6) -> str:
    """From py-spy's raw stacks: how busy, the functions most often on top of the stack (self), and
    this project's functions most often anywhere on it (inclusive)."""
    leaves: dict[str, int] = {}
    ours: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + n
        for f in {f.rsplit(":", 1)[0] + ")" for f in frames if any(p in f for p in OURS)}:
            ours[f] = ours.get(f, 0) + n

    def best(d: dict[str, int]) -> list[str]:
        return [f"    {100 * n / max(1, total):5.1f} %  {f}" for f, n in sorted(d.items(), key=lambda x: -x[1])[:top]]
    return "\n".join([f"  {total} samples of active threads in {seconds:.1f} s at 100/s "
                      f"(100/s = one thread busy all the time); on top of the stack:", *best(leaves),
                      "  this project's functions anywhere on the stack:", *best(ours)])
