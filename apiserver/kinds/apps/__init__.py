"""The apps API group's kinds, one strategy module each."""
