"""``minik8s dns``: the cluster DNS server (Kubernetes' DNS specification, after CoreDNS).

- ``traffic.dns.records`` (pure): Services + EndpointSlices -> an immutable ``Zone``; ``lookup``.
- ``traffic.dns.server``: the UDP + TCP server answering from the current ``Zone``, forwarding
  other names upstream with a short deadline, its health endpoint and the process's ``run``.
- ``traffic.dns.registration``: keeps Service ``kube-system/kube-dns``, its EndpointSlice and its
  Endpoints pointing at this server.
"""
