"""Service catalogues (``HELLO_SERVICES``) and kubeconfigs the tests share, built in one place instead of copied.

The base is what most multi-service tests need: a service in staging and production, each environment's
kubeconfig context named after it. A test states only how its catalogue differs::

    catalogue(service("helloworld", "hello", lock="refuse"),
              service("greeter", "greeter", production={"approvals": 2}))

:func:`write_catalogue` writes one as the YAML file the bot reads; :func:`write_kubeconfig` (from the sandbox)
writes one kubeconfig with a context per emulated cluster. The fixtures ``catalogue_file`` and
``kubeconfig`` (tests/conftest.py) write them into the test's temporary folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sandbox.stack import write_kubeconfig

ENVIRONMENTS = ("staging", "production")

__all__ = ["ENVIRONMENTS", "WITH_FREEZES", "catalogue", "service", "two_services", "write_catalogue",
           "write_kubeconfig"]


def service(name: str, namespace: str, *, environments: tuple[str, ...] = ENVIRONMENTS, contexts: bool = True,
            staging: dict[str, Any] | None = None, production: dict[str, Any] | None = None,
            **fields: Any) -> dict[str, Any]:
    """A catalogue entry: ``name`` in each of ``environments`` (namespace ``namespace``, the context named after the
    environment unless ``contexts`` is false); ``staging`` / ``production``: that environment's own settings;
    ``fields``: the service's (``channels``, ``lock``, ``image``, ``soak_minutes``…)."""
    own = {"staging": staging or {}, "production": production or {}}
    return {"name": name,
            "environments": [{"name": env, **({"context": env} if contexts else {}), "namespace": namespace,
                              **own.get(env, {})} for env in environments],
            **fields}


def catalogue(*services: dict[str, Any]) -> dict[str, Any]:
    return {"services": list(services)}


def two_services(*, helloworld: dict[str, Any] | None = None, greeter: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """helloworld (namespace hello) and greeter (namespace greeter, its own image) in staging and production;
    ``helloworld`` / ``greeter``: more keyword arguments of :func:`service` for each."""
    return catalogue(
        service("helloworld", "hello", **(helloworld or {})),
        service("greeter", "greeter", **{"image": {"repository": "ghcr.io/example/greeter"}, **(greeter or {})}))


def write_catalogue(path: Path, data: dict[str, Any] | str) -> Path:
    """``data`` (a catalogue, or YAML text as a user would write it) as the file at ``path``."""
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


WITH_FREEZES = catalogue(  # the holds' tests: a weekend freeze of helloworld's production, two daily ones of payments
    service("helloworld", "hello", contexts=False,
            freezes=[{"cron": "0 18 * * FRI", "duration": "64h", "timezone": "Europe/Paris", "reason": "weekend",
                      "environments": ["production"]}]),
    service("payments", "pay", contexts=False,
            freezes=[{"cron": "0 9 * * *", "duration": "1h", "timezone": "America/New_York", "reason": "batch"},
                     {"cron": "0 12 * * *", "duration": "30m", "reason": "lunch"}]))
