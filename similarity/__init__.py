"""DINOv2 image similarity search for any Django site, on PostgreSQL + pgvector.

Public entry points: ``similarity.conf.similarity_settings``,
``similarity.registry.get_asset_model``, ``similarity.search.find_similar`` and
``find_similar_to_selection``, ``similarity.tasks.schedule_embedding`` /
``reindex_project`` / ``sweep``, ``similarity.readiness.get_readiness``,
``similarity.access.AccessPolicy``, ``similarity.admin.extend_admin`` and
``similarity.links.results_url``. Framework integrations live in ``similarity.contrib``.
"""
