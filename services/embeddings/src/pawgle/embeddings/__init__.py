"""PawGle embeddings service: image vectors and image search."""
