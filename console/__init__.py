"""The web console (``minik8s console``): a single-page application and the proxy it talks through.

Data flow: the browser loads ``console/static/`` (plain ES modules: no build step) from
``console.server`` -> the login form posts a bearer token or a kubeconfig to ``/console/login``
-> ``console.sessions`` turns it into an upstream credential, asks the API server who that is
(a SelfSubjectReview: a credential it refuses refuses the login) and keeps it on the server,
behind an HttpOnly session cookie -> every ``/api``, ``/apis``, ``/version`` and ``/openapi``
request of the page is relayed by ``console.upstream`` to the API server with that user's own
credential (log streams chunk by chunk, exec/attach websockets frame by frame); every watch of
the page goes over its one WebSocket ``/console/watch`` (``console.watchmux``: one upstream watch
each, with the same credential), so the API server's authentication, RBAC and admission decide
what each user sees and may do, and the page's streams take none of the browser's 6 connections
to the console.
"""
