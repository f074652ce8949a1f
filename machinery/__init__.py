"""machinery: what every minik8s component shares (after Kubernetes' apimachinery and client-go).

It imports no component (an import-linter contract in .importlinter says so). Objects and pure
logic (no I/O, also a contract):

- ``models``: pydantic models shaped exactly like Kubernetes objects (data only);
- ``errors``: the typed API errors and their ``Status`` wire form, translated in one place;
- ``selectors`` / ``quantity`` / ``taints`` / ``timefmt``: label and field selectors, resource
  quantities, taints and tolerations, timestamps and ages as Kubernetes prints them;
- ``patch`` / ``schemaview``: the three PATCH flavours over the per-field merge facts of a schema;
- ``gofmt``: Go's renderings of JSON values (encoding/json, json-iterator, ``%q``, ``%v``), byte for
  byte as Kubernetes writes them, for server-side apply and the CRD engine's messages;
- ``pathelement`` / ``fieldpath`` / ``ssa_typed`` / ``ssa_merge`` / ``managedfields_codec`` /
  ``managedfields``: server-side apply and ``metadata.managedFields``.

Talking to the API server and running on it:

- ``kubeconfig`` / ``client``: kubectl's kubeconfig rules and the async HTTP client;
- ``informer`` / ``sharedinformers`` / ``workqueue`` / ``controller``: list+watch caches (one per
  resource per process), the key queue and the controller runner;
- ``events`` / ``leaderelection`` / ``healthz`` / ``process``: Event recording, Lease-based leader
  election, a component's ``/healthz`` and running a component until SIGTERM.
"""
