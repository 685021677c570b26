"""Querysets compiled to SQL once per process, then run with each request's values.

The reader's worklist (with its washout subquery) is the query readers send most: the ORM took 1.5 ms to build
and compile it, PostgreSQL 0.6 ms to plan and run it (``tests/bench/RESULTS-api-hot.md``). A ``PreparedQuery``
builds its queryset once, with a stand-in value for each argument, keeps the SQL, and on each call runs that SQL
with the stand-ins' positions filled by the call's values. Only for querysets whose SQL does not depend on the
values (no ``__in`` of a variable-length argument, no value that changes the plan's shape): each argument must
reach the SQL as a parameter, which compiling checks.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.models import QuerySet

#: Stand-ins by argument type: values no query of ours holds as a constant (ids of 1.98 billion, dates of 1901).
_STAND_IN_INT_BASE = 1_987_654_321
_STAND_IN_DAY = dt.datetime(1901, 2, 3, tzinfo=dt.UTC)


def _stand_in(kind: type, index: int) -> Any:
    if kind is int:
        return _STAND_IN_INT_BASE - index
    if kind is dt.datetime:
        return _STAND_IN_DAY + dt.timedelta(seconds=index, microseconds=123_457)
    raise TypeError(f"no stand-in for {kind.__name__} arguments")


class PreparedQuery:
    """``build(**arguments)`` -> a ``values_list`` queryset, compiled on first use; ``rows(**arguments)`` runs it.

    ``arguments``: each argument's name and type (int or datetime)."""

    def __init__(self, build: Callable[..., QuerySet[Any, Any]], **arguments: type) -> None:
        self._build = build
        self._arguments = arguments
        self._compiled: dict[str, tuple[str, list[Any], list[str | None]]] = {}  # by database alias
        self._lock = threading.Lock()

    def sql(self, using: str = "default") -> tuple[str, list[Any], list[str | None]]:
        """The SQL, its parameters as compiled, and per parameter the argument it takes (None: a constant)."""
        compiled = self._compiled.get(using)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(using) or self._compile(using)
                self._compiled[using] = compiled
        return compiled

    def _compile(self, using: str) -> tuple[str, list[Any], list[str | None]]:
        stand_ins = {name: _stand_in(kind, i) for i, (name, kind) in enumerate(self._arguments.items())}
        sql, params = self._build(**stand_ins).query.get_compiler(using).as_sql()
        takes: list[str | None] = []
        for param in params:
            names = [name for name, v in stand_ins.items() if type(param) is type(v) and param == v]
            takes.append(names[0] if names else None)
        for name, value in stand_ins.items():
            if name not in takes:
                raise ValueError(f"{name} does not reach the SQL as a parameter")
            if isinstance(value, int) and str(value) in sql:
                raise ValueError(f"{name} is written into the SQL, not passed as a parameter")
        return sql, list(params), takes

    def rows(self, using: str = "default", **arguments: Any) -> list[tuple[Any, ...]]:
        if arguments.keys() != self._arguments.keys():
            raise TypeError(f"arguments {sorted(arguments)}, expected {sorted(self._arguments)}")
        sql, params, takes = self.sql(using)
        values = [
            param if name is None else arguments[name] for param, name in zip(params, takes, strict=True)
        ]
        with connections[using].cursor() as cursor:
            cursor.execute(sql, values)
            return cursor.fetchall()
