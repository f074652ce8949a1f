# The one image of every minik8s component: apiserver, scheduler, controller-manager, kubelet,
# gitops, proxy, dns, ingress, and the mkctl CLI. Run it as `docker run IMAGE apiserver --etcd-servers ...`
# (the entrypoint is `minik8s`) or `docker run --entrypoint mkctl IMAGE get pods`.
#
# Build args:
#   PYTHON_IMAGE      the base, any Debian-like image with python3 >= 3.11 and its venv module
#                     (git and openssh-client are installed with apt when it lacks them).
#                     Default python:3.12-slim (pulled from Docker Hub).
#   PIP_INSTALL_ARGS  extra arguments for installing the dependencies, e.g. the offline path of
#                     scripts/build-images: `--no-index --find-links /src/build/wheels` with the
#                     wheels that `pip wheel` put in build/wheels on the host.
#
# Two stages so that a source change reuses the dependency layer and the image never carries the
# wheels: `deps` installs the dependencies listed in pyproject.toml into a venv, and the final
# stage copies that venv and installs the project itself with --no-deps, offline.
#
# The container runs as root on purpose: the kubelet drives the host's Docker engine through a
# mounted /var/run/docker.sock, which only root (or the socket's group) may use. The control
# plane components need no privilege and may run with `--user` / compose's `user:`.

ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS deps
ARG PIP_INSTALL_ARGS=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# build/wheels exists only on the offline path. pyproject.toml always matches, so the COPY
# succeeds without build/wheels too (a wildcard may match nothing when another source matches);
# the extra pyproject.toml among the wheels is ignored by pip.
COPY pyproject.toml build/wheel[s] /src/build/wheels/
# The dependencies and the build backend (setuptools; wheel for older setuptools) come from
# pyproject.toml (tomllib: Python >= 3.11): the final stage then builds the project offline.
RUN python3 -m venv /opt/minik8s \
 && python3 -c "import tomllib; p = tomllib.load(open('/src/build/wheels/pyproject.toml', 'rb')); print('\n'.join(p['project']['dependencies'] + p['build-system']['requires'] + ['wheel']))" \
      > /tmp/requirements.txt \
 && /opt/minik8s/bin/pip install ${PIP_INSTALL_ARGS} -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

FROM ${PYTHON_IMAGE}
# gitops runs `git` (and `ssh` for ssh:// repositories); the kubelet programs Services inside pods
# with `nsenter` (util-linux) and `nft` (nftables) and clears stale UDP flows with `conntrack`.
# The offline base of scripts/build-images has them all already, so that build needs no network;
# any other base gets them from its Debian mirror, in a layer of its own that a source change
# does not rebuild.
RUN if ! command -v git >/dev/null 2>&1 || ! command -v ssh >/dev/null 2>&1 \
       || ! command -v nft >/dev/null 2>&1 || ! command -v conntrack >/dev/null 2>&1; then \
      apt-get update -q \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
           git openssh-client nftables conntrack \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && git --version && nft --version && command -v nsenter
ENV PATH=/opt/minik8s/bin:$PATH \
    VIRTUAL_ENV=/opt/minik8s \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY --from=deps /opt/minik8s /opt/minik8s
COPY pyproject.toml README.md /src/
COPY apiserver /src/apiserver
COPY machinery /src/machinery
COPY cli /src/cli
COPY scheduler /src/scheduler
COPY controllers /src/controllers
COPY kubelet /src/kubelet
COPY gitops /src/gitops
COPY traffic /src/traffic
COPY console /src/console
# Every dependency and the build backend are in the venv already: no index, no build isolation.
RUN pip install --no-index --no-deps --no-build-isolation /src \
 && rm -rf /src \
 && minik8s --help >/dev/null \
 && mkctl version --client >/dev/null

ARG PYTHON_IMAGE
LABEL org.minik8s.image="minik8s" \
      org.opencontainers.image.title="minik8s" \
      org.opencontainers.image.description="A small Kubernetes in Python: every component (apiserver, scheduler, controller-manager, kubelet, gitops) and mkctl" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
WORKDIR /
ENTRYPOINT ["minik8s"]
CMD ["--help"]
