"""`minik8s dns`: the command line of traffic.dns (flags and environment -> settings -> run)."""

from __future__ import annotations

import ipaddress

import typer

from cli.options import KUBECONFIG, LOG_LEVEL, SERVER, setup_logging
from machinery.kubeconfig import component_config


def _split(values: list[str]) -> list[str]:
    """Repeated flags and comma lists alike: ``--upstream a --upstream b,c`` -> [a, b, c]."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def register(app: typer.Typer) -> None:
    """Adds the `dns` command to the `minik8s` app."""

    @app.command()
    def dns(
        server: str = SERVER,
        kubeconfig: str = KUBECONFIG,
        bind_address: str = typer.Option("0.0.0.0", envvar="MINIK8S_DNS_BIND_ADDRESS",
                                         help="address to answer DNS on (UDP and TCP)"),
        port: int = typer.Option(53, envvar="MINIK8S_DNS_PORT", help="DNS port (UDP and TCP; 0: any free port)"),
        advertise_address: str = typer.Option(
            "", envvar="MINIK8S_DNS_ADVERTISE_ADDRESS",
            help="the address pods reach this server at, the endpoint of Service kube-system/kube-dns "
                 "(default: --bind-address when it is one address, else what this host's name resolves to)"),
        cluster_ip: str = typer.Option(
            "172.28.128.10", envvar="MINIK8S_DNS_CLUSTER_IP",
            help="ClusterIP of Service kube-system/kube-dns, inside the apiserver's service range "
                 "(\"\": the range's 11th address, from the kubernetes Service's)"),
        cluster_domain: str = typer.Option("cluster.local", envvar="MINIK8S_DNS_CLUSTER_DOMAIN",
                                           help="the cluster's DNS domain"),
        upstream: list[str] = typer.Option(
            [], "--upstream", envvar="MINIK8S_DNS_UPSTREAM",
            help="where other names go: HOST[:PORT], repeatable or comma separated "
                 "(default: the nameservers of /etc/resolv.conf)"),
        upstream_timeout: float = typer.Option(1.0, envvar="MINIK8S_DNS_UPSTREAM_TIMEOUT",
                                               help="seconds to wait for the upstream servers before SERVFAIL"),
        ttl: int = typer.Option(5, envvar="MINIK8S_DNS_TTL", help="TTL of the cluster's records, seconds"),
        health_port: int = typer.Option(8181, envvar="MINIK8S_DNS_HEALTH_PORT",
                                        help="port of GET /healthz on --bind-address (200 once Services and "
                                             "EndpointSlices are listed); 0: none"),
        register_service: bool = typer.Option(True, "--register/--no-register", envvar="MINIK8S_DNS_REGISTER",
                                              help="keep Service kube-system/kube-dns pointing at this server"),
        log_level: str = LOG_LEVEL,
    ) -> None:
        """Run the cluster DNS server: Services and pods under --cluster-domain, the rest upstream."""
        from traffic.dns.server import DnsSettings, parse_upstream, run

        setup_logging(log_level)
        upstreams = _split(upstream)
        for u in upstreams:
            try:
                parse_upstream(u)
            except ValueError:
                typer.echo(f"error: --upstream {u!r}: expected HOST or HOST:PORT", err=True)
                raise typer.Exit(2)
        if cluster_ip:
            try:
                ipaddress.IPv4Address(cluster_ip)
            except ValueError:
                typer.echo(f"error: --cluster-ip {cluster_ip!r}: not an IPv4 address", err=True)
                raise typer.Exit(2)
        if ttl < 0 or upstream_timeout <= 0:
            typer.echo("error: --ttl must be >= 0 and --upstream-timeout > 0", err=True)
            raise typer.Exit(2)
        run(DnsSettings(server=component_config(server, kubeconfig), bind_address=bind_address, port=port, advertise_address=advertise_address,
                        cluster_ip=cluster_ip, cluster_domain=cluster_domain, upstreams=upstreams,
                        upstream_timeout=upstream_timeout, ttl=ttl, health_port=health_port,
                        register=register_service))
