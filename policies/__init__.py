"""Alert policies: the model, the file loader/validator and pure evaluation logic (no I/O)."""
