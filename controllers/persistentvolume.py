"""The PersistentVolume binder (Kubernetes' persistentvolume-binder controller): claims meet volumes.

Data flow: informers on PersistentVolumes, PersistentVolumeClaims and StorageClasses -> handlers
enqueue ``("pvc", namespace/name)`` and ``("pv", name)`` keys (a volume's change also wakes its
claim and the claims still Pending, a claim's deletion wakes its volume, a class change wakes the
Pending claims) -> one worker (as Kubernetes' claim and volume workers: two claims never race for
one volume) -> ``pvbinderplan.plan_claim`` / ``plan_volume`` (pure) -> the actions: each write is
``apply_action`` on the newest version of its object and a PUT (``/status`` for phases) with the
resourceVersion precondition; events; wakes. What this worker wrote is remembered until the
informer shows it (Kubernetes' "assume" cache), so the next claim does not see a volume free that
was just bound. A conflict looks again shortly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from controllers.manager import ControllerContext
from controllers.pvbinderplan import PV, PVC, Action, Event, Wake, Write, apply_action, plan_claim, plan_volume
from machinery import errors
from machinery.controller import Controller, Result
from machinery.volumematch import claim_key, claim_ref, meta, name, spec

log = logging.getLogger(__name__)

Obj = Mapping[str, Any]
PVS = ("v1", "persistentvolumes")
PVCS = ("v1", "persistentvolumeclaims")
CLASSES = ("storage.k8s.io/v1", "storageclasses")
_RESOURCES = {PV: PVS, PVC: PVCS}
_KINDS = {PV: "PersistentVolume", PVC: "PersistentVolumeClaim"}
Key = tuple[str, str]


def _rv(obj: Obj | None) -> int:
    try:
        return int(meta(obj or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class PersistentVolumeBinder:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.recorder = ctx.recorder("persistentvolume-controller")
        self.pvs = ctx.informers.informer(PVS)
        self.pvcs = ctx.informers.informer(PVCS)
        self.classes = ctx.informers.informer(CLASSES)
        self.controller: Controller[Key] = Controller("persistentvolume-binder", self.reconcile, workers=1)
        self.written: dict[Key, Obj] = {}  # our writes the informers have not shown yet
        self.pvs.add_handler(self._volume_changed, lambda _old, new: self._volume_changed(new), self._volume_deleted)
        self.pvcs.add_handler(self._claim_changed, lambda _old, new: self._claim_changed(new), self._claim_deleted)
        self.classes.add_handler(lambda _c: self._wake_pending(), lambda _o, _n: self._wake_pending(),
                                 lambda _c: self._wake_pending())

    # ------------------------------------------------------------------ handlers
    def _volume_changed(self, volume: Obj) -> None:
        self._caught_up((PV, name(volume)), volume)
        self.controller.enqueue((PV, name(volume)))
        ref = claim_ref(volume)
        if ref is not None:
            self.controller.enqueue((PVC, f"{ref.get('namespace') or ''}/{ref.get('name') or ''}"))
        if (volume.get("status") or {}).get("phase") == "Available":
            self._wake_pending()

    def _volume_deleted(self, volume: Obj) -> None:
        self.written.pop((PV, name(volume)), None)
        ref = claim_ref(volume)
        if ref is not None:
            self.controller.enqueue((PVC, f"{ref.get('namespace') or ''}/{ref.get('name') or ''}"))

    def _claim_changed(self, claim: Obj) -> None:
        self._caught_up((PVC, claim_key(claim)), claim)
        self.controller.enqueue((PVC, claim_key(claim)))

    def _claim_deleted(self, claim: Obj) -> None:
        self.written.pop((PVC, claim_key(claim)), None)
        volume = spec(claim).get("volumeName")
        if volume:
            self.controller.enqueue((PV, str(volume)))
        for pv in self.pvs.list():
            ref = claim_ref(pv)
            if ref is not None and ref.get("uid") == meta(claim).get("uid"):
                self.controller.enqueue((PV, name(pv)))

    def _wake_pending(self) -> None:
        for claim in self.pvcs.list():
            if not spec(claim).get("volumeName"):
                self.controller.enqueue((PVC, claim_key(claim)))

    def _caught_up(self, key: Key, seen: Obj) -> None:
        if key in self.written and _rv(seen) >= _rv(self.written[key]):
            del self.written[key]

    # ------------------------------------------------------------------ reads
    def _latest(self, key: Key) -> Obj | None:
        cached = (self.pvs if key[0] == PV else self.pvcs).get(key[1])
        mine = self.written.get(key)
        if cached is None:
            return None
        return mine if mine is not None and _rv(mine) > _rv(cached) else cached

    def _volumes(self) -> list[Obj]:
        return [self._latest((PV, name(v))) or v for v in self.pvs.list()]

    def _claims(self) -> dict[str, Obj]:
        return {claim_key(c): self._latest((PVC, claim_key(c))) or c for c in self.pvcs.list()}

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, key: Key) -> Result | None:
        obj = self._latest(key)
        if obj is None:
            return None
        if key[0] == PVC:
            classes = {name(c): c for c in self.classes.list()}
            actions = plan_claim(obj, self._volumes(), classes)
        else:
            actions = plan_volume(obj, self._claims())
        try:
            for action in actions:
                await self._act(action)
        except errors.ConflictError:
            return Result.after(0.2)  # a cache was behind: look again
        except errors.NotFoundError:
            return None
        return None

    async def _act(self, action: Action) -> None:
        if isinstance(action, Wake):
            self.controller.enqueue((PVC, action.key))
        elif isinstance(action, Event):
            obj = self._latest((action.kind, action.key))
            if obj is not None:
                await self.recorder.event({"apiVersion": "v1", "kind": _KINDS[action.kind], "metadata": meta(obj)},
                                          action.type, action.reason, action.message)
        elif isinstance(action, Write):
            key = (action.kind, action.key)
            current = self._latest(key)
            if current is None:
                raise errors.NotFoundError(message=f"{action.kind} {action.key} is gone")
            body = apply_action(action, current)
            if body is None:
                return
            body.setdefault("apiVersion", "v1")
            body.setdefault("kind", _KINDS[action.kind])
            write = self.client.update_status if action.status else self.client.update
            written = await write(_RESOURCES[action.kind], body)
            self.written[key] = written
            log.info("%s %s: %s", _KINDS[action.kind], action.key, action.op)

    async def run(self) -> None:
        for informer in (self.pvs, self.pvcs, self.classes):
            await informer.wait_synced()
        for volume in self.pvs.list():
            self.controller.enqueue((PV, name(volume)))
        for claim in self.pvcs.list():
            self.controller.enqueue((PVC, claim_key(claim)))
        await self.controller.run()


async def run(ctx: ControllerContext) -> None:
    binder = PersistentVolumeBinder(ctx)
    ctx.informers.start()
    await binder.run()
