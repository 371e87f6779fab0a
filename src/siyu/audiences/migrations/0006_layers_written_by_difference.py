"""Layers refreshes write only changed rows: the refresh time moves to the workspace's
LayerConfig, ContactLayer.computed_at becomes changed_at and the stored recency goes."""

from django.db import migrations, models
from django.db.models import Max


def carry_refresh_time(apps, schema_editor):
    ContactLayer = apps.get_model("audiences", "ContactLayer")
    LayerConfig = apps.get_model("audiences", "LayerConfig")
    last = ContactLayer.objects.values("workspace_id").annotate(at=Max("computed_at"))
    for row in last:
        config, _ = LayerConfig.objects.get_or_create(workspace_id=row["workspace_id"])
        LayerConfig.objects.filter(id=config.id).update(refreshed_at=row["at"])


class Migration(migrations.Migration):
    dependencies = [("audiences", "0005_tag_source_journey")]

    operations = [
        migrations.AddField(
            model_name="layerconfig",
            name="refreshed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(carry_refresh_time, migrations.RunPython.noop),
        migrations.RenameField(
            model_name="contactlayer", old_name="computed_at", new_name="changed_at"
        ),
        migrations.RemoveField(model_name="contactlayer", name="recency_days"),
    ]
