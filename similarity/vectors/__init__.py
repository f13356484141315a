"""From pixels to vectors and back to neighbours: decoding, the embedder, thumbnails, the
exact scan cache, per-project HNSW indexes and the vector maths they share."""
