"""A small kopf operator for tests/e2e/test_kopf.py: ``Greeting`` objects get a ConfigMap each.

Run as ``kopf run --standalone --namespace NS tests/e2e/operators/greetings.py`` with
``GREETINGS_GROUP`` naming the CRD's group (each test run makes its own). Data flow: kopf lists
and watches ``greetings.<group>``; on create the handler (at its second attempt: the first one
fails temporarily) writes a ConfigMap ``<name>-greeting`` owned by the object and reports it in
``status``; on an update of ``spec.message`` it rewrites the ConfigMap and appends the change to
``status.history``; on delete (kopf holds its finalizer until then) it removes the ConfigMap.
Every handler also posts an Event of its own (``kopf.info``), and the operator turns on kopf's
posting of handler log lines as Events (reason ``Logging``, e.g. "Handler 'create_fn'
succeeded.", of type ``Error`` for the failed attempt).

The handlers talk to the apiserver with the official ``kubernetes`` client, configured from the
same kubeconfig (``KUBECONFIG``) that kopf logs in with.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

GROUP = os.environ.get("GREETINGS_GROUP", "greetings.example.com")
VERSION = "v1"
PLURAL = "greetings"


def _core() -> client.CoreV1Api:
    config.load_kube_config()
    return client.CoreV1Api()


def _configmap(name: str, message: str, body: kopf.Body) -> dict[str, Any]:
    cm: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": f"{name}-greeting"},
                          "data": {"greeting": f"{message}, {body.spec.get('to', 'world')}!"}}
    kopf.adopt(cm, owner=body)  # ownerReferences (controller: true), namespace and labels of the owner
    return cm


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.loggers = True          # handler log lines become Events (reason "Logging")
    settings.posting.level = logging.INFO


@kopf.on.create(GROUP, VERSION, PLURAL)
def create_fn(retry: int, spec: kopf.Spec, name: str, namespace: str, body: kopf.Body,
              logger: logging.Logger, patch: kopf.Patch, **_: Any) -> dict[str, Any]:
    if retry == 0:
        # As a handler waiting for something external does: kopf records the attempt in its progress
        # annotation, reports the failure (an Event of type Error) and calls the handler again.
        raise kopf.TemporaryError("not ready yet", delay=1)
    message = spec.get("message", "hello")
    cm = _configmap(name, message, body)
    _core().create_namespaced_config_map(namespace, cm)
    logger.info(f"created configmap {cm['metadata']['name']}")
    kopf.info(body, reason="Greeted", message=f"greeting {message!r} written to {cm['metadata']['name']}")
    patch.status["phase"] = "Ready"
    patch.status["message"] = message
    return {"configmap": cm["metadata"]["name"]}  # kopf stores it as status.create_fn


@kopf.on.update(GROUP, VERSION, PLURAL, field="spec.message")
def update_fn(old: Any, new: Any, name: str, namespace: str, body: kopf.Body, status: kopf.Status,
              logger: logging.Logger, patch: kopf.Patch, **_: Any) -> None:
    cm = _configmap(name, new, body)
    _core().patch_namespaced_config_map(cm["metadata"]["name"], namespace, {"data": cm["data"]})
    logger.info(f"message changed from {old!r} to {new!r}")
    kopf.info(body, reason="Regreeted", message=f"greeting changed from {old!r} to {new!r}")
    patch.status["message"] = new
    patch.status["history"] = [*status.get("history", []), {"from": old, "to": new}]


@kopf.on.delete(GROUP, VERSION, PLURAL)
def delete_fn(name: str, namespace: str, body: kopf.Body, logger: logging.Logger, **_: Any) -> None:
    try:
        _core().delete_namespaced_config_map(f"{name}-greeting", namespace)
    except ApiException as e:
        if e.status != 404:
            raise
    logger.info(f"deleted configmap {name}-greeting")
    kopf.info(body, reason="Cleaned", message=f"configmap {name}-greeting deleted")
