"""The storage.k8s.io API group's kinds, one strategy module each."""
