"""DINOv2 image similarity search for any Django site, on PostgreSQL + pgvector.

Public entry points: ``similarity.conf.similarity_settings``,
``similarity.registry.get_asset_model``, ``similarity.search.find_similar``,
``similarity.tasks.enqueue_embedding`` and ``similarity.readiness.get_readiness``.
"""
