"""Data sets: the synthetic and spoken corpora, experiments from MSWC-style sources, the family, archives."""
