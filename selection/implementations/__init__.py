"""Selection algorithms shipped with the harness, one per module."""
