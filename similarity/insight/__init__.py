"""Dataset insight: every image's nearest neighbours, kept current by the worker, and what
they show: near-duplicate groups, the most unusual images, a 2-D map of the scope.

``neighbours`` (the maths), ``storage`` (the lists' table), ``stage`` (one pass of the
analysis), ``scheduling`` (its task), ``files`` (hashes), ``map``, ``reading`` (what pages
and the API show), ``receivers`` (how it follows the embedding layer).
"""
