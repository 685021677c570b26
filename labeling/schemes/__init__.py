"""Grading schemes as versioned data: parse the YAML files beside this module and check readings against them.

A scheme (SPEC.md §2) lists joints, regions and lesions. Its default reading form is paper (a) granularity:
per joint, every lesion at its native unit — quadrant lesions once per quadrant, joint lesions once per joint
(region ``"joint"``), half lesions once per half — skipping lesions marked ``in_paper_a: false``. An *item* is
one (joint, region, lesion) cell of that form; a reading gives exactly one value for every item.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

SCHEME_DIR = Path(__file__).resolve().parent
JOINT_REGION = "joint"


class SchemeError(ValueError):
    """A scheme file or a reading does not fit; ``field`` names the offending part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class FormItem:
    """One cell of a reading form."""

    joint: str
    region: str
    lesion: str
    values: tuple[int, ...]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.joint, self.region, self.lesion)


@dataclass(frozen=True)
class Scheme:
    """A parsed grading scheme; ``definition`` is the YAML content as loaded."""

    name: str
    version: int
    modality: str
    definition: Mapping[str, Any]

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> Scheme:
        for key in ("scheme", "version", "modality", "joints", "lesions"):
            if key not in definition:
                raise SchemeError(key, "missing from the scheme definition")
        scheme = cls(
            name=str(definition["scheme"]),
            version=int(definition["version"]),
            modality=str(definition["modality"]),
            definition=definition,
        )
        scheme.form_items  # noqa: B018 - parse eagerly so a broken file fails at load time
        return scheme

    @property
    def joints(self) -> list[str]:
        return list(self.definition["joints"])

    @property
    def sequences(self) -> list[str]:
        """SeriesDescriptions a case of this scheme needs (MRI: T1 and STIR); empty means any one series."""
        return list((self.definition.get("acquisition") or {}).get("sequences") or {})

    @property
    def groupings(self) -> dict[str, dict[str, list[int]]]:
        return dict(self.definition.get("groupings") or {})

    def lesion_values(self, lesion: str) -> tuple[int, ...]:
        spec = self.definition["lesions"][lesion]
        kind = spec.get("value")
        if kind == "binary":
            return (0, 1)
        if kind == "ordinal":
            return tuple(int(v) for v in spec["levels"])
        raise SchemeError(f"lesions.{lesion}.value", f"unknown value kind {kind!r}")

    def lesion_is_ordinal(self, lesion: str) -> bool:
        return self.definition["lesions"][lesion].get("value") == "ordinal"

    def regions_for(self, lesion: str) -> list[str]:
        unit = self.definition["lesions"][lesion].get("unit")
        if unit == "quadrant":
            return [q["id"] for q in self.definition["quadrants"]]
        if unit == "half":
            return list(self.definition["halves"])
        if unit == "joint":
            return [JOINT_REGION]
        raise SchemeError(f"lesions.{lesion}.unit", f"unknown unit {unit!r}")

    @cached_property
    def form_lesions(self) -> list[str]:
        return [name for name, spec in self.definition["lesions"].items() if spec.get("in_paper_a", True)]

    @cached_property
    def form_items(self) -> list[FormItem]:
        return [
            FormItem(joint, region, lesion, self.lesion_values(lesion))
            for joint in self.joints
            for lesion in self.form_lesions
            for region in self.regions_for(lesion)
        ]

    def validate_values(self, values: Sequence[Mapping[str, Any]]) -> list[tuple[FormItem, int]]:
        """Check a complete reading; return ``[(item, value), ...]`` in form order.

        Raises SchemeError naming the offending field, e.g. ``values[3].region``.
        """
        if not isinstance(values, Sequence) or isinstance(values, str | bytes):
            raise SchemeError("values", "must be a list of {joint, region, lesion, value} objects")
        by_key = {item.key: item for item in self.form_items}
        seen: dict[tuple[str, str, str], int] = {}
        for i, row in enumerate(values):
            where = f"values[{i}]"
            if not isinstance(row, Mapping):
                raise SchemeError(where, "must be an object with joint, region, lesion and value")
            unknown = set(row) - {"joint", "region", "lesion", "value"}
            if unknown:
                raise SchemeError(f"{where}.{sorted(unknown)[0]}", "is not a field of a reading value")
            joint, region, lesion = row.get("joint"), row.get("region"), row.get("lesion")
            if joint not in self.joints:
                raise SchemeError(f"{where}.joint", f"{joint!r} is not one of {self.joints}")
            if lesion not in self.form_lesions:
                raise SchemeError(f"{where}.lesion", f"{lesion!r} is not one of {self.form_lesions}")
            if region not in self.regions_for(lesion):
                raise SchemeError(
                    f"{where}.region", f"{region!r} is not a region of {lesion!r}: {self.regions_for(lesion)}"
                )
            key = (joint, region, lesion)
            if key in seen:
                raise SchemeError(where, f"duplicates values[{seen[key]}] ({joint}/{region}/{lesion})")
            value = row.get("value")
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or value not in by_key[key].values
            ):
                raise SchemeError(f"{where}.value", f"{value!r} is not one of {list(by_key[key].values)}")
            if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
                raise SchemeError(f"{where}.value", f"{value!r} is not one of {list(by_key[key].values)}")
            seen[key] = i
        missing = [item for item in self.form_items if item.key not in seen]
        if missing:
            first = missing[0]
            raise SchemeError(
                "values",
                f"{len(missing)} item(s) missing, first {first.joint}/{first.region}/{first.lesion}",
            )
        return [(item, int(values[seen[item.key]]["value"])) for item in self.form_items]


def scheme_files(directory: Path = SCHEME_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def scheme_load_file(path: Path) -> Scheme:
    """Parse one scheme file; raises SchemeError with the file name on a broken definition."""
    try:
        definition = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SchemeError(path.name, f"not valid YAML: {exc}") from exc
    if not isinstance(definition, dict):
        raise SchemeError(path.name, "a scheme file must hold a mapping")
    try:
        return Scheme.from_definition(definition)
    except SchemeError as exc:
        raise SchemeError(f"{path.name}:{exc.field}", exc.message) from exc
    except (KeyError, TypeError) as exc:
        raise SchemeError(path.name, f"malformed definition ({exc})") from exc


def schemes_from_files(paths: Iterable[Path] | None = None) -> list[Scheme]:
    return [scheme_load_file(p) for p in (scheme_files() if paths is None else paths)]
