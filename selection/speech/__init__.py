"""Speech: reading clips as MSWC gives them, and the embedding models that turn them into vectors."""
