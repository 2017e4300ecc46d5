"""Why a selection scores what it does: the per-clip report behind ``python -m selection.explain``.

==================  ================================================================
module              job
==================  ================================================================
``estimate``        what the report scores against (a held-out part of the pool, or the
                    eval set) and the frozen classifier's score there, with every pick
                    and with each pick left out
``evidence``        what needs no eval data: nearest pool neighbours' labels, a word
                    model's out-of-sample probabilities of a clip's word and label,
                    near-duplicate picks, typicality against the word's clips and,
                    with recordings, the length of their speech (badly cut evidence);
                    one verdict per clip
``repair``          suspect, badly cut, harmful or redundant picks swapped for better
                    unpicked pool clips
``projection``      the pool's 2-D map (PCA fitted on a representative sample)
``report``          the report document (``explain.json``) and the stdout table
``page``            ``explain.html``: one self-contained page, every text escaped
==================  ================================================================
"""
