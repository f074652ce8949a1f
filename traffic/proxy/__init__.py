"""The Service proxy.

- ``rules`` (pure) and ``nft`` (the one module running nsenter/nft/conntrack): ClusterIP DNAT
  inside each pod's network namespace, programmed by the kubelet (kubelet/serviceproxy.py).
- ``listeners`` (pure), ``userspace`` and ``server``: ``minik8s proxy``, the NodePort and
  LoadBalancer listeners on the host, relaying to pod IPs.
"""
