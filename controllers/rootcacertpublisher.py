"""Root CA certificate publisher: ConfigMap ``kube-root-ca.crt`` (key ``ca.crt``) in every namespace.

After Kubernetes' pkg/controller/certificates/rootcacertpublisher. Pods verify the API server with
it: ServiceAccount admission projects its ``ca.crt`` next to the pod's token, where
``load_incluster_config()`` reads it.

Data flow: the CA bundle is read once at start (``--root-ca-file`` / MINIK8S_ROOT_CA_FILE, else the
CA of the controller-manager's own kubeconfig, as kube-controller-manager does; neither: the
controller does nothing) -> the namespaces informer (added, or updated while Active) and the
``kube-root-ca.crt`` ConfigMaps informer (updated or deleted) enqueue the namespace ->
``reconcile(namespace)`` -> ``plan`` (pure): create the ConfigMap when missing; when its data or
the ``kubernetes.io/description`` annotation differs, update it back to the bundle (other
annotations and labels kept). A create refused because the namespace is gone or terminating is
not retried.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from machinery import errors
from machinery.controller import Controller, Result
from machinery.informer import Obj
from machinery.kubeconfig import ClientConfig

from .manager import ControllerContext, ControllerManagerSettings

log = logging.getLogger(__name__)

NAMESPACES = ("v1", "namespaces")
CONFIGMAPS = ("v1", "configmaps")
CONFIGMAP_NAME = "kube-root-ca.crt"
CA_KEY = "ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


def desired_configmap(namespace: str, root_ca: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP_NAME, "namespace": namespace,
                         "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
            "data": {CA_KEY: root_ca}}


def plan(namespace: str, existing: Obj | None, root_ca: str) -> tuple[str, Obj] | None:
    """("create" | "update", body) to make the namespace's ConfigMap right, or None (pure)."""
    if existing is None:
        return "create", desired_configmap(namespace, root_ca)
    annotations = (existing.get("metadata") or {}).get("annotations") or {}
    if (existing.get("data") or {}) == {CA_KEY: root_ca} and annotations.get(DESCRIPTION_ANNOTATION):
        return None
    body = copy.deepcopy(dict(existing))
    body["data"] = {CA_KEY: root_ca}
    body.pop("binaryData", None)
    meta = body.setdefault("metadata", {})
    meta["annotations"] = {**(meta.get("annotations") or {}), DESCRIPTION_ANNOTATION: DESCRIPTION}
    return "update", body


def root_ca_of(settings: ControllerManagerSettings) -> str | None:
    """The bundle to publish: ``root_ca_file``, else the CA of the controller-manager's kubeconfig."""
    if settings.root_ca_file:
        return Path(settings.root_ca_file).read_text()
    server = settings.server
    if isinstance(server, ClientConfig):
        if server.ca_data:
            return server.ca_data.decode()
        if server.ca_file:
            return Path(server.ca_file).read_text()
    return None


def _terminating(e: errors.ApiError) -> bool:
    return any(c.reason == "NamespaceTerminating" for c in e.causes)


class RootCACertPublisher:
    def __init__(self, ctx: ControllerContext, root_ca: str) -> None:
        self.client = ctx.client
        self.root_ca = root_ca
        self.namespaces = ctx.informers.informer(NAMESPACES)
        self.configmaps = ctx.informers.informer(CONFIGMAPS, field_selector=f"metadata.name={CONFIGMAP_NAME}")
        self.controller: Controller[str] = Controller("root-ca-cert-publisher", self.reconcile,
                                                      workers=ctx.settings.workers)
        self.namespaces.add_handler(self._on_namespace, self._on_namespace_updated, None)
        self.configmaps.add_handler(None, lambda _old, new: self._on_configmap(new), self._on_configmap)

    def _on_namespace(self, ns: Obj) -> None:
        self.controller.enqueue(str((ns.get("metadata") or {}).get("name") or ""))

    def _on_namespace_updated(self, _old: Obj, new: Obj) -> None:
        if (new.get("status") or {}).get("phase", "Active") == "Active":
            self._on_namespace(new)

    def _on_configmap(self, cm: Obj) -> None:
        meta = cm.get("metadata") or {}
        if meta.get("name") == CONFIGMAP_NAME and meta.get("namespace"):
            self.controller.enqueue(str(meta["namespace"]))

    async def reconcile(self, namespace: str) -> Result | None:
        ns = self.namespaces.get(namespace)
        if ns is None:
            return None
        action = plan(namespace, self.configmaps.get(f"{namespace}/{CONFIGMAP_NAME}"), self.root_ca)
        if action is None:
            return None
        verb, body = action
        try:
            if verb == "create":
                await self.client.create(CONFIGMAPS, body, namespace=namespace)
                log.info("published %s in namespace %s", CONFIGMAP_NAME, namespace)
            else:
                await self.client.update(CONFIGMAPS, body, namespace=namespace)
                log.info("corrected %s in namespace %s", CONFIGMAP_NAME, namespace)
        except errors.NotFoundError:
            return None  # the namespace (or, for an update, the ConfigMap: its delete enqueues again) is gone
        except errors.AlreadyExistsError:
            return None  # the cache was behind; its add event comes
        except errors.ForbiddenError as e:
            if _terminating(e):
                return None
            raise
        return None


async def run(ctx: ControllerContext) -> None:
    root_ca = root_ca_of(ctx.settings)
    if not root_ca:
        log.info("no root CA (--root-ca-file, or a CA in the kubeconfig): not publishing %s", CONFIGMAP_NAME)
        return
    ctl = RootCACertPublisher(ctx, root_ca)
    ctx.informers.start()
    await ctl.namespaces.wait_synced()
    await ctl.configmaps.wait_synced()
    await ctl.controller.run()


__all__ = ["CA_KEY", "CONFIGMAP_NAME", "DESCRIPTION", "DESCRIPTION_ANNOTATION", "RootCACertPublisher",
           "desired_configmap", "plan", "root_ca_of", "run"]
