"""docker-compose.offline.yml covers every service of docker-compose.yml that builds the minik8s image:
one it forgets is built from python:3.12-slim, which a machine without a registry cannot pull
(the console's service was forgotten once: every compose test failed at `compose build`)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_every_service_that_builds_has_its_offline_build() -> None:
    main = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    offline = yaml.safe_load((ROOT / "docker-compose.offline.yml").read_text())["services"]
    builds = {name for name, svc in main.items() if "build" in svc}
    assert builds, "docker-compose.yml builds nothing?"
    missing = sorted(name for name in builds if "build" not in (offline.get(name) or {}))
    assert missing == [], f"services without an offline build in docker-compose.offline.yml: {missing}"
