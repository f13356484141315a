"""DINOv2 image similarity search for any Django site, on PostgreSQL + pgvector.

One Django app (label ``similarity``) in packages by layer and feature, whose imports only
point down (``pyproject.toml``'s import-linter contracts hold the rule):

- ``conf``, ``errors``, ``locks``: the settings object, the app's errors, advisory locks;
- ``models``: our tables; ``host``: everything about the host (its models, keys, files,
  access policy, links);
- ``vectors``: decoding, the embedder, thumbnails, the exact cache, HNSW indexes;
- ``search``: the one ranking and its queries; ``embedding``: following the host,
  scheduling, the worker, the sweep, readiness, notifications;
- ``insight``, ``watch``, ``actions``: the features, listening to the embedding layer;
- ``views``, ``api``, ``templatetags``, ``admin``, ``contrib``: the doors; ``urls``,
  ``api_urls``: route tables; ``tasks``, ``insight_tasks``: django-q2 entry points.

Public entry points: ``similarity.conf.similarity_settings``,
``similarity.search.find_similar`` and ``find_similar_to_selection``,
``similarity.tasks.schedule_embedding`` / ``reindex_project`` / ``sweep``,
``similarity.embedding.readiness.get_readiness``, ``similarity.host.access.AccessPolicy``,
``similarity.host.models.get_asset_model``, ``similarity.host.links.results_url``,
``similarity.actions.BulkAction``, ``similarity.admin.extend_admin``. Framework
integrations live in ``similarity.contrib``.
"""
