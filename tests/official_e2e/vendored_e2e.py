"""A pytest plugin (``-p vendored_e2e``) that makes the vendored official tests importable.

The ``kubernetes`` wheel ships ``kubernetes/dynamic/test_client.py`` and ``test_discovery.py``
(and ``kubernetes/aio/dynamic/*_test.py``), which import ``kubernetes.e2e_test.base``
(``kubernetes.aio.e2e_test.base``), but no wheel ships those packages. They live here, unmodified,
under ``kubernetes/e2e_test`` and ``kubernetes/aio/e2e_test``; this plugin appends those
directories' parents to the installed packages' ``__path__``, so ``import kubernetes.e2e_test``
finds them without touching site-packages or the vendored files. ``--pyargs kubernetes.e2e_test``
then collects them under their own names, as upstream's CI does from the client's repository.
"""

from __future__ import annotations

from pathlib import Path

import kubernetes
import kubernetes.aio

VENDORED = Path(__file__).resolve().parent / "kubernetes"

for package, directory in ((kubernetes, VENDORED), (kubernetes.aio, VENDORED / "aio")):
    if str(directory) not in package.__path__:
        package.__path__.append(str(directory))
