"""The autoscaling API group's kinds, one strategy module each."""
