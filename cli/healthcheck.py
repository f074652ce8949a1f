"""``python -m cli.healthcheck URL [--cacert FILE | --insecure]``: exit 0 when URL answers 200, else print why, exit 1.

The container health checks of docker-compose.yml run this every few seconds in every service, so
it imports the standard library only (about 0.1 s, against 0.4 s for the full ``minik8s`` CLI,
which offers the same as ``minik8s healthcheck URL``).

An ``https`` URL is checked over TLS: against the CA of ``--cacert`` (the cluster CA: the API
server's /readyz, anonymous, as in Kubernetes), against the system's trust store without it, or
with no verification at all with ``--insecure`` (a kubelet's self-signed serving certificate).
No client certificate is sent: health endpoints answer anonymously.
"""

from __future__ import annotations

import ssl
import sys
import urllib.error
import urllib.request

USAGE = "usage: python -m cli.healthcheck URL [--cacert FILE | --insecure]"


def tls_context(*, cafile: str | None = None, insecure: bool = False) -> ssl.SSLContext:
    """What an https check trusts: the CA file, the system's CAs, or (``insecure``) anything."""
    ctx = ssl.create_default_context(cafile=cafile or None)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def check(url: str, timeout: float = 3.0, *, cafile: str | None = None,
          insecure: bool = False) -> tuple[bool, str]:
    """(healthy, what to print)."""
    try:
        ctx = tls_context(cafile=cafile, insecure=insecure) if url.startswith("https://") else None
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:
            return True, resp.read(200).decode(errors="replace").strip()
    except urllib.error.HTTPError as e:
        return False, f"{url}: {e.code} {e.read(500).decode(errors='replace').strip()}"
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError: a wrong CA says so
        return False, f"{url}: {e}"


def parse_args(args: list[str]) -> tuple[str, str | None, bool] | None:
    """(url, cafile, insecure) from the command line, or None when it is not understood."""
    url: str | None = None
    cafile: str | None = None
    insecure = False
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--insecure":
            insecure = True
        elif arg == "--cacert" and rest:
            cafile = rest.pop(0)
        elif arg.startswith("--cacert="):
            cafile = arg.partition("=")[2]
        elif arg.startswith("-") or url is not None:
            return None
        else:
            url = arg
    if url is None or (cafile and insecure):
        return None
    return url, cafile, insecure


def main(argv: list[str] | None = None) -> int:
    parsed = parse_args(sys.argv[1:] if argv is None else argv)
    if parsed is None:
        print(USAGE, file=sys.stderr)
        return 2
    url, cafile, insecure = parsed
    ok, text = check(url, cafile=cafile, insecure=insecure)
    print(text, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
