"""The networking API group's kinds, one strategy module each."""
