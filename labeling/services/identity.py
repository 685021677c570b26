"""Who may see patient identity in images, and which series descriptions are clean enough to show anyone.

Readers and adjudicators never receive patient-identifying attributes (``labeling.dicom.confidentiality``);
site staff (who administer the stores and the pseudonym mapping) receive the objects as stored.
"""

from __future__ import annotations

from django.contrib.auth.models import User

from labeling.models import GradingScheme


def sees_identity(user: User) -> bool:
    """Whether ``user`` receives DICOM objects as stored (identified): site staff only."""
    return bool(user.is_active and user.is_staff)


def clean_series_descriptions() -> frozenset[str]:
    """Series descriptions safe to show readers: the sequence names the loaded schemes ask for (T1, STIR)."""
    return frozenset(seq for scheme in GradingScheme.objects.all() for seq in scheme.parsed.sequences)
