"""A host app that knows nothing of `datasets`: photos in albums, albums owned by users."""
