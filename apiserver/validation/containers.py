"""Container validation (ValidateContainers): names, images, ports, env, resources, mounts, probes.

Data flow: ``apiserver.validation.podspec.validate_pod_spec`` calls ``validate_container`` for
every container and init container with the set of mountable volume names; each check appends
Kubernetes' field errors to ``causes``.
"""

from __future__ import annotations

import re
from typing import Any

from machinery.quantity import QuantityError, parse_quantity

from .fielderrors import (Causes, Obj, child, each, forbidden, get_bool, get_int, get_int_or_string, get_map,
                          get_maps, get_opt_map, get_str, get_strs, invalid, key, not_found, nonnegative, enum,
                          not_supported, required, required_str, duplicate)
from .formats import (config_map_key_errors, dns1123_label_errors, dns1123_subdomain_errors, env_var_name_errors,
                      ip_errors, port_name_errors, port_num_errors, qualified_name_errors, regex_error)

PROBES = ("livenessProbe", "readinessProbe", "startupProbe")

PROTOCOLS = ("SCTP", "TCP", "UDP")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_HTTP_SCHEMES = ("HTTP", "HTTPS")
_STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
_ENV_FIELD_PATHS = (
    "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
    "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
)



def port_num_or_name(obj: Obj, name: str, path: str, causes: Causes) -> Causes:
    """ValidatePortNumOrName for an IntOrString port (a missing port is the int 0)."""
    port = get_int_or_string(obj, name, path, causes)
    port_path = child(path, name)
    if isinstance(port, str):
        return each(port_path, port, port_name_errors(port))
    value = port or 0
    return each(port_path, value, port_num_errors(value))


def validate_handler(handler: Obj, path: str, causes: Causes, *, kinds: tuple[str, ...]) -> None:
    """validateHandler: exactly one of exec/httpGet/tcpSocket/grpc/sleep."""
    seen = 0
    for kind in kinds:
        if handler.get(kind) is None:
            continue
        body_path = child(path, kind)
        if seen:
            causes.append(forbidden(body_path, "may not specify more than 1 handler type"))
            continue
        seen += 1
        body = get_map(handler, kind, path, causes)
        if kind == "exec" and not get_strs(body, "command", body_path, causes):
            causes.append(required(child(body_path, "command")))
        elif kind == "httpGet":
            if not get_str(body, "path", body_path, causes):
                causes.append(required(child(body_path, "path")))
            causes.extend(port_num_or_name(body, "port", body_path, causes))
            causes.extend(enum(child(body_path, "scheme"), get_str(body, "scheme", body_path, causes), _HTTP_SCHEMES))
            for header_path, header in get_maps(body, "httpHeaders", body_path, causes):
                header_name = get_str(header, "name", header_path, causes)
                if not re.fullmatch("[-A-Za-z0-9]+", header_name):
                    causes.append(invalid(child(body_path, "httpHeaders"), header_name, regex_error(
                        "a valid HTTP header must consist of alphanumeric characters or '-'", "[-A-Za-z0-9]+", "X-Header-Name")))
        elif kind == "tcpSocket":
            causes.extend(port_num_or_name(body, "port", body_path, causes))
        elif kind == "grpc":
            port = get_int(body, "port", body_path, causes) or 0
            causes.extend(each(child(body_path, "port"), port, port_num_errors(port)))
        elif kind == "sleep":
            causes.extend(nonnegative(child(body_path, "seconds"), get_int(body, "seconds", body_path, causes, bits=64)))
    if not seen:
        causes.append(required(path, "must specify a handler type"))


def _validate_probe(probe: Obj, path: str, causes: Causes) -> None:
    validate_handler(probe, path, causes, kinds=("exec", "httpGet", "tcpSocket", "grpc"))
    for name in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        causes.extend(nonnegative(child(path, name), get_int(probe, name, path, causes)))
    grace = get_int(probe, "terminationGracePeriodSeconds", path, causes, bits=64)
    if grace is not None and grace <= 0:
        causes.append(invalid(child(path, "terminationGracePeriodSeconds"), grace, "must be greater than 0"))


def _validate_ports(container: Obj, path: str, causes: Causes) -> None:
    names: set[str] = set()
    for port_path, port in get_maps(container, "ports", path, causes):
        name = get_str(port, "name", port_path, causes)
        if name:
            errs = port_name_errors(name)
            if errs:
                causes.extend(each(child(port_path, "name"), name, errs))
            elif name in names:
                causes.append(duplicate(child(port_path, "name"), name))
            names.add(name)
        container_port = get_int(port, "containerPort", port_path, causes) or 0
        if container_port == 0:
            causes.append(required(child(port_path, "containerPort")))
        else:
            causes.extend(each(child(port_path, "containerPort"), container_port, port_num_errors(container_port)))
        host_port = get_int(port, "hostPort", port_path, causes) or 0
        if host_port:
            causes.extend(each(child(port_path, "hostPort"), host_port, port_num_errors(host_port)))
        causes.extend(enum(child(port_path, "protocol"), get_str(port, "protocol", port_path, causes), PROTOCOLS))
        host_ip = get_str(port, "hostIP", port_path, causes)
        if host_ip:
            causes.extend(each(child(port_path, "hostIP"), host_ip, ip_errors(host_ip)))


def _validate_key_selector(selector: Obj, path: str, causes: Causes) -> None:
    name = get_str(selector, "name", path, causes)
    if name:
        causes.extend(each(child(path, "name"), name, dns1123_subdomain_errors(name)))
    required_str(selector, "key", path, causes, errors=config_map_key_errors)


def _validate_env(container: Obj, path: str, causes: Causes) -> None:
    for env_path, env in get_maps(container, "env", path, causes):
        required_str(env, "name", env_path, causes, errors=env_var_name_errors)
        value = get_str(env, "value", env_path, causes)
        value_from = get_opt_map(env, "valueFrom", env_path, causes)
        if value_from is None:
            continue
        from_path = child(env_path, "valueFrom")
        sources = 0
        field_ref = get_opt_map(value_from, "fieldRef", from_path, causes)
        if field_ref is not None:
            sources += 1
            ref_path = child(from_path, "fieldRef")
            field_path = get_str(field_ref, "fieldPath", ref_path, causes)
            if not get_str(field_ref, "apiVersion", ref_path, causes):
                causes.append(required(child(ref_path, "apiVersion")))
            elif not field_path:
                causes.append(required(child(ref_path, "fieldPath")))
            else:
                base = field_path.split("[", 1)[0]
                subscripted = "[" in field_path
                if subscripted and base not in ("metadata.labels", "metadata.annotations"):
                    causes.append(invalid(ref_path, base, "does not support subscript"))
                elif not subscripted and base not in _ENV_FIELD_PATHS:
                    causes.append(not_supported(child(ref_path, "fieldPath"), field_path, sorted(_ENV_FIELD_PATHS)))
        resource_ref = get_opt_map(value_from, "resourceFieldRef", from_path, causes)
        if resource_ref is not None:
            sources += 1
            if not get_str(resource_ref, "resource", child(from_path, "resourceFieldRef"), causes):
                causes.append(required(child(child(from_path, "resourceFieldRef"), "resource")))
        for ref_name in ("configMapKeyRef", "secretKeyRef"):
            ref = get_opt_map(value_from, ref_name, from_path, causes)
            if ref is not None:
                sources += 1
                _validate_key_selector(ref, child(from_path, ref_name), causes)
        if sources == 0:
            causes.append(invalid(from_path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
        elif value:
            causes.append(invalid(from_path, "", "may not be specified when `value` is not empty"))
        elif sources > 1:
            causes.append(invalid(from_path, "", "may not have more than one field specified at a time"))
    for env_path, env_from in get_maps(container, "envFrom", path, causes):
        prefix = get_str(env_from, "prefix", env_path, causes)
        causes.extend(each(child(env_path, "prefix"), prefix, env_var_name_errors(prefix)))
        refs = [name for name in ("configMapRef", "secretRef") if get_opt_map(env_from, name, env_path, causes) is not None]
        if not refs:
            causes.append(invalid(child(path, "envFrom"), "", "must specify one of: `configMapRef` or `secretRef`"))
        elif len(refs) > 1:
            causes.append(invalid(child(path, "envFrom"), "", "may not have more than one field specified at a time"))


def quantity(value: Any, path: str, causes: Causes) -> Any:
    """Parse one ResourceList value; report it with Kubernetes' parse error. Returns Decimal | None."""
    try:
        amount = parse_quantity(value)
    except QuantityError as exc:
        causes.append(invalid(path, value, str(exc)))
        return None
    if amount < 0:
        causes.append(invalid(path, value, "must be greater than or equal to 0"))
    return amount


def _resource_name_errors(name: str, path: str) -> Causes:
    if "/" not in name:
        if name in _STANDARD_CONTAINER_RESOURCES or name.startswith("hugepages-"):
            return []
        return [invalid(path, name, "must be a standard resource for containers")]
    errs = qualified_name_errors(name)
    if errs:
        return each(path, name, errs)
    if name.split("/", 1)[0].endswith("kubernetes.io"):
        return [invalid(path, name, "must be a standard resource for containers")]
    return []


def _resource_list(resources: Obj, name: str, path: str, causes: Causes) -> dict[str, Any]:
    list_path = child(path, name)
    amounts: dict[str, Any] = {}
    for resource, value in get_map(resources, name, path, causes).items():
        item_path = key(list_path, resource)
        causes.extend(_resource_name_errors(resource, item_path))
        amount = quantity(value, item_path, causes)
        if amount is not None:
            amounts[resource] = (value, amount)
    return amounts


def _validate_resources(container: Obj, path: str, causes: Causes) -> None:
    """ValidateResourceRequirements: names, quantities, requests <= limits (== for extended ones)."""
    resources = get_map(container, "resources", path, causes)
    res_path = child(path, "resources")
    limits = _resource_list(resources, "limits", res_path, causes)
    requests = _resource_list(resources, "requests", res_path, causes)
    req_path = child(res_path, "requests")
    for resource, (raw, amount) in requests.items():
        if resource not in limits:
            continue
        limit_raw, limit = limits[resource]
        overcommit = "/" not in resource and not resource.startswith("hugepages-")
        if not overcommit and amount != limit:
            causes.append(invalid(req_path, str(raw), f"must be equal to {resource} limit of {limit_raw}"))
        elif amount > limit:
            causes.append(invalid(req_path, str(raw), f"must be less than or equal to {resource} limit of {limit_raw}"))


def _validate_volume_mounts(container: Obj, path: str, volumes: set[str], causes: Causes) -> None:
    mount_points: set[str] = set()
    for mount_path, mount in get_maps(container, "volumeMounts", path, causes):
        name = get_str(mount, "name", mount_path, causes)
        if not name:
            causes.append(required(child(mount_path, "name")))
        if name not in volumes:
            causes.append(not_found(child(mount_path, "name"), name))
        target = get_str(mount, "mountPath", mount_path, causes)
        if not target:
            causes.append(required(child(mount_path, "mountPath")))
        if target in mount_points:
            causes.append(invalid(child(mount_path, "mountPath"), target, "must be unique"))
        mount_points.add(target)
        get_bool(mount, "readOnly", mount_path, causes)
        sub_path = get_str(mount, "subPath", mount_path, causes)
        if sub_path.startswith("/"):
            causes.append(invalid(child(mount_path, "subPath"), sub_path, "must be a relative path"))
        if ".." in sub_path.split("/"):
            causes.append(invalid(child(mount_path, "subPath"), sub_path, "must not contain '..'"))


def validate_container(container: Obj, path: str, *, volumes: set[str], init: bool, is_pod: bool, causes: Causes) -> None:
    required_str(container, "name", path, causes, errors=dns1123_label_errors)
    image = get_str(container, "image", path, causes)
    if not image:
        causes.append(required(child(path, "image")))
    elif is_pod and image != image.strip():
        causes.append(invalid(child(path, "image"), image, "must not have leading or trailing whitespace"))
    get_strs(container, "command", path, causes)
    get_strs(container, "args", path, causes)
    get_str(container, "workingDir", path, causes)
    sidecar = False
    if init:
        restart = get_str(container, "restartPolicy", path, causes)
        sidecar = restart == "Always"
        if restart and not sidecar:
            causes.append(not_supported(child(path, "restartPolicy"), restart, ("Always",)))
    elif container.get("restartPolicy") is not None:
        causes.append(forbidden(child(path, "restartPolicy"), "may not be set for non-init containers"))
    lifecycle = get_opt_map(container, "lifecycle", path, causes)
    if lifecycle is not None:
        if init and not sidecar:
            causes.append(invalid(child(path, "lifecycle"), lifecycle, "must not be set for init containers"))
        for hook in ("postStart", "preStop"):
            handler = get_opt_map(lifecycle, hook, child(path, "lifecycle"), causes)
            if handler is not None:
                validate_handler(handler, child(child(path, "lifecycle"), hook), causes,
                                  kinds=("exec", "httpGet", "tcpSocket", "sleep"))
    for probe_name in PROBES:
        probe = get_opt_map(container, probe_name, path, causes)
        if probe is None:
            continue
        probe_path = child(path, probe_name)
        if init and not sidecar:
            causes.append(invalid(probe_path, probe, "must not be set for init containers"))
            continue
        _validate_probe(probe, probe_path, causes)
        threshold = probe.get("successThreshold")
        if probe_name != "readinessProbe" and isinstance(threshold, int) and not isinstance(threshold, bool) and threshold != 1:
            causes.append(invalid(child(probe_path, "successThreshold"), threshold, "must be 1"))
        if probe_name == "readinessProbe" and probe.get("terminationGracePeriodSeconds") is not None:
            causes.append(invalid(child(probe_path, "terminationGracePeriodSeconds"), probe["terminationGracePeriodSeconds"],
                                  "must not be set for readinessProbes"))
    policy = get_str(container, "terminationMessagePolicy", path, causes)
    if not policy:
        causes.append(required(child(path, "terminationMessagePolicy"), "must be 'File' or 'FallbackToLogsOnError'"))
    elif policy not in ("File", "FallbackToLogsOnError"):
        causes.append(invalid(child(path, "terminationMessagePolicy"), policy, "must be 'File' or 'FallbackToLogsOnError'"))
    get_str(container, "terminationMessagePath", path, causes)
    _validate_ports(container, path, causes)
    _validate_env(container, path, causes)
    _validate_volume_mounts(container, path, volumes, causes)
    causes.extend(enum(child(path, "imagePullPolicy"), get_str(container, "imagePullPolicy", path, causes), _PULL_POLICIES))
    _validate_resources(container, path, causes)
    get_opt_map(container, "securityContext", path, causes)
    for flag in ("stdin", "stdinOnce", "tty"):
        get_bool(container, flag, path, causes)

