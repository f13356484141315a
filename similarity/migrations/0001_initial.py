# Hand-edited: the asset model comes from SIMILARITY['ASSET_MODEL'] (like AUTH_USER_MODEL).

import django.db.models.deletion
import pgvector.django.halfvec
from django.conf import settings
from django.db import migrations, models
from pgvector.django import VectorExtension

from similarity.conf import asset_model_setting


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(asset_model_setting()),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        VectorExtension(),
        migrations.CreateModel(
            name='ProjectReadiness',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('project_id', models.BigIntegerField(unique=True, verbose_name='project id')),
                ('state', models.CharField(choices=[('empty', 'No images'), ('computing', 'Computing embeddings'), ('ready', 'Ready'), ('failed', 'Failed')], default='empty', max_length=10, verbose_name='state')),
                ('model_key', models.CharField(blank=True, max_length=200, verbose_name='current model')),
                ('active_model_key', models.CharField(blank=True, max_length=200, verbose_name='serving model')),
                ('total', models.PositiveIntegerField(default=0)),
                ('embedded', models.PositiveIntegerField(default=0)),
                ('pending', models.PositiveIntegerField(default=0)),
                ('failed', models.PositiveIntegerField(default=0)),
                ('error', models.TextField(blank=True, verbose_name='error')),
                ('indexed_model_key', models.CharField(blank=True, max_length=200)),
                ('episode', models.PositiveIntegerField(default=0)),
                ('episode_base', models.PositiveIntegerField(default=0)),
                ('queued_at', models.DateTimeField(blank=True, null=True)),
                ('updated', models.DateTimeField(auto_now=True, verbose_name='last change')),
            ],
            options={
                'verbose_name': 'project readiness',
                'verbose_name_plural': 'project readiness',
            },
        ),
        migrations.CreateModel(
            name='Notification',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('project_id', models.BigIntegerField(db_index=True, verbose_name='project id')),
                ('level', models.CharField(choices=[('info', 'Info'), ('success', 'Success'), ('warning', 'Warning'), ('error', 'Error')], default='info', max_length=10)),
                ('message', models.TextField(verbose_name='message')),
                ('url', models.CharField(blank=True, max_length=500, verbose_name='link')),
                ('key', models.CharField(blank=True, max_length=200, null=True, unique=True)),
                ('created', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('read_by', models.ManyToManyField(blank=True, related_name='similarity_notifications_read', to=settings.AUTH_USER_MODEL)),
                ('recipient', models.ForeignKey(blank=True, help_text='Empty: everyone who can see the project.', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='similarity_notifications', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'notification',
                'verbose_name_plural': 'notifications',
                'ordering': ['-created', '-id'],
            },
        ),
        migrations.CreateModel(
            name='Embedding',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('model_key', models.CharField(max_length=200, verbose_name='model')),
                ('project_id', models.BigIntegerField(verbose_name='project id')),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('done', 'Embedded'), ('failed', 'Failed')], default='pending', max_length=10, verbose_name='status')),
                ('error', models.TextField(blank=True, verbose_name='reason')),
                ('vector', pgvector.django.halfvec.HalfVectorField(blank=True, null=True)),
                ('dims', models.PositiveSmallIntegerField(blank=True, null=True)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('claimed_until', models.DateTimeField(blank=True, null=True)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('updated', models.DateTimeField(auto_now=True)),
                ('asset', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='similarity_embeddings', to=asset_model_setting(), verbose_name='asset')),
            ],
            options={
                'verbose_name': 'embedding',
                'verbose_name_plural': 'embeddings',
                'indexes': [models.Index(fields=['project_id', 'model_key', 'status'], name='similarity_scope'), models.Index(fields=['status', 'updated'], name='similarity_sweep')],
                'constraints': [models.UniqueConstraint(fields=('asset', 'model_key'), name='similarity_one_per_model')],
            },
        ),
    ]
