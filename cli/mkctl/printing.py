"""Pure text formatting for mkctl: Go-tabwriter alignment, server Tables, names, YAML/JSON, ages.

Role: everything mkctl prints is built here from plain data, without I/O, so output shapes are
tested directly. Data flow: a command fetches a ``meta.k8s.io/v1`` ``Table`` (or objects) ->
``TableBlock`` -> ``render_tables`` (header upper-cased, wide columns only for ``-o wide``,
``NAMESPACE`` first for ``-A``, ``kind/name`` prefixes when several types are listed) ->
``tabwrite`` (Go's ``text/tabwriter`` column-block algorithm, as kubectl uses it) -> stdout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import yaml

from machinery.timefmt import age_since, human_duration, parse_time

# kubectl's printers.GetNewTabWriter: minwidth 6, padding 3; describe uses minwidth 0, padding 2.
TABLE_MINWIDTH = 6
TABLE_PADDING = 3


# ------------------------------------------------------------------------------- tabwriter
def tabwrite(text: str, *, minwidth: int = 0, padding: int = 2) -> str:
    """Align tab-separated cells like Go's ``text/tabwriter`` (flags 0, pad char ' ').

    A cell is text terminated by a tab; the text after the last tab of a line is not aligned.
    A column block is a run of consecutive lines that all have a cell in that column; its width
    is the widest cell plus ``padding`` (at least ``minwidth``).
    """
    trailing_newline = text.endswith("\n")
    lines = [line.split("\t") for line in (text[:-1] if trailing_newline else text).split("\n")]
    out: list[str] = []
    _format(lines, 0, len(lines), [], out, minwidth=minwidth, padding=padding)
    result = "\n".join(out)
    return result + "\n" if trailing_newline else result


def _format(lines: list[list[str]], line0: int, line1: int, widths: list[int], out: list[str], *,
            minwidth: int, padding: int) -> None:
    column = len(widths)
    this = line0
    while this < line1:
        if column >= len(lines[this]) - 1:
            this += 1
            continue
        _write_lines(lines, line0, this, widths, out)
        line0 = this
        width = minwidth
        while this < line1 and column < len(lines[this]) - 1:
            width = max(width, len(lines[this][column]) + padding)
            this += 1
        _format(lines, line0, this, widths + [width], out, minwidth=minwidth, padding=padding)
        line0 = this
    _write_lines(lines, line0, line1, widths, out)


def _write_lines(lines: list[list[str]], line0: int, line1: int, widths: list[int], out: list[str]) -> None:
    for cells in lines[line0:line1]:
        parts: list[str] = []
        for j, cell in enumerate(cells):
            # The trailing cell, and any cell beyond the block's columns, is written unpadded.
            parts.append(cell.ljust(widths[j]) if j < len(cells) - 1 and j < len(widths) else cell)
        out.append("".join(parts))


# ------------------------------------------------------------------------------- names
def kind_prefix(kind: str, group: str) -> str:
    """``deployment.apps`` / ``pod``: how kubectl names a type in ``TYPE/name`` output."""
    return f"{kind.lower()}.{group}" if group else kind.lower()


def object_ref(kind: str, group: str, name: str) -> str:
    return f"{kind_prefix(kind, group)}/{name}"


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


# ------------------------------------------------------------------------------- tables
@dataclass
class TableBlock:
    """One server ``Table`` and how to label it: the type's ``kind.group`` prefix and scope."""

    table: Mapping[str, Any]
    prefix: str  # "deployment.apps"
    namespaced: bool = True
    rows: list[Mapping[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.rows:
            self.rows = list(self.table.get("rows") or [])


def cell_text(value: Any) -> str:
    """One cell as kubectl prints it (``fmt.Print`` of the decoded JSON value)."""
    if value is None:
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value).replace("\t", " ").replace("\n", " ")


def format_labels(labels: Mapping[str, Any] | None) -> str:
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _row_meta(row: Mapping[str, Any]) -> Mapping[str, Any]:
    obj = row.get("object") or {}
    return obj.get("metadata") or {} if isinstance(obj, Mapping) else {}


def table_lines(block: TableBlock, *, wide: bool = False, all_namespaces: bool = False,
                show_kind: bool = False, show_labels: bool = False, headers: bool = True) -> list[str]:
    """Tab-separated lines (header first unless ``headers=False``) of one server Table."""
    columns = list(block.table.get("columnDefinitions") or [])
    shown = [i for i, c in enumerate(columns) if wide or int(c.get("priority") or 0) == 0]
    with_ns = all_namespaces and block.namespaced
    lines: list[str] = []
    if headers:
        head = [str(columns[i].get("name", "")).upper() for i in shown]
        if with_ns:
            head.insert(0, "NAMESPACE")
        if show_labels:
            head.append("LABELS")
        lines.append("\t".join(head))
    for row in block.rows:
        cells = list(row.get("cells") or [])
        out: list[str] = []
        for i in shown:
            text = cell_text(cells[i] if i < len(cells) else None)
            if show_kind and columns[i].get("format") == "name":
                text = f"{block.prefix}/{text}"
            out.append(text)
        meta = _row_meta(row)
        if with_ns:
            out.insert(0, str(meta.get("namespace") or ""))
        if show_labels:
            out.append(format_labels(meta.get("labels")))
        lines.append("\t".join(out))
    return lines


def render_tables(blocks: Sequence[TableBlock], *, wide: bool = False, all_namespaces: bool = False,
                  show_kind: bool | None = None, show_labels: bool = False, headers: bool = True) -> str:
    """``kubectl get`` output of one or more types; empty blocks are skipped, blank line between."""
    if show_kind is None:
        show_kind = len(blocks) > 1
    parts: list[str] = []
    for block in blocks:
        if not block.rows:
            continue
        lines = table_lines(block, wide=wide, all_namespaces=all_namespaces, show_kind=show_kind,
                            show_labels=show_labels, headers=headers)
        parts.append(tabwrite("\n".join(lines) + "\n", minwidth=TABLE_MINWIDTH, padding=TABLE_PADDING))
    return "\n".join(parts)


def no_resources_message(namespace: str | None) -> str:
    """What kubectl prints (on stderr) for an empty result."""
    return f"No resources found in {namespace} namespace." if namespace else "No resources found"


# ------------------------------------------------------------------------------- objects
def as_list(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``v1 List`` kubectl prints for several objects with ``-o yaml|json``."""
    return {"apiVersion": "v1", "items": list(items), "kind": "List", "metadata": {"resourceVersion": ""}}


class _GoStyleDumper(yaml.SafeDumper):
    """YAML as kubectl (go-yaml) writes it: ``"double"`` quotes when needed, ``|`` blocks for multi-line."""

    def ignore_aliases(self, data: Any) -> bool:
        return True  # never &anchors/*aliases, even for repeated objects

    def choose_scalar_style(self) -> str:
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_GoStyleDumper.add_representer(str, _represent_str)


def to_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_GoStyleDumper, default_flow_style=False, sort_keys=True, allow_unicode=True,
                     width=1 << 20)


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False) + "\n"


def render_objects(objects: Sequence[Mapping[str, Any]], output: str, *, single: bool) -> str:
    """``-o yaml|json`` of one object (``single``) or a ``List`` of them."""
    doc: Any = objects[0] if single and len(objects) == 1 else as_list(objects)
    return to_yaml(doc) if output == "yaml" else to_json(doc)


def with_type(obj: Mapping[str, Any], *, api_version: str, kind: str) -> dict[str, Any]:
    """List items come without ``apiVersion``/``kind`` from Kubernetes; kubectl adds them back."""
    out = dict(obj)
    out.setdefault("apiVersion", api_version)
    out.setdefault("kind", kind)
    return {"apiVersion": out.pop("apiVersion"), "kind": out.pop("kind"), **out}


# ------------------------------------------------------------------------------- api-resources
@dataclass(frozen=True)
class ResourceRow:
    name: str
    short_names: tuple[str, ...]
    api_version: str
    namespaced: bool
    kind: str
    verbs: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


def render_api_resources(rows: Sequence[ResourceRow], *, wide: bool = False, headers: bool = True) -> str:
    lines: list[str] = []
    if headers:
        head = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
        lines.append("\t".join(head + (["VERBS", "CATEGORIES"] if wide else [])))
    for r in rows:
        cells = [r.name, ",".join(r.short_names), r.api_version, "true" if r.namespaced else "false", r.kind]
        if wide:
            cells += [f"[{' '.join(r.verbs)}]", ",".join(r.categories)]
        lines.append("\t".join(cells))
    return tabwrite("\n".join(lines) + "\n", minwidth=TABLE_MINWIDTH, padding=TABLE_PADDING)


__all__ = ["ResourceRow", "TableBlock", "age_since", "as_list", "cell_text", "format_labels", "group_of",
           "human_duration", "kind_prefix", "no_resources_message", "object_ref", "parse_time",
           "render_api_resources", "render_objects", "render_tables", "table_lines", "tabwrite", "to_json",
           "to_yaml", "with_type"]
