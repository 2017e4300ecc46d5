"""The benchmark's fixed names and numbers (and class ids), with no imports so that every layer can use them.

The plugin API (:mod:`selection.selection`) and the input checks (:mod:`selection.inputs.validation`)
both need them; keeping them here is what lets neither import the other.
"""

EMBEDDING_DIM = 1024
ID_COLUMN = "clip_id"
VECTOR_COLUMN = "mswc_embedding_vector"
NONTARGET = "nontarget"


def class_names_of(sample_ids: dict) -> list[str]:
    """Class names by class id: ``nontarget`` is 0, targets sorted by name get 1..k."""
    return [NONTARGET, *sorted(sample_ids["targets"])]
