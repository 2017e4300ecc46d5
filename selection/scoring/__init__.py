"""Scoring a selection with the frozen classifier: the classifier, shared-work predictions, metrics, cache."""
