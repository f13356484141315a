"""The app's pages, one module per screen; ``similarity.urls`` routes them.

Thin: each view checks access, calls the function of the layer below that does the work
(search, watch, actions, insight) and renders. What the user may not see is NotFound down
there and a 404 here (``base.not_found_as_404``).
"""
