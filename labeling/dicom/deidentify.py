"""De-identify DICOM objects on import: PS3.15 Annex E, Basic Application Level Confidentiality Profile. Django-free.

The action table (which attribute is D, Z, X, U, Z/D, X/Z, X/D, X/Z/D or X/Z/U*) is dicom-anonymizer's copy of
Table E.1-1 for edition 2026c, not a hand-typed one; this module only chooses how each action is carried out:

- every action applies at every nesting level (a SEG's ``ReferencedSeriesSequence`` > ``SeriesInstanceUID``
  is a U like the top-level one); private attributes are removed;
- U: ``2.25.<128 bits of HMAC-SHA256(secret, scope, original UID)>``, so the same original gets the same
  pseudonym in every file of a scope (a project): instances, series, frames of reference and the references
  between them stay consistent, and importing the same files again finds the same study. X/Z/U* sequences
  (Referenced/Source Image Sequence) take the U branch: their UIDs are replaced, the references kept;
- PatientID and PatientName become one pseudonym per patient and scope (``patient_pseudonym``);
- dates and times (the table's DA/DT/TM attributes) follow the Retain Longitudinal Temporal Information
  options: ``keep`` (Full Dates Option), ``shift`` (Modified Dates Option: every date moved back by one whole
  number of days per patient and scope, so intervals between a patient's studies hold; times kept) or
  ``remove`` (the basic profile's own action);
- with the Clean Descriptors Option, a descriptor (series or study description, protocol name …) is kept
  when it is one of ``clean_descriptions`` ("values of similar meaning known not to contain identifying
  information", e.g. a scheme's ``T1``/``STIR``) and otherwise removed; without it, the basic action applies;
- the result says what was done: PatientIdentityRemoved, DeidentificationMethod(CodeSequence) (CID 7050)
  and LongitudinalTemporalInformationModified.

Pixel data is never touched, so an object with burned-in annotation (``BurnedInAnnotation`` YES) is refused
(``DeidentificationRefused``): the Clean Pixel Data Option is not implemented.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, Literal

from dicomanonymizer import simpledicomanonymizer as annex_e
from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sr.codedict import codes

from labeling.dicom.pseudonyms import pseudonymous_uid

#: dicom-anonymizer's copy of PS3.15 Table E.1-1 that this module applies.
TABLE_EDITION = "dicomfields_2026c"
DatesOption = Literal["keep", "shift", "remove"]
DATES_OPTIONS: tuple[DatesOption, ...] = ("keep", "shift", "remove")
#: Furthest a shifted date moves back, in days (about ten years); never 0.
MAX_SHIFT_DAYS = 3650
#: Descriptors the Clean Descriptors Option cleans (Table E.1-1's "C" column, the free-text descriptions
#: that an image series carries); kept only when the value is known to be clean.
DESCRIPTOR_KEYWORDS = (
    "SeriesDescription",
    "StudyDescription",
    "ProtocolName",
    "PerformedProcedureStepDescription",
    "RequestedProcedureDescription",
    "AcquisitionProtocolName",
    "AcquisitionProtocolDescription",
    "BodyPartExamined",
)
_DATE_VRS = ("DA", "DT", "TM")

Tag = tuple[int, ...]
Action = Callable[[Dataset, tuple[int, int]], None]


class DeidentificationRefused(ValueError):
    """An object this profile cannot make safe (e.g. identity burned into its pixels)."""


@dataclass(frozen=True)
class DeidProfile:
    """How a project (or the site) de-identifies what it imports.

    ``secret``: the server's key for every pseudonym (never leaves the server); ``scope``: which pseudonyms
    are shared (``project:12``: one project's studies; ``site``: imports without a project).
    """

    secret: bytes
    scope: str
    dates: DatesOption = "remove"
    clean_descriptors: bool = True
    clean_descriptions: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.dates not in DATES_OPTIONS:
            raise ValueError(f"dates must be one of {DATES_OPTIONS}, not {self.dates!r}")

    def options(self) -> dict[str, Any]:
        """What a mapping row records of the profile (the secret excluded)."""
        return {
            "profile": "PS3.15 E.1 basic",
            "dates": self.dates,
            "clean_descriptors": self.clean_descriptors,
            "table": f"dicom-anonymizer {version('dicom-anonymizer')} {TABLE_EDITION}",
        }


def patient_pseudonym(secret: bytes, scope: str, patient_id: str) -> str:
    """The PatientID a patient has within ``scope``: ``CONCORD-<project id or SITE>-<16 hex digits>``."""
    digest = hmac.new(secret, f"{scope}\x00{patient_id}".encode(), hashlib.sha256).hexdigest()[:16].upper()
    name = scope.removeprefix("project:") if scope.startswith("project:") else scope.upper()
    return f"CONCORD-{name}-{digest}"


def date_shift_days(secret: bytes, scope: str, patient_id: str) -> int:
    """How many days a patient's dates move back within ``scope`` (1 to MAX_SHIFT_DAYS, stable)."""
    digest = hmac.new(secret, f"{scope}\x00dates\x00{patient_id}".encode(), hashlib.sha256).digest()
    return 1 + int.from_bytes(digest[:4], "big") % MAX_SHIFT_DAYS


@dataclass
class StudyDeidentification:
    """What de-identifying one patient's objects did: the pseudonyms, and originals → pseudonymous UIDs."""

    patient_id: str
    patient_name: str
    original_patient_id: str
    original_patient_name: str
    shift_days: int | None  # dates moved back by this many days; None unless the dates option is shift
    uids: dict[str, str] = field(default_factory=dict)  # original UID → pseudonymous UID


def _table() -> dict[Tag, Action]:
    """Table E.1-1 as dicom-anonymizer carries it: tag (or repeating-group mask) → action."""
    return annex_e.initialize_actions(TABLE_EDITION)  # type: ignore[no-any-return]


def _u_star_tags() -> set[Tag]:
    return set(dicom_anonymization_database_selector(TABLE_EDITION)["X_Z_U_STAR_TAGS"])


def _keyword_tags(keywords: tuple[str, ...]) -> set[Tag]:
    tags: set[Tag] = set()
    for keyword in keywords:
        tag = tag_for_keyword(keyword)
        if tag is not None:
            tags.add((tag >> 16, tag & 0xFFFF))
    return tags


class Deidentifier:
    """Apply one profile to the objects of one patient (one study or several); collects the UID mapping."""

    def __init__(self, profile: DeidProfile, *, patient_id: str, patient_name: str) -> None:
        self.profile = profile
        scope, secret = profile.scope, profile.secret
        pseudonym = patient_pseudonym(secret, scope, patient_id)
        self.result = StudyDeidentification(
            patient_id=pseudonym,
            patient_name=f"{pseudonym}^",  # one-component name, marked as such
            original_patient_id=patient_id,
            original_patient_name=patient_name,
            shift_days=date_shift_days(secret, scope, patient_id) if profile.dates == "shift" else None,
        )
        table = _table()
        self._masks = {tag: action for tag, action in table.items() if len(tag) > 2}
        self._actions: dict[tuple[int, int], Action] = {
            (tag[0], tag[1]): action for tag, action in table.items() if len(tag) == 2
        }
        for tag in _u_star_tags():  # keep the sequence; the walk replaces the UIDs inside it
            self._actions[(tag[0], tag[1])] = annex_e.keep
        for tag in table:
            if len(tag) == 2 and table[tag] is annex_e.replace_UID:
                self._actions[(tag[0], tag[1])] = self._replace_uid
        self._descriptors = _keyword_tags(DESCRIPTOR_KEYWORDS)
        self._patient = {
            (0x0010, 0x0020): self.result.patient_id,
            (0x0010, 0x0010): self.result.patient_name,
        }

    def uid(self, original: str) -> str:
        """The pseudonym of ``original`` within the profile's scope (recorded in the mapping)."""
        pseudo = pseudonymous_uid(self.profile.secret, self.profile.scope, original)
        self.result.uids[original] = pseudo
        return pseudo

    def dataset(self, dataset: Dataset) -> Dataset:
        """De-identify ``dataset`` in place (file meta included) and return it; pixel data is left as it is.

        Raises DeidentificationRefused for an object with burned-in annotation.
        """
        if reason := refusal_reason(dataset):
            raise DeidentificationRefused(reason)
        self._walk(dataset, set())
        dataset.remove_private_tags()
        meta = getattr(dataset, "file_meta", None)
        if meta is not None:
            for element in list(meta):
                tag = (element.tag.group, element.tag.element)
                if tag in self._actions:
                    self._apply(meta, element, self._actions[tag])
        self._mark(dataset)
        return dataset

    # --- the walk -------------------------------------------------------------------------------------------

    def _walk(self, dataset: Dataset, seen: set[int]) -> None:
        """Apply the actions to ``dataset`` and its sequence items, each item once (in memory, one item
        object may sit in two sequences, e.g. a SEG's referenced and source instances)."""
        if id(dataset) in seen:
            return
        seen.add(id(dataset))
        for element in list(dataset):
            tag = (element.tag.group, element.tag.element)
            action = self._action(tag, element)
            if action is not None:
                self._apply(dataset, element, action)
            if element.tag in dataset and dataset[element.tag].VR == "SQ":
                for item in dataset[element.tag].value:
                    self._walk(item, seen)

    def _action(self, tag: tuple[int, int], element: DataElement) -> Action | None:
        if tag in self._patient:
            return self._pseudonymise_patient
        action = self._actions.get(tag)
        if action is None:
            action = next(
                (
                    a
                    for mask, a in self._masks.items()
                    if tag[0] & mask[2] == mask[0] & mask[2] and tag[1] & mask[3] == mask[1] & mask[3]
                ),
                None,
            )
        if action is None:
            return None
        if self.profile.clean_descriptors and tag in self._descriptors:
            if str(element.value) in self.profile.clean_descriptions:
                return annex_e.keep
            return annex_e.delete
        if element.VR in _DATE_VRS:
            if self.profile.dates == "keep" or (self.profile.dates == "shift" and element.VR == "TM"):
                return annex_e.keep
            if self.profile.dates == "shift":
                return self._shift_date
        return action

    @staticmethod
    def _apply(dataset: Dataset, element: DataElement, action: Action) -> None:
        tag = (element.tag.group, element.tag.element)
        try:
            action(dataset, tag)
        except NotImplementedError:  # a VR the library has no dummy value for: remove it (X)
            del dataset[element.tag]

    # These replace the element rather than set its value: an element object shared between datasets
    # (copies made in memory) must not be pseudonymised twice.

    def _pseudonymise_patient(self, dataset: Dataset, tag: tuple[int, int]) -> None:
        dataset[tag] = DataElement(tag, dataset[tag].VR, self._patient[tag])

    def _replace_uid(self, dataset: Dataset, tag: tuple[int, int]) -> None:
        element = dataset[tag]
        if element.VR != "UI" or not element.value:
            return
        if isinstance(element.value, MultiValue | list):
            value: Any = [self.uid(str(v)) for v in element.value]
        else:
            value = self.uid(str(element.value))
        dataset[tag] = DataElement(tag, "UI", value)

    def _shift_date(self, dataset: Dataset, tag: tuple[int, int]) -> None:
        element = dataset[tag]
        values = element.value if isinstance(element.value, MultiValue | list) else [element.value]
        shifted = [_shifted(str(v), self.result.shift_days or 0) for v in values if str(v)]
        if any(v is None for v in shifted):  # not a date this can move: the basic profile's action
            self._actions.get(tag, annex_e.delete)(dataset, tag)
            return
        value = shifted if len(shifted) > 1 else (shifted[0] if shifted else "")
        dataset[tag] = DataElement(tag, element.VR, value)

    def _mark(self, dataset: Dataset) -> None:
        methods = [codes.DCM.BasicApplicationConfidentialityProfile]
        if self.profile.clean_descriptors:
            methods.append(codes.DCM.CleanDescriptorsOption)
        if self.profile.dates == "keep":
            methods.append(codes.DCM.RetainLongitudinalTemporalInformationFullDatesOption)
        elif self.profile.dates == "shift":
            methods.append(codes.DCM.RetainLongitudinalTemporalInformationModifiedDatesOption)
        dataset.PatientIdentityRemoved = "YES"
        dataset.DeidentificationMethod = ", ".join(  # LO: 64 characters at most; the codes say it in full
            ["PS3.15 E basic profile"]
            + (["clean descriptors"] if self.profile.clean_descriptors else [])
            + {"keep": ["full dates"], "shift": ["modified dates"], "remove": []}[self.profile.dates]
        )
        items = []
        for code in methods:
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator = code.value, code.scheme_designator
            item.CodeMeaning = code.meaning
            items.append(item)
        dataset.DeidentificationMethodCodeSequence = items
        dataset.LongitudinalTemporalInformationModified = {
            "keep": "UNMODIFIED",
            "shift": "MODIFIED",
            "remove": "REMOVED",
        }[self.profile.dates]


def refusal_reason(dataset: Dataset) -> str | None:
    """Why this profile cannot make ``dataset`` safe (a header is enough), else None."""
    if str(dataset.get("BurnedInAnnotation", "")).upper() == "YES":
        return (
            f"instance {dataset.get('SOPInstanceUID', '?')} has burned-in annotation (BurnedInAnnotation "
            "YES): its pixels may show the patient's identity, and Concord does not clean pixel data"
        )
    return None


def _shifted(value: str, days: int) -> str | None:
    """A DA or DT value moved back ``days`` days (the rest of a DT kept); None when it is not a full date."""
    head = value[:8]
    try:
        day = datetime.datetime.strptime(head, "%Y%m%d").date()
    except ValueError:
        return None
    moved = day - datetime.timedelta(days=days)
    if moved.year < 1:
        return None
    return f"{moved:%Y%m%d}{value[8:]}"
