"""Running a component process until SIGTERM or SIGINT: the one helper every ``minik8s`` command uses.

Data flow: ``run_until_signalled(lambda stop: main(settings, stop=stop))`` -> a fresh event loop
-> SIGTERM and SIGINT set ``stop`` -> ``main`` sees it and shuts down in its own way (a kubelet
leaves its containers running, a controller-manager cancels its controllers) -> the loop ends.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any, Callable, Coroutine


async def until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run ``work`` until it ends or ``stop`` is set (then cancel it); re-raise its failure."""
    task = asyncio.create_task(work)
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    for t in (task, waiter):
        t.cancel()
    await asyncio.gather(task, waiter, return_exceptions=True)
    if task in done and not task.cancelled():
        failure = task.exception()
        if failure is not None:
            raise failure


def run_until_signalled(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(_main())
