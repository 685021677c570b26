"""Reader-study conditions (issue 14): Project.reader_study_conditions and Assignment.condition, the unique
key case/reader/session/condition. Existing AI-aided reads become condition "aided", the others "unaided"."""

from django.conf import settings
from django.db import migrations, models


def conditions_from_aided(apps, schema_editor):
    Assignment = apps.get_model("labeling", "Assignment")
    Assignment.objects.filter(aided=True).update(condition="aided")
    Assignment.objects.filter(aided=False).update(condition="unaided")


def aided_from_conditions(apps, schema_editor):
    Assignment = apps.get_model("labeling", "Assignment")
    Assignment.objects.filter(condition__in=("aided", "t1_only_aided")).update(aided=True)


class Migration(migrations.Migration):

    dependencies = [
        ('labeling', '0020_consensus_incremental'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='assignment',
            name='assignment_case_reader_session_unique',
        ),
        migrations.AddField(
            model_name='assignment',
            name='condition',
            field=models.CharField(default='unaided', help_text='the reader-study condition of this read (labeling.conditions): what the reader is served', max_length=32),
        ),
        migrations.AddField(
            model_name='project',
            name='reader_study_conditions',
            field=models.JSONField(blank=True, default=list, help_text='the reader study\'s conditions in order (labeling.conditions), e.g. ["t1_only", "t1_stir"]; empty: unaided and aided when ai_aided_reads is on, else no reader study'),
        ),
        migrations.AlterField(
            model_name='assignment',
            name='aided',
            field=models.BooleanField(default=False, help_text='the read is served the AI pre-read (follows from the condition)'),
        ),
        migrations.AlterField(
            model_name='project',
            name='reader_study_design',
            field=models.CharField(choices=[('sequential', 'sequential (a case in each condition in turn, at once: the unaided read, then with AI)'), ('crossover', 'crossover (a case in each condition in sessions apart by the washout, order a seeded Latin square per reader)')], default='sequential', help_text="how a reader study's reads of a case are scheduled (sequential or crossover)", max_length=16),
        ),
        migrations.RunPython(conditions_from_aided, aided_from_conditions),
        migrations.AddConstraint(
            model_name='assignment',
            constraint=models.UniqueConstraint(fields=('case', 'reader', 'session', 'condition'), name='assignment_case_reader_session_condition_unique'),
        ),
    ]
