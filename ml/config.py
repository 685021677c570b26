"""The one configuration loader of ml (Django-free): a mapping becomes a frozen dataclass, and a key the
dataclass does not have is an error that names the key (``{"epoch": 10}`` is a typo, not a no-op).

Model cards store configurations with ``dataclasses.asdict``; JSON turns their tuples into lists, which
``load_config`` turns back into tuples for tuple-typed fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration key that is not known; ``key`` names it, ``where`` the section it was found in."""

    def __init__(self, key: str, where: str, known: Iterable[str]) -> None:
        self.key, self.where = key, where
        super().__init__(f"unknown key {key!r} in {where}; known keys: {', '.join(sorted(known))}")


def check_keys(data: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    """Raise ConfigError for the first key of ``data`` (sorted) that is not in ``known``."""
    known = set(known)
    for key in sorted(set(data) - known):
        raise ConfigError(key, where, known)


def field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def load_config(cls: type[T], data: Mapping[str, Any] | None, where: str = "") -> T:
    """``cls(**data)`` for a dataclass ``cls``; ConfigError naming the first unknown key."""
    data = data or {}
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    check_keys(data, fields, where or cls.__name__)
    kwargs = {
        k: tuple(v) if isinstance(v, list) and str(fields[k].type).startswith("tuple") else v
        for k, v in data.items()
    }
    return cls(**kwargs)
