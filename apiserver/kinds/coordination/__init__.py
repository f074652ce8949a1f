"""The coordination API group's kinds, one strategy module each."""
