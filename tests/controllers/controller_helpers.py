"""Running one controller in process against the real apiserver, and waiting for what it does."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any, AsyncIterator, Awaitable, Callable

from controllers.manager import ControllerContext, ControllerManagerSettings
from machinery.client import ApiClient
from machinery.sharedinformers import InformerFactory


@asynccontextmanager
async def running(module: ModuleType, url: str, **settings: Any) -> AsyncIterator[ApiClient]:
    """``module.run(ctx)`` as a task with its own client and informers; cancelled on exit."""
    async with ApiClient(url) as client:
        factory = InformerFactory(client)
        ctx = ControllerContext(client, factory, ControllerManagerSettings(server=url, leader_elect=False, **settings))
        task = asyncio.create_task(module.run(ctx))
        try:
            # Yield only once the controller is running: its informers have listed (and what it
            # does at start, like the Endpoints controller's leftover sweep, has looked at that
            # list), so a test's first writes are seen as changes, never as start-up state.
            await asyncio.sleep(0)  # the task makes its informers
            await factory.wait_synced(timeout=30)
            await asyncio.sleep(0.05)
            yield client
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await factory.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
