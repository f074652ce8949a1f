"""``minik8s ingress``: the Ingress controller, an HTTP reverse proxy driven by Ingress objects.

- ``traffic.ingress.routes`` (pure): Ingresses + IngressClasses + ``servicemap.ServicePort`` s ->
  a ``RouteTable`` (which Ingresses are ours, host and path matching, backends with endpoints).
- ``traffic.ingress.proxy``: the aiohttp server that forwards each request (bodies streamed,
  WebSocket upgrades relayed) to a ready endpoint of the route's Service, round robin.
- ``traffic.ingress.controller``: the process: ensures the IngressClass, watches Ingresses,
  IngressClasses, Services and EndpointSlices, swaps the route table on every change, writes
  ``status.loadBalancer`` and serves ``/healthz``.
"""
