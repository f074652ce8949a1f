"""A pod's DNS settings and Service environment variables (pure), after the kubelet's
``pkg/kubelet/network/dns`` and ``pkg/kubelet/envvars``.

Data flow:
    pod spec (dnsPolicy, dnsConfig, hostNetwork) + the kubelet's --cluster-dns / --cluster-domain
        -> ``pod_dns`` -> cri.PodDNS for the sandbox (None: Docker's default, the host's resolver)
    the Services of the pod's namespace (+ default/kubernetes) when the sandbox starts
        -> ``service_env`` -> {NAME}_SERVICE_HOST, {NAME}_SERVICE_PORT[_PORTNAME] and the Docker
           link variables {NAME}_PORT, {NAME}_PORT_{PORT}_{PROTO}[_PROTO|_PORT|_ADDR]

dnsPolicy:
    ClusterFirst (default)  the cluster DNS, search ``NS.svc.DOMAIN svc.DOMAIN DOMAIN``, ndots:5;
                            with hostNetwork, or when the kubelet has no cluster DNS: as Default
    ClusterFirstWithHostNet as ClusterFirst, also with hostNetwork
    Default                 the node's resolver (nothing is set)
    None                    only what dnsConfig says
dnsConfig's nameservers and searches are appended (at most 3 nameservers, 32 search domains,
duplicates dropped), its options replace options of the same name.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from kubelet.cri import PodDNS

Obj = Mapping[str, Any]
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32


def _merge_options(base: list[str], extra: Iterable[Obj]) -> list[str]:
    merged: dict[str, str] = {}
    for opt in base:
        name, _, value = opt.partition(":")
        merged[name] = opt
    for o in extra:
        name = str(o.get("name") or "")
        if name:
            merged[name] = f"{name}:{o['value']}" if o.get("value") not in (None, "") else name
    return list(merged.values())


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def pod_dns(pod: Obj, *, cluster_dns: Iterable[str], cluster_domain: str = "cluster.local") -> PodDNS | None:
    """The sandbox's DNS settings; None leaves the engine's default (the node's resolver)."""
    spec = pod.get("spec") or {}
    ns = str((pod.get("metadata") or {}).get("namespace") or "default")
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    servers = [s for s in cluster_dns if s]
    config = spec.get("dnsConfig") or {}
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not spec.get("hostNetwork")):
        if servers:
            nameservers = servers
            searches = [f"{ns}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
            options = ["ndots:5"]
    elif policy != "None":
        policy = "Default"
    if policy == "Default" and not config:
        return None
    nameservers = _unique(nameservers + list(config.get("nameservers") or []))[:MAX_NAMESERVERS]
    searches = _unique(searches + list(config.get("searches") or []))[:MAX_SEARCHES]
    options = _merge_options(options, config.get("options") or [])
    if not (nameservers or searches or options):
        return None
    return PodDNS(nameservers=tuple(nameservers), searches=tuple(searches), options=tuple(options))


def _env_name(service: str) -> str:
    return service.upper().replace("-", "_")


def _one_service(svc: Obj) -> dict[str, str]:
    spec = svc.get("spec") or {}
    ip = spec.get("clusterIP")
    ports = spec.get("ports") or []
    if not ip or ip == "None" or not ports:
        return {}
    name = _env_name(str((svc.get("metadata") or {}).get("name") or ""))
    first = ports[0]
    env = {f"{name}_SERVICE_HOST": str(ip), f"{name}_SERVICE_PORT": str(first.get("port"))}
    for p in ports:
        if p.get("name"):
            env[f"{name}_SERVICE_PORT_{_env_name(str(p['name']))}"] = str(p.get("port"))
    proto0 = str(first.get("protocol") or "TCP").lower()
    env[f"{name}_PORT"] = f"{proto0}://{ip}:{first.get('port')}"
    for p in ports:
        proto = str(p.get("protocol") or "TCP")
        prefix = f"{name}_PORT_{p.get('port')}_{proto.upper()}"
        env[prefix] = f"{proto.lower()}://{ip}:{p.get('port')}"
        env[f"{prefix}_PROTO"] = proto.lower()
        env[f"{prefix}_PORT"] = str(p.get("port"))
        env[f"{prefix}_ADDR"] = str(ip)
    return env


def service_env(pod: Obj, services: Iterable[Obj], *, master_namespace: str = "default") -> dict[str, str]:
    """The Service variables a container of ``pod`` starts with: every Service of its namespace
    (unless ``enableServiceLinks: false``) and always ``default/kubernetes``; a Service of the
    pod's own namespace wins over one of the same name elsewhere (Kubernetes' getServiceEnvVarMap)."""
    spec = pod.get("spec") or {}
    ns = str((pod.get("metadata") or {}).get("namespace") or "default")
    links = spec.get("enableServiceLinks") is not False
    chosen: dict[str, Obj] = {}
    for svc in services:
        meta = svc.get("metadata") or {}
        svc_ns, name = meta.get("namespace"), str(meta.get("name") or "")
        if svc_ns == ns and links:
            chosen[name] = svc
        elif svc_ns == master_namespace and name == "kubernetes" and name not in chosen:
            chosen[name] = svc
    env: dict[str, str] = {}
    for name in sorted(chosen):
        env.update(_one_service(chosen[name]))
    return env
