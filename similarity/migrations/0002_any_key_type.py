# Hand-written: scope ids become text (any host key type), and rows remember their file.

from django.db import migrations, models

SITE_SCOPE = "site"


def drop_partial_indexes(apps, schema_editor):
    """Per-project HNSW indexes compare project_id with an integer literal: drop them
    before the type change (the worker rebuilds them for big projects)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(r"SELECT indexname FROM pg_indexes WHERE indexname LIKE 'similarity\_hnsw\_%'")
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
        cursor.execute("UPDATE similarity_projectreadiness SET indexed_model_key = ''")


def site_scope_to_text(apps, schema_editor):
    for name in ("Embedding", "ProjectReadiness", "Notification"):
        apps.get_model("similarity", name).objects.filter(project_id="0").update(
            project_id=SITE_SCOPE
        )


class Migration(migrations.Migration):

    dependencies = [("similarity", "0001_initial")]

    operations = [
        migrations.RunPython(drop_partial_indexes, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="embedding",
            name="project_id",
            field=models.CharField(max_length=255, verbose_name="project id"),
        ),
        migrations.AlterField(
            model_name="projectreadiness",
            name="project_id",
            field=models.CharField(max_length=255, unique=True, verbose_name="project id"),
        ),
        migrations.AlterField(
            model_name="notification",
            name="project_id",
            field=models.CharField(db_index=True, max_length=255, verbose_name="project id"),
        ),
        migrations.AddField(
            model_name="embedding",
            name="source",
            field=models.CharField(blank=True, max_length=500, verbose_name="file"),
        ),
        migrations.RunPython(site_scope_to_text, migrations.RunPython.noop),
    ]
