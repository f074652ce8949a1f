"""The policy API group's kinds, one strategy module each."""
