from __future__ import annotations

import importlib
import pkgutil

from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from . import providers, signals  # noqa: F401  (group changes reach the syncs)

        # Every provider module registers itself; a new app is a new module, nothing else to edit.
        for module in pkgutil.iter_modules(providers.__path__):
            importlib.import_module(f"{providers.__name__}.{module.name}")
