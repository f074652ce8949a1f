"""The thin executor of a GitSync's plan: dry-run, apply, prune and roll back through the API server.

Data flow (one revision):
  ``resolve`` (discovery: each built object's resource, or the CRD of the same revision that
  defines it) -> ``validate`` (a server-side dry run of every object, in parallel; every failure is
  collected with its file, document, kind and name) -> ``apply`` (server-side apply under the
  ``minik8s-gitops`` field manager with force, in ``plan``'s order; CustomResourceDefinitions
  are waited for until Established before anything that follows them) -> ``prune`` (DELETE with
  the inventory's uid as precondition). ``rollback`` puts the objects of the previous revision back
  and deletes what the failed run created.

Validation dry-runs a server-side apply, so it checks what the real apply will meet (immutable
fields, admission, schemas), all before anything is written. Two cases cannot be dry-run as they
are, and get the nearest honest check instead:
- an object bound for a Namespace that the same revision creates: dry-run created in the GitSync's
  own namespace instead (validation does not depend on the namespace; AlreadyExists there means
  every check before storage passed);
- a custom object whose CustomResourceDefinition comes with the revision: its type is not served
  before the CRD is applied, so it is dry-run right after its CRD is Established, before any other
  object is applied; a failure then rolls the CRDs and Namespaces of the run back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence

from machinery import errors
from machinery.client import ApiClient, ApiResource

from .plan import FIELD_MANAGER, Desired, Entry, Failure, failure_of

log = logging.getLogger(__name__)


def _message(e: errors.ApiError) -> str:
    return e.message or e.reason


@dataclass
class Applier:
    client: ApiClient
    concurrency: int = 16
    crd_wait: float = 30.0
    writes: int = 0

    async def _bounded(self, jobs: Sequence[Callable[[], Awaitable[Failure | None]]]) -> list[Failure]:
        sem = asyncio.Semaphore(self.concurrency)

        async def run(job: Callable[[], Awaitable[Failure | None]]) -> Failure | None:
            async with sem:
                return await job()

        results = await asyncio.gather(*(run(j) for j in jobs))
        return [f for f in results if f is not None]

    async def dry_run(self, items: Sequence[tuple[Desired, ApiResource]], *, new_namespaces: set[str],
                      stand_in_namespace: str) -> list[Failure]:
        """Every failure of a server-side dry run of ``items`` (nothing is written)."""

        def job(d: Desired, res: ApiResource) -> Callable[[], Awaitable[Failure | None]]:
            async def run() -> Failure | None:
                try:
                    if res.namespaced and d.key.namespace in new_namespaces:
                        body = {**d.obj, "metadata": {**d.obj["metadata"], "namespace": stand_in_namespace}}
                        try:
                            await self.client.create(res, body, namespace=stand_in_namespace, dry_run=True,
                                                     field_validation="Strict")
                        except errors.AlreadyExistsError:
                            pass
                    else:
                        await self.client.patch(res, d.key.name, d.obj, namespace=d.key.namespace or None,
                                                patch_type="apply", dry_run=True, field_manager=FIELD_MANAGER,
                                                force=True, field_validation="Strict")
                except (errors.ServiceUnavailableError, errors.InternalError, errors.TimeoutError_,
                        errors.TooManyRequestsError):
                    raise  # the server could not check it: retried later, never a verdict on the revision
                except errors.ApiError as e:
                    return failure_of(d, _message(e))
                return None
            return run

        return await self._bounded([job(d, r) for d, r in items])

    async def apply_one(self, d: Desired, res: ApiResource) -> dict[str, Any]:
        live = await self.client.patch(res, d.key.name, d.obj, namespace=d.key.namespace or None,
                                       patch_type="apply", field_manager=FIELD_MANAGER, force=True,
                                       field_validation="Strict")
        self.writes += 1
        return live

    async def wait_established(self, res: ApiResource, name: str) -> None:
        deadline = time.monotonic() + self.crd_wait
        while True:
            crd = await self.client.get(res, name)
            conditions = (crd.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
                return
            if time.monotonic() > deadline:
                raise errors.TimeoutError_(message=f"CustomResourceDefinition {name} is not Established "
                                                        f"after {self.crd_wait:.0f}s")
            await asyncio.sleep(0.05)

    async def delete(self, entry: Entry, res: ApiResource) -> bool:
        """DELETE the inventory's object, only if its uid is still the one applied."""
        try:
            await self.client.delete(res, entry.name, namespace=entry.namespace or None,
                                     preconditions={"uid": entry.uid}, propagation_policy="Background")
            self.writes += 1
            return True
        except (errors.NotFoundError, errors.ConflictError):
            return False
