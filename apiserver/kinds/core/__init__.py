"""The core API group (""): one strategy module per kind."""
