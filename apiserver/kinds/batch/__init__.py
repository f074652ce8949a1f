"""The batch API group's kinds, one strategy module each."""
