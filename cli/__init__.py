"""cli: the ``minik8s`` command (components) and ``mkctl`` (the kubectl-like client)."""
