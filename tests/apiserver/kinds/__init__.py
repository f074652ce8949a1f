"""Tests of the per-kind strategy modules (apiserver/kinds/<group>/<kind>.py)."""
