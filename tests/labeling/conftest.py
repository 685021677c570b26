"""Django fixtures for the labeling tests: a project with every role, a case and an open assignment."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from labeling.models import Assignment, Case, Membership, Project
from tests.labeling.factories import MembershipFactory, ProjectFactory, UserFactory, mri_study


@dataclass
class World:
    project: Project
    case: Case
    admin: object
    adjudicator: object
    reader: object
    other_reader: object
    outsider: object
    staff: object
    assignment: Assignment
    other_assignment: Assignment


@pytest.fixture
def world(db) -> World:
    project = ProjectFactory()
    users = {name: UserFactory(username=name) for name in ("admin", "adj", "reader", "reader2", "outsider")}
    staff = UserFactory(username="staff", is_staff=True)
    MembershipFactory(project=project, user=users["admin"], role=Membership.Role.ADMIN)
    MembershipFactory(project=project, user=users["adj"], role=Membership.Role.ADJUDICATOR)
    MembershipFactory(project=project, user=users["reader"], role=Membership.Role.READER)
    MembershipFactory(project=project, user=users["reader2"], role=Membership.Role.READER)
    case = Case.objects.create(project=project, study=mri_study(), label="case-1")
    a1 = Assignment.objects.create(project=project, case=case, reader=users["reader"], session=1)
    a2 = Assignment.objects.create(project=project, case=case, reader=users["reader2"], session=1)
    return World(
        project,
        case,
        users["admin"],
        users["adj"],
        users["reader"],
        users["reader2"],
        users["outsider"],
        staff,
        a1,
        a2,
    )


@pytest.fixture
def client_for():
    def make(user) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make
