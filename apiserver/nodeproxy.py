"""``pods/{name}/log``: the API server's proxy to the kubelet that runs the pod.

Data flow (Kubernetes' pod log REST storage, ``LogLocation`` + ``LocationStreamer``):

    GET /api/v1/namespaces/NS/pods/NAME/log?container=&follow=&tailLines=...
      -> the pod (watch cache): which container (``choose_container``), which node
      -> the Node (watch cache): address (InternalIP, else Hostname) and
         ``status.daemonEndpoints.kubeletEndpoint.Port`` (``kubelet_location``)
      -> GET http://ADDR:PORT/containerLogs/NS/NAME/CONTAINER?<the same options>  (aiohttp), with
         the API server's kubelet credential (``kubelet_headers``, machinery.kubeletauth)
      -> 200: the body streamed back as text/plain as it arrives (``follow`` keeps streaming);
         an error: a ``Status`` carrying the kubelet's message; unreachable: 503.

Errors are the typed ``machinery.errors`` the app's handler turns into ``Status`` bodies.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, AsyncIterator, Mapping
from urllib.parse import quote

import aiohttp
from fastapi.responses import Response, StreamingResponse

from machinery import errors, kubeletauth
from machinery.timefmt import parse_rfc3339

if TYPE_CHECKING:
    from .registry import Registry

log = logging.getLogger(__name__)

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
CONNECT_TIMEOUT = 5.0
MAX_ERROR_BODY = 16 * 1024


def _names(containers: Any) -> list[str]:
    return [str(c.get("name")) for c in (containers or []) if isinstance(c, dict) and c.get("name")]


def choose_container(pod: Mapping[str, Any], requested: str) -> str:
    """The container whose logs are asked for (Kubernetes' rules and messages)."""
    name = str((pod.get("metadata") or {}).get("name", ""))
    spec = pod.get("spec") or {}
    containers = _names(spec.get("containers"))
    init = _names(spec.get("initContainers"))
    ephemeral = _names(spec.get("ephemeralContainers"))
    if not requested:
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        default = annotations.get(DEFAULT_CONTAINER_ANNOTATION)
        if default and default in containers:
            return str(default)
        if len(containers) == 1:
            return containers[0]
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        if init:
            message += f" or one of the init containers: [{' '.join(init)}]"
        raise errors.BadRequestError(message=message)
    if requested not in containers + init + ephemeral:
        raise errors.BadRequestError(message=f"container {requested} is not valid for pod {name}")
    return requested


def kubelet_location(node: Mapping[str, Any]) -> tuple[str, int]:
    """(address, port) of the node's kubelet; ServiceUnavailable when the node publishes none."""
    name = str((node.get("metadata") or {}).get("name", ""))
    status = node.get("status") or {}
    addresses = [a for a in status.get("addresses") or [] if isinstance(a, dict) and a.get("address")]
    address = None
    for kind in ("InternalIP", "Hostname", "ExternalIP"):
        address = next((str(a["address"]) for a in addresses if a.get("type") == kind), None)
        if address:
            break
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise errors.ServiceUnavailableError(
            message=f'node "{name}" publishes no kubelet endpoint (status.daemonEndpoints.kubeletEndpoint.Port): '
                    "no kubelet API runs there (a simulated node runs no containers)")
    if not address:
        raise errors.ServiceUnavailableError(message=f'node "{name}" has no InternalIP or Hostname address')
    return address, port


async def kubelet_headers(registry: "Registry") -> dict[str, str]:
    """``Authorization: Bearer <token>`` of Secret kube-system/minik8s-kubelet-client (the watch
    cache: cheap per call), presented on every call to a kubelet; {} while the Secret is missing."""
    secrets = registry.resources.lookup("", "v1", "secrets")
    assert secrets is not None
    try:
        secret = (await registry.get(secrets, kubeletauth.SECRET_NAMESPACE, kubeletauth.SECRET_NAME)).obj
    except errors.NotFoundError:
        return {}
    token = kubeletauth.token_of(secret)
    return kubeletauth.authorization_header(token) if token else {}


def _int(q: Mapping[str, str], name: str, minimum: int) -> int | None:
    raw = q.get(name)
    if raw in (None, ""):
        return None
    try:
        v = int(str(raw))
    except ValueError:
        raise errors.BadRequestError(message=f'invalid value for {name}: "{raw}" is not an integer')
    if v < minimum:
        raise errors.BadRequestError(message=f"invalid value for {name}: must be greater than or equal to {minimum}")
    return v


def _bool(q: Mapping[str, str], name: str) -> bool:
    raw = str(q.get(name) or "").lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    raise errors.BadRequestError(message=f'invalid value for {name}: "{q.get(name)}" is not a boolean')


def log_options(q: Mapping[str, str]) -> dict[str, str]:
    """The validated PodLogOptions to forward to the kubelet (as query parameters)."""
    out: dict[str, str] = {}
    for flag in ("follow", "previous", "timestamps"):
        if _bool(q, flag):
            out[flag] = "true"
    for name, minimum in (("tailLines", 0), ("limitBytes", 1), ("sinceSeconds", 1)):
        v = _int(q, name, minimum)
        if v is not None:
            out[name] = str(v)
    since_time = str(q.get("sinceTime") or "")
    if since_time:
        if "sinceSeconds" in out:
            raise errors.BadRequestError(message="at most one of sinceTime or sinceSeconds may be specified")
        try:
            parse_rfc3339(since_time)
        except ValueError:
            raise errors.BadRequestError(message=f'invalid value for sinceTime: "{since_time}" is not RFC 3339')
        out["sinceTime"] = since_time
    return out


def _kubelet_error(code: int, text: str, node: str) -> errors.ApiError:
    message = text.strip() or f"the kubelet on node {node} answered HTTP {code}"
    if code == 400:
        return errors.BadRequestError(message=message)
    if code == 404:
        return errors.NotFoundError(message=message)
    if code == 503:
        return errors.ServiceUnavailableError(message=message)
    return errors.InternalError(message=message)


async def proxy_logs(node_name: str, address: str, port: int, namespace: str, pod: str, container: str,
                     options: Mapping[str, str], *, headers: Mapping[str, str] | None = None) -> Response:
    """Asks the kubelet and streams its answer back (or raises the matching ApiError)."""
    host = f"[{address}]" if ":" in address else address
    url = (f"http://{host}:{port}/containerLogs/{quote(namespace, safe='')}/{quote(pod, safe='')}/"
           f"{quote(container, safe='')}")
    # No overall deadline: a follow lasts as long as the container and the client.
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT,
                                                                  sock_connect=CONNECT_TIMEOUT))
    try:
        resp = await session.get(url, params=dict(options), headers=dict(headers or {}))
    except (aiohttp.ClientConnectionError, TimeoutError, OSError) as e:
        await session.close()
        log.info("kubelet of node %s at %s:%s unreachable: %s", node_name, address, port, e)
        raise errors.ServiceUnavailableError(message=f"the kubelet on node {node_name} is not reachable")
    except BaseException:
        await session.close()
        raise
    if resp.status != 200:
        try:
            text = (await resp.content.read(MAX_ERROR_BODY)).decode("utf-8", "replace")
        except (aiohttp.ClientError, TimeoutError):
            text = ""
        finally:
            resp.release()
            await session.close()
        raise _kubelet_error(resp.status, text, node_name)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in resp.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as e:
            log.info("log stream from the kubelet of node %s ended: %s", node_name, e)
        finally:
            resp.close()
            await session.close()

    return StreamingResponse(body(), media_type="text/plain",
                             headers={"Cache-Control": "no-cache, private"})


__all__ = ["choose_container", "kubelet_headers", "kubelet_location", "log_options", "proxy_logs"]
