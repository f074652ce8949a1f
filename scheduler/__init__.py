"""The scheduler: binds pending pods to nodes (see scheduler.server for the process, plugins for the decisions)."""
