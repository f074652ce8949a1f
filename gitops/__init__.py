"""gitops: the Git-sync reconciler of DESIGN.md (``GitSync`` objects, ``minik8s gitops``).

Nothing of it is written yet: there is no ``minik8s gitops`` command and ``minik8s up`` starts no
gitops process. The package exists so the layout is complete and the import contracts and mypy
already cover it.
"""
