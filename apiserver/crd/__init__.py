"""CustomResourceDefinitions (apiextensions.k8s.io/v1): the pure engine behind them.

Role: everything Kubernetes' apiextensions-apiserver decides about CRDs and custom objects, as
pure functions on plain JSON dicts, with Kubernetes' own field paths and messages; the API server
calls these and does the I/O.

- ``validation`` / ``strategy``: a CustomResourceDefinition itself (defaults, status on create and
  update, ``validate_crd``, ``validate_crd_update``, warnings).
- ``structural``: one version's schema applied to custom objects (``StructuralSchema.compile``,
  then ``prune``, ``default``, ``validate``, ``validate_status``; ``scale_errors``), and
  ``structural_errors``, the checks a schema must pass when the CRD is written.
- ``columns`` / ``jsonpath``: ``additionalPrinterColumns`` as kubectl's JSONPath evaluates them and
  the table convertor formats their cells.

Data flow (server side): CRD write -> ``strategy.apply_defaults`` -> ``strategy.prepare_for_*`` ->
``validate_crd*`` -> stored; per served version ``StructuralSchema.compile(schema)``; custom
object write -> ``prune`` (warnings / Strict) -> ``default`` -> ``validate`` -> stored; read ->
``default``; table -> ``column_definitions`` + ``row_cells``.

Out of scope: ``x-kubernetes-validations`` (CEL) rules are neither compiled nor evaluated (their
static field rules are checked); conversion webhooks (minik8s serves strategy None only).
Internal modules: ``schema`` (the parsed node), ``values`` (kube-openapi's validator), ``algorithms``
(pruning, defaulting, embedded resources, list types), ``schemacheck``/``keywords`` (CRD-time schema
rules), ``formats``, ``goregex`` (RE2 patterns), ``gofmt`` (field errors with Go's renderings of
values, which live in ``machinery.gofmt``), ``jsonpath_parser``, ``crdparts``.
"""

from .columns import column_definitions, row_cells
from .jsonpath import JSONPathError, evaluate, validate_jsonpath
from .strategy import apply_defaults, prepare_for_create, prepare_for_update, warnings
from .structural import StructuralSchema, scale_errors, structural_errors
from .validation import validate_crd, validate_crd_status_update, validate_crd_update

__all__ = [
    "JSONPathError", "StructuralSchema", "apply_defaults", "column_definitions", "evaluate", "prepare_for_create",
    "prepare_for_update", "row_cells", "scale_errors", "structural_errors", "validate_crd",
    "validate_crd_status_update", "validate_crd_update", "validate_jsonpath", "warnings",
]
