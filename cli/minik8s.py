"""``minik8s``: runs each component alone, configured by flags and environment variables.

Commands: ``minik8s apiserver --etcd-servers URL --bind-address ADDR --port N`` (the API server,
run in this process), ``minik8s scheduler --server URL``, ``minik8s controller-manager --server
URL``, ``minik8s kubelet --server URL --node-name NAME`` (the Docker kubelet; ``--simulated
--count N`` for nodes without containers), ``minik8s up`` (etcd and every component on this
machine as child processes), ``minik8s gitops --server URL`` (the git-sync reconciler; with
``--repo URL --path DIR --branch B`` it also creates or updates GitSync gitops-system/default) and
``minik8s healthcheck URL``. proxy, dns, ingress and the console are not written yet.
"""

from __future__ import annotations

import typer

from cli import consolecmd, dnscmd, ingresscmd, proxycmd
from cli.options import KUBECONFIG, SERVER, setup_logging
from machinery.kubeconfig import component_config

app = typer.Typer(help="minik8s: a small Kubernetes. Each subcommand runs one component.",
                  no_args_is_help=True, add_completion=False)


@app.callback()
def main_callback() -> None:
    """minik8s components."""


@app.command()
def apiserver(
    etcd_servers: str = typer.Option("http://127.0.0.1:2379", envvar="MINIK8S_ETCD_SERVERS",
                                     help="etcd endpoint(s), comma separated"),
    bind_address: str = typer.Option("127.0.0.1", envvar="MINIK8S_BIND_ADDRESS", help="address to listen on"),
    advertise_address: str = typer.Option(
        "", envvar="MINIK8S_ADVERTISE_ADDRESS",
        help="the address pods reach the apiserver at, published as the default/kubernetes Endpoints "
             "(default: the bind address, or this host's address when binding 0.0.0.0; none for loopback)"),
    port: int = typer.Option(8080, "--insecure-port", "--port", envvar="MINIK8S_PORT",
                             help="plain-HTTP port (with --tls-cert-file: on 127.0.0.1 only and unauthenticated, "
                                  "for tests; 0: none). --port is its old name"),
    compaction_interval: float = typer.Option(60.0, envvar="MINIK8S_COMPACTION_INTERVAL",
                                              help="seconds between etcd compactions"),
    history_retention: float = typer.Option(300.0, envvar="MINIK8S_HISTORY_RETENTION",
                                            help="seconds of etcd history kept for watches"),
    service_cluster_ip_range: str = typer.Option(
        "172.28.128.0/17", envvar="MINIK8S_SERVICE_CLUSTER_IP_RANGE",
        help="CIDR that Service cluster IPs are allocated from (default: the upper half of the kubelets' default "
             "pod network 172.28.0.0/16; the first address is default/kubernetes', the 11th the cluster DNS')"),
    service_node_port_range: str = typer.Option("30000-32767", envvar="MINIK8S_SERVICE_NODE_PORT_RANGE",
                                                help="port range NodePort and LoadBalancer Services get node ports from"),
    bookmark_interval: float = typer.Option(10.0, envvar="MINIK8S_BOOKMARK_INTERVAL",
                                            help="seconds between BOOKMARK events on idle watches that allow them"),
    default_not_ready_toleration_seconds: int = typer.Option(
        300, envvar="MINIK8S_DEFAULT_NOT_READY_TOLERATION_SECONDS",
        help="tolerationSeconds of the node.kubernetes.io/not-ready:NoExecute toleration added to every pod "
             "that has none (DefaultTolerationSeconds admission)"),
    default_unreachable_toleration_seconds: int = typer.Option(
        300, envvar="MINIK8S_DEFAULT_UNREACHABLE_TOLERATION_SECONDS",
        help="the same for node.kubernetes.io/unreachable:NoExecute"),
    log_level: str = typer.Option("info", envvar="MINIK8S_LOG_LEVEL"),
    secure_port: int = typer.Option(6443, envvar="MINIK8S_SECURE_PORT",
                                    help="HTTPS port on --bind-address (with --tls-cert-file)"),
    tls_cert_file: str = typer.Option("", envvar="MINIK8S_TLS_CERT_FILE",
                                      help="serving certificate (PEM); without it no TLS and no authentication"),
    tls_private_key_file: str = typer.Option("", envvar="MINIK8S_TLS_PRIVATE_KEY_FILE", help="its key (PEM)"),
    client_ca_file: str = typer.Option("", envvar="MINIK8S_CLIENT_CA_FILE",
                                       help="client certificates signed by this CA authenticate (CN user, O groups)"),
    token_auth_file: str = typer.Option("", envvar="MINIK8S_TOKEN_AUTH_FILE",
                                        help='static bearer tokens, CSV lines token,user,uid,"group1,group2"'),
    service_account_key_file: str = typer.Option("", envvar="MINIK8S_SERVICE_ACCOUNT_KEY_FILE",
                                                 help="PEM public key(s) that verify ServiceAccount tokens"),
    service_account_signing_key_file: str = typer.Option("", envvar="MINIK8S_SERVICE_ACCOUNT_SIGNING_KEY_FILE",
                                                         help="PEM private key that signs ServiceAccount tokens"),
    service_account_issuer: str = typer.Option("https://kubernetes.default.svc.cluster.local",
                                               envvar="MINIK8S_SERVICE_ACCOUNT_ISSUER",
                                               help="the iss claim of ServiceAccount tokens"),
    authorization_mode: str = typer.Option("Node,RBAC", envvar="MINIK8S_AUTHORIZATION_MODE",
                                           help="authorizers in order: AlwaysAllow, AlwaysDeny, Node, RBAC"),
    pod_security_default: str = typer.Option("baseline", envvar="MINIK8S_POD_SECURITY_DEFAULT",
                                             help="Pod Security level enforced in namespaces without the "
                                                  "pod-security.kubernetes.io/enforce label"),
    encryption_provider_config: str = typer.Option("", envvar="MINIK8S_ENCRYPTION_PROVIDER_CONFIG",
                                                   help="EncryptionConfiguration file (Secrets encrypted at rest)"),
    audit_log_path: str = typer.Option("", envvar="MINIK8S_AUDIT_LOG_PATH",
                                       help="write audit.k8s.io/v1 Events here ('-': stdout)"),
    audit_policy_file: str = typer.Option("", envvar="MINIK8S_AUDIT_POLICY_FILE", help="audit Policy file"),
) -> None:
    """Run the API server (Kubernetes REST API on etcd)."""
    from apiserver.server import ApiServerSettings, SettingsError, run

    _logging(log_level)
    settings = ApiServerSettings(
        etcd_servers=etcd_servers, bind_address=bind_address, advertise_address=advertise_address, port=port,
        compaction_interval=compaction_interval, history_retention=history_retention,
        service_cluster_ip_range=service_cluster_ip_range,
        service_node_port_range=service_node_port_range, bookmark_interval=bookmark_interval,
        default_not_ready_toleration_seconds=default_not_ready_toleration_seconds,
        default_unreachable_toleration_seconds=default_unreachable_toleration_seconds,
        log_level=log_level, secure_port=secure_port, tls_cert_file=tls_cert_file,
        tls_private_key_file=tls_private_key_file, client_ca_file=client_ca_file, token_auth_file=token_auth_file,
        service_account_key_file=service_account_key_file,
        service_account_signing_key_file=service_account_signing_key_file,
        service_account_issuer=service_account_issuer, authorization_mode=authorization_mode,
        pod_security_default=pod_security_default, encryption_provider_config=encryption_provider_config,
        audit_log_path=audit_log_path, audit_policy_file=audit_policy_file)
    try:
        run(settings)
    except SettingsError as e:
        typer.echo(f"Error: {e}", err=True)
        raise typer.Exit(1) from None


@app.command()
def certs(
    directory: str = typer.Option(..., "--dir", envvar="MINIK8S_CERTS_DIR", help="where the PKI files go"),
    host: list[str] = typer.Option([], "--host", help="a name or IP address the API server is reached at "
                                                      "(repeatable; localhost and 127.0.0.1 are always in)"),
    node: list[str] = typer.Option([], "--node", help="a node that gets a kubelet certificate (repeatable)"),
    server: str = typer.Option("https://127.0.0.1:6443", help="the API server URL in every kubeconfig"),
    user_server: str = typer.Option("", help="the URL in admin.kubeconfig instead (what the user on the host uses)"),
    service_cluster_ip_range: str = typer.Option(
        "172.28.128.0/17", envvar="MINIK8S_SERVICE_CLUSTER_IP_RANGE",
        help="the API server's Service range: its first address (default/kubernetes) joins the serving certificate"),
) -> None:
    """Make (or complete) the cluster's CA, certificates, keys and one kubeconfig per identity."""
    from machinery.pki import ensure_cluster_pki, file_stem

    pki = ensure_cluster_pki(directory, hosts=host, nodes=node, service_cidr=service_cluster_ip_range)
    typer.echo(f"certificates and keys in {pki.directory}")
    for who in pki.identities:
        url = user_server if who == "admin" and user_server else server
        path = pki.write_kubeconfig(pki.directory / f"{file_stem(who)}.kubeconfig", user=who, server=url)
        typer.echo(f"wrote {path} ({who}, {url})")


_logging = setup_logging


_SERVER = SERVER
# Shared by the scheduler and the controller-manager.
_LEADER_ELECT = typer.Option(True, help="run as one of several replicas, one leading through a Lease")
_LEASE_DURATION = typer.Option(15.0, envvar="MINIK8S_LEASE_DURATION")
_RENEW_DEADLINE = typer.Option(10.0, envvar="MINIK8S_RENEW_DEADLINE")
_RETRY_PERIOD = typer.Option(2.0, envvar="MINIK8S_RETRY_PERIOD")
_IDENTITY = typer.Option("", help="this replica's name in the Lease (default: host name + random)")
_HEALTHZ_BIND_ADDRESS = typer.Option("127.0.0.1", envvar="MINIK8S_HEALTHZ_BIND_ADDRESS",
                                     help="address of the /healthz endpoint")


@app.command()
def scheduler(
    server: str = _SERVER,
    kubeconfig: str = KUBECONFIG,
    scheduler_name: str = typer.Option("default-scheduler", help="schedule pods whose spec.schedulerName is this"),
    leader_elect: bool = _LEADER_ELECT,
    lease_duration: float = _LEASE_DURATION,
    renew_deadline: float = _RENEW_DEADLINE,
    retry_period: float = _RETRY_PERIOD,
    identity: str = _IDENTITY,
    healthz_bind_address: str = _HEALTHZ_BIND_ADDRESS,
    healthz_port: int = typer.Option(10259, envvar="MINIK8S_HEALTHZ_PORT", help="port of /healthz; 0: none"),
    log_level: str = typer.Option("info", envvar="MINIK8S_LOG_LEVEL"),
) -> None:
    """Run the scheduler: binds pending pods to nodes."""
    from scheduler.server import SchedulerSettings, run as run_scheduler

    _logging(log_level)
    settings = SchedulerSettings(server=component_config(server, kubeconfig), scheduler_name=scheduler_name, leader_elect=leader_elect,
                                 lease_duration=lease_duration, renew_deadline=renew_deadline,
                                 retry_period=retry_period, healthz_bind_address=healthz_bind_address,
                                 healthz_port=healthz_port)
    if identity:
        settings.identity = identity
    run_scheduler(settings)


def _duration(value: str, flag: str) -> float:
    from machinery.timefmt import parse_duration

    try:
        return parse_duration(value)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint=flag)


@app.command("controller-manager")
def controller_manager(
    server: str = _SERVER,
    kubeconfig: str = KUBECONFIG,
    controllers: str = typer.Option("*", help="comma-separated controllers to run; '*' all, '-name' to leave one out"),
    leader_elect: bool = _LEADER_ELECT,
    lease_duration: float = _LEASE_DURATION,
    renew_deadline: float = _RENEW_DEADLINE,
    retry_period: float = _RETRY_PERIOD,
    identity: str = _IDENTITY,
    node_monitor_period: float = typer.Option(5.0, envvar="MINIK8S_NODE_MONITOR_PERIOD"),
    node_monitor_grace_period: float = typer.Option(40.0, envvar="MINIK8S_NODE_MONITOR_GRACE_PERIOD",
                                                    help="seconds without a node lease renewal before NotReady"),
    default_toleration_seconds: float = typer.Option(300.0, envvar="MINIK8S_DEFAULT_TOLERATION_SECONDS",
                                                     help="how long pods tolerate an unreachable node"),
    namespace_deletion_grace_period: float = typer.Option(
        5.0, envvar="MINIK8S_NAMESPACE_DELETION_GRACE_PERIOD",
        help="seconds a deleted namespace waits before its content is removed"),
    terminated_pod_gc_threshold: int = typer.Option(
        12500, envvar="MINIK8S_TERMINATED_POD_GC_THRESHOLD",
        help="terminated pods kept before the oldest are deleted (<= 0: never)"),
    pod_gc_period: float = typer.Option(20.0, envvar="MINIK8S_POD_GC_PERIOD",
                                        help="seconds between pod garbage collection passes"),
    pod_gc_quarantine: float = typer.Option(
        40.0, envvar="MINIK8S_POD_GC_QUARANTINE",
        help="seconds the pods of a missing node wait before they are force-deleted"),
    load_balancer_ip_range: str = typer.Option(
        "127.240.0.0/16", envvar="MINIK8S_LOAD_BALANCER_IP_RANGE",
        help="the pool LoadBalancer Services get status.loadBalancer addresses from (loopback by default: "
             "every 127/8 address is this machine's, and minik8s proxy listens there)"),
    hpa_sync_period: str = typer.Option(
        "15s", "--horizontal-pod-autoscaler-sync-period", envvar="MINIK8S_HPA_SYNC_PERIOD",
        help="how often each HorizontalPodAutoscaler is synced (a duration: 15s, 1m)"),
    hpa_downscale_stabilization: str = typer.Option(
        "5m0s", "--horizontal-pod-autoscaler-downscale-stabilization", envvar="MINIK8S_HPA_DOWNSCALE_STABILIZATION",
        help="the scale-down stabilisation window: the highest recommendation of this period wins"),
    hpa_tolerance: float = typer.Option(
        0.1, "--horizontal-pod-autoscaler-tolerance", envvar="MINIK8S_HPA_TOLERANCE",
        help="the minimum change of the usage ratio (from 1.0) that makes the HPA scale"),
    job_backoff_base: float = typer.Option(10.0, envvar="MINIK8S_JOB_BACKOFF_BASE",
                                           help="seconds before a failed Job pod is replaced (doubling per failure)"),
    job_backoff_max: float = typer.Option(360.0, envvar="MINIK8S_JOB_BACKOFF_MAX",
                                          help="the cap of the Job pod failure backoff, seconds"),
    healthz_bind_address: str = _HEALTHZ_BIND_ADDRESS,
    healthz_port: int = typer.Option(10257, envvar="MINIK8S_HEALTHZ_PORT", help="port of /healthz; 0: none"),
    root_ca_file: str = typer.Option(
        "", envvar="MINIK8S_ROOT_CA_FILE",
        help="the CA bundle published in every namespace as ConfigMap kube-root-ca.crt (default: the kubeconfig's CA)"),
    log_level: str = typer.Option("info", envvar="MINIK8S_LOG_LEVEL"),
) -> None:
    """Run the controller-manager: ReplicaSets, Deployments, garbage collection, nodes, endpoints,
    LoadBalancer addresses."""
    from controllers.manager import ControllerManagerSettings, run as run_cm

    _logging(log_level)
    settings = ControllerManagerSettings(
        server=component_config(server, kubeconfig), controllers=tuple(c.strip() for c in controllers.split(",") if c.strip()),
        leader_elect=leader_elect, lease_duration=lease_duration, renew_deadline=renew_deadline,
        retry_period=retry_period, node_monitor_period=node_monitor_period,
        node_monitor_grace_period=node_monitor_grace_period,
        default_toleration_seconds=default_toleration_seconds,
        namespace_deletion_grace_period=namespace_deletion_grace_period,
        terminated_pod_gc_threshold=terminated_pod_gc_threshold, pod_gc_period=pod_gc_period,
        pod_gc_quarantine=pod_gc_quarantine,
        load_balancer_ip_range=load_balancer_ip_range,
        horizontal_pod_autoscaler_sync_period=_duration(hpa_sync_period, "--horizontal-pod-autoscaler-sync-period"),
        horizontal_pod_autoscaler_downscale_stabilization=_duration(
            hpa_downscale_stabilization, "--horizontal-pod-autoscaler-downscale-stabilization"),
        horizontal_pod_autoscaler_tolerance=hpa_tolerance,
        job_backoff_base_s=job_backoff_base, job_backoff_max_s=job_backoff_max,
        healthz_bind_address=healthz_bind_address, healthz_port=healthz_port, root_ca_file=root_ca_file)
    if identity:
        settings.identity = identity
    run_cm(settings)


@app.command()
def kubelet(
    server: str = _SERVER,
    kubeconfig: str = KUBECONFIG,
    node_name: str = typer.Option(..., "--node-name", envvar="MINIK8S_NODE_NAME", help="the Node this kubelet registers"),
    simulated: bool = typer.Option(False, "--simulated", help="run no containers: pods only change state (like kwok)"),
    count: int = typer.Option(1, "--count", help="with --simulated: N nodes named NAME-0 ... NAME-(N-1)"),
    healthz_port: int = typer.Option(0, "--healthz-port", envvar="MINIK8S_KUBELET_HEALTHZ_PORT",
                                     help="with --simulated: port of /healthz and /metrics on 127.0.0.1 (0: none; "
                                          "a Docker kubelet serves /metrics on its --kubelet-port)"),
    capacity: str = typer.Option("cpu=8,memory=32Gi,pods=110", help="the node's capacity"),
    lease_renew_interval: float = typer.Option(10.0, envvar="MINIK8S_NODE_LEASE_RENEW_INTERVAL",
                                               help="seconds between node Lease renewals"),
    pod_network_subnet: str = typer.Option("172.28.0.0/16", envvar="MINIK8S_POD_NETWORK_SUBNET",
                                           help="subnet of the Docker pod network (shared by kubelets)"),
    pod_network_name: str = typer.Option("minik8s-pods", envvar="MINIK8S_POD_NETWORK_NAME",
                                         help="name of the Docker pod network"),
    pod_ip_range: str = typer.Option("", "--pod-ip-range", envvar="MINIK8S_POD_IP_RANGE",
                                     help="the part of the pod subnet Docker gives pods addresses from, when the "
                                          "kubelet makes the network (default: its lower half; the upper half holds "
                                          "the ClusterIPs)"),
    cluster_dns: str = typer.Option("", "--cluster-dns", envvar="MINIK8S_CLUSTER_DNS",
                                    help="the cluster DNS server's address(es), comma separated (the kube-dns "
                                         "ClusterIP), for pods with dnsPolicy ClusterFirst; none: the node's resolver"),
    cluster_domain: str = typer.Option("cluster.local", "--cluster-domain", envvar="MINIK8S_CLUSTER_DOMAIN",
                                       help="the cluster's DNS domain (pods' search path)"),
    service_proxy: bool = typer.Option(True, "--service-proxy/--no-service-proxy", envvar="MINIK8S_SERVICE_PROXY",
                                       help="program Service ClusterIPs inside this node's pods (nftables, needs "
                                            "root or CAP_SYS_ADMIN + CAP_NET_ADMIN with the host's PIDs)"),
    runtime_endpoint: str = typer.Option("unix:///var/run/docker.sock", envvar="MINIK8S_RUNTIME_ENDPOINT",
                                         help="the Docker engine"),
    kubelet_port: int = typer.Option(10250, "--kubelet-port", envvar="MINIK8S_KUBELET_PORT",
                                     help="port of the kubelet's HTTP API (container logs); 0: any free port. "
                                          "Several kubelets on one machine need different ports"),
    address: str = typer.Option("0.0.0.0", "--address", envvar="MINIK8S_KUBELET_ADDRESS",
                                help="address the kubelet's HTTP API listens on (a specific address is also the "
                                     "Node's InternalIP; 0.0.0.0 publishes the pod network's gateway)"),
    sync_interval: float = typer.Option(2.0, envvar="MINIK8S_KUBELET_SYNC_INTERVAL",
                                        help="seconds between two looks at a running pod's containers"),
    node_ip: str = typer.Option("", "--node-ip", envvar="MINIK8S_NODE_IP",
                                help="the Node's InternalIP, where the apiserver reaches this kubelet (default: "
                                     "in a container its own address, else the pod network's gateway)"),
    root_dir: str = typer.Option("", "--root-dir", envvar="MINIK8S_KUBELET_ROOT_DIR",
                                 help="where pod volumes live (default /var/lib/minik8s/kubelet/NODE); in a "
                                      "container, mount it at the same path as on the host"),
    sandbox_image: str = typer.Option("", "--pod-infra-container-image", envvar="MINIK8S_SANDBOX_IMAGE",
                                      help="image of every pod's sandbox container, which runs `sleep` (default: "
                                           "kubelet.runtime.DEFAULT_SANDBOX_IMAGE, busybox); pulled if missing"),
    shutdown_grace_period: float = typer.Option(
        0.0, "--shutdown-grace-period", envvar="MINIK8S_SHUTDOWN_GRACE_PERIOD",
        help="on SIGTERM, stop and remove every pod container within this many seconds and mark the pods "
             "Failed (graceful node shutdown); 0 leaves them running for the next kubelet"),
    log_level: str = typer.Option("info", envvar="MINIK8S_LOG_LEVEL"),
) -> None:
    """Run a node agent: pods as Docker containers, or ``--simulated`` (no containers, like kwok)."""
    _logging(log_level)
    from kubelet.simulated import parse_capacity

    try:
        cap = parse_capacity(capacity)
    except ValueError as e:
        typer.echo(f"error: --capacity: {e}", err=True)
        raise typer.Exit(2)
    if not simulated:
        from kubelet.agent import KubeletSettings, run as run_kubelet
        from kubelet.runtime import DEFAULT_SANDBOX_IMAGE

        run_kubelet(KubeletSettings(server=component_config(server, kubeconfig), node_name=node_name, capacity=cap,
                                    lease_renew_interval=lease_renew_interval, runtime_endpoint=runtime_endpoint,
                                    pod_network_name=pod_network_name, pod_network_subnet=pod_network_subnet,
                                    kubelet_port=kubelet_port, address=address, sync_interval=sync_interval,
                                    node_ip=node_ip, data_dir=root_dir,
                                    sandbox_image=sandbox_image or DEFAULT_SANDBOX_IMAGE,
                                    shutdown_grace_period=shutdown_grace_period, pod_ip_range=pod_ip_range,
                                    cluster_dns=[a.strip() for a in cluster_dns.split(",") if a.strip()],
                                    cluster_domain=cluster_domain, service_proxy=service_proxy))
        return
    from kubelet.simulated import SimulatedKubeletSettings, run as run_sim

    run_sim(SimulatedKubeletSettings(server=component_config(server, kubeconfig), node_name=node_name, count=count, capacity=cap,
                                     lease_renew_interval=lease_renew_interval, healthz_port=healthz_port))


@app.command()
def gitops(
    server: str = _SERVER,
    kubeconfig: str = KUBECONFIG,
    repo: str = typer.Option("", "--repo", envvar="MINIK8S_GITOPS_REPO",
                             help="with it: create or update GitSync gitops-system/default for this repository"),
    path: str = typer.Option("", "--path", envvar="MINIK8S_GITOPS_PATH", help="the folder of --repo to apply"),
    branch: str = typer.Option("main", "--branch", envvar="MINIK8S_GITOPS_BRANCH", help="the branch of --repo"),
    interval: str = typer.Option("15s", "--interval", envvar="MINIK8S_GITOPS_INTERVAL",
                                 help="how often --repo is fetched and compared (Go duration)"),
    cache_dir: str = typer.Option("", "--cache-dir", envvar="MINIK8S_GITOPS_CACHE_DIR",
                                  help="where the git mirrors live (default: TMPDIR/minik8s-gitops)"),
    webhook_bind_address: str = typer.Option("0.0.0.0", envvar="MINIK8S_GITOPS_WEBHOOK_BIND_ADDRESS",
                                             help="address of the webhook receiver (POST /hooks/NAMESPACE/NAME) "
                                                  "and its /healthz"),
    webhook_port: int = typer.Option(9292, envvar="MINIK8S_GITOPS_WEBHOOK_PORT", help="its port; 0: none"),
    workers: int = typer.Option(4, help="GitSyncs reconciled at once"),
    log_level: str = typer.Option("info", envvar="MINIK8S_LOG_LEVEL"),
) -> None:
    """Run the git-sync reconciler: keep the cluster equal to the Git repositories of GitSync objects."""
    from gitops.reconciler import ReconcilerSettings
    from gitops.server import DefaultSync, GitOpsSettings, run as run_gitops
    from gitops.webhook import WebhookSettings
    from machinery.timefmt import parse_duration

    _logging(log_level)
    try:
        parse_duration(interval)
    except ValueError as e:
        typer.echo(f"error: --interval: {e}", err=True)
        raise typer.Exit(2)
    settings = GitOpsSettings(server=component_config(server, kubeconfig), reconciler=ReconcilerSettings(workers=workers),
                              webhook=WebhookSettings(bind_address=webhook_bind_address, port=webhook_port),
                              default_sync=DefaultSync(url=repo, path=path, branch=branch, interval=interval)
                              if repo else None)
    if cache_dir:
        settings.cache_dir = cache_dir
    run_gitops(settings)


@app.command()
def up(
    port: int = typer.Option(6443, help="the API server's secure (TLS) port: on 127.0.0.1, and with a Docker node "
                                        "also where pods reach it"),
    data_dir: str = typer.Option("~/.minik8s", help="where etcd data, the certificates (pki), pod volumes, logs and "
                                                    "the kubeconfig live"),
    kubeconfig: str = typer.Option("", help="write the kubeconfig here (default: DATA_DIR/kubeconfig)"),
    fresh: bool = typer.Option(False, help="start from an empty etcd"),
    simulated: bool = typer.Option(False, "--simulated",
                                   help="simulated nodes (pods run no containers, like kwok) instead of one "
                                        "Docker node"),
    nodes: int = typer.Option(1, help="how many nodes: 0 (the control plane only), 1, or with --simulated any"),
    node_name: str = typer.Option("", "--node-name",
                                  help="the node's name (default: this machine's host name; with --simulated "
                                       "minik8s-node, then NAME-0 ... NAME-(N-1) for several)"),
    runtime_endpoint: str = typer.Option("unix:///var/run/docker.sock", envvar="MINIK8S_RUNTIME_ENDPOINT",
                                         help="the Docker engine the node runs its pods on"),
    pod_network_name: str = typer.Option("minik8s-pods", envvar="MINIK8S_POD_NETWORK_NAME",
                                         help="name of the Docker pod network (made if missing)"),
    pod_network_subnet: str = typer.Option("172.28.0.0/16", envvar="MINIK8S_POD_NETWORK_SUBNET",
                                           help="subnet of the Docker pod network (an existing network must "
                                                "have exactly this one)"),
    sandbox_image: str = typer.Option("", "--pod-infra-container-image", envvar="MINIK8S_SANDBOX_IMAGE",
                                      help="image of every pod's sandbox container (default: the kubelet's)"),
    shutdown_grace_period: float = typer.Option(10.0, help="seconds the kubelet has on Ctrl-C to stop and "
                                                           "remove the pod containers"),
    gitops_repo: str = typer.Option("", "--gitops-repo", envvar="MINIK8S_GITOPS_REPO",
                                    help="with it, gitops creates or updates GitSync gitops-system/default for "
                                         "this repository (as `minik8s gitops --repo`)"),
    gitops_path: str = typer.Option("", "--gitops-path", envvar="MINIK8S_GITOPS_PATH",
                                    help="the folder of --gitops-repo to apply"),
    gitops_branch: str = typer.Option("main", "--gitops-branch", envvar="MINIK8S_GITOPS_BRANCH",
                                      help="the branch of --gitops-repo"),
    ingress_port: int = typer.Option(8081, "--ingress-port", envvar="MINIK8S_INGRESS_PORT",
                                     help="the Ingress controller's HTTP port on 127.0.0.1"),
    console_port: int = typer.Option(9090, "--console-port", envvar="MINIK8S_CONSOLE_PORT",
                                     help="the web console's port on 127.0.0.1"),
) -> None:
    """Run a whole cluster on this machine as child processes; Ctrl-C stops it."""
    from pathlib import Path

    from cli.up import UpSettings, run as run_up

    raise typer.Exit(run_up(UpSettings(port=port, data_dir=Path(data_dir).expanduser().absolute(),
                                       kubeconfig=Path(kubeconfig).expanduser().absolute() if kubeconfig else None,
                                       fresh=fresh, simulated=simulated, nodes=nodes, node_name=node_name,
                                       runtime_endpoint=runtime_endpoint, pod_network_name=pod_network_name,
                                       pod_network_subnet=pod_network_subnet, sandbox_image=sandbox_image,
                                       shutdown_grace_period=shutdown_grace_period, gitops_repo=gitops_repo,
                                       gitops_path=gitops_path, gitops_branch=gitops_branch,
                                       ingress_port=ingress_port, console_port=console_port)))


@app.command()
def healthcheck(
    url: str = typer.Argument(..., help="a health endpoint, e.g. http://127.0.0.1:10257/healthz"),
    timeout: float = typer.Option(3.0, help="seconds to wait for the answer"),
    cacert: str = typer.Option("", help="https: the CA file the server's certificate must chain to"),
    insecure: bool = typer.Option(False, help="https: do not verify the server's certificate"),
) -> None:
    """Exit 0 when URL answers 200, else print why and exit 1 (for container health checks)."""
    from cli.healthcheck import check

    ok, text = check(url, timeout, cafile=cacert or None, insecure=insecure)
    typer.echo(text, err=not ok)
    if not ok:
        raise typer.Exit(1)


# The traffic components' and the console's commands live beside their flags (cli/proxycmd.py, dnscmd.py,
# ingresscmd.py, consolecmd.py).
for _command_module in (proxycmd, dnscmd, ingresscmd, consolecmd):
    _command_module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
