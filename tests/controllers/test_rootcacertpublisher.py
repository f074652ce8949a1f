"""Root CA publisher: what to write (pure), where the bundle comes from, and ConfigMap
``kube-root-ca.crt`` kept in every namespace of a real apiserver (created, recreated, corrected)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from controllers import rootcacertpublisher
from controllers.manager import ControllerManagerSettings
from controllers.rootcacertpublisher import CONFIGMAP_NAME, DESCRIPTION, DESCRIPTION_ANNOTATION, plan, root_ca_of
from machinery import errors
from machinery.kubeconfig import ClientConfig
from tests.controllers.controller_helpers import eventually, running

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
CONFIGMAPS = ("v1", "configmaps")


def _cm(data: dict[str, str], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": CONFIGMAP_NAME, "namespace": "a", "resourceVersion": "7",
                         "annotations": annotations if annotations is not None else {DESCRIPTION_ANNOTATION: "x"}},
            "data": data}


@pytest.mark.parametrize(("existing", "verb"), [
    (None, "create"),
    (_cm({"ca.crt": CA}), None),
    (_cm({"ca.crt": "old"}), "update"),
    (_cm({"ca.crt": CA, "extra": "1"}), "update"),
    (_cm({"ca.crt": CA}, annotations={}), "update"),
])
def test_plan(existing: dict[str, Any] | None, verb: str | None) -> None:
    action = plan("a", existing, CA)
    assert (action[0] if action else None) == verb
    if action:
        body = action[1]
        assert body["data"] == {"ca.crt": CA}
        assert body["metadata"]["name"] == CONFIGMAP_NAME and body["metadata"]["namespace"] == "a"
        assert body["metadata"]["annotations"][DESCRIPTION_ANNOTATION] == DESCRIPTION
        if existing is not None:
            assert body["metadata"]["resourceVersion"] == "7"  # an update keeps its precondition
            assert existing["data"] != body["data"] or existing["metadata"]["annotations"] == {}  # no mutation


def test_root_ca_sources(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(CA)
    assert root_ca_of(ControllerManagerSettings(root_ca_file=str(ca_file))) == CA
    # No --root-ca-file: the kubeconfig's CA, as kube-controller-manager; neither: nothing to publish.
    assert root_ca_of(ControllerManagerSettings(server=ClientConfig(server="https://x", ca_data=b"DATA"))) == "DATA"
    assert root_ca_of(ControllerManagerSettings(server=ClientConfig(server="https://x", ca_file=str(ca_file)))) == CA
    assert root_ca_of(ControllerManagerSettings(server="http://127.0.0.1:8080")) is None


async def test_every_namespace_gets_the_ca_back(apiserver: Any, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(CA)
    name = f"rootca-{uuid.uuid4().hex[:8]}"
    async with running(rootcacertpublisher, apiserver.url, root_ca_file=str(ca_file)) as client:
        await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

        async def published() -> bool:
            try:
                cm = await client.get(CONFIGMAPS, CONFIGMAP_NAME, namespace=name)
            except errors.NotFoundError:
                return False
            return cm.get("data") == {"ca.crt": CA} and \
                cm["metadata"]["annotations"].get(DESCRIPTION_ANNOTATION) == DESCRIPTION
        await eventually(published, what="kube-root-ca.crt in the new namespace")
        for ns in ("default", "kube-system"):  # namespaces that were there before
            assert (await client.get(CONFIGMAPS, CONFIGMAP_NAME, namespace=ns))["data"] == {"ca.crt": CA}
        await client.delete(CONFIGMAPS, CONFIGMAP_NAME, namespace=name)
        await eventually(published, what="kube-root-ca.crt recreated")
        cm = await client.get(CONFIGMAPS, CONFIGMAP_NAME, namespace=name)
        cm["data"] = {"ca.crt": "tampered"}
        cm["metadata"]["labels"] = {"keep": "me"}
        await client.update(CONFIGMAPS, cm, namespace=name)
        await eventually(published, what="kube-root-ca.crt corrected")
        assert (await client.get(CONFIGMAPS, CONFIGMAP_NAME, namespace=name))["metadata"]["labels"] == {"keep": "me"}
        await client.delete("namespaces", name)


async def test_no_ca_publishes_nothing(apiserver: Any) -> None:
    async with running(rootcacertpublisher, apiserver.url) as client:
        name = f"rootca-{uuid.uuid4().hex[:8]}"
        await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        await asyncio.sleep(0.5)  # the publisher (were it running) creates it within ~0.1 s
        with pytest.raises(errors.NotFoundError):
            await client.get(CONFIGMAPS, CONFIGMAP_NAME, namespace=name)
        await client.delete("namespaces", name)
