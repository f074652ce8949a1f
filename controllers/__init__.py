"""controllers: the controller-manager and the controllers it runs (``minik8s controller-manager``).

``manager`` is the process (shared informers, leader election, one task per enabled controller,
``CONTROLLERS`` lists them): ``replicaset`` (and ``replicationcontroller``, the same logic over
core/v1 RCs), ``deployment``, ``garbagecollector``, ``nodelifecycle``, ``endpoints`` and
``namespace``. Each decides in pure modules (``replicasetplan``, ``deploymentplan`` with
``deploymentutil``, ``ownerrefs``, ``expectations``, ``gcgraph``, ``nodehealth``; import-linter
keeps them free of I/O) and acts through ``machinery.client`` in a thin executor.
"""
