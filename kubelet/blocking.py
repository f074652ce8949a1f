"""The kubelet's own thread pool: where every blocking engine and file-system call runs.

Data flow: ``kubelet.agent.Kubelet`` makes one ``BlockingPool`` and hands it (a ``RunBlocking``
callable: ``await run_blocking(fn, *args, **kw)``) to every part that blocks: the pod worker, the
node agent, the volume manager, the Service proxy, the probes' exec, the stats collector, the log
server and the streaming handlers. Not the event loop's default executor: a few long
``docker stop`` calls must never starve what else runs in threads there (aiohttp resolves the
apiserver's host name in it), and a quiet ``docker exec`` session must not hold a thread that the
loop needs. A long-lived log follow keeps a daemon thread of its own (``kubelet.server``).
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable

RunBlocking = Callable[..., Awaitable[Any]]


class BlockingPool:
    def __init__(self, max_workers: int, *, name: str = "runtime") -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)

    async def __call__(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args, **kw))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["BlockingPool", "RunBlocking"]
