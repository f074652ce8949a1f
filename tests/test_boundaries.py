"""The boundaries of DESIGN.md hold by themselves: import-linter's contracts (``.importlinter``).

``test_import_contracts_are_kept`` runs ``lint-imports`` over the repository and fails with its
report. ``test_contract_can_break`` shows that each contract can fail at all (a contract that
never fails guards nothing): it copies the packages and the config into a scratch directory, adds
one import that the contract forbids to one module there, and checks that ``lint-imports
--contract <id>`` reports that contract broken, naming the import it was given. The repository
itself is never changed.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG = REPO_ROOT / ".importlinter"
# The console script of the `test` extra, next to the interpreter running the tests.
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _root_packages() -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(CONFIG)
    return parser["importlinter"]["root_packages"].split()


def _contract_ids() -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(CONFIG)
    prefix = "importlinter:contract:"
    return [s[len(prefix):] for s in parser.sections() if s.startswith(prefix)]


def _lint_imports(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert LINT_IMPORTS.exists(), f"{LINT_IMPORTS} is missing: install the test extra (pip install -e '.[test]')"
    # import-linter puts the working directory first on sys.path, so it analyses the packages
    # found there (for the scratch copies: the copy, not the editable install).
    return subprocess.run([str(LINT_IMPORTS), "--no-logo", "--no-cache", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_import_contracts_are_kept() -> None:
    result = _lint_imports(REPO_ROOT)
    assert result.returncode == 0, f"import contracts broken:\n{result.stdout}{result.stderr}"
    assert "0 broken" in result.stdout, result.stdout


def test_root_packages_are_every_package_of_the_distribution() -> None:
    """A new top-level package must be added to the contracts' graph (and to mypy's files)."""
    packages = sorted(p.name for p in REPO_ROOT.iterdir()
                      if (p / "__init__.py").is_file() and p.name != "tests")
    assert sorted(_root_packages()) == packages


# contract id -> (module to change, the import line added to it, what the report must show).
# Each one is a mistake the contract exists to catch.
VIOLATIONS: dict[str, tuple[str, str, str]] = {
    # a second module talking to etcd
    "etcd-client": ("machinery/client.py", "import aetcd", "machinery.client -> aetcd"),
    # the Docker SDK outside the runtime
    "docker-sdk": ("kubelet/agent.py", "import docker", "kubelet.agent -> docker"),
    # the kubelet's planner reaching for the Docker runtime instead of the interface
    "docker-runtime": ("kubelet/podsync.py", "from kubelet import runtime",
                       "kubelet.podsync -> kubelet.runtime"),
    # a second module running nft in pods' namespaces beside the kubelet's Service proxy
    "nft-executor": ("traffic/proxy/server.py", "from traffic.proxy import nft",
                     "traffic.proxy.server -> traffic.proxy.nft"),
    # mkctl reading the server's tables module instead of asking the API
    "no-apiserver-imports": ("cli/mkctl/get.py", "from apiserver import tables",
                             "cli.mkctl.get -> apiserver.tables"),
    # the shared layer depending on a component
    "machinery-is-shared": ("machinery/selectors.py", "from controllers import gcgraph",
                            "machinery.selectors -> controllers.gcgraph"),
    # one component importing another
    "components-independent": ("scheduler/cache.py", "from controllers import gcgraph",
                               "scheduler.cache -> controllers.gcgraph"),
    # a pure helper importing the executor's I/O module: caught through the chain
    # controllers.podcontrol -> machinery.client -> aiohttp, not only for direct imports
    "pure-planners": ("controllers/ownerrefs.py", "from controllers import podcontrol",
                      "controllers.ownerrefs -> controllers.podcontrol"),
    # a gitops module running git (or anything) itself instead of through gitops.git
    "gitops-git-only": ("gitops/reconciler.py", "import subprocess", "gitops.reconciler -> subprocess"),
    # the object models growing an I/O method
    "pure-objects": ("machinery/models/base.py", "import asyncio", "machinery.models.base -> asyncio"),
    # a kind strategy reading storage
    "kind-strategies": ("apiserver/kinds/core/configmap.py", "from apiserver.storage import etcd",
                        "apiserver.kinds.core.configmap -> apiserver.storage.etcd"),
}


def test_every_contract_has_a_violation_case() -> None:
    assert sorted(VIOLATIONS) == sorted(_contract_ids())


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_contract_can_break(contract: str, tmp_path: Path) -> None:
    module, line, expected = VIOLATIONS[contract]
    for package in _root_packages():
        shutil.copytree(REPO_ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(CONFIG, tmp_path / ".importlinter")

    kept = _lint_imports(tmp_path, "--contract", contract)
    assert kept.returncode == 0, f"the unchanged copy already breaks {contract}:\n{kept.stdout}{kept.stderr}"

    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # added by tests/test_boundaries.py\n")
    broken = _lint_imports(tmp_path, "--contract", contract)
    report = broken.stdout + broken.stderr
    assert broken.returncode != 0, f"{contract} still kept with `{line}` in {module}:\n{report}"
    assert "BROKEN" in broken.stdout and "1 broken" in broken.stdout, report
    assert expected in report, report
