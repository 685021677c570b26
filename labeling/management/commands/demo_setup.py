"""Create the demo: schemes, users with printed passwords, an MRI and a CT project with their members."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from labeling.models import GradingScheme, Membership, Project
from labeling.services.projects import membership_add, project_create
from labeling.services.schemes import schemes_load

USERS = [  # username, staff, roles in every demo project
    ("admin", True, [Membership.Role.ADMIN]),
    ("adjudicator", False, [Membership.Role.ADJUDICATOR]),
    ("reader1", False, [Membership.Role.READER]),
    ("reader2", False, [Membership.Role.READER]),
    ("reader3", False, [Membership.Role.READER]),
]
# Scheme versions pinned: the demo's simulated reads (demo_load_phantoms) give values without ratings, which
# mri_sij v2 asks for; a newer scheme version must not change the demo silently.
PROJECTS = [("SIJ MRI demo", "mri_sij", 1), ("SIJ CT demo", "ct_sij", 1)]


class Command(BaseCommand):
    help = "Load schemes and create demo users and projects; idempotent, keeps existing passwords."

    def handle(self, *args: Any, **options: Any) -> None:
        logins_file = Path(settings.VAR_DIR) / "demo-logins.txt"
        schemes_load()
        with transaction.atomic():
            passwords = self._users()
            self._projects()
        if passwords:
            lines = [f"  {name:12s} {password}" for name, password in passwords.items()]
            logins_file.parent.mkdir(parents=True, exist_ok=True)
            logins_file.write_text("Logins (username, password):\n" + "\n".join(lines) + "\n")
        self.stdout.write(logins_file.read_text() if logins_file.exists() else "demo users exist already")

    def _users(self) -> dict[str, str]:
        """Create missing users with fresh passwords; returns {} when all exist (passwords unchanged)."""
        User = get_user_model()
        if all(User.objects.filter(username=name).exists() for name, _, _ in USERS):
            return {}
        passwords = {}
        for name, staff, _ in USERS:
            password = secrets.token_urlsafe(9)
            user, _ = User.objects.get_or_create(username=name)
            user.is_staff = user.is_superuser = staff
            user.set_password(password)
            user.save()
            passwords[name] = password
        return passwords

    def _projects(self) -> None:
        User = get_user_model()
        admin = User.objects.get(username="admin")
        for name, scheme_name, version in PROJECTS:
            project = Project.objects.filter(name=name).first()
            if project is None:
                scheme = GradingScheme.objects.get(name=scheme_name, version=version)
                project = project_create(
                    actor=admin,
                    name=name,
                    scheme=scheme,
                    readers_per_case=3,
                    repeat_fraction=0.2,
                    washout_days=0,
                    washout_cases=3,
                )
            for username, _, roles in USERS:
                for role in roles:
                    if not project.memberships.filter(user__username=username, role=role).exists():
                        membership_add(actor=admin, project=project, username=username, role=role)
