"""Querysets compiled to SQL once per process, then run with each request's values.

Every API request looks up its token and its user's roles in the project, and the reader's worklist (with its
washout subquery) is the query readers send most. The ORM took longer to build and compile these queries than
PostgreSQL took to plan and run them: 1.5 ms against 0.6 ms for the worklist (``tests/bench/RESULTS-api-hot.md``).
A ``PreparedQuery`` builds its queryset once, with a stand-in value for each argument, keeps the compiled SQL,
and on each call runs that SQL with the stand-ins' places filled by the call's values. The rows come back as the
ORM makes them (its converters, and model instances with their ``select_related`` objects and annotations, as
Django's own ``ModelIterable`` builds them).

Only for querysets whose SQL does not depend on the values (no ``__in`` of a variable-length argument, no value
that decides the query's shape): each argument must reach the SQL as a parameter, which compiling checks.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.models.sql.compiler import SQLCompiler

#: Stand-ins by argument type: values no query of ours holds as a constant (ids of 1.98 billion, dates of 1901).
_STAND_IN_INT_BASE = 1_987_654_321
_STAND_IN_DAY = dt.datetime(1901, 2, 3, tzinfo=dt.UTC)


def _stand_in(kind: type, index: int) -> Any:
    if kind is int:
        return _STAND_IN_INT_BASE - index
    if kind is str:
        return f"concord-prepared-stand-in-{index}"
    if kind is dt.datetime:
        return _STAND_IN_DAY + dt.timedelta(seconds=index, microseconds=123_457)
    raise TypeError(f"no stand-in for {kind.__name__} arguments")


M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: list[Any]
    takes: list[str | None]  # per parameter, the argument it takes (None: a constant of the queryset)
    compiler: SQLCompiler  # as it compiled the SQL: what its columns are, and how rows become objects


class PreparedQuery(Generic[M]):
    """``build(**arguments)`` -> a queryset, compiled on first use; ``rows`` and ``instances`` run it.

    ``arguments``: each argument's name and type (int, str or datetime)."""

    def __init__(self, build: Callable[..., QuerySet[M, Any]], **arguments: type) -> None:
        self._build = build
        self._arguments = arguments
        self._compiled: dict[str, _Compiled] = {}  # by database alias
        self._lock = threading.Lock()

    def rows(self, using: str = "default", **arguments: Any) -> list[tuple[Any, ...]]:
        """The rows of a ``values_list`` queryset, as tuples."""
        compiled, fetched = self._run(using, arguments)
        return list(
            cast(Iterator[tuple[Any, ...]], compiled.compiler.results_iter([fetched], tuple_expected=True))
        )

    def instances(self, using: str = "default", **arguments: Any) -> list[M]:
        """The objects of a model queryset, with their ``select_related`` objects and annotations."""
        compiled, fetched = self._run(using, arguments)
        return list(_instances(compiled.compiler, fetched, using))

    def _run(self, using: str, arguments: dict[str, Any]) -> tuple[_Compiled, list[Any]]:
        if arguments.keys() != self._arguments.keys():
            raise TypeError(f"arguments {sorted(arguments)}, expected {sorted(self._arguments)}")
        for name, kind in self._arguments.items():
            if type(arguments[name]) is not kind:  # the SQL was compiled for this type (a bool is no int)
                raise TypeError(f"{name}: {kind.__name__} expected, got {type(arguments[name]).__name__}")
        compiled = self._compiled.get(using)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(using) or self._compile(using)
                self._compiled[using] = compiled
        values = [
            param if name is None else arguments[name]
            for param, name in zip(compiled.params, compiled.takes, strict=True)
        ]
        with connections[using].cursor() as cursor:
            cursor.execute(compiled.sql, values)
            fetched = cursor.fetchall()
        return compiled, fetched

    def _compile(self, using: str) -> _Compiled:
        stand_ins = {name: _stand_in(kind, i) for i, (name, kind) in enumerate(self._arguments.items())}
        queryset = self._build(**stand_ins)
        query = queryset.query
        names = [*query.extra_select, *query.values_select, *query.annotation_select]
        fields = getattr(queryset, "_fields", None)
        if fields and [*fields, *(f for f in query.annotation_select if f not in fields)] != names:
            # Django's ValuesListIterable would reorder the columns; rows() returns them as selected
            raise ValueError("values_list naming annotations before fields: columns the rows would not order")
        compiler = queryset.query.get_compiler(using)
        sql, params = compiler.as_sql()
        if compiler.has_extra_select:
            raise ValueError("the SQL selects columns only to order by them: rows would carry them")
        takes = [
            next((name for name, v in stand_ins.items() if type(param) is type(v) and param == v), None)
            for param in params
        ]
        for name, value in stand_ins.items():
            if name not in takes:
                raise ValueError(f"{name} does not reach the SQL as a parameter")
            if str(value) in sql:
                raise ValueError(f"{name} is written into the SQL, not passed as a parameter")
        return _Compiled(sql, list(params), takes, compiler)


def _instances(compiler: SQLCompiler, fetched: list[Any], using: str) -> Iterator[Any]:
    """Django's ``ModelIterable``, for rows fetched already."""
    select, klass_info, annotation_col_map = compiler.select, compiler.klass_info, compiler.annotation_col_map
    assert klass_info is not None, "instances() of a values queryset: use rows()"
    model_cls = klass_info["model"]
    start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
    init_list = [column[0].target.attname for column in select[start:end]]
    # Django 5.2's signature (the stubs installed describe 6.0's, which adds fetch_mode)
    related_populators = get_related_populators(klass_info, select, using)  # type: ignore[call-arg]
    for row in compiler.results_iter([fetched]):
        obj = model_cls.from_db(using, init_list, row[start:end])
        for populator in related_populators:
            populator.populate(row, obj)
        for attr_name, col_pos in (annotation_col_map or {}).items():
            setattr(obj, attr_name, row[col_pos])
        yield obj
