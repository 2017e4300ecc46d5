"""Speech: reading clips as MSWC gives them, how much of a clip is speech, and the embedding models that turn
clips into vectors."""
