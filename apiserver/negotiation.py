"""Which form of an answer the client asked for in ``Accept``: the objects, a Table, or metadata only.

After Kubernetes' ``negotiation`` + ``transformResponseObject``: a client lists media types in
preference order, each maybe with ``as=<Kind>;v=<version>;g=meta.k8s.io`` parameters:

- ``as=Table`` (``v=v1`` or ``v1beta1``): ``kubectl get`` tables, for gets, lists and watches;
- ``as=PartialObjectMetadata`` (gets and watches) / ``as=PartialObjectMetadataList`` (lists):
  only the ``metadata`` of each object (the garbage collector and metadata informers of
  client-go ask for this);
- no ``as=``: the objects themselves (JSON; a protobuf request is answered in JSON, which every
  Kubernetes client accepts).

The first media type the server can produce wins; when none can be, the answer is 406, as
Kubernetes answers.
"""

from __future__ import annotations

from typing import Literal

from machinery import errors

Form = Literal["object", "table", "partial"]
Target = Literal["list", "object", "watch"]

_TABLE_VERSIONS = ("v1", "v1beta1")


def _params(media_type: str) -> tuple[str, dict[str, str]]:
    head, *rest = media_type.split(";")
    params: dict[str, str] = {}
    for item in rest:
        key, _, value = item.partition("=")
        params[key.strip().lower()] = value.strip()
    return head.strip().lower(), params


def response_form(accept: str | None, *, target: Target) -> Form:
    """The form of the answer to a ``target`` request with this ``Accept`` header."""
    if not accept:
        return "object"
    wanted: list[str] = []
    for media_type in accept.split(","):
        _, params = _params(media_type)
        as_kind = params.get("as")
        if as_kind is None:
            return "object"  # a plain media type: the objects (in JSON, whatever serialization it named)
        wanted.append(as_kind)
        if params.get("g") != "meta.k8s.io":
            continue
        if as_kind == "Table" and params.get("v", "v1") in _TABLE_VERSIONS:
            return "table"
        partial = "PartialObjectMetadataList" if target == "list" else "PartialObjectMetadata"
        if as_kind == partial and params.get("v", "v1") in ("v1", "v1beta1"):
            return "partial"
    if wanted:
        raise errors.NotAcceptableError(
            message=f"only the following media types are accepted: application/json, application/yaml, "
                    f"application/vnd.kubernetes.protobuf (asked for as={', as='.join(wanted)})")
    return "object"


def partial_object(obj: dict[str, object]) -> dict[str, object]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}
