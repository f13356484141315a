"""DINOv2 image similarity search for any Django site, on PostgreSQL + pgvector.

Public entry points: ``similarity.conf.similarity_settings``,
``similarity.registry.get_asset_model``, ``similarity.search.find_similar``,
``similarity.tasks.schedule_embedding`` / ``reindex_project`` and
``similarity.readiness.get_readiness``.
"""
