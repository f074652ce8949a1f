"""Keeps the vendored official tests out of the ordinary collection of ``tests/``.

They are not minik8s tests: they read ``KUBECONFIG`` and work in the ``default`` namespace of
whatever cluster they find. ``tests/e2e/test_official_e2e.py`` runs them in a subprocess pytest
(with ``--noconftest``, so this file does not hide them there) against the session apiserver.
"""

collect_ignore = ["kubernetes"]
