"""The embedding layer: following the host's saves and deletes, scheduling and running the
embedding work, the sweep that repairs what was missed, readiness and notifications.

It announces what it did (``similarity.embedding.signals``) and never calls the features
built on it.
"""
