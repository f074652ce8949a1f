"""The rbac.authorization.k8s.io API group's kinds, one strategy module each (``rbacfacts`` holds what they share)."""
