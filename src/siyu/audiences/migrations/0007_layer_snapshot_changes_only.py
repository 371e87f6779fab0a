"""Stage snapshots keep only changes: a contact's stage at a month's end is its latest row up to
that month. The months that had a refresh are listed on LayerConfig, and the full monthly rows
stored before are compacted: a row whose stage is the one of the contact's row before it says
nothing new."""

from django.db import migrations, models


def list_snapshot_months(apps, schema_editor):
    LayerConfig = apps.get_model("audiences", "LayerConfig")
    LayerSnapshot = apps.get_model("audiences", "LayerSnapshot")
    months: dict[int, list[str]] = {}
    for workspace_id, month in (
        LayerSnapshot.objects.values_list("workspace_id", "month").distinct().order_by("month")
    ):
        months.setdefault(workspace_id, []).append(month.isoformat())
    for workspace_id, listed in months.items():
        config, _ = LayerConfig.objects.get_or_create(workspace_id=workspace_id)
        LayerConfig.objects.filter(id=config.id).update(snapshot_months=listed)


def drop_unchanged_rows(apps, schema_editor):
    table = apps.get_model("audiences", "LayerSnapshot")._meta.db_table
    schema_editor.execute(
        f"DELETE FROM {table} WHERE id IN (SELECT id FROM (SELECT id, lifecycle_stage, "  # noqa: S608
        "LAG(lifecycle_stage) OVER (PARTITION BY contact_id ORDER BY month) AS before "
        f"FROM {table}) rows WHERE before = lifecycle_stage)"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("audiences", "0006_layers_written_by_difference"),
        ("contacts", "0002_remove_identity_identity_unique_and_more"),
        ("tenancy", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="layersnapshot", name="audiences_l_contact_5775e5_idx"),
        migrations.AddField(
            model_name="layerconfig",
            name="snapshot_months",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddIndex(
            model_name="layersnapshot",
            index=models.Index(fields=["contact", "month"], name="layersnapshot_contact_month"),
        ),
        migrations.RunPython(list_snapshot_months, migrations.RunPython.noop),
        migrations.RunPython(drop_unchanged_rows, migrations.RunPython.noop),
    ]
