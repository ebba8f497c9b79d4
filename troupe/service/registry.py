"""Finding services by name: ``services/<name>/app.py`` defines ``<name>``."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import services
from troupe.service.declaration import Service


def load(spec: str) -> Service[Any]:
    """A service by name ("customer") or by ``module:attribute``."""
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        attribute = spec.replace("-", "_")
        module_name = f"services.{attribute}.app"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise SystemExit(f"no service {spec!r}: {error}") from error
    service = getattr(module, attribute, None)
    if not isinstance(service, Service):
        raise SystemExit(f"{module_name} defines no service {attribute!r}")
    return service


def names() -> list[str]:
    return sorted(info.name.replace("_", "-") for info in pkgutil.iter_modules(services.__path__) if info.ispkg)
