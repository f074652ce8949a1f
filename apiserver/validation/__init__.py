"""Validators that several kinds share, with Kubernetes' own field paths, reasons and messages.

Role: mirror apimachinery's ObjectMeta/name/label rules and ``pkg/apis/core/validation``'s shared
pieces (pod spec, containers, quantities, ports) so clients see the same 422 they would from a
real cluster. Each kind's own rules live in its strategy module (``apiserver/kinds/...``), which
calls these.

Modules: ``fielderrors`` (field.Error constructors and typed reads of raw JSON), ``formats``
(names, labels, ports, IPs), ``objectmeta`` (ObjectMeta, labels, selectors), ``containers`` and
``podspec`` (the pod template every workload kind embeds).

Objects arrive as plain JSON, possibly garbage: where Go would have failed to decode a value of
the wrong JSON type, a "must be of type ..." cause is reported and the field is treated as its Go
zero value, so one bad field never hides the others and nothing raises.
"""

from .fielderrors import (Causes, Obj, child, duplicate, each, forbidden, format_value, index, invalid, key,
                          not_found, not_supported, required, too_long)
from .formats import (dns1035_label_errors, dns1123_label_errors, dns1123_subdomain_errors, label_value_errors,
                      qualified_name_errors)

__all__ = [
    "Causes", "Obj", "child", "dns1035_label_errors", "dns1123_label_errors", "dns1123_subdomain_errors",
    "duplicate", "each", "forbidden", "format_value", "index", "invalid", "key", "label_value_errors",
    "not_found", "not_supported", "qualified_name_errors", "required", "too_long",
]
