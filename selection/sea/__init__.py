"""Specialized Embedding Approximation (Srivastava et al., ICASSP 2021): a small student of a big embedding model.

1. the teacher embeds every clip of the target domain's audio;
2. a representative subset of the training clips is sampled (:mod:`selection.sea.subset`);
3. a dimensionality reduction (PCA or UMAP) is fitted on the subset's teacher embeddings and
   projects every clip's (:mod:`selection.sea.reduce`);
4. a BC-ResNet student regresses the projected embeddings from the audio with a mean-squared-error
   loss (:mod:`selection.sea.fit`), and is exported to ONNX so that ``embed --model kws:DIR`` uses it.

``python -m selection.distill_embedding`` runs the whole recipe.
"""
