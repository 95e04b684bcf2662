"""Plugin registries: one mechanism for models, datasets, explainers and metrics.

Built-in plugins are registered through the same entry-point groups as third-party
ones (``auditor.models``, ``auditor.datasets``, ``auditor.explainers``,
``auditor.metrics``), so the extension path is always exercised. Entries load lazily:
``auditor validate`` imports only the plugins a spec names.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from typing import Generic, TypeVar

from pydantic import BaseModel

from auditor.errors import PluginError
from auditor.plugin import Plugin
from auditor.suggest import did_you_mean

P = TypeVar("P", bound=Plugin)


class UnknownPluginError(PluginError):
    """A spec or caller named a plugin that is not registered."""

    exit_code = 2

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, known
        super().__init__(
            f"Unknown {kind} '{name}'.{did_you_mean(name, known)} Known: {', '.join(known)}"
        )


class Registry(Generic[P]):
    """Name -> plugin class, filled by decorator and by entry points."""

    def __init__(self, kind: str, group: str, base: type[P]) -> None:
        self.kind = kind
        self.group = group
        self.base = base
        self._classes: dict[str, type[P]] = {}
        self._lazy: dict[str, metadata.EntryPoint] | None = None

    # -- registration -------------------------------------------------------------------
    def register(self, cls: type[P]) -> type[P]:
        """Class decorator: check the plugin and add it under ``cls.name``."""
        self._check(cls)
        if cls.name in self._classes and self._classes[cls.name] is not cls:
            other = self._classes[cls.name]
            raise PluginError(
                f"{self.kind} name collision: '{cls.name}' is registered by "
                f"{other.__module__}.{other.__qualname__} and by "
                f"{cls.__module__}.{cls.__qualname__}"
            )
        if cls.name in self._entry_points():
            ep = self._entry_points()[cls.name]
            if ep.value != f"{cls.__module__}:{cls.__qualname__}":
                raise PluginError(
                    f"{self.kind} name collision: '{cls.name}' is registered by entry point "
                    f"{ep.value} and by {cls.__module__}.{cls.__qualname__}"
                )
        self._classes[cls.name] = cls
        return cls

    def unregister(self, name: str) -> None:
        """Remove a plugin registered by decorator (tests use this to clean up)."""
        self._classes.pop(name, None)

    def _check(self, cls: object) -> None:
        label = getattr(cls, "__qualname__", repr(cls))
        if not isinstance(cls, type) or not issubclass(cls, self.base):
            raise PluginError(f"{self.kind} plugin {label} must subclass {self.base.__qualname__}")
        if not cls.name or not isinstance(cls.name, str) or not cls.name.isidentifier():
            raise PluginError(
                f"{self.kind} plugin {label} needs a 'name' that is an identifier, got {cls.name!r}"
            )
        params = cls.Params
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            raise PluginError(f"{self.kind} plugin '{cls.name}': Params must be a pydantic model")
        if params.model_config.get("extra") != "forbid":
            raise PluginError(
                f"{self.kind} plugin '{cls.name}': Params must forbid extra keys "
                "(subclass auditor.plugin.Params)"
            )

    # -- entry points -------------------------------------------------------------------
    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        if self._lazy is None:
            found: dict[str, metadata.EntryPoint] = {}
            for ep in metadata.entry_points(group=self.group):
                if ep.name in found and found[ep.name].value != ep.value:
                    raise PluginError(
                        f"{self.kind} name collision: '{ep.name}' is registered by entry points "
                        f"{found[ep.name].value} and {ep.value}"
                    )
                found[ep.name] = ep
            self._lazy = found
        return self._lazy

    def _load(self, name: str) -> type[P]:
        ep = self._entry_points()[name]
        try:
            cls = ep.load()
        except Exception as exc:  # a broken third-party plugin must name itself
            raise PluginError(
                f"{self.kind} plugin '{name}' ({ep.value}) failed to import: {exc}"
            ) from exc
        self._check(cls)
        if cls.name != name:
            raise PluginError(
                f"{self.kind} plugin {ep.value} is registered as '{name}' but its name is "
                f"'{cls.name}'"
            )
        self._classes[name] = cls
        return cls

    # -- lookup -------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(set(self._classes) | set(self._entry_points()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def get(self, name: str) -> type[P]:
        if name in self._classes:
            return self._classes[name]
        if name in self._entry_points():
            return self._load(name)
        raise UnknownPluginError(self.kind, name, self.names())

    def all(self) -> dict[str, type[P]]:
        return {name: self.get(name) for name in self.names()}

    def decorator(self) -> Callable[[type[P]], type[P]]:
        return self.register
