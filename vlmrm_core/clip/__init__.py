"""CLIP models: loading (tags, checkpoints, random init), preprocessing, embedding, and the
faster packed CPU image pass."""
