"""Grading schemes as versioned data: parse the YAML files beside this module and check readings against them.

A scheme (SPEC.md §2) lists joints, regions and lesions. Its default reading form is paper (a) granularity:
per joint, every lesion at its native unit — quadrant lesions once per quadrant, joint lesions once per joint
(region ``"joint"``), half lesions once per half — skipping lesions marked ``in_paper_a: false``. An *item* is
one (joint, region, lesion) cell of that form; a reading gives exactly one value for every item.

Ratings (issue 14): a scheme may ask, per binary lesion (``rating: <scale>``), for a rating on one of its
``rating_scales``: an ordinal confidence (e.g. 1 definitely absent … 5 definitely present) or a probability
(0–100). The value then follows from the rating (present at ``rating >= present_from``); ROC analysis uses the
rating. Ordinal items (mNY 0–4) are their own ratings and take none.
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
class RatingScale:
    """A rating asked with a binary item: ``kind`` "ordinal" (labelled levels) or "probability" (0–100)."""

    name: str
    kind: str
    low: int
    high: int
    present_from: int
    labels: tuple[tuple[int, str], ...] = ()

    def value_of(self, rating: int) -> int:
        """The binary value a rating stands for."""
        return int(rating >= self.present_from)

    def describe(self) -> str:
        if self.labels:
            return ", ".join(f"{k} {v}" for k, v in self.labels)
        return f"probability {self.low}–{self.high} %"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "min": self.low,
            "max": self.high,
            "present_from": self.present_from,
            "labels": self.label_map,
        }

    @property
    def label_map(self) -> dict[str, str]:
        """The labelled levels as JSON has them: rating (as a string) → label."""
        return {str(k): v for k, v in self.labels}

    @classmethod
    def parse(cls, name: str, spec: Any) -> RatingScale:
        field = f"rating_scales.{name}"
        if not isinstance(spec, Mapping):
            raise SchemeError(field, "must be a mapping with kind and present_from")
        kind = spec.get("kind")
        if kind == "ordinal":
            levels = spec.get("levels")
            # keys are ints in the YAML file and strings once stored as JSON in the database
            if not isinstance(levels, Mapping) or len(levels) < 2 or not all(_int_key(k) for k in levels):
                raise SchemeError(f"{field}.levels", "must map at least two integer levels to their labels")
            labels = tuple(sorted((int(k), str(v)) for k, v in levels.items()))
            low, high = labels[0][0], labels[-1][0]
            if [k for k, _ in labels] != list(range(low, high + 1)):
                raise SchemeError(f"{field}.levels", "must be consecutive integers")
        elif kind == "probability":
            labels = ()
            low, high = 0, 100
        else:
            raise SchemeError(f"{field}.kind", f"{kind!r} is not one of ['ordinal', 'probability']")
        present_from = spec.get("present_from")
        if (
            not isinstance(present_from, int)
            or isinstance(present_from, bool)
            or not low < present_from <= high
        ):
            raise SchemeError(
                f"{field}.present_from",
                f"must be an integer in ({low}, {high}], the first rating called present",
            )
        return cls(name, kind, low, high, int(present_from), labels)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int_key(v: Any) -> bool:
    return _is_int(v) or (isinstance(v, str) and v.lstrip("-").isdigit())


@dataclass(frozen=True)
class FormItem:
    """One cell of a reading form; ``rating`` the scale of the rating asked with its value, if any."""

    joint: str
    region: str
    lesion: str
    values: tuple[int, ...]
    rating: RatingScale | None = None

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

    @cached_property
    def rating_scales(self) -> dict[str, RatingScale]:
        scales = self.definition.get("rating_scales") or {}
        if not isinstance(scales, Mapping):
            raise SchemeError("rating_scales", "must map scale names to their definitions")
        return {str(name): RatingScale.parse(str(name), spec) for name, spec in scales.items()}

    def lesion_rating(self, lesion: str) -> RatingScale | None:
        """The rating scale asked with a lesion's value, or None (ordinal lesions are their own rating)."""
        name = self.definition["lesions"][lesion].get("rating")
        if name is None:
            return None
        if self.definition["lesions"][lesion].get("value") != "binary":
            raise SchemeError(f"lesions.{lesion}.rating", "only binary lesions take a rating")
        if name not in self.rating_scales:
            raise SchemeError(
                f"lesions.{lesion}.rating", f"{name!r} is not one of {list(self.rating_scales)}"
            )
        return self.rating_scales[name]

    @property
    def asks_ratings(self) -> bool:
        return any(item.rating is not None for item in self.form_items)

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
            FormItem(joint, region, lesion, self.lesion_values(lesion), self.lesion_rating(lesion))
            for joint in self.joints
            for lesion in self.form_lesions
            for region in self.regions_for(lesion)
        ]

    def validate_values(self, values: Sequence[Mapping[str, Any]]) -> list[tuple[FormItem, int]]:
        """Check a complete set of values without ratings (a case's reference standard); return
        ``[(item, value), ...]`` in form order. Raises SchemeError naming the offending field, e.g.
        ``values[3].region``."""
        return [(item, value) for item, value, _ in self._check(values, ratings=False)]

    def validate_reading(self, values: Sequence[Mapping[str, Any]]) -> list[tuple[FormItem, int, int | None]]:
        """Check a complete reading, ratings included; return ``[(item, value, rating), ...]`` in form order.

        An item whose lesion asks for a rating needs one in range (its value may be left out: it follows
        from the rating, and a value that contradicts it is refused); any other item takes none.
        """
        return self._check(values, ratings=True)

    def _check(
        self, values: Sequence[Mapping[str, Any]], *, ratings: bool
    ) -> list[tuple[FormItem, int, int | None]]:
        if not isinstance(values, Sequence) or isinstance(values, str | bytes):
            raise SchemeError("values", "must be a list of {joint, region, lesion, value} objects")
        by_key = {item.key: item for item in self.form_items}
        fields = {"joint", "region", "lesion", "value"} | ({"rating"} if ratings else set())
        seen: dict[tuple[str, str, str], int] = {}
        checked: dict[tuple[str, str, str], tuple[int, int | None]] = {}
        for i, row in enumerate(values):
            where = f"values[{i}]"
            if not isinstance(row, Mapping):
                raise SchemeError(where, "must be an object with joint, region, lesion and value")
            unknown = set(row) - fields
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
            item = by_key[key]
            rating = self._check_rating(item, row.get("rating"), where) if ratings else None
            value = row.get("value")
            if value is None and rating is not None and item.rating is not None:
                value = item.rating.value_of(rating)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or value not in item.values
                or (isinstance(value, float) and (not math.isfinite(value) or value != int(value)))
            ):
                raise SchemeError(f"{where}.value", f"{value!r} is not one of {list(item.values)}")
            if rating is not None and item.rating is not None and item.rating.value_of(rating) != value:
                scale = item.rating
                raise SchemeError(
                    f"{where}.value",
                    f"{int(value)} contradicts rating {rating}: ratings {scale.low}–{scale.present_from - 1} "
                    f"mean absent (0), {scale.present_from}–{scale.high} present (1)",
                )
            seen[key] = i
            checked[key] = (int(value), rating)
        missing = [item for item in self.form_items if item.key not in seen]
        if missing:
            first = missing[0]
            raise SchemeError(
                "values",
                f"{len(missing)} item(s) missing, first {first.joint}/{first.region}/{first.lesion}",
            )
        return [(item, *checked[item.key]) for item in self.form_items]

    def _check_rating(self, item: FormItem, rating: Any, where: str) -> int | None:
        scale = item.rating
        if scale is None:
            if rating is not None:
                raise SchemeError(
                    f"{where}.rating",
                    f"{self.name} v{self.version} asks for no rating of {item.lesion}"
                    + (
                        " (an ordinal grade is its own rating)" if self.lesion_is_ordinal(item.lesion) else ""
                    ),
                )
            return None
        if rating is None:
            raise SchemeError(
                f"{where}.rating",
                f"is required by {self.name} v{self.version} for {item.lesion}: {scale.describe()}",
            )
        if isinstance(rating, float) and math.isfinite(rating) and rating == int(rating):
            rating = int(rating)
        if not _is_int(rating) or not scale.low <= rating <= scale.high:
            raise SchemeError(
                f"{where}.rating",
                f"{rating!r} is out of range: an integer {scale.low}–{scale.high} ({scale.describe()})",
            )
        return int(rating)


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
