"""Validation of CustomResourceDefinition objects (apiextensions.k8s.io/v1), as apiextensions does it.

Role: the port of ``ValidateCustomResourceDefinition``/``...Update``/``...Status`` and of the v1
defaulting and strategy steps around them, so a rejected CRD gets Kubernetes' causes and paths:
``metadata.name`` is ``<plural>.<group>``, the group a DNS subdomain with a dot, valid names,
scope, unique DNS-1035 version names, exactly one storage version, a structural schema for every
version (``structural_errors``), scale paths, printer columns, selectable fields, conversion, the
API-approval annotation of ``*.k8s.io`` groups, ``status.storedVersions``, and on update the
immutable group, plural (and, once Established, scope and kind).

Kubernetes validates the internal form of a v1 CRD, and converting v1 to internal moves
``versions[*].schema``, ``subresources``, ``additionalPrinterColumns`` and ``selectableFields``
to the top level when every version has the same value. Errors of such a shared schema are
therefore reported under ``spec.validation.openAPIV3Schema`` (``spec.subresources``,
``spec.additionalPrinterColumns``), and under ``spec.versions[i]...`` only when versions differ.
This module reproduces that.

minik8s serves conversion strategy ``None`` only: ``Webhook`` is rejected with a Forbidden cause.

Data flow: decode -> ``strategy.apply_defaults`` (v1 SetDefaults) -> ``strategy.prepare_for_create``
/ ``prepare_for_update`` (status and storedVersions) -> ``validate_crd`` / ``validate_crd_update``
-> ``list[StatusCause]`` (never raises; ObjectMeta itself is the generic validation's job, only the
name rule is here) -> ``machinery.errors.invalid``.
"""

from __future__ import annotations

import re
from typing import Any

from apiserver.validation import (dns1035_label_errors, dns1123_subdomain_errors, forbidden, invalid, not_supported,
                                  required)
from machinery.errors import StatusCause
from machinery.gofmt import go_json, go_quote

from .crdparts import column_errors, each, names_errors, selectable_fields_errors, subresources_errors
from .keywords import dict_at, list_at, str_at
from .schemacheck import structural_errors

Obj = dict[str, Any]
_APPROVAL = "api-approved.kubernetes.io"
_STORED_MISSING = ("missing from spec.versions; {0} was previously a storage version, and must remain in "
                   "spec.versions until a storage migration ensures no data remains persisted in {0} and removes "
                   "{0} from status.storedVersions")


# ============================================================================ the v1 -> internal collapse

def _norm(value: Any) -> Any:
    """Semantic equality of columns, subresources and selectable fields: zero values count as unset."""
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items() if k == "status" or v not in (None, "", 0, False, [], {})}
    if isinstance(value, list):
        return [_norm(v) for v in value] or None
    return value


def _status_on(subresources: Any) -> bool:
    return isinstance(subresources, dict) and subresources.get("status") is not None


class _Spec:
    """The internal CRD spec: per-version fields that all versions share sit at the top level."""

    _FIELDS = ("schema", "subresources", "additionalPrinterColumns", "selectableFields")

    def __init__(self, spec: Obj) -> None:
        self.versions = [v if isinstance(v, dict) else {} for v in list_at(spec, "versions")]
        self.top: dict[str, Any] = {}
        self.collapsed = {f: False for f in self._FIELDS}
        if not self.versions:
            return
        for name in self._FIELDS:
            same = (lambda v: v) if name == "schema" else _norm
            first = same(self.versions[0].get(name))
            if all(same(v.get(name)) == first for v in self.versions):
                self.collapsed[name] = True
                self.top[name] = self.versions[0].get(name)

    def per_version(self, version: Obj, name: str) -> Any:
        return None if self.collapsed[name] else version.get(name)

    def subresources_for(self, version: Obj) -> Any:
        return self.top.get("subresources") if self.collapsed["subresources"] else version.get("subresources")

    def any_status(self) -> bool:
        return _status_on(self.top.get("subresources")) or any(_status_on(v.get("subresources")) for v in self.versions)

    def internal_versions(self) -> str:
        """The Go rendering of the internal ``[]CustomResourceDefinitionVersion`` (no json tags)."""
        items = []
        for v in self.versions:
            fields = [("Name", go_json(str_at(v, "name"))), ("Served", go_json(v.get("served") is True)),
                      ("Storage", go_json(v.get("storage") is True)),
                      ("Deprecated", go_json(v.get("deprecated") is True)),
                      ("DeprecationWarning", go_json(v.get("deprecationWarning"))),
                      ("Schema", _internal(self.per_version(v, "schema"), {"openAPIV3Schema": "OpenAPIV3Schema"})),
                      ("Subresources", _internal(self.per_version(v, "subresources"), {"status": "Status", "scale": "Scale"})),
                      ("AdditionalPrinterColumns", _internal(self.per_version(v, "additionalPrinterColumns"), {})),
                      ("SelectableFields", _internal(self.per_version(v, "selectableFields"), {}))]
            items.append("{" + ",".join(f'"{k}":{val}' for k, val in fields) + "}")
        return "[" + ",".join(items) + "]" if self.versions else "null"


def _internal(value: Any, names: dict[str, str]) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict) and names:
        return "{" + ",".join(f'"{names[k]}":{go_json(value.get(k))}' for k in names) + "}"
    return go_json(value)


# ============================================================================ pieces

def _schema_errors(validation: Any, path: str, *, status_enabled: bool) -> list[StatusCause]:
    """validateCustomResourceDefinitionValidation for one CustomResourceValidation (``schema``)."""
    if not isinstance(validation, dict) or validation.get("openAPIV3Schema") is None:
        return []
    return structural_errors(validation["openAPIV3Schema"], f"{path}.openAPIV3Schema", status_enabled=status_enabled)


def _deprecation_errors(version: Obj, path: str) -> list[StatusCause]:
    if "deprecationWarning" not in version or version["deprecationWarning"] is None:
        return []
    warning, p = version["deprecationWarning"], f"{path}.deprecationWarning"
    if version.get("deprecated") is not True:
        return [invalid(p, warning, "can only be set for deprecated versions")]
    warning = str(warning)
    causes: list[StatusCause] = []
    if len(warning.encode()) > 256:
        causes.append(invalid(p, warning, "must be <= 256 characters long"))
    if not warning:
        causes.append(invalid(p, warning, "must not be an empty string"))
    for i, ch in enumerate(warning):
        if not ch.isprintable():
            causes.append(invalid(p, warning, "must only contain printable UTF-8 characters; non-printable "
                                              f"character found at index {len(warning[:i].encode())}"))
            break
    return causes


def _conversion_errors(conversion: Any, path: str) -> list[StatusCause]:
    """validateCustomResourceConversion, with Webhook refused: minik8s does not call conversion webhooks."""
    if not isinstance(conversion, dict):
        return []
    strategy = str_at(conversion, "strategy")
    sp = f"{path}.strategy"
    if not strategy:
        return [required(sp)]
    if strategy not in ("None", "Webhook"):
        return [not_supported(sp, strategy, ["None", "Webhook"])]
    if strategy == "Webhook":
        return [forbidden(sp, "minik8s serves conversion strategy None only: conversion webhooks are not supported")]
    causes: list[StatusCause] = []
    webhook = dict_at(conversion, "webhook")
    if webhook.get("clientConfig") is not None:
        causes.append(forbidden(f"{path}.webhookClientConfig", "should not be set when strategy is not set to Webhook"))
    if list_at(webhook, "conversionReviewVersions"):
        causes.append(forbidden(f"{path}.conversionReviewVersions", "should not be set when strategy is not set to Webhook"))
    return causes


def _stored_versions_errors(stored: Any, versions: list[Obj], path: str) -> list[StatusCause]:
    """ValidateCustomResourceDefinitionStoredVersions."""
    if not stored:
        return [invalid(path, stored if isinstance(stored, list) else None, "must have at least one stored version")]
    stored = [v for v in stored if isinstance(v, str)]
    positions = {v: i for i, v in enumerate(stored)}
    causes: list[StatusCause] = []
    for version in versions:
        name = str_at(version, "name")
        if version.get("storage") is True and name not in positions:
            causes.append(invalid(path, stored, f"must have the storage version {name}"))
        positions.pop(name, None)
    for name, i in sorted(positions.items(), key=lambda item: item[1]):
        causes.append(invalid(f"{path}[{i}]", name, _STORED_MISSING.format(name)))
    return causes


def _approval_state(annotations: Obj) -> tuple[str, str]:
    value = annotations.get(_APPROVAL) if isinstance(annotations.get(_APPROVAL), str) else ""
    if not value:
        return "missing", (f'protected groups must have approval annotation "{_APPROVAL}", see '
                           "https://github.com/kubernetes/enhancements/pull/1111")
    if value.startswith("unapproved"):
        return "bypassed", f"not approved: {go_quote(value)}"
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]+", value):
        return "approved", f"approved in {value}"
    return "invalid", (f'protected groups must have approval annotation "{_APPROVAL}" with either a URL or a reason '
                       'starting with "unapproved", see https://github.com/kubernetes/enhancements/pull/1111')


def _approval_errors(crd: Obj, old: Obj | None) -> list[StatusCause]:
    group = str_at(dict_at(crd, "spec"), "group")
    if not (group in ("k8s.io", "kubernetes.io") or group.endswith((".k8s.io", ".kubernetes.io"))):
        return []
    annotations = dict_at(dict_at(crd, "metadata"), "annotations")
    state, reason = _approval_state(annotations)
    if old is not None and _approval_state(dict_at(dict_at(old, "metadata"), "annotations"))[0] == state:
        return []
    p = f"metadata.annotations[{_APPROVAL}]"
    if state == "missing":
        return [required(p, reason)]
    if state == "invalid":
        return [invalid(p, annotations.get(_APPROVAL, ""), reason)]
    return []


# ============================================================================ the validations

def _spec_errors(spec: Obj, path: str) -> list[StatusCause]:
    causes: list[StatusCause] = []
    group = str_at(spec, "group")
    if not group:
        causes.append(required(f"{path}.group"))
    elif errs := dns1123_subdomain_errors(group):
        causes.append(invalid(f"{path}.group", group, ",".join(errs)))
    elif "." not in group:
        causes.append(invalid(f"{path}.group", group, "should be a domain with at least one dot"))
    scope = str_at(spec, "scope")
    if not scope:
        causes.append(required(f"{path}.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        causes.append(not_supported(f"{path}.scope", scope, ["Cluster", "Namespaced"]))
    internal = _Spec(spec)
    top_schema = internal.top.get("schema")
    if not isinstance(top_schema, dict) or top_schema.get("openAPIV3Schema") is None:
        for i, version in enumerate(internal.versions):
            own = internal.per_version(version, "schema")
            if not isinstance(own, dict) or own.get("openAPIV3Schema") is None:
                causes.append(required(f"{path}.versions[{i}].schema.openAPIV3Schema"))
    storage_count, seen, unique = 0, set(), True
    for i, version in enumerate(internal.versions):
        vp = f"{path}.versions[{i}]"
        storage_count += version.get("storage") is True
        name = str_at(version, "name")
        unique = unique and name not in seen
        seen.add(name)
        causes += each(f"{vp}.name", name, dns1035_label_errors(name))
        causes += _deprecation_errors(version, vp)
        causes += _schema_errors(internal.per_version(version, "schema"), f"{vp}.schema",
                                 status_enabled=_status_on(internal.subresources_for(version)))
        causes += subresources_errors(internal.per_version(version, "subresources"), f"{vp}.subresources")
        for j, col in enumerate(internal.per_version(version, "additionalPrinterColumns") or []):
            causes += column_errors(col, f"{vp}.additionalPrinterColumns[{j}]")
        if fields := internal.per_version(version, "selectableFields"):
            own = internal.per_version(version, "schema")
            if not isinstance(own, dict) or own.get("openAPIV3Schema") is None:
                causes.append(invalid(f"{vp}.selectableFields", "",
                                      "may only be set when `version.schema.openAPIV3Schema` is not included"))
            else:
                causes += selectable_fields_errors(fields, own["openAPIV3Schema"], f"{vp}.selectableFields")
    if not unique:
        causes.append(StatusCause("FieldValueInvalid", f"Invalid value: {internal.internal_versions()}: must contain "
                                                       "unique version names", f"{path}.versions"))
    if storage_count != 1:
        causes.append(StatusCause("FieldValueInvalid", f"Invalid value: {internal.internal_versions()}: must have "
                                                       "exactly one version marked as storage version", f"{path}.versions"))
    if internal.versions:
        first = str_at(internal.versions[0], "name")
        causes += each(f"{path}.version", first, dns1035_label_errors(first)) if first else []
    names = dict_at(spec, "names")
    for name in ("plural", "singular", "kind", "listKind"):
        if not str_at(names, name):
            causes.append(required(f"{path}.names.{name}"))
    causes += names_errors(names, f"{path}.names")
    causes += _schema_errors(internal.top.get("schema"), f"{path}.validation", status_enabled=internal.any_status())
    causes += subresources_errors(internal.top.get("subresources"), f"{path}.subresources")
    for j, col in enumerate(internal.top.get("additionalPrinterColumns") or []):
        causes += column_errors(col, f"{path}.additionalPrinterColumns[{j}]")
    if fields := internal.top.get("selectableFields"):
        if not isinstance(top_schema, dict):
            causes.append(invalid(f"{path}.selectableFields", "", "may only be set when validations.schema is included"))
        else:
            causes += selectable_fields_errors(fields, dict_at(top_schema, "openAPIV3Schema"), f"{path}.selectableFields")
    causes += _conversion_errors(spec.get("conversion"), f"{path}.conversion")
    return causes


def _name_errors(crd: Obj) -> list[StatusCause]:
    """The CRD's own name rule (the generic ObjectMeta validation checks the DNS subdomain)."""
    spec, meta = dict_at(crd, "spec"), dict_at(crd, "metadata")
    wanted = f"{str_at(dict_at(spec, 'names'), 'plural')}.{str_at(spec, 'group')}"
    causes: list[StatusCause] = []
    for name in ("generateName", "name"):
        value = str_at(meta, name)
        if value and value != wanted:
            causes.append(invalid(f"metadata.{name}", value, 'must be spec.names.plural+"."+spec.group'))
    return causes


def _immutable_errors(crd: Obj, old: Obj) -> list[StatusCause]:
    """validateCustomResourceDefinitionSpecUpdate's immutable fields (scope and kind once Established)."""
    spec, old_spec = dict_at(crd, "spec"), dict_at(old, "spec")
    fields = [("spec.group", spec.get("group"), old_spec.get("group")),
              ("spec.names.plural", dict_at(spec, "names").get("plural"), dict_at(old_spec, "names").get("plural"))]
    if _established(old):
        fields = [("spec.scope", spec.get("scope"), old_spec.get("scope")),
                  ("spec.names.kind", dict_at(spec, "names").get("kind"), dict_at(old_spec, "names").get("kind"))] + fields
    return [invalid(path, "" if new is None else new, "field is immutable")
            for path, new, before in fields if new != before]


def _established(crd: Obj) -> bool:
    return any(isinstance(c, dict) and c.get("type") == "Established" and c.get("status") == "True"
               for c in list_at(dict_at(crd, "status"), "conditions"))


def _validate(crd: Obj, old: Obj | None) -> list[StatusCause]:
    causes = _name_errors(crd) if old is None else []
    spec = dict_at(crd, "spec")
    causes += _spec_errors(spec, "spec")
    if old is not None:
        causes += _immutable_errors(crd, old)
    status = dict_at(crd, "status")
    causes += names_errors(dict_at(status, "acceptedNames"), "status.acceptedNames")
    versions = [v for v in list_at(spec, "versions") if isinstance(v, dict)]
    causes += _stored_versions_errors(status.get("storedVersions"), versions, "status.storedVersions")
    causes += _approval_errors(crd, old)
    old_preserve = old is not None and dict_at(old, "spec").get("preserveUnknownFields") is True
    if spec.get("preserveUnknownFields") is True and not old_preserve:
        causes.append(invalid("spec.preserveUnknownFields", True, "cannot set to true, set "
                              "x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"))
    return causes


def validate_crd(crd: Obj) -> list[StatusCause]:
    """ValidateCustomResourceDefinition: every cause against creating ``crd`` (defaulted and prepared)."""
    return _validate(crd, None)


def validate_crd_update(crd: Obj, old: Obj) -> list[StatusCause]:
    """ValidateCustomResourceDefinitionUpdate: the create rules plus the immutable fields."""
    return _validate(crd, old)


def validate_crd_status_update(crd: Obj, old: Obj) -> list[StatusCause]:
    """ValidateUpdateCustomResourceDefinitionStatus: the accepted names (ObjectMeta is generic)."""
    return names_errors(dict_at(dict_at(crd, "status"), "acceptedNames"), "status.acceptedNames")
