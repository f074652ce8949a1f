"""Authentication, authorization and the request's identity in the API server (issue 14).

Data flow of a request on the secure port (``apiserver/auth/middleware.py``):

    TLS (client certificate, if any) -> authenticators (X.509, token file, ServiceAccount JWT)
        -> UserInfo, or 401 -> ``attributes.request_attributes`` (verb, resource, ...)
        -> authorizers (Node, RBAC) -> 403 with Kubernetes' message, or the handler
           with ``context.current_user`` set (admission reads it)

The plain-HTTP port (``--insecure-port``, 127.0.0.1 only, for tests) and in-process callers skip
all of it and act as ``machinery.userinfo.INSECURE_SUPERUSER``.
"""
