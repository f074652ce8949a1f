"""Service traffic: what turns Services, EndpointSlices and Ingresses into packets that reach pods.

- ``traffic.servicemap`` (pure): Services + EndpointSlices -> one ``ServicePort`` per Service port
  with its endpoints, the view every traffic component reads (after kube-proxy's ServicePortMap).
- ``traffic.watch``: the informers of Services and EndpointSlices behind that view, "synced" only
  after both initial lists, with one debounced change callback.
- ``traffic.proxy``: ClusterIP DNAT inside each pod's network namespace (nftables, programmed by
  the kubelet) and the NodePort / LoadBalancer listeners of ``minik8s proxy``.
- ``traffic.dns``: ``minik8s dns``, the cluster DNS server.
- ``traffic.ingress``: ``minik8s ingress``, the Ingress controller.
"""
