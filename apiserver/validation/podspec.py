"""Pod spec and pod template validation (ValidatePodSpec, ValidatePodTemplateSpec).

Data flow: the Pod strategy validates ``spec`` with ``validate_pod_spec(spec, "spec", is_pod=True)``;
every controller kind (Deployment, ReplicaSet, ReplicationController, ...) validates its
``spec.template`` with ``validate_template``. Containers are checked by ``containers.py``.
"""

from __future__ import annotations

from .containers import DNS_POLICIES, RESTART_POLICIES, TAINT_EFFECTS, quantity, validate_container
from .fielderrors import (Causes, Obj, child, duplicate, each, enum, forbidden, get_bool, get_int, get_map, get_maps,
                          get_opt_map, get_str, get_str_map, get_strs, index, invalid, nonnegative, not_supported,
                          required)
from .formats import dns1123_label_errors, dns1123_subdomain_errors, label_value_errors, qualified_name_errors, range_error
from .objectmeta import read_labels, validate_annotations

INT32_MAX = 2**31 - 1
_TOLERATION_OPERATORS = ("Equal", "Exists")
# Every volume source a Volume may name (exactly one per volume); defaulting checks the same list.
VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs",
    "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker",
    "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral",
    "image",
)


def host_port_conflicts(containers: list[tuple[str, Obj]]) -> Causes:
    """AccumulateUniqueHostPorts: one host port per protocol/hostIP across containers."""
    seen: set[str] = set()
    causes: Causes = []
    for container_path, container in containers:
        ports = container.get("ports")
        for i, port in enumerate(ports if isinstance(ports, list) else []):
            if not isinstance(port, dict):
                continue
            host_port = port.get("hostPort")
            if not isinstance(host_port, int) or isinstance(host_port, bool) or host_port == 0:
                continue
            slot = f"{port.get('protocol') or ''}/{port.get('hostIP') or ''}/{host_port}"
            if slot in seen:
                causes.append(duplicate(child(index(child(container_path, "ports"), i), "hostPort"), slot))
            seen.add(slot)
    return causes


def _validate_volumes(spec: Obj, path: str, causes: Causes) -> set[str]:
    names: set[str] = set()
    for volume_path, volume in get_maps(spec, "volumes", path, causes):
        errs: Causes = []
        name = get_str(volume, "name", volume_path, errs)
        if not name:
            errs.append(required(child(volume_path, "name")))
        else:
            errs.extend(each(child(volume_path, "name"), name, dns1123_label_errors(name)))
        if name in names:
            errs.append(duplicate(child(volume_path, "name"), name))
        sources = [s for s in VOLUME_SOURCES if volume.get(s) is not None]
        if not sources:
            errs.append(required(volume_path, "must specify a volume type"))
        for extra in sources[1:]:
            errs.append(forbidden(child(volume_path, extra), "may not specify more than 1 volume type"))
        for source in sources[:1]:
            body = get_map(volume, source, volume_path, errs)
            source_path = child(volume_path, source)
            if source == "hostPath" and not get_str(body, "path", source_path, errs):
                errs.append(required(child(source_path, "path")))
            elif source == "persistentVolumeClaim" and not get_str(body, "claimName", source_path, errs):
                errs.append(required(child(source_path, "claimName")))
            elif source == "emptyDir" and body.get("sizeLimit") is not None:
                quantity(body["sizeLimit"], child(source_path, "sizeLimit"), errs)
        # Like Kubernetes, only volumes without errors can be mounted.
        if not errs:
            names.add(name)
        causes.extend(errs)
    return names


def _validate_tolerations(spec: Obj, path: str, causes: Causes) -> None:
    for tol_path, tol in get_maps(spec, "tolerations", path, causes):
        tol_key = get_str(tol, "key", tol_path, causes)
        operator = get_str(tol, "operator", tol_path, causes)
        value = get_str(tol, "value", tol_path, causes)
        effect = get_str(tol, "effect", tol_path, causes)
        seconds = get_int(tol, "tolerationSeconds", tol_path, causes, bits=64)
        if tol_key:
            causes.extend(each(child(tol_path, "key"), tol_key, qualified_name_errors(tol_key)))
        elif operator != "Exists":
            causes.append(invalid(child(tol_path, "operator"), operator,
                                  'operator must be Exists when `key` is empty, which means "match all values and all keys"'))
        if seconds is not None and effect != "NoExecute":
            causes.append(invalid(child(tol_path, "effect"), effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if operator in ("Equal", ""):
            errs = label_value_errors(value)
            if errs:
                causes.append(invalid(child(tol_path, "operator"), value, ";".join(errs)))
        elif operator == "Exists":
            if value:
                causes.append(invalid(child(tol_path, "operator"), tol, "value must be empty when `operator` is 'Exists'"))
        else:
            causes.append(not_supported(child(tol_path, "operator"), operator, _TOLERATION_OPERATORS))
        if effect and effect not in TAINT_EFFECTS:
            causes.append(not_supported(child(tol_path, "effect"), effect, TAINT_EFFECTS))


def validate_pod_spec(spec: Obj, path: str, *, is_pod: bool) -> Causes:
    """ValidatePodSpec (plus the pod-only container checks when ``is_pod``)."""
    causes: Causes = []
    volumes = _validate_volumes(spec, path, causes)
    containers = get_maps(spec, "containers", path, causes)
    init_containers = get_maps(spec, "initContainers", path, causes)
    if not containers:
        causes.append(required(child(path, "containers")))
    names: set[str] = set()
    for init, pairs in ((False, containers), (True, init_containers)):
        for container_path, container in pairs:
            validate_container(container, container_path, volumes=volumes, init=init, is_pod=is_pod, causes=causes)
            name = container.get("name")
            if isinstance(name, str):
                if name in names:
                    causes.append(duplicate(child(container_path, "name"), name))
                if name or not init:  # validateInitContainers records only the names that are set
                    names.add(name)
    causes.extend(host_port_conflicts(containers))
    for pair in init_containers:
        causes.extend(host_port_conflicts([pair]))
    causes.extend(enum(child(path, "restartPolicy"), get_str(spec, "restartPolicy", path, causes), RESTART_POLICIES))
    dns_policy = get_str(spec, "dnsPolicy", path, causes)
    causes.extend(enum(child(path, "dnsPolicy"), dns_policy, DNS_POLICIES))
    dns_config = get_opt_map(spec, "dnsConfig", path, causes)
    if dns_policy == "None":
        if dns_config is None:
            causes.append(required(child(path, "dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"))
        elif not get_strs(dns_config, "nameservers", child(path, "dnsConfig"), causes):
            causes.append(required(child(child(path, "dnsConfig"), "nameservers"),
                                   "must provide at least one DNS nameserver when `dnsPolicy` is None"))
    read_labels(spec, "nodeSelector", path, causes)
    grace = get_int(spec, "terminationGracePeriodSeconds", path, causes, bits=64)
    causes.extend(nonnegative(child(path, "terminationGracePeriodSeconds"), grace))
    deadline = get_int(spec, "activeDeadlineSeconds", path, causes, bits=64)
    if deadline is not None and not 1 <= deadline <= INT32_MAX:
        causes.append(invalid(child(path, "activeDeadlineSeconds"), deadline, range_error(1, INT32_MAX)))
    for field_name, check in (("serviceAccountName", dns1123_subdomain_errors), ("nodeName", dns1123_subdomain_errors),
                              ("priorityClassName", dns1123_subdomain_errors), ("hostname", dns1123_label_errors),
                              ("subdomain", dns1123_label_errors), ("schedulerName", lambda _v: [])):
        value = get_str(spec, field_name, path, causes)
        if value:
            causes.extend(each(child(path, field_name), value, check(value)))
    _validate_tolerations(spec, path, causes)
    for flag in ("hostNetwork", "hostPID", "hostIPC", "enableServiceLinks", "automountServiceAccountToken"):
        get_bool(spec, flag, path, causes)
    get_int(spec, "priority", path, causes)
    get_opt_map(spec, "securityContext", path, causes)
    get_opt_map(spec, "affinity", path, causes)
    for secret_path, secret in get_maps(spec, "imagePullSecrets", path, causes):
        get_str(secret, "name", secret_path, causes)
    return causes


def validate_template(spec: Obj, path: str, causes: Causes, *, owner: str) -> tuple[Obj, dict[str, str]]:
    """ValidatePodTemplateSpec for a controller's template; returns (template, its labels)."""
    template_path = child(path, "template")
    template = get_map(spec, "template", path, causes)
    meta = get_map(template, "metadata", template_path, causes)
    meta_path = child(template_path, "metadata")
    labels = read_labels(meta, "labels", meta_path, causes)
    causes.extend(validate_annotations(get_str_map(meta, "annotations", meta_path, causes), child(meta_path, "annotations")))
    pod_spec_path = child(template_path, "spec")
    pod_spec = get_map(template, "spec", template_path, causes)
    causes.extend(validate_pod_spec(pod_spec, pod_spec_path, is_pod=False))
    restart = pod_spec.get("restartPolicy")
    if isinstance(restart, str) and restart in RESTART_POLICIES and restart != "Always":
        causes.append(not_supported(child(pod_spec_path, "restartPolicy"), restart, ("Always",)))
    if pod_spec.get("activeDeadlineSeconds") is not None:
        causes.append(forbidden(child(pod_spec_path, "activeDeadlineSeconds"), f"activeDeadlineSeconds in {owner} is not Supported"))
    return template, labels
