"""kubelet: the node agent (``minik8s kubelet``).

``agent`` is the Docker kubelet: one Node whose pods run as Docker containers through
``runtime`` (the only module that imports the Docker SDK) behind the interface of ``cri``, with
``podsync`` deciding per pod, ``probes`` running liveness/readiness/startup probes and ``server``
serving container logs. ``simulated`` runs many Nodes whose pods run without containers (like
kwok). ``nodestatus`` and ``podstatus`` hold the pure parts both share (Node, Lease, pod CIDRs,
pod IPs, pod status).
"""
