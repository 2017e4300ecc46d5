"""The one way in: a loaded, checked experiment that checks, scores and selects.

Every command is a thin layer over this module (as lm-evaluation-harness's command line is
over ``simple_evaluate``): ``eval.py`` and ``select``, ``run``, ``bench``, ``submit``, the
leaderboard's workers, ``download`` and ``embed`` (to check what they wrote), and the notebook.
There is one loading path and one scoring path, so a score from Python is ``eval.py``'s score.

======================  ==============================================================
entry point             use it for
======================  ==============================================================
:func:`load_experiment` read and check one experiment (a folder, or ``language=``)
:meth:`Experiment.check` a ``train.json`` (path, dict or ``TrainingSet``) checked as
                        ``evaluate`` checks it: the same one-line errors
:meth:`Experiment.score` ``eval.py``'s results for a selection, as a :class:`Results`
:meth:`Experiment.select` run an algorithm (a shipped name, ``module:Class`` or a class)
:meth:`Experiment.write` write a checked selection as a ``train.json`` (atomically)
======================  ==============================================================

Loading is lazy where it can be: the allowed pool's and the eval set's ID lists are read and
checked at once (through ``evaluate``'s cache, :mod:`selection.scoring.cache`); the eval set's
vectors on the first score, the pool's on the first selection. An experiment loaded with
``with_eval=False`` (what ``select`` does) never opens ``eval.yaml`` or ``eval_embeddings/``.

Examples
--------
>>> from selection import load_experiment
>>> experiment = load_experiment(folder)
>>> picked = experiment.select("random", 12)
>>> picked.size <= 12
True
>>> results = experiment.score(picked, limit=12)
>>> 0.0 <= results.score <= 1.0
True
"""

from __future__ import annotations

import html
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selection.inputs.errors import BadInputError
from selection.inputs.formats import class_names_of
from selection.inputs.layout import DEFAULT_WORKSPACE, find_experiment
from selection.inputs.rows import selection_rows  # noqa: F401 - part of this module's API

if TYPE_CHECKING:
    from selection.inputs.load import LabelledVectors

# numpy, pyarrow and scikit-learn are imported inside the functions that use them: ``from selection import
# load_experiment`` stays cheap, and a notebook pays for them once, on the first load.

log = logging.getLogger("dataperf")
PATH_NAMES = ("allowed_training_set", "train_embeddings_dir", "eval_embeddings_dir", "eval_file")


class Results(dict):
    """``eval.py``'s results document (a dict: ``to_dict()`` is exactly the results JSON), with a notebook view.

    Attributes
    ----------
    score : float
        Mean of the configured metric over the evaluation seeds.
    per_class : dict
        ``{class name: {"precision", "recall", "f1", "support"}}``, means over seeds.
    """

    @property
    def score(self) -> float:
        return self["score"]

    predictions = None  # set by Experiment.score(..., keep_predictions=True): (n_seeds, n_eval) class ids

    @property
    def per_class(self) -> dict:
        return self["per_class"]

    def to_dict(self) -> dict:
        """The results as plain JSON-ready data, equal to the file ``eval.py`` writes."""
        return dict(self)

    def __repr__(self) -> str:
        return (
            f"Results({self['metric']}={self['score']:.4f} ± {self['score_std']:.4f} over "
            f"{len(self['per_seed'])} seeds, n_train={self.get('n_train')})"
        )

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{figures['precision']:.3f}</td><td>{figures['recall']:.3f}</td>"
            f"<td>{figures['f1']:.3f}</td><td>{figures['support']}</td></tr>"
            for name, figures in self["per_class"].items()
        )
        return (
            f"<p><b>{html.escape(self['metric'])}: {self['score']:.4f}</b> (std {self['score_std']:.4f} over "
            f"{len(self['per_seed'])} seeds); macro F1 {self['macro_f1']:.4f}, balanced accuracy "
            f"{self['balanced_accuracy']:.4f}; {self.get('n_train')} clips</p>"
            "<table><thead><tr><th>class</th><th>precision</th><th>recall</th><th>f1</th><th>support</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>"
        )


class Selection(dict):
    """A checked selection (``{"targets": {word: [ids]}, "nontargets": [ids]}``, what ``train.json`` holds).

    Attributes
    ----------
    algorithm : str
        ``module.Class`` of the algorithm that made it.
    seconds : float
        Time the algorithm took (constructor and ``select``).
    warnings : list of str
        Classes it left empty.
    """

    algorithm: str = ""
    seconds: float = 0.0
    warnings: list

    def __init__(self, train_set: dict, *, algorithm: str = "", seconds: float = 0.0, warnings=()) -> None:
        super().__init__(train_set)
        self.algorithm, self.seconds, self.warnings = algorithm, seconds, list(warnings)

    @property
    def size(self) -> int:
        return sum(map(len, self["targets"].values())) + len(self["nontargets"])


class Report(dict):
    """The per-clip report (a dict: exactly what ``explain.json`` holds), with a notebook view.

    Attributes
    ----------
    repaired : dict or None
        The repaired selection (``explain(..., repair=N)``), a ``train.json`` document.
    """

    repaired = None

    def __repr__(self) -> str:
        from selection.diagnosis.evidence import verdict_counts

        return (
            f"Report({self['mode']}: {self['metric']}={self['estimate']['score']:.4f}, {self['n_picks']} picks: "
            f"{verdict_counts(self['verdicts'])})"
        )

    def _repr_html_(self) -> str:
        rows = []
        for clip in self["clips"][:10]:
            effect = "n/a" if clip["effect"] is None else f"{clip['effect']:+.4f}"
            rows.append(
                f"<tr><td>{clip['rank']}</td><td>{html.escape(clip['id'])}</td><td>{html.escape(clip['label'])}</td>"
                f"<td>{html.escape(clip['verdict'])}</td><td>{effect}</td>"
                f"<td>{html.escape('; '.join(clip['reasons'][1:]))}</td></tr>"
            )
        return (
            f"<p><b>{html.escape(self['note'])}</b></p><p>{html.escape(repr(self))}</p>"
            "<table><thead><tr><th>rank</th><th>clip</th><th>label</th><th>verdict</th><th>effect</th><th>why</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )


class Experiment:
    """One language's experiment: its allowed pool and (unless ``with_eval=False``) its eval set, checked.

    Made by :func:`load_experiment`; the constructor only stores. ``allowed`` and
    ``evaluation_ids`` are the checked ID documents; ``pool``, ``evaluation`` and ``embeddings``
    (the dict the plugin API hands to algorithms) are loaded on first use.
    """

    def __init__(
        self,
        paths: dict[str, Path],
        *,
        config: dict,
        allowed: dict,
        evaluation_ids: dict | None,
        cache_dir: str | None,
        label: str = "",
        config_file: str = "config",
        cached_evaluation: LabelledVectors | None = None,
        eval_key: str | None = None,
    ) -> None:
        self.paths = paths
        self.config = config
        self.config_file = config_file
        self.allowed = allowed
        self.evaluation_ids = evaluation_ids
        self.class_names = class_names_of(allowed)
        self.label = label
        self._cache_dir = cache_dir
        self._eval_key = eval_key
        self._evaluation = cached_evaluation
        self._pool: LabelledVectors | None = None

    def __repr__(self) -> str:
        folder = self.paths["allowed_training_set"].parent
        kinds = f"{len(self.class_names) - 1} target words"
        return f"Experiment({str(folder)!r}, {kinds}, eval set {'loaded' if self.evaluation_ids else 'not read'})"

    @property
    def pool(self) -> LabelledVectors:
        """Every allowed clip's vector, in the benchmark's row order."""
        if self._pool is None:
            from selection.inputs.load import load_vectors

            desc = f"{self.label} pool".strip() if self.label else "loading the allowed pool"
            pool = load_vectors(self.allowed, self.paths["train_embeddings_dir"], desc=desc)
            pool.matrix.setflags(write=False)  # algorithms see row views: none may change a later score
            self._pool = pool
        return self._pool

    @property
    def embeddings(self) -> dict:
        """The allowed pool as the plugin API's ``allowed_embeddings`` dict (a new dict each time).

        Its feature vectors are read-only views of the pool: an algorithm that changes them in place
        gets numpy's "read-only" error instead of changing every later score in the process.
        """
        from selection.inputs.load import embeddings_dict

        return embeddings_dict(self.allowed, self.pool)

    @property
    def evaluation(self) -> LabelledVectors:
        """The eval set's vectors (from the cache when it holds them; stored there after a read)."""
        self._require_eval()
        if self._evaluation is None:
            from selection.inputs.load import load_vectors
            from selection.scoring import cache

            desc = f"{self.label} eval set".strip() if self.label else "loading the eval set"
            self._evaluation = load_vectors(
                self.evaluation_ids, self.paths["eval_embeddings_dir"], class_names=self.class_names, desc=desc
            )
            cache.store_eval_set(self._cache_dir, self._eval_key, self.evaluation_ids, self._evaluation)
        return self._evaluation

    def load(self) -> Experiment:
        """Read every vector now (pool and eval set) and check them as ``select`` and ``evaluate`` will."""
        dim = self.pool.matrix.shape[1]
        if self.evaluation_ids is not None and self.evaluation.matrix.shape[1] != dim:
            raise BadInputError(
                f"{self.paths['eval_embeddings_dir']}: vectors are {self.evaluation.matrix.shape[1]} long, the pool's "
                f"{dim}; expected one length"
            )
        return self

    def _require_eval(self) -> None:
        if self.evaluation_ids is None:
            raise BadInputError(
                f"{self.paths['eval_file']}: this experiment was loaded with with_eval=False (selection never "
                "reads evaluation data); load it with its eval set to check or score"
            )

    def check(
        self,
        train_set: str | Path | dict,
        *,
        limit: int | None = None,
        warnings: list | None = None,
        follow_links: bool = True,
    ) -> dict:
        """A ``train.json`` (a path, a dict or a ``TrainingSet``) checked exactly as ``evaluate`` checks it.

        Parameters
        ----------
        train_set : str, Path, dict or TrainingSet
        limit : int, optional
            Most clips allowed; default the config's ``train_set_size_limit``.
        warnings : list, optional
            Receives the warnings (classes left empty); default they are logged as ``evaluate`` logs them.
        follow_links : bool, default=True
            False refuses a path that is a symbolic link (the leaderboard reads strangers' folders).

        Returns
        -------
        dict
            ``{"targets": {word: [ids]}, "nontargets": [ids]}``, normalized.

        Raises
        ------
        BadInputError
            The same one-line errors as ``evaluate``: unknown IDs, eval clips, over the limit, ...
            On an experiment loaded with ``with_eval=False`` the check is against the allowed pool
            alone (an eval clip is then reported as not in the allowed pool).
        """
        checked, found, _, _ = self._checked(train_set, limit, follow_links)
        _report(found, warnings)
        return checked

    def _checked(
        self, train_set, limit: int | None, follow_links: bool
    ) -> tuple[dict, list[str], str | None, str | None]:
        """(checked selection, warnings, file or None, SHA-256 of its bytes or None); a file is read once."""
        import hashlib

        from selection.inputs.documents import MAX_TRAIN_FILE_BYTES, parse_json, read_bytes
        from selection.inputs.validation import check_train_set

        limit = self.config["train_set_size_limit"] if limit is None else limit
        file = sha = None
        if isinstance(train_set, (str, Path)):
            file = str(train_set)
            data = read_bytes(train_set, max_bytes=MAX_TRAIN_FILE_BYTES, follow_links=follow_links)
            sha, document = hashlib.sha256(data).hexdigest(), parse_json(data, name=file)
        else:
            document = _as_document(train_set)
        checked, found = check_train_set(
            document, file=file or "train set", allowed=self.allowed, limit=limit, eval_set=self.evaluation_ids
        )
        return checked, found, file, sha

    def score(
        self,
        train_set: str | Path | dict,
        *,
        metric: str | None = None,
        seeds: list[int] | None = None,
        limit: int | None = None,
        n_jobs: int = -1,
        warnings: list | None = None,
        follow_links: bool = True,
        keep_predictions: bool = False,
    ) -> Results:
        """``eval.py``'s results for ``train_set``: checked, then scored by the frozen classifier.

        Parameters
        ----------
        train_set : str, Path, dict or TrainingSet
        metric : {'macro_f1', 'balanced_accuracy'}, optional
            Default the config's.
        seeds : list of int, optional
            Evaluation seeds; default the config's ``eval_random_seeds``.
        limit : int, optional
            Most clips allowed; default the config's ``train_set_size_limit``.
        n_jobs : int, default=-1
            Threads for the seeds (-1: every core); the results do not depend on it.
        warnings, follow_links : optional
            As in :meth:`check`.
        keep_predictions : bool, default=False
            Also keep every seed's predicted class ids as ``results.predictions``, an int8 array of
            shape (n_seeds, n_eval) in the eval set's row order (not part of the JSON document).

        Returns
        -------
        Results
            Equal to the results JSON ``eval.py`` writes for the same file (``seconds`` aside).
        """
        from selection.inputs.errors import BadInputError
        from selection.inputs.validation import check_config, check_n_jobs, check_positive_int
        from selection.scoring.evaluation import evaluate_selection

        started = time.perf_counter()
        n_jobs = check_n_jobs(n_jobs, file="score()", key="n_jobs")
        if limit is not None:
            limit = check_positive_int(limit, file="score()", key="limit")
        if seeds is not None and (isinstance(seeds, (str, bytes)) or not len(seeds)):
            raise BadInputError(f"score(): seeds: {seeds!r}; expected a non-empty list of integers")
        self._require_eval()
        config = self.config
        if metric is not None or seeds is not None:
            config = check_config(
                {
                    **config,
                    "metric": config["metric"] if metric is None else metric,
                    "eval_random_seeds": config["eval_random_seeds"] if seeds is None else list(seeds),
                },
                file="score()",
            )
        limit = config["train_set_size_limit"] if limit is None else limit
        checked, found, file, sha = self._checked(train_set, limit, follow_links)
        _report(found, warnings)
        evaluation = self.evaluation
        train = self._train_vectors(checked, dim=evaluation.matrix.shape[1])
        predictions: list = []
        results = evaluate_selection(
            train,
            evaluation,
            seeds=config["eval_random_seeds"],
            metric=config["metric"],
            class_names=self.class_names,
            n_jobs=n_jobs,
            predictions_out=predictions if keep_predictions else None,
        )
        results.update(
            n_train=len(train.ids),
            n_eval=len(evaluation.ids),
            train_set_size_limit=limit,
            train_file=file,
            provenance=self._provenance(sha, config),
            seconds=round(time.perf_counter() - started, 3),
        )
        scored = Results(results)
        if keep_predictions:
            import numpy as np

            scored.predictions = np.stack(predictions).astype(np.int8)
        return scored

    def _provenance(self, train_file_sha256: str | None, config: dict) -> dict:
        from selection.scoring.provenance import provenance

        return provenance(
            metric=config["metric"],
            seeds=config["eval_random_seeds"],
            train_file_sha256=train_file_sha256,
            eval_set=self.eval_set_identity,
        )

    @property
    def eval_set_identity(self) -> str:
        """The eval set's content identity (:func:`selection.scoring.provenance.eval_set_identity`)."""
        from selection.scoring.provenance import eval_set_identity

        return eval_set_identity(self.paths["eval_file"], self.paths["eval_embeddings_dir"])

    @property
    def evaluation_labels(self):
        """The eval set's class ids in row order, without reading its vectors when they are not loaded yet."""
        from selection.inputs.load import labels_in_order

        self._require_eval()
        if self._evaluation is not None:
            return self._evaluation.labels
        return labels_in_order(self.evaluation_ids, self.class_names)

    def _train_vectors(self, train_set: dict, *, dim: int) -> LabelledVectors:
        """The selection's vectors in ``eval.py``'s row order: from the loaded pool, or only the picks from parquet."""
        from selection.inputs.load import LabelledVectors, load_vectors

        if self._pool is None:
            return load_vectors(
                train_set,
                self.paths["train_embeddings_dir"],
                class_names=self.class_names,
                desc="loading the selection",
                dim=dim,
            )
        rows = selection_rows(train_set, self._pool)
        pool = self._pool
        return LabelledVectors(pool.matrix[rows], pool.labels[rows], [pool.ids[row] for row in rows])

    def select(
        self,
        algorithm: str | type | None = None,
        size: int | None = None,
        *,
        config: dict | None = None,
        audio_dir: str | Path | None = None,
    ) -> Selection:
        """Run a selection algorithm on the allowed pool as ``select`` runs it, and check what it returns.

        Parameters
        ----------
        algorithm : str or TrainingSetSelection subclass, optional
            A shipped name (``random``, ``cross_validation``, ``cleanlab``, ``clean_coverage``),
            ``module:Class``, or a class (one defined in a notebook, say); default the config's.
        size : int, optional
            Most clips to pick; default the config's ``train_set_size_limit``.
        config : dict, optional
            Keys laid over the experiment's config (the algorithm's own settings, a seed).
        audio_dir : str or Path, optional
            Folder of 16 kHz wavs at ``<audio_dir>/<clip_id>``, handed to the algorithm as each clip's ``audio``.

        Returns
        -------
        Selection
            The checked selection (a dict) with ``algorithm``, ``seconds`` and ``warnings``.
        """
        from selection.inputs.errors import BadInputError
        from selection.inputs.load import embeddings_dict, load_audio
        from selection.inputs.validation import check_config, check_positive_int
        from selection.plugins import algorithm_class, run_algorithm

        if config is not None and not isinstance(config, dict):
            raise BadInputError(f"select(): config: expected a dict of settings; got {type(config).__name__}")
        merged = {**self.config, **(config or {})}
        if size is not None:
            merged["train_set_size_limit"] = check_positive_int(size, file="select()", key="size")
        chosen = algorithm_class(algorithm, merged, file=self.config_file)
        merged["selection_algorithm_module"] = chosen.__module__
        merged["selection_algorithm_class"] = chosen.__qualname__
        merged = check_config(merged, file="select()")
        embeddings = self.embeddings
        if audio_dir is not None:
            embeddings = embeddings_dict(self.allowed, self.pool, load_audio(self.pool.ids, audio_dir))
        train_set, found, seconds = run_algorithm(
            chosen,
            allowed_embeddings=embeddings,
            allowed=self.allowed,
            train_size=merged["train_set_size_limit"],
            config=merged,
            audio_flag=audio_dir is not None,
        )
        name = f"{chosen.__module__}.{chosen.__qualname__}"
        return Selection(train_set, algorithm=name, seconds=seconds, warnings=found)

    def explain(
        self,
        train_set: str | Path | dict,
        *,
        against: str = "pool",
        repair: int = 0,
        limit: int | None = None,
        nontarget_share: float = 0.96,
        n_jobs: int = -1,
        audio_dir: str | Path | None = None,
    ) -> Report:
        """The per-clip report of a selection (what ``python -m selection.explain`` writes as ``explain.json``).

        Parameters
        ----------
        train_set : str, Path, dict or TrainingSet
            Checked as :meth:`check` checks it.
        against : {'pool', 'eval'}, default='pool'
            ``pool`` estimates on a held-out part of the allowed pool and reads no eval data
            (:mod:`selection.diagnosis.estimate`); ``eval`` scores on the eval set (this experiment
            must then be loaded with it).
        repair : int, default=0
            Swap up to this many suspect or redundant picks for better unpicked pool clips;
            the result is ``report.repaired`` (a selection, not written).
        limit : int, optional
            Most clips allowed; default the config's ``train_set_size_limit``.
        nontarget_share : float, default=0.96
            ``pool`` mode: the nontargets' weight among the held-out clips, the eval set's share
            (0.96 in the benchmark's construction; for an ``embed`` experiment, the pool's own share).
        n_jobs : int, default=-1
            Threads for the scorings; the figures do not depend on it.
        audio_dir : str or Path, optional
            The pool's recordings, at ``<audio_dir>/<clip id>``: each pick's length of speech against its
            word's is further evidence of a badly cut clip (``speech_seconds``, ``speech_length``).

        Returns
        -------
        Report
            The report document: ``estimate``, ``clips`` (most harmful first, each with its
            ``effect``, evidence, ``verdict`` and ``reasons``), ``words``, ``without_suspects``,
            ``repair`` and ``map``.
        """
        from selection.diagnosis.report import explain_selection
        from selection.inputs.validation import check_fraction

        if against not in ("pool", "eval"):
            raise BadInputError(f"explain(): against: unknown {against!r}; expected pool or eval")
        if against == "eval":
            self._require_eval()
        nontarget_share = check_fraction(nontarget_share, file="explain()", key="nontarget_share")
        checked = self.check(train_set, limit=limit)
        document, extras = explain_selection(
            self, checked, against=against, repair_limit=repair, nontarget_share=nontarget_share, n_jobs=n_jobs,
            audio_dir=None if audio_dir is None else str(audio_dir),
        )  # fmt: skip
        report = Report(document)
        report.repaired = extras["repaired"]
        return report

    def checked_document(self, train_set: dict, path: str | Path, *, limit: int | None = None) -> dict:
        """``train_set`` checked against the pool (and the eval set, if loaded) as :meth:`write` checks it."""
        from selection.inputs.validation import check_train_set

        limit = self.config["train_set_size_limit"] if limit is None else limit
        checked, _ = check_train_set(
            _as_document(train_set), file=str(path), allowed=self.allowed, limit=limit, eval_set=self.evaluation_ids
        )
        return checked

    def write(self, train_set: dict, path: str | Path, *, limit: int | None = None) -> Path:
        """Check ``train_set`` against the pool (and the eval set, if loaded) and write it to ``path`` atomically."""
        from selection.inputs.errors import BadInputError
        from selection.inputs.validation import check_train_set
        from selection.inputs.write import check_output_file, write_json_atomic

        inputs = {name: self.paths.get(name) for name in ("allowed_training_set", "eval_file")}
        inputs["config_file"] = None if self.config_file == "config" else self.config_file
        if Path(path).is_symlink():
            raise BadInputError(f"{path}: write(): is a symbolic link; expected a regular file path to write")
        check_output_file(path, inputs=inputs, flag="write()")
        limit = self.config["train_set_size_limit"] if limit is None else limit
        checked, _ = check_train_set(
            _as_document(train_set), file=str(path), allowed=self.allowed, limit=limit, eval_set=self.evaluation_ids
        )
        write_json_atomic(path, checked)
        return Path(path)


def _report(found: list[str], warnings: list | None) -> None:
    """Hand a check's warnings to ``warnings`` if given, else log them as ``evaluate`` does."""
    if warnings is not None:
        warnings.extend(found)
    else:
        for warning in found:
            log.warning("warning: %s", warning)


def _as_document(train_set: Any) -> Any:
    """A ``TrainingSet`` as its dict form; anything else as it is (the checks say what is wrong)."""
    if hasattr(train_set, "targets") and hasattr(train_set, "nontargets") and not isinstance(train_set, dict):
        return {"targets": train_set.targets, "nontargets": train_set.nontargets}
    return train_set


def load_experiment(
    folder: str | Path | None = None,
    *,
    language: str | None = None,
    data_dir: str | Path | None = None,
    config: str | Path | dict | None = None,
    cache_dir: str | None = None,
    with_eval: bool = True,
    label: str = "",
    allowed_training_set: str | Path | None = None,
    train_embeddings_dir: str | Path | None = None,
    eval_embeddings_dir: str | Path | None = None,
    eval_file: str | Path | None = None,
) -> Experiment:
    """Read and check an experiment exactly as ``evaluate`` does, through the same cache.

    Parameters
    ----------
    folder : str or Path, optional
        A folder holding ``train_embeddings/``, ``eval_embeddings/``, ``allowed_training_set.yaml``
        and ``eval.yaml``; default ``workspace/`` (the quick start's), or with ``language`` that
        language's experiment under ``data_dir``.
    language : str, optional
        ``en``, ``id``, ``pt`` (or a code of your own data): ``<data_dir>/dataperf_<language>_data/``.
    data_dir : str or Path, optional
        Where the languages' experiments are; default ``workspace/data``.
    config : str, Path or dict, optional
        The harness config (a YAML path or a dict); default the harness's defaults.
    cache_dir : str, optional
        ``evaluate``'s cache (:mod:`selection.scoring.cache`); default ``$DATAPERF_CACHE_DIR``, else
        ``~/.cache/dataperf-speech``; ``"off"`` reads the source files every time.
    with_eval : bool, default=True
        False loads the allowed pool only and never opens the eval files (what selection may see).
    label : str, default=''
        Prefix of the progress lines on stderr.
    allowed_training_set, train_embeddings_dir, eval_embeddings_dir, eval_file : str or Path, optional
        Single paths instead of ``folder``'s (``eval.py``'s flags).

    Returns
    -------
    Experiment

    Raises
    ------
    BadInputError
        A missing or malformed file, with the one-line message ``evaluate`` prints.

    Examples
    --------
    >>> experiment = load_experiment(folder, config={"eval_random_seeds": [5, 69, 98]})
    >>> len(experiment.class_names) > 1
    True
    """
    from selection.inputs.load import DOWNLOAD_HINT, load_config, load_sample_ids, require_inputs
    from selection.inputs.validation import check_config, check_same_targets
    from selection.scoring import cache

    if folder is None:
        if language is not None:
            folder = find_experiment(data_dir if data_dir is not None else DEFAULT_WORKSPACE / "data", language)
        else:
            folder = DEFAULT_WORKSPACE
    folder = Path(folder)
    given = {
        "allowed_training_set": allowed_training_set,
        "train_embeddings_dir": train_embeddings_dir,
        "eval_embeddings_dir": eval_embeddings_dir,
        "eval_file": eval_file,
    }
    defaults = {
        "allowed_training_set": folder / "allowed_training_set.yaml",
        "train_embeddings_dir": folder / "train_embeddings",
        "eval_embeddings_dir": folder / "eval_embeddings",
        "eval_file": folder / "eval.yaml",
    }
    paths = {name: Path(given[name]) if given[name] is not None else defaults[name] for name in PATH_NAMES}
    needed = PATH_NAMES if with_eval else PATH_NAMES[:2]
    require_inputs({f"--{name}": paths[name] for name in needed}, hint=DOWNLOAD_HINT)
    config_file = "config" if config is None or isinstance(config, dict) else str(config)
    settings = load_config(config) if config_file != "config" else check_config(config or {}, file="config")
    cache_dir = cache.claim_cache_dir(cache.resolve_cache_dir(cache_dir))
    allowed = cache.sample_ids(paths["allowed_training_set"], cache_dir)
    if not with_eval:
        return Experiment(
            paths, config=settings, allowed=allowed, evaluation_ids=None, cache_dir=cache_dir, label=label,
            config_file=config_file,
        )  # fmt: skip
    class_names = class_names_of(allowed)
    eval_key = cache.eval_set_key(paths["eval_file"], paths["eval_embeddings_dir"], class_names)
    cached = cache.read_eval_set(cache_dir, eval_key, len(class_names))
    evaluation_ids = cached[0] if cached else load_sample_ids(paths["eval_file"])
    check_same_targets(
        allowed, evaluation_ids, allowed_file=str(paths["allowed_training_set"]), eval_file=str(paths["eval_file"])
    )
    return Experiment(
        paths,
        config=settings,
        allowed=allowed,
        evaluation_ids=evaluation_ids,
        cache_dir=cache_dir,
        label=label,
        config_file=config_file,
        cached_evaluation=cached[1] if cached else None,
        eval_key=eval_key,
    )
