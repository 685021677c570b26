"""Start one small CPU training run of each model kind on the demo projects (idempotent)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from labeling.exceptions import Conflict, InvalidInput
from labeling.models import Project
from ml.models import TrainingRun
from ml.services.training import training_run_start

# project name -> kind -> a configuration that trains in minutes on 2 CPU cores
DEMO_RUNS: dict[str, dict[str, dict[str, Any]]] = {
    "SIJ MRI demo": {
        "contour": {
            "epochs": 3,
            "width": 8,
            "crop_mm": 96.0,
            "pixel_mm": 1.5,
            "batch_size": 16,
            "device": "cpu",
        },
        "lesions": {"epochs": 3, "device": "cpu"},
    },
    "SIJ CT demo": {  # the segmenter learns from each study's pelvis SEG, imported with the phantoms
        "ctgrade": {
            "device": "cpu",
            "seg_train": {"epochs": 3, "lr": 3e-3, "batch_size": 2},
            "train": {"epochs": 16, "lr": 2e-3, "batch_size": 8},  # 8 epochs: QWK < 0 on the demo's gold
            "grader": {"init_features": 16, "growth_rate": 8},
            "crop": {"box_mm": [56.0, 56.0, 56.0], "voxel_mm": 1.75},
        },
    },
}


class Command(BaseCommand):
    help = "Queue one demo training run per model kind (skipped when one exists already)."

    def handle(self, *args: Any, **options: Any) -> None:
        admin = get_user_model().objects.get(username="admin")
        for name, kinds in DEMO_RUNS.items():
            project = Project.objects.select_related("scheme").get(name=name)
            for kind, config in kinds.items():
                if TrainingRun.objects.filter(project=project, kind=kind).exists():
                    self.stdout.write(f"{name}: a {kind} run exists already")
                    continue
                try:
                    run = training_run_start(
                        actor=admin,
                        project=project,
                        kind=kind,
                        config=config,
                        trigger=TrainingRun.Trigger.DEMO,
                    )
                except (Conflict, InvalidInput) as exc:
                    self.stderr.write(f"{name}: {kind}: {exc}")
                    continue
                self.stdout.write(f"{name}: queued {kind} training run {run.pk}")
