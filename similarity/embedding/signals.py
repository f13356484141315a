"""What the embedding layer announces; the features above it listen.

The worker knows nothing of saved searches or the insight stage: it sends these, and
``similarity.watch`` and ``similarity.insight`` connect their receivers in
``SimilarityConfig.ready()``. Sent with ``send_robust`` (a receiver's failure is logged,
never the worker's), with ``Embedding`` as the sender.
"""

from django.dispatch import Signal

#: A batch of rows was written. ``project_id``: the scope; ``row_ids``: our embedding
#: row ids that now hold a vector (failures not included).
batch_embedded = Signal()

#: An embedding task ended with its scope ready (every vector of the current model
#: written or failed). Sent each time, not only on the transition: receivers deduplicate
#: their own work (the insight stage queues at most one task per scope). ``project_id``.
project_ready = Signal()
