"""One registry pattern (after timm) for methods, networks and benchmarks.

A decorator registers a constructor by name; ``create(name, **kw)`` builds it; ``names(pattern)``
lists them; an unknown name fails with a "did you mean" hint.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from medssl.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> constructor table for one kind of thing (``kind`` is used in messages)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        if name not in self._items:
            close = difflib.get_close_matches(name, list(self._items), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"choose one of {self.names()}"
            raise ConfigError(f"unknown {self.kind} {name!r}; {hint}")
        return self._items[name]

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get(name)(*args, **kwargs)  # type: ignore[operator]

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._items if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._items
