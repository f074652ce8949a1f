"""ServiceAccount admission (plugin/pkg/admission/serviceaccount): a new pod's account and API token, pure.

Data flow on a pod create: ``default_account`` sets ``spec.serviceAccountName`` ("default" when
the pod names none; the deprecated ``spec.serviceAccount`` mirrors it, as the v1 API shows) ->
the caller looks the ServiceAccount up -> ``should_automount`` (the pod's
``automountServiceAccountToken`` wins, then the account's, default true) -> ``mount_token`` adds
Kubernetes' projected volume ``kube-api-access-<5 random>`` (a bound token of 3607 s at
``token``, ``ca.crt`` from the ConfigMap ``kube-root-ca.crt``, the pod's namespace from the
downward API; mode 0644) and mounts it read-only at ``/var/run/secrets/kubernetes.io/serviceaccount``
in every container and init container that does not mount something there already ->
``pull_secrets`` copies the account's ``imagePullSecrets`` to a pod that has none.

A pod naming an account that does not exist is refused (``missing_account``: 403
``error looking up service account ns/name: serviceaccount "name" not found``), except the
account ``default``: Kubernetes waits a moment for its controller to create it, minik8s admits
the pod at once (namespaces created a moment ago, in-process API servers without the
ServiceAccounts controller); its token is then fetched once the account exists.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, MutableMapping
from typing import Any

Obj = Mapping[str, Any]

DEFAULT_ACCOUNT = "default"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
# Kubernetes' WarnOnlyBoundTokenExpirationSeconds: a little over an hour, so that its use after the
# hour shows in the audit log as a stale token rather than failing.
TOKEN_EXPIRATION_SECONDS = 3607


def default_account(pod: MutableMapping[str, Any]) -> str:
    """The pod's account name, after defaulting (``serviceAccount`` is the v1 API's old name for it)."""
    spec = pod.setdefault("spec", {})
    name = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_ACCOUNT)
    spec["serviceAccountName"] = spec["serviceAccount"] = name
    return name


def missing_account(namespace: str, name: str) -> str:
    return f'error looking up service account {namespace}/{name}: serviceaccount "{name}" not found'


def should_automount(account: Obj | None, pod: Obj) -> bool:
    pod_choice = (pod.get("spec") or {}).get("automountServiceAccountToken")
    if pod_choice is not None:
        return bool(pod_choice)
    account_choice = (account or {}).get("automountServiceAccountToken")
    return True if account_choice is None else bool(account_choice)


def token_volume(name: str) -> dict[str, Any]:
    """Kubernetes' TokenVolumeSource: the token, the cluster's CA and the namespace in one volume."""
    return {"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}


def mount_token(pod: MutableMapping[str, Any], *, suffix: str) -> bool:
    """Mount the token volume (an existing ``kube-api-access-*`` volume, else a new one named with
    ``suffix``) in every container and init container that needs it; whether anything changed."""
    spec = pod.setdefault("spec", {})
    volumes = spec.get("volumes") or []
    existing = next((str(v.get("name")) for v in volumes if str(v.get("name") or "").startswith(VOLUME_PREFIX)), None)
    name = existing or VOLUME_PREFIX + suffix
    mounted = False
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            mounts = container.setdefault("volumeMounts", [])
            if any(m.get("mountPath") == TOKEN_MOUNT_PATH for m in mounts):
                continue
            mounts.append({"name": name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH})
            mounted = True
        for container in spec.get(key) or []:
            if not container.get("volumeMounts"):
                container.pop("volumeMounts", None)  # no empty list where the client sent none
    if mounted and existing is None:
        spec["volumes"] = [*volumes, token_volume(name)]
    return mounted


def pull_secrets(pod: MutableMapping[str, Any], account: Obj | None) -> None:
    spec = pod.setdefault("spec", {})
    if not spec.get("imagePullSecrets") and (account or {}).get("imagePullSecrets"):
        spec["imagePullSecrets"] = copy.deepcopy(list((account or {})["imagePullSecrets"]))
