"""machinery: what every minik8s component shares (after Kubernetes' apimachinery and client-go).

- ``models``: pydantic models shaped exactly like Kubernetes objects (data only, no I/O);
- ``errors``: the typed API errors and their ``Status`` wire form, translated in one place;
- ``selectors`` / ``quantity`` / ``timefmt``: label and field selectors, resource quantities,
  timestamps and ages as Kubernetes prints them;
- ``client``: the async HTTP client for the API server;
- ``informer`` / ``workqueue`` / ``controller``: list+watch caches, the key queue and the runner.
"""
