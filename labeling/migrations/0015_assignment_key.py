"""Assignment.key: the opaque name readers address an assignment by (issue 13, blind repeats).

Added nullable, filled with a fresh random key per existing row, then made unique and required."""

import secrets

from django.db import migrations, models

import labeling.models


def backfill_keys(apps, schema_editor):
    Assignment = apps.get_model("labeling", "Assignment")
    batch = []
    for assignment in Assignment.objects.filter(key__isnull=True).only("pk").iterator(chunk_size=2000):
        assignment.key = secrets.token_urlsafe(16)
        batch.append(assignment)
        if len(batch) >= 2000:
            Assignment.objects.bulk_update(batch, ["key"])
            batch = []
    if batch:
        Assignment.objects.bulk_update(batch, ["key"])


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0013_outbox_and_import_job_heartbeat"),
    ]

    operations = [
        migrations.AddField(
            model_name="assignment",
            name="key",
            field=models.CharField(editable=False, max_length=32, null=True),
        ),
        migrations.RunPython(backfill_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="assignment",
            name="key",
            field=models.CharField(
                default=labeling.models.new_assignment_key,
                editable=False,
                help_text="the opaque name readers address the assignment by",
                max_length=32,
                unique=True,
            ),
        ),
    ]
