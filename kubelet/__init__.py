"""kubelet: the node agent. ``simulated`` runs pods without containers (like kwok); ``nodestatus`` and
``podstatus`` hold the pure parts (Node, Lease, pod CIDRs, pod IPs, pod status). The Docker kubelet is a later issue."""
