"""Base classes for the object models: camelCase on the wire, unknown fields kept, type facts on the class.

Every model accepts and keeps fields it does not declare (``extra="allow"``), so an object read
from the API and written back loses nothing that a newer Kubernetes field carried. Dump with
``to_dict()`` to get the exact wire form (aliases, no unset/None fields).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class K8sModel(BaseModel):
    """A piece of a Kubernetes object: camelCase aliases, unknown fields preserved."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        serialize_by_alias=True,
    )

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls.model_validate(data)


class TypeFacts:
    """What the API needs to know about a kind: where it lives and what it is called."""

    group: ClassVar[str] = ""
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = ""
    plural: ClassVar[str] = ""
    singular: ClassVar[str] = ""
    namespaced: ClassVar[bool] = True
    short_names: ClassVar[tuple[str, ...]] = ()
    subresources: ClassVar[tuple[str, ...]] = ()
    categories: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def api_version(cls) -> str:
        return f"{cls.group}/{cls.version}" if cls.group else cls.version
