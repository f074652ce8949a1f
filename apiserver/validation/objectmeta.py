"""ObjectMeta and label selector validation, shared by every kind (apimachinery's ValidateObjectMeta).

Data flow: the registry calls ``validate_object_meta(obj, name_fn=strategy.name_errors, ...)``
for every write before the kind's own validation; kinds call ``read_labels`` and
``validate_label_selector`` for the label maps and selectors inside their specs.
"""

from __future__ import annotations

from collections.abc import Callable

from .fielderrors import (Causes, Obj, each, forbidden, get_bool, get_map, get_maps, get_str, get_str_map,
                          get_strs, index, invalid, nonnegative, not_supported, required, too_long, child, get_int)
from .formats import dns1123_label_errors, label_value_errors, mask_trailing_dash, path_segment_errors, qualified_name_errors

NameFn = Callable[[str], list[str]]
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024



def validate_labels(labels: dict[str, str], path: str) -> Causes:
    causes: Causes = []
    for k, v in labels.items():
        causes += each(path, k, qualified_name_errors(k))
        causes += each(path, v, label_value_errors(v))
    return causes


def read_labels(obj: Obj, name: str, path: str, causes: Causes) -> dict[str, str]:
    labels = get_str_map(obj, name, path, causes)
    causes += validate_labels(labels, child(path, name))
    return labels


def validate_annotations(annotations: dict[str, str], path: str) -> Causes:
    causes: Causes = []
    for k in annotations:
        causes += each(path, k, qualified_name_errors(k.lower()))
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return causes


_STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def finalizer_causes(names: list[str], path: str) -> Causes:
    causes: Causes = []
    for i, name in enumerate(names):
        causes += each(path, name, qualified_name_errors(name))
        if name not in _STANDARD_FINALIZERS and "/" not in name:
            causes.append(invalid(index(path, i), name, "name is neither a standard finalizer name nor is it fully qualified"))
    if "orphan" in names and "foregroundDeletion" in names:
        causes.append(invalid(path, names, "finalizer orphan and foregroundDeletion cannot be both set"))
    return causes


def _owner_reference_causes(meta: Obj, path: str, causes: Causes) -> None:
    refs_path = child(path, "ownerReferences")
    controller = ""
    for _, ref in get_maps(meta, "ownerReferences", path, causes):
        api_version = get_str(ref, "apiVersion", refs_path, causes)
        kind = get_str(ref, "kind", refs_path, causes)
        name = get_str(ref, "name", refs_path, causes)
        uid = get_str(ref, "uid", refs_path, causes)
        if not api_version.rsplit("/", 1)[-1]:
            causes.append(invalid(child(refs_path, "apiVersion"), api_version, "version must not be empty"))
        for field_name, value in (("kind", kind), ("name", name), ("uid", uid)):
            if not value:
                causes.append(invalid(child(refs_path, field_name), value, "must not be empty"))
        if api_version == "v1" and kind == "Event":
            causes.append(invalid(refs_path, ref, "/v1, Kind=Event is disallowed from being an owner"))
        if get_bool(ref, "controller", refs_path, causes):
            if controller:
                causes.append(invalid(refs_path, meta.get("ownerReferences"),
                                      f'Only one reference can have Controller set to true. Found "true" in references for {controller} and {kind}/{name}'))
            else:
                controller = f"{kind}/{name}"


def validate_object_meta(obj: Obj, *, name_fn: NameFn, namespaced: bool, path: str = "metadata") -> Causes:
    """ValidateObjectMeta: name/generateName, namespace, labels, annotations, owners, finalizers."""
    causes: Causes = []
    meta = get_map(obj, "metadata", "", causes)
    name = get_str(meta, "name", path, causes)
    generate_name = get_str(meta, "generateName", path, causes)
    if generate_name:
        causes += each(child(path, "generateName"), generate_name, name_fn(mask_trailing_dash(generate_name)))
    if name:
        causes += each(child(path, "name"), name, name_fn(name) + path_segment_errors(name))
    elif not generate_name:
        causes.append(required(child(path, "name"), "name or generateName is required"))
    namespace = get_str(meta, "namespace", path, causes)
    if namespaced:
        if not namespace:
            causes.append(required(child(path, "namespace")))
        else:
            causes += each(child(path, "namespace"), namespace, dns1123_label_errors(namespace))
    elif namespace:
        causes.append(forbidden(child(path, "namespace"), "not allowed on this type"))
    causes += nonnegative(child(path, "generation"), get_int(meta, "generation", path, causes, bits=64))
    read_labels(meta, "labels", path, causes)
    causes += validate_annotations(get_str_map(meta, "annotations", path, causes), child(path, "annotations"))
    _owner_reference_causes(meta, path, causes)
    causes += finalizer_causes(get_strs(meta, "finalizers", path, causes), child(path, "finalizers"))
    return causes


# ---------------------------------------------------------------------------- label selectors

_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(selector: Obj, path: str, causes: Causes) -> bool:
    """ValidateLabelSelector; returns whether the selector is usable for matching."""
    before = len(causes)
    read_labels(selector, "matchLabels", path, causes)
    for item_path, expr in get_maps(selector, "matchExpressions", path, causes):
        operator = get_str(expr, "operator", item_path, causes)
        values = get_strs(expr, "values", item_path, causes)
        if operator in ("In", "NotIn"):
            if not values:
                causes.append(required(child(item_path, "values"), "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                causes.append(forbidden(child(item_path, "values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            causes.append(not_supported(child(item_path, "operator"), operator, _SELECTOR_OPERATORS))
        expr_key = get_str(expr, "key", item_path, causes)
        causes += each(child(item_path, "key"), expr_key, qualified_name_errors(expr_key))
        for value in values:
            causes += each(child(item_path, "values"), value, label_value_errors(value))
    return len(causes) == before


def selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    """Match a (valid) LabelSelector dict against a label set."""
    match_labels = selector.get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        k, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = k in labels
        if op == "In" and not (present and labels[k] in values):
            return False
        if op == "NotIn" and present and labels[k] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True
