"""factory_boy factories for the labeling domain."""

from __future__ import annotations

import itertools
from typing import Any

import factory
from django.contrib.auth import get_user_model

from labeling.models import Assignment, Case, GradingScheme, Membership, Project, Series, Study
from labeling.schemes import Scheme

_uid = itertools.count(1)


def uid(prefix: str = "1.2.826.0.1.3680043.10.1337") -> str:
    return f"{prefix}.{next(_uid)}"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")


def scheme(name: str = "mri_sij", version: int = 1) -> GradingScheme:
    from labeling.services.schemes import schemes_load

    schemes_load()
    return GradingScheme.objects.get(name=name, version=version)


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    scheme = factory.LazyFunction(scheme)
    readers_per_case = 3
    washout_days = 0
    washout_cases = 0


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study

    study_uid = factory.LazyFunction(uid)
    modality = "MR"
    patient_id = factory.Sequence(lambda n: f"PHANTOM-{n:04d}")


def mri_study(n_slices: int = 3, actor: Any = None) -> Study:
    """An MRI study with T1 and STIR series of ``n_slices`` instances each."""
    from labeling.services.studies import study_register

    return study_register(
        actor=actor,
        study_uid=uid(),
        modality="MR",
        series=[
            {
                "series_uid": (series_uid := uid()),
                "modality": "MR",
                "description": desc,
                "instances": [
                    {"sop_uid": f"{series_uid}.{i}", "slice_index": i, "instance_number": i + 1}
                    for i in range(n_slices)
                ],
            }
            for desc in ("T1", "STIR")
        ],
    )


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    project = factory.SubFactory(ProjectFactory)
    study = factory.SubFactory(StudyFactory, modality=factory.SelfAttribute("..project.scheme.modality"))
    label = factory.Sequence(lambda n: f"case-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.READER


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assignment

    case = factory.SubFactory(CaseFactory)
    project = factory.SelfAttribute("case.project")
    reader = factory.SubFactory(UserFactory)
    session = 1


def full_values(parsed: Scheme, value: int | None = None, **overrides: Any) -> list[dict[str, Any]]:
    """A complete, valid reading: ``value`` (default: the lowest) for every item of the form; where the scheme
    asks for a rating, the lowest rating of that value (the first one called present for 1)."""
    rows = []
    for item in parsed.form_items:
        v = item.values[0] if value is None else value
        row = {"joint": item.joint, "region": item.region, "lesion": item.lesion, "value": v}
        if item.rating is not None:
            row["rating"] = item.rating.present_from if v else item.rating.low
        rows.append(row)
    return rows


def contour(series_uid: str, slice_index: int = 0, joint: str = "left") -> dict[str, Any]:
    return {
        "joint": joint,
        "series_uid": series_uid,
        "slice_index": slice_index,
        "points_mm": [[30.0, 0.0, 40.0], [28.0, 0.0, 20.0], [24.0, 0.0, 0.0]],
    }


__all__ = [
    "AssignmentFactory",
    "CaseFactory",
    "MembershipFactory",
    "ProjectFactory",
    "Series",
    "StudyFactory",
    "UserFactory",
    "contour",
    "full_values",
    "mri_study",
    "scheme",
    "uid",
]
