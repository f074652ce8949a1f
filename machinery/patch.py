"""The three PATCH flavours of the Kubernetes API, as pure functions over JSON-shaped dicts.

Data flow: the PATCH handler reads the stored object (a plain dict, camelCase like the wire),
picks the function by ``Content-Type`` and hands it the decoded request body:

- ``application/merge-patch+json``           -> ``apply_merge_patch``   (RFC 7386)
- ``application/json-patch+json``            -> ``apply_json_patch``    (RFC 6902)
- ``application/strategic-merge-patch+json`` -> ``apply_strategic_merge_patch``
  (what ``kubectl apply`` and ``kubectl patch`` send by default)

Each returns a new object and never mutates its inputs; the handler then validates and stores
the result. A bad patch document raises ``PatchError``, which the handler turns into a ``Status``.

Strategic merge patch needs to know, per field, whether a list is merged by a key or replaced
whole. Kubernetes reads that from the ``patchStrategy``/``patchMergeKey`` tags of its Go types,
which its OpenAPI documents publish as ``x-kubernetes-patch-strategy``/``-merge-key``; here the
caller passes the kind's schema as a ``machinery.schemaview.Schema`` (the API server builds it from
the kind strategies, mkctl reads it from the server's ``/openapi/v3``). Fields without a schema
fall back to "maps merge, lists replace", as Kubernetes does.

Pure and shared: the API server applies patches with it, mkctl and the GitOps reconciler compute
and check them with it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any, Final

from machinery.schemaview import ANY, Schema

__all__ = [
    "PatchError",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
]


class PatchError(ValueError):
    """The patch document is malformed or cannot be applied to the target."""


# --------------------------------------------------------------------------------------------
# RFC 7386: JSON merge patch
# --------------------------------------------------------------------------------------------


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch: objects merge recursively, ``null`` deletes, else replace."""
    return _merge_patch(copy.deepcopy(target), patch)


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386's MergePatch over a private copy of the target."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


# --------------------------------------------------------------------------------------------
# RFC 6902: JSON patch
# --------------------------------------------------------------------------------------------

_ARRAY_INDEX: Final = re.compile(r"0|[1-9][0-9]*")
_MISSING: Final = object()


def apply_json_patch(target: Any, ops: Any) -> Any:
    """Apply an RFC 6902 JSON patch (a list of operations) atomically; raise ``PatchError``."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for number, op in enumerate(ops):
        doc = _apply_operation(doc, op, number=number)
    return doc


def _apply_operation(doc: Any, op: Any, *, number: int) -> Any:
    """Apply one operation to ``doc`` (a private copy, changed in place) and return the root."""
    if not isinstance(op, dict):
        raise PatchError(f"json patch operation {number} is not an object: {op!r}")
    name = op.get("op")
    handler = _OPERATIONS.get(name) if isinstance(name, str) else None
    if handler is None:
        raise PatchError(f"json patch operation {number}: unknown op {name!r}")
    try:
        return handler(doc, op)
    except PatchError as err:
        raise PatchError(f"json patch operation {number} ({name}): {err}") from None


def _member(op: dict[str, Any], name: str) -> Any:
    if name not in op:
        raise PatchError(f"missing member {name!r}")
    return op[name]


def _pointer(op: dict[str, Any], name: str) -> list[str]:
    """Parse the JSON pointer in member ``name`` (``path`` or ``from``) into reference tokens."""
    pointer = _member(op, name)
    if not isinstance(pointer, str):
        raise PatchError(f"{name} must be a string, got {pointer!r}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"invalid JSON pointer {pointer!r}: must start with '/'")
    if re.search(r"~[^01]|~$", pointer):
        raise PatchError(f"invalid JSON pointer {pointer!r}: bad '~' escape")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _show(tokens: list[str]) -> str:
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


def _array_index(token: str, *, size: int, for_insert: bool, tokens: list[str]) -> int:
    """The list index a token names; ``-`` and ``size`` are allowed only when inserting."""
    if token == "-" and for_insert:
        return size
    if not _ARRAY_INDEX.fullmatch(token):
        raise PatchError(f"path {_show(tokens)!r}: {token!r} is not an array index")
    index = int(token)
    if index > size or (index == size and not for_insert):
        raise PatchError(f"path {_show(tokens)!r}: index {index} out of bounds (length {size})")
    return index


def _resolve(doc: Any, tokens: list[str]) -> Any:
    """The value at ``tokens``; ``PatchError`` naming the path when it does not exist."""
    node = doc
    for depth, token in enumerate(tokens):
        prefix = tokens[: depth + 1]
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path {_show(prefix)!r} not found")
            node = node[token]
        elif isinstance(node, list):
            node = node[_array_index(token, size=len(node), for_insert=False, tokens=prefix)]
        else:
            raise PatchError(f"path {_show(prefix)!r} not found: parent is not a container")
    return node


def _add_at(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1])
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(tokens[-1], size=len(parent), for_insert=True, tokens=tokens), value)
    else:
        raise PatchError(f"path {_show(tokens)!r}: parent is not an object or array")
    return doc


def _remove_at(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _resolve(doc, tokens[:-1])
    if isinstance(parent, dict):
        if tokens[-1] not in parent:
            raise PatchError(f"path {_show(tokens)!r} not found")
        del parent[tokens[-1]]
    elif isinstance(parent, list):
        del parent[_array_index(tokens[-1], size=len(parent), for_insert=False, tokens=tokens)]
    else:
        raise PatchError(f"path {_show(tokens)!r} not found: parent is not a container")
    return doc


def _op_add(doc: Any, op: dict[str, Any]) -> Any:
    return _add_at(doc, _pointer(op, "path"), copy.deepcopy(_member(op, "value")))


def _op_remove(doc: Any, op: dict[str, Any]) -> Any:
    return _remove_at(doc, _pointer(op, "path"))


def _op_replace(doc: Any, op: dict[str, Any]) -> Any:
    tokens = _pointer(op, "path")
    value = copy.deepcopy(_member(op, "value"))
    _resolve(doc, tokens)  # replace requires an existing target
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1])
    key: Any = tokens[-1]
    if isinstance(parent, list):
        key = _array_index(key, size=len(parent), for_insert=False, tokens=tokens)
    parent[key] = value
    return doc


def _op_move(doc: Any, op: dict[str, Any]) -> Any:
    source, tokens = _pointer(op, "from"), _pointer(op, "path")
    if source == tokens:
        _resolve(doc, source)
        return doc
    if tokens[: len(source)] == source:
        raise PatchError(f"cannot move {_show(source)!r} into its own child {_show(tokens)!r}")
    value = _resolve(doc, source)
    return _add_at(_remove_at(doc, source), tokens, value)


def _op_copy(doc: Any, op: dict[str, Any]) -> Any:
    value = copy.deepcopy(_resolve(doc, _pointer(op, "from")))
    return _add_at(doc, _pointer(op, "path"), value)


def _op_test(doc: Any, op: dict[str, Any]) -> Any:
    tokens = _pointer(op, "path")
    expected, actual = _member(op, "value"), _resolve(doc, tokens)
    if not _json_equal(actual, expected):
        raise PatchError(f"test failed: value at {_show(tokens)!r} is {actual!r}, not {expected!r}")
    return doc


_OPERATIONS: Final[dict[str, Callable[[Any, dict[str, Any]], Any]]] = {
    "add": _op_add,
    "remove": _op_remove,
    "replace": _op_replace,
    "move": _op_move,
    "copy": _op_copy,
    "test": _op_test,
}


def _json_equal(left: Any, right: Any) -> bool:
    """JSON equality: 1 == 1.0, but booleans are not numbers and key order does not matter."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    return type(left) is type(right) and left == right


# --------------------------------------------------------------------------------------------
# Strategic merge patch: the algorithm (after k8s.io/apimachinery/pkg/util/strategicpatch)
# --------------------------------------------------------------------------------------------

_DIRECTIVE: Final = "$patch"
_RETAIN: Final = "$retainKeys"
_ORDER_PREFIX: Final = "$setElementOrder/"
_DELETE_PREFIX: Final = "$deleteFromPrimitiveList/"
_DROP: Final = object()  # "leave this key or element out"


def apply_strategic_merge_patch(target: dict[str, Any], patch: dict[str, Any], *, schema: Schema = ANY) -> dict[str, Any]:
    """Apply a Kubernetes strategic merge patch to ``target``, an object that ``schema`` describes."""
    if not isinstance(target, dict) or not isinstance(patch, dict):
        raise PatchError("strategic merge patch and its target must both be JSON objects")
    return _merge_map(copy.deepcopy(target), copy.deepcopy(patch), schema=schema, path="")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _merge_map(original: dict[str, Any], patch: dict[str, Any], *, schema: Schema, path: str) -> dict[str, Any]:
    """Merge ``patch`` into ``original`` (both private copies) and return the merged map."""
    if _DIRECTIVE in patch:
        directive = patch[_DIRECTIVE]
        rest = {k: v for k, v in patch.items() if k != _DIRECTIVE}
        if directive == "delete":
            return {}
        if directive == "replace":
            return _merge_map({}, rest, schema=schema, path=path)
        if directive != "merge":
            raise PatchError(f"{path or '<root>'}: unknown $patch directive {directive!r}")
        patch = rest
    result = _retain_keys(original, patch, path=path)
    handled: set[str] = set()
    for key, value in patch.items():
        if key.startswith(_ORDER_PREFIX):
            name = key[len(_ORDER_PREFIX) :]
            _set_element_order(result, patch, name=name, order=value, schema=schema, path=_join(path, name))
            handled.add(name)
    for key, value in patch.items():
        if key in handled or key == _RETAIN or key.startswith(_ORDER_PREFIX):
            continue
        if key.startswith(_DELETE_PREFIX):
            _delete_from_primitive_list(result, key[len(_DELETE_PREFIX) :], value, path=path)
        elif value is None:
            result.pop(key, None)
        else:
            _merge_key(result, key, value, field=schema.field(key), path=_join(path, key))
    return result


def _merge_key(result: dict[str, Any], key: str, value: Any, *, field: Schema, path: str) -> None:
    """Merge one patch member into ``result`` (in place: ``result`` is this call's own map)."""
    current = result.get(key, _MISSING)
    if isinstance(current, dict) and isinstance(value, dict):
        merged: Any = _merge_map(current, value, schema=field, path=path)
    elif isinstance(current, list) and isinstance(value, list) and field.merges_list:
        merged = _merge_list(current, value, field=field, path=path)
    else:
        merged = _fresh(value, field=field, path=path)
    if merged is _DROP:
        result.pop(key, None)
    else:
        result[key] = merged


def _fresh(value: Any, *, field: Schema, path: str) -> Any:
    """A patch value that replaces (or newly sets) a field, with its directives applied."""
    if isinstance(value, dict):
        if value.get(_DIRECTIVE) == "delete":
            return _DROP
        return _merge_map({}, value, schema=field, path=path)
    if isinstance(value, list):
        if field.merges_list:
            return _merge_list([], value, field=field, path=path)
        element = field.items()
        items = [_fresh(item, field=element, path=f"{path}[{i}]") for i, item in enumerate(value)]
        return [item for item in items if item is not _DROP]
    return value


def _retain_keys(original: dict[str, Any], patch: dict[str, Any], *, path: str) -> dict[str, Any]:
    """Apply ``$retainKeys``: drop original keys not listed; every patched key must be listed."""
    if _RETAIN not in patch:
        return dict(original)
    retain = patch[_RETAIN]
    if not isinstance(retain, list):
        raise PatchError(f"{path or '<root>'}: $retainKeys must be a list, got {retain!r}")
    for key, value in patch.items():
        if value is None or key == _RETAIN or key.startswith((_ORDER_PREFIX, _DELETE_PREFIX)):
            continue
        if key not in retain:
            raise PatchError(f"{path or '<root>'}: field {key!r} is patched but missing from $retainKeys")
    return {k: v for k, v in original.items() if k in retain}


def _delete_from_primitive_list(result: dict[str, Any], name: str, values: Any, *, path: str) -> None:
    if not isinstance(values, list):
        raise PatchError(f"{_join(path, name)}: $deleteFromPrimitiveList/{name} must be a list")
    current = result.get(name)
    if isinstance(current, list):
        result[name] = [item for item in current if item not in values]


# ---- lists -----------------------------------------------------------------------------------


def _element_kind(*lists: list[Any], path: str) -> str | None:
    """``"map"`` or ``"scalar"`` for the elements of all lists, None when all are empty."""
    kinds = {_json_kind(item) for items in lists for item in items}
    if "list" in kinds:
        raise PatchError(f"{path}: lists of lists cannot be merged")
    if len(kinds) > 1:
        raise PatchError(f"{path}: list element types are not identical")
    return kinds.pop() if kinds else None


def _json_kind(item: Any) -> str:
    return "map" if isinstance(item, dict) else "list" if isinstance(item, list) else "scalar"


def _key_of(item: Any, merge_key: str | None, *, path: str) -> Any:
    """What identifies a list element: its merge key value for maps, itself for scalars."""
    if not isinstance(item, dict):
        return item
    if merge_key is None:
        raise PatchError(f"{path}: cannot merge a list of objects without a merge key")
    if merge_key not in item:
        raise PatchError(f"{path}: list element {item!r} does not contain the merge key {merge_key!r}")
    return item[merge_key]


def _merge_list(original: list[Any], patch: list[Any], *, field: Schema, path: str) -> list[Any]:
    """Merge a patch list into a list whose field has ``patchStrategy: merge``."""
    kind = _element_kind(original, patch, path=path)
    if kind is None:
        return []
    if kind == "scalar":
        merged = original + [item for item in patch if item not in original]
        merged = [item for i, item in enumerate(merged) if item not in merged[:i]]
        return _order(merged, order=patch, server_order=original, merge_key=None, path=path)
    key = field.patch_merge_key
    original, patch = _apply_special_elements(original, patch, merge_key=key, path=path)
    element = field.items()
    merged = list(original)
    for item in patch:
        wanted = _key_of(item, key, path=path)
        at = next((i for i, o in enumerate(merged) if _has_key(o, key, wanted)), None)
        item_path = f"{path}[{key}={wanted}]"
        if at is None:
            fresh = _fresh(item, field=element, path=item_path)
            merged.extend([] if fresh is _DROP else [fresh])
        else:
            merged[at] = _merge_map(merged[at], item, schema=element, path=item_path)
    return _order(merged, order=patch, server_order=original, merge_key=key, path=path)


def _apply_special_elements(
    original: list[Any], patch: list[Any], *, merge_key: str | None, path: str
) -> tuple[list[Any], list[Any]]:
    """Handle elements carrying ``$patch``: delete matches, or replace the whole list."""
    plain: list[Any] = []
    replace = False
    for item in patch:
        directive = item.get(_DIRECTIVE) if isinstance(item, dict) else None
        if directive is None:
            plain.append(item)
        elif directive == "delete":
            doomed = _key_of(item, merge_key, path=path)
            original = [o for o in original if not _has_key(o, merge_key, doomed)]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            plain.append({k: v for k, v in item.items() if k != _DIRECTIVE})
        else:
            raise PatchError(f"{path}: unknown $patch directive {directive!r} in list element")
    if replace:
        return [_strip_directives(item) for item in plain], []
    return original, plain


def _has_key(item: Any, merge_key: str | None, value: Any) -> bool:
    """Whether a list element is the map whose merge key has ``value``."""
    return isinstance(item, dict) and merge_key in item and item[merge_key] == value


def _strip_directives(item: Any) -> Any:
    return _merge_map({}, item, schema=ANY, path="") if isinstance(item, dict) else item


def _order(
    merged: list[Any], *, order: list[Any], server_order: list[Any], merge_key: str | None, path: str
) -> list[Any]:
    """Kubernetes' element order: items named in ``order`` follow it, the rest keep the live order.

    The two runs are interleaved by their positions in the live list (``server_order``);
    a patched item the live list does not have goes before the remaining live-only items.
    """
    wanted = [_key_of(i, merge_key, path=path) for i in order if not _is_directive(i)]
    live = [_key_of(i, merge_key, path=path) for i in server_order]
    ids = [_key_of(i, merge_key, path=path) for i in merged]
    patched = sorted((i for i, k in enumerate(ids) if k in wanted), key=lambda i: wanted.index(ids[i]))
    # Merging keeps live items where they were, so the live-only ones are already in live order.
    server_only = [i for i, k in enumerate(ids) if k not in wanted]
    result: list[Any] = []
    while patched or server_only:
        take_server = bool(server_only) and (
            not patched or _live_before(live, ids[server_only[0]], ids[patched[0]])
        )
        result.append(merged[(server_only if take_server else patched).pop(0)])
    return result


def _live_before(live: list[Any], left: Any, right: Any) -> bool:
    """Both items are live and ``left`` comes first there (an unknown item wins its place)."""
    return left in live and right in live and live.index(left) < live.index(right)


def _position(items: list[Any], key: Any) -> int:
    """Index of ``key`` in ``items``; a huge number when absent, so absent items sort last."""
    return items.index(key) if key in items else 1 << 62


def _is_directive(item: Any) -> bool:
    return isinstance(item, dict) and _DIRECTIVE in item


def _set_element_order(result: dict[str, Any], patch: dict[str, Any], *, name: str, order: Any, schema: Schema,
                       path: str) -> None:
    """Merge list ``name`` of ``patch`` into ``result`` and order it by ``$setElementOrder/name``."""
    if not isinstance(order, list):
        raise PatchError(f"{path}: $setElementOrder/{name} must be a list")
    field = schema.field(name)
    current, patched = _list_or_none(result, name), _list_or_none(patch, name)
    if current is None and name in result:
        raise PatchError(f"{path}: $setElementOrder/{name} names a field that is not a list")
    if patched is None and name in patch:
        raise PatchError(f"{path}: $setElementOrder/{name} needs {name} to be a list")
    key = field.patch_merge_key if field.merges_list else None
    if patched is not None:
        _check_order(patched, order, merge_key=key, path=path)
    merged: list[Any]
    if patched is None:
        if current is None:
            return
        merged = current
    elif current is None or not field.merges_list:
        merged = _fresh(patched, field=field, path=path)
    else:
        merged = _merge_list(current, patched, field=field, path=path)
    if field.merges_list or _element_kind(merged, path=path) == "scalar":
        live = [] if current is None else current
        if key is not None and patched is not None:
            live = _live_view_after_merge(live, patched, merge_key=key)
        merged = _order(merged, order=order, server_order=live, merge_key=key, path=path)
    result[name] = merged


def _list_or_none(obj: dict[str, Any], name: str) -> list[Any] | None:
    """``obj[name]`` when it is a list; None when it is absent or not a list."""
    value = obj.get(name)
    return value if isinstance(value, list) else None


def _live_view_after_merge(live: list[Any], patched: list[Any], *, merge_key: str) -> list[Any]:
    """The live order Kubernetes sorts against after merging ``patched`` into ``live``.

    Go's merge deletes and appends inside the live list's backing array, so the view it then
    orders by is the live list minus deletions plus appended new items, cut to its old length.
    Reproducing that keeps new items after untouched live ones, as ``kubectl apply`` does.
    """
    directives = [item.get(_DIRECTIVE) for item in patched if _is_directive(item)]
    if "replace" in directives:
        return live
    doomed = [item.get(merge_key) for item in patched if _is_directive(item) and item[_DIRECTIVE] == "delete"]
    view = [item for item in live if not (isinstance(item, dict) and item.get(merge_key, _MISSING) in doomed)]
    for item in patched:
        is_plain = isinstance(item, dict) and item.get(_DIRECTIVE, "merge") == "merge"
        if is_plain and not any(_has_key(seen, merge_key, item.get(merge_key)) for seen in view):
            view.append(item)
    return view[: len(live)]


def _check_order(patched: list[Any], order: list[Any], *, merge_key: str | None, path: str) -> None:
    """The patch list must name its items in the same relative order as ``$setElementOrder``."""
    items = [i for i in patched if not _is_directive(i)]
    wanted = [_key_of(i, merge_key, path=path) for i in order]
    positions = [_position(wanted, _key_of(i, merge_key, path=path)) for i in items]
    if any(p >= len(wanted) for p in positions) or positions != sorted(positions):
        raise PatchError(f"{path}: the order of the patch list does not match $setElementOrder")
