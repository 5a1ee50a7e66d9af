"""Registries: one per axis of the taxonomy, so a strategy written in a notebook cell trains for real.

Every replaceable axis (partitioner, sampler, cache policy, halo protocol, gradient synchronisation, codec,
execution model) keeps a :class:`Registry` of named built-ins and user entries. A config names a strategy in
one of three ways, and only the first two may ever be written to a file:

* a registered name (``"pipegcn"``);
* ``"module:attribute"``, imported by the process that needs it (a torchrun user puts a strategy in a module);
* ``{"name": ..., **options}``: a name or ``module:attribute`` with the strategy's own options;
* the object itself (a class, instance or function, e.g. defined in a notebook cell): it travels to spawned
  workers *by value* over the launch channel and is never written anywhere (files name it, for people).

A name registered at run time (e.g. from a notebook cell) is unknown to a freshly spawned worker, so such
entries travel over the launch channel too (:meth:`Registry.needs_value`). Reading a run directory or a spec
never unpickles or imports anything.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["Registry", "Strategy", "describe", "importable_name"]


class Strategy:
    """Base of the strategy objects of every axis: options are keyword arguments that become attributes.

    ``Strategy(cfg, **options)``: ``cfg`` (a :class:`~dgnn_lab.train.config.TrainConfig` or None) gives the
    built-ins their defaults from the config's shorthand fields; ``options`` belong to the strategy (a
    user's rule may have parameters of its own) and override them.
    """

    name = "strategy"

    def __init__(self, cfg: Any = None, **options: Any) -> None:
        self.cfg = cfg
        self.options = dict(options)
        for key, value in options.items():
            setattr(self, key, value)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({opts})"


def importable_name(obj: Any) -> str | None:
    """``"module:qualname"`` when a fresh process can import ``obj`` under that name, else None (defined in
    ``__main__``, in a function, or shadowed)."""
    if not (isinstance(obj, type) or inspect.isfunction(obj)):
        return None  # an instance carries state: it travels by value (or as a name plus options)
    target = obj
    mod, qual = getattr(target, "__module__", None), getattr(target, "__qualname__", "")
    if not mod or mod in ("__main__", "__mp_main__") or "<" in qual or "." in qual:
        return None
    module = sys.modules.get(mod)
    if module is None or getattr(module, qual, None) is not target:
        return None
    return f"{mod}:{qual}"


def describe(obj: Any) -> str:
    """A human-readable name for an object that travels by value (what files say about it)."""
    target = obj if isinstance(obj, type) or callable(obj) else type(obj)
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or type(obj).__name__
    kind = "instance of " if not (isinstance(obj, type) or callable(obj)) else ""
    return f"<by value: {kind}{getattr(target, '__module__', '?')}.{name}>"


class Registry:
    """Named entries of one axis. ``check(obj)`` raises ``ValueError`` for an object that does not fit."""

    def __init__(self, axis: str, check: Callable[[Any], None] | None = None, what: str = "", *,
                 base: type | None = None, classes_only: bool = False, hint: str = "",
                 builtins: tuple = ()) -> None:
        self.axis = axis
        self.what = what or axis
        self._check = check if check is not None else (self._subclass_check if base is not None else None)
        self._base, self._classes_only, self._hint = base, classes_only, hint
        self._items: dict[str, Any] = {}
        self._builtin: set[str] = set()
        for cls in builtins:  # each built-in under its own ``name``
            self.register(cls.name, cls, builtin=True)

    def _subclass_check(self, obj: Any) -> None:
        """The default check with ``base``: a subclass (or, unless ``classes_only``, an instance of one)."""
        cls = obj if isinstance(obj, type) else (None if self._classes_only else type(obj))
        if cls is None or not issubclass(cls, self._base):
            kind = "subclass" if self._classes_only else "subclass or instance"
            raise ValueError(f"must be a {self._base.__name__} {kind}{f' ({self._hint})' if self._hint else ''}, "
                             f"got {obj!r}")

    def register(self, name: str, obj: Any = None, *, builtin: bool = False) -> Any:
        """Make ``obj`` available as ``name`` (re-registering replaces it, so a notebook cell can be re-run);
        returns ``obj``. Without ``obj`` it is a decorator: ``@REGISTRY.register("mine")``."""
        if obj is None:
            return lambda o: self.register(name, o, builtin=builtin)
        if not isinstance(name, str) or not name.strip() or ":" in name:
            raise ValueError(f"a {self.axis} name must be a non-empty string without ':', got {name!r}")
        self.check(obj, name)
        self._items[name] = obj
        if builtin:
            self._builtin.add(name)
        return obj

    def check(self, obj: Any, name: str | None = None) -> Any:
        """``obj`` if it fits this axis, else ``ValueError`` naming it."""
        if self._check is not None:
            try:
                self._check(obj)
            except ValueError as e:
                label = f"{self.axis} {name!r}" if name else self.axis
                raise ValueError(f"{label}: {e}") from None
        return obj

    def names(self) -> list[str]:
        """Registered names: built-ins first, then your own, in registration order."""
        return [n for n in self._items if n in self._builtin] + [n for n in self._items if n not in self._builtin]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def get(self, name: str) -> Any:
        """The entry registered as ``name``; ``ValueError`` lists the allowed names."""
        if not isinstance(name, str) or name not in self._items:
            raise ValueError(f"unknown {self.what} {name!r}; allowed: {', '.join(self.names())} "
                             f"(or 'module:attribute', or the object itself)")
        return self._items[name]

    def resolve(self, spec: Any) -> tuple[Any, dict]:
        """``(object, options)`` for a registered name, ``"module:attribute"`` (imported now),
        ``{"name": ..., **options}`` or an object; the object is checked against this axis."""
        options: dict = {}
        if isinstance(spec, dict):
            options = {k: v for k, v in spec.items() if k != "name"}
            spec = spec.get("name")
            if spec is None or isinstance(spec, dict):
                raise ValueError(f"a {self.what} given as a dict needs a 'name' (a registered name or "
                                 f"'module:attribute'), got {spec!r}")
        if isinstance(spec, str):
            if ":" in spec:
                return self.check(_import(spec, self.what), spec), options
            return self.get(spec), options
        if spec is None:
            raise ValueError(f"{self.what} must be a name, 'module:attribute' or an object, got None")
        return self.check(spec), options

    def build(self, spec: Any, *args: Any) -> Any:
        """The strategy object for ``spec``: a class is constructed as ``cls(*args, **options)``; an instance
        (or a function) is returned as it is."""
        obj, options = self.resolve(spec)
        if isinstance(obj, type):
            return obj(*args, **options)
        if options:
            raise ValueError(f"{self.what} {self.file_name(obj)}: options {sorted(options)} need a class, "
                             f"not an instance")
        return obj

    def needs_value(self, spec: Any) -> bool:
        """Whether ``spec`` must travel by value: an object that is not importable (or an instance), or a
        name whose registered entry is such an object (registered from a notebook cell)."""
        if isinstance(spec, dict):
            spec = spec.get("name")
        if isinstance(spec, str):
            # a name registered at run time is unknown to a fresh process: its entry travels (by reference
            # when importable, by value otherwise); built-ins and module:attribute are found by name
            return spec in self._items and spec not in self._builtin
        return True

    def file_name(self, spec: Any) -> Any:
        """What a file records for ``spec``: a name, ``module:attribute`` or ``{"name", **options}`` as given;
        for an object, its registered name, else ``module:attribute`` if importable, else a description.
        Never code: a file is only ever read as data."""
        if isinstance(spec, dict):
            return {**spec, "name": self.file_name(spec.get("name"))}
        if isinstance(spec, str):
            return spec
        for name, obj in self._items.items():
            if obj is spec:
                return name
        return importable_name(spec) or describe(spec)


def _import(spec: str, what: str) -> Any:
    mod_name, _, attr = spec.partition(":")
    if not mod_name or not attr:
        raise ValueError(f"{what} {spec!r} must look like 'module:attribute'")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise ValueError(f"{what} {spec!r}: cannot import module {mod_name!r}: {e}") from None
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{what} {spec!r}: module {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj
