"""The GitSync kind: its CustomResourceDefinition, installed by the reconciler when it is missing.

Data flow: ``minik8s gitops`` starts -> ``ensure_crd`` server-side applies ``CRD`` (creating it, or
bringing an older schema up to date; nothing changes when it is current) -> waits until the
resource is served -> the reconciler lists and
watches GitSync objects like any other resource. The schema carries the defaults (interval 15s,
prune and self-heal on), so a GitSync read back from the API server is complete.
"""

from __future__ import annotations

from typing import Any

GROUP = "gitops.minik8s.io"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "GitSync"
PLURAL = "gitsyncs"
RESOURCE = (API_VERSION, PLURAL)
CRD_NAME = f"{PLURAL}.{GROUP}"

_REF = {"type": "object", "description": "The Git reference to follow: exactly one of branch, tag or commit.",
        "properties": {"branch": {"type": "string", "description": "A branch, e.g. main."},
                       "tag": {"type": "string", "description": "A tag, e.g. v1.2.0."},
                       "commit": {"type": "string", "pattern": "^[0-9a-f]{40}$",
                                  "description": "A full commit SHA."}}}
_SECRET_REF = {"type": "object", "required": ["name"],
               "properties": {"name": {"type": "string", "description": "A Secret in the GitSync's namespace."}}}
_CONDITION = {"type": "object", "required": ["type", "status"], "properties": {
    "type": {"type": "string"}, "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
    "reason": {"type": "string"}, "message": {"type": "string"},
    "lastTransitionTime": {"type": "string", "format": "date-time"},
    "observedGeneration": {"type": "integer"}}}
_INVENTORY_ENTRY = {"type": "object", "properties": {
    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "namespace": {"type": "string"},
    "name": {"type": "string"}, "uid": {"type": "string"},
    "fields": {"type": "string", "description": "A hash of this GitSync's managed fields of the object "
                                                 "right after it was applied: drift changes them."},
    "health": {"type": "string"}}}
_RUN = {"type": "object", "properties": {
    "revision": {"type": "string"}, "result": {"type": "string"}, "startedAt": {"type": "string"},
    "durationSeconds": {"type": "number"}, "writes": {"type": "integer"}, "message": {"type": "string"}}}
_ERROR = {"type": "object", "properties": {
    "file": {"type": "string"}, "document": {"type": "integer"}, "kind": {"type": "string"},
    "name": {"type": "string"}, "message": {"type": "string"}}}
_CHANGE = {"type": "object", "properties": {
    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "namespace": {"type": "string"},
    "name": {"type": "string"},
    "action": {"type": "string", "enum": ["create", "update", "prune"]},
    "reason": {"type": "string", "description": "create, manifest changed, drift, ... or no longer in Git."},
    "note": {"type": "string", "description": "Why the next sync will not make this change, when it will not."},
    "diff": {"type": "string", "description": "A unified diff of the live object against the server's "
                                               "dry-run answer to the apply, server-set fields left out."}}}
_NEXT_SYNC = {"type": "object", "description": "What the next sync would change (the console draws it).",
              "properties": {
                  "revision": {"type": "string"},
                  "summary": {"type": "string", "description": "create N / update N / prune N."},
                  "blocked": {"type": "string", "description": "Why the next sync will not apply the revision."},
                  "changes": {"type": "array", "items": _CHANGE}}}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "GitSync keeps the objects in a folder of a Git repository applied to the cluster.",
    "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {
            "type": "object", "required": ["url"],
            "properties": {
                "url": {"type": "string", "description": "The repository: https://, http://, ssh://, git@host:path, "
                                                         "git:// or file://."},
                "ref": {**_REF, "default": {"branch": "main"}},
                "path": {"type": "string", "default": "",
                         "description": "The folder inside the repository to apply (default: its root)."},
                "interval": {"type": "string", "default": "15s",
                             "description": "How often Git is fetched and the cluster compared (Go duration)."},
                "timeout": {"type": "string", "default": "1m",
                            "description": "How long a fetch, a build and the health of an applied revision may take."},
                "prune": {"type": "boolean", "default": True,
                          "description": "Delete the objects that left the repository."},
                "allowEmpty": {"type": "boolean", "default": False,
                               "description": "Let an empty folder prune everything (otherwise PruneBlocked)."},
                "selfHeal": {"type": "boolean", "default": True,
                             "description": "Put back objects changed or deleted by hand; false: only report drift."},
                "suspend": {"type": "boolean", "default": False},
                "targetNamespace": {"type": "string",
                                    "description": "Put every namespaced object into this namespace."},
                "secretRef": {**_SECRET_REF, "description": "Credentials: username and password (a token) for "
                                                           "HTTPS, identity and known_hosts for SSH."},
                "webhook": {"type": "object", "properties": {
                    "secretRef": {**_SECRET_REF, "description": "The Secret whose key 'token' signs webhooks."}}},
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "observedGeneration": {"type": "integer"},
                "fetchedRevision": {"type": "string"},
                "lastAppliedRevision": {"type": "string"},
                "lastAttemptedRevision": {"type": "string"},
                "revision": {"type": "string", "description": "The short SHA of the applied revision."},
                "lastHandledRequestedAt": {"type": "string",
                                           "description": "The gitops.minik8s.io/requestedAt annotation the "
                                                          "last reconcile acted on (mkctl gitops sync waits "
                                                          "for it)."},
                "conditions": {"type": "array", "items": _CONDITION, "x-kubernetes-list-type": "map",
                               "x-kubernetes-list-map-keys": ["type"]},
                "inventory": {"type": "array", "items": _INVENTORY_ENTRY},
                "errors": {"type": "array", "items": _ERROR},
                "drift": {"type": "array", "items": {"type": "string"}},
                "history": {"type": "array", "items": _RUN},
                "nextSync": _NEXT_SYNC,
            },
        },
    },
}

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": CRD_NAME},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "gitsync", "kind": KIND, "listKind": f"{KIND}List",
                  "shortNames": ["gs"], "categories": ["gitops"]},
        "versions": [{
            "name": VERSION, "served": True, "storage": True,
            "schema": {"openAPIV3Schema": SCHEMA},
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                {"name": "Revision", "type": "string", "jsonPath": ".status.revision"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                {"name": "Message", "type": "string",
                 "jsonPath": '.status.conditions[?(@.type=="Ready")].message'},
            ],
        }],
    },
}
