"""The one narrow storage interface (kine's lesson) and its etcd implementation.

``Storage`` is all the apiserver knows about persistence: get, list (items + revision),
create (fails if present), update and delete (compare-and-swap on the expected revision),
watch from a revision, compact. Keys are bytes like ``/registry/apps/deployments/ns/name``,
values are the object's JSON; the revision is etcd's, and it is the resourceVersion.
"""

from .interface import (
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    Probe,
    RevisionCompactedError,
    RevisionConflictError,
    Storage,
    StorageError,
    StorageUnavailableError,
    UnreadableValueError,
    WatchEvent,
)

__all__ = [
    "KeyExistsError", "KeyNotFoundError", "KeyValue", "Probe", "RevisionCompactedError",
    "RevisionConflictError", "Storage", "StorageError", "StorageUnavailableError",
    "UnreadableValueError", "WatchEvent",
]
