import ast
import math
import re

from django.db import migrations, models

EPOCH_LINE = re.compile(r"^epoch (\d+): loss (\S+) (\{.*\})\s*$")


def history_from_logs(apps, schema_editor):
    """Runs logged before the history field: their end-of-epoch lines (``epoch 0: loss 0.91 {'val_loss':
    0.8}``, a Python dict repr) become history rows, so their charts stay; a resumed epoch's later line wins."""
    TrainingRun = apps.get_model("ml", "TrainingRun")
    for run in TrainingRun.objects.exclude(log="").only("id", "log"):
        rows = {}
        for line in run.log.splitlines():
            match = EPOCH_LINE.match(line.strip())
            if not match:
                continue
            try:
                metrics = ast.literal_eval(match[3])
                loss = float(match[2])
            except (ValueError, SyntaxError):
                continue
            rows[int(match[1])] = {
                "epoch": int(match[1]),
                "loss": loss if math.isfinite(loss) else None,
                "metrics": {k: v for k, v in metrics.items() if v is None or isinstance(v, int | float)},
            }
        if rows:
            TrainingRun.objects.filter(pk=run.pk).update(history=[rows[k] for k in sorted(rows)])


class Migration(migrations.Migration):
    dependencies = [
        ("ml", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="trainingrun",
            name="history",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="one {epoch, loss, metrics[, phase]} per finished epoch, in order",
            ),
        ),
        migrations.RunPython(history_from_logs, migrations.RunPython.noop),
    ]
