"""A transfer predictor: gradient-boosted trees (LightGBM) over :mod:`.features`, fitted on
measured transfer, saved as one JSON file.

Two objectives, as in LangRank (Lin et al., ACL 2019), which ranked with LambdaRank:

- ``regression`` (the default): least squares on the score minus the target's mean over the
  measured sets, so a target's difficulty is not what is learnt, only which sets do better on it;
- ``lambdarank``: LightGBM's LambdaRank with one query per target language and graded
  relevance (the measured scores of a target cut into five quantile grades).

BENCHMARKS.md ("Learning which sources transfer") measures both on the synthetic study; with a
dozen measured sets, regression keeps the size of the differences that grades throw away.

The file holds the model trained on every measured row, the models of the cross-validation
folds (their spread is the uncertainty ``--suggest`` uses), the feature names and the options
the features were computed with, so a loaded predictor computes the same features. Each model's
text carries its SHA-256: a file edited by hand is refused, not half-read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it.arguments import flag_argument, path_argument, paths_argument
from mslt_it.errors import MsltError, allowed, clipped
from mslt_it.files import control_character, read_user_text
from mslt_it.io import atomic_write_text, is_sealed, seal
from mslt_it.outputs import (
    check_file_outside_outputs,
    check_not_an_input,
    check_path_names,
    check_writable,
    located,
)
from mslt_it.paths import check_folder_text
from mslt_it.selection.criteria import SelectionOptions
from mslt_it.selection.features import feature_names
from mslt_it.selection.measured import MAX_ABS_SCORE, MeasuredTransfer
from mslt_it.selection.model_text import checked_model_text

FORMAT = "mslt-it transfer predictor"
VERSION = 1
OBJECTIVES = ("regression", "lambdarank")
MAX_PREDICTOR_BYTES = 64_000_000
GRADES = 5
"""Relevance grades per target for LambdaRank (quantiles of the measured scores)."""

FEATURE_OPTIONS = ("size_model", "l2v_variant", "tokenizer", "data", "split", "sample")
"""The :class:`SelectionOptions` fields features depend on; a predictor keeps and reuses them."""


def lgb_params(objective: str, seed: int, rows: int) -> dict[str, Any]:
    """LightGBM settings for tens to hundreds of rows: small trees, shrinkage, no threads.

    ``min_data_in_leaf`` scales with the data (LightGBM's default of 20 would leave a dozen sets
    with a single leaf); one thread and ``deterministic`` make a fit reproducible.
    """
    params: dict[str, Any] = {
        "objective": objective,
        "learning_rate": 0.05,
        "num_leaves": 7,
        "max_depth": 3,
        "min_data_in_leaf": max(3, min(20, rows // 10)),
        "min_data_in_bin": 1,
        "feature_fraction": 0.8,
        "feature_fraction_seed": seed,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "bagging_seed": seed,
        "lambda_l2": 1.0,
        "seed": seed,
        "deterministic": True,
        "num_threads": 1,
        "verbose": -1,
    }
    if objective == "lambdarank":
        params["label_gain"] = [float(2**g - 1) for g in range(GRADES)]
        params["lambdarank_truncation_level"] = 10
    return params


ROUNDS = 200

_QUIET = logging.getLogger("mslt_it.lightgbm")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def _lightgbm() -> Any:
    """LightGBM (imported when a predictor is fitted or read: it takes a second to import), its
    native library's messages routed to a silent logger: a refused model file is one line."""
    import lightgbm

    lightgbm.register_logger(_QUIET)
    return lightgbm


def _centred(rows: MeasuredTransfer) -> np.ndarray:
    """Each score minus its target's mean over the measured sets."""
    by_target: dict[str, list[float]] = {}
    for row in rows.rows:
        by_target.setdefault(row.target, []).append(row.score)
    means = {t: float(np.mean(v)) for t, v in by_target.items()}
    return np.array([row.score - means[row.target] for row in rows.rows])


def _grades(rows: MeasuredTransfer) -> tuple[np.ndarray, list[int], list[int]]:
    """Integer grades per target and the row order and group sizes LambdaRank wants."""
    order = sorted(range(len(rows.rows)), key=lambda i: (rows.rows[i].target, i))
    labels = np.zeros(len(rows.rows), dtype=int)
    groups: list[int] = []
    current: str | None = None
    for i in order:
        if rows.rows[i].target != current:
            current = rows.rows[i].target
            groups.append(0)
        groups[-1] += 1
    for target in {row.target for row in rows.rows}:
        members = [i for i, row in enumerate(rows.rows) if row.target == target]
        scores = np.array([rows.rows[i].score for i in members])
        # the share of the target's rows strictly below: equal scores share a grade (a stable
        # argsort graded a row's own copy, with its single-source columns hidden, above it)
        below = np.searchsorted(np.sort(scores), scores, side="left")
        for i, b in zip(members, below, strict=True):
            labels[i] = min(GRADES - 1, int(GRADES * b / max(len(members), 1)))
    return labels, order, groups


def train_booster(
    features: np.ndarray, rows: MeasuredTransfer, names: Sequence[str], objective: str, seed: int
) -> Any:
    """One LightGBM booster on ``features`` (one row per measured row)."""
    lgb = _lightgbm()

    params = lgb_params(objective, seed, len(rows.rows))
    if objective == "lambdarank":
        labels, order, groups = _grades(rows)
        data = lgb.Dataset(
            features[order], labels[order], group=groups, feature_name=list(_safe(names))
        )
    else:
        data = lgb.Dataset(features, _centred(rows), feature_name=list(_safe(names)))
    return lgb.train(params, data, num_boost_round=ROUNDS)


def _safe(names: Sequence[str]) -> list[str]:
    """LightGBM refuses some characters in feature names; the file keeps the readable ones."""
    return [f"f{i}" for i, _ in enumerate(names)]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class TransferPredictor:
    """A fitted predictor: the full model, the fold models, and what its features mean."""

    task: str
    k: int
    objective: str
    feature_names: list[str]
    options: dict[str, Any]
    model: Any  # lightgbm.Booster trained on every measured row
    fold_models: list[Any]
    trained_on: dict[str, Any]  # sets, targets, rows, file
    validation: dict[str, Any] = field(default_factory=dict)
    singles: dict[str, dict[str, float]] = field(default_factory=dict)
    """Measured single-source scores the features read (``{source: {target: score}}``); kept in
    the file so that ranking computes the same features as fitting did."""
    identities: dict[str, Any] = field(default_factory=dict)
    """What each option that names files (a tokenizer, a folder of coverage text) held when the
    predictor was fitted (:func:`mslt_it.identity.model_identity`): a path is not an identity,
    so a tokenizer retrained in the same folder is noticed, and the same one elsewhere is not
    refused. Files saved before this field hold none, and are not checked."""
    where: str = "--predictor"
    """How messages name the predictor: the option and the file it was read from (not saved)."""

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predicted score (relative to a target's average set) of each row."""
        return np.asarray(self.model.predict(features), dtype=float)

    def fold_predictions(self, features: np.ndarray) -> np.ndarray:
        """Each fold model's predictions, ``[folds, rows]``."""
        if not self.fold_models:
            return self.predict(features)[None, :]
        return np.stack([np.asarray(m.predict(features), dtype=float) for m in self.fold_models])

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """SHAP values of each row (LightGBM's TreeSHAP, ``pred_contrib``), ``[rows, features]``;
        with the expected value (dropped here) they sum to the prediction."""
        values = np.asarray(self.model.predict(features, pred_contrib=True), dtype=float)
        return values[:, : len(self.feature_names)]

    def to_document(self) -> dict[str, Any]:
        """The file's content, sealed (:func:`mslt_it.io.seal`): an edited task, k or feature
        list is refused like an edited model."""
        models = [self.model.model_to_string(), *(m.model_to_string() for m in self.fold_models)]
        return seal(
            {
                "format": FORMAT,
                "version": VERSION,
                "task": self.task,
                "k": self.k,
                "objective": self.objective,
                "features": self.feature_names,
                "options": self.options,
                "trained_on": self.trained_on,
                "validation": self.validation,
                "singles": self.singles,
                "identities": self.identities,
                "models": [{"sha256": _digest(text), "text": text} for text in models],
            }
        )

    def save(
        self, path: str | Path, *, overwrite: bool = False, inputs: Sequence[Path] = ()
    ) -> Path:
        """Write the predictor to ``path`` atomically.

        An existing file is replaced only with ``overwrite`` and only if it is a predictor
        mslt-it wrote (its own format and digests); an input is never written to.
        """
        path = path_argument(path, "path")
        flag_argument(overwrite, "overwrite")  # "no" is a true value
        inputs = paths_argument(inputs, "inputs")  # a string was read one character at a time
        try:
            return self._save(path, overwrite, inputs)
        except OSError as error:
            raise MsltError(f"--save: cannot write {str(path)!r}: {error.strerror}") from None

    def _save(self, path: Path, overwrite: bool, inputs: Sequence[Path]) -> Path:
        path = check_save_path(path, overwrite, inputs)
        text = json.dumps(self.to_document(), ensure_ascii=False) + "\n"
        try:
            atomic_write_text(path, text, replace=overwrite)
        except FileExistsError:  # another process saved there since the check
            raise MsltError(
                f"--save: {str(path)!r} exists; pass --overwrite to replace it"
            ) from None
        return path


RESULTS_DIGEST_BYTES = 256_000_000
"""Results files up to this size are digested when fitted on, so a later edit is noticed."""


def results_identity(path: str | Path, sha256: str) -> dict[str, str]:
    """What a predictor records of the results file it was fitted on: where it is and the
    SHA-256 of the bytes it read (a path is not an identity: the file may be edited and fitted
    again)."""
    return {"file_path": str(Path(path).resolve()), "file_sha256": sha256}


def validation_note(predictor: TransferPredictor) -> str | None:
    """What the predictor's cross-validation said when it was fitted, recalled where it ranks:
    a fit with no skill, or behind a ranking that needs none, ranked sets without a word once
    ``--fit``'s table had scrolled away. None for files saved before the verdict was kept, or
    one that is not plain text (a file from elsewhere could put escapes on the terminal)."""
    verdict = predictor.validation.get("verdict")
    if not isinstance(verdict, str) or not verdict or len(verdict) > 1000:
        return None
    if control_character(verdict) is not None:
        return None
    mode = predictor.validation.get("mode")
    held_out = {"sets": "source sets", "targets": "target languages"}.get(str(mode), "folds")
    return f"when fitted, cross-validated on held-out {held_out}: {verdict[0].lower()}{verdict[1:]}"


def results_changed(predictor: TransferPredictor) -> str | None:
    """A note when the results file the predictor was fitted on is still there and holds other
    results now: its rankings and suggestions are of the old ones. Moved or removed, the file
    is not needed (the predictor holds what it learnt), so nothing is said."""
    path, recorded = (predictor.trained_on.get(k) for k in ("file_path", "file_sha256"))
    if not isinstance(path, str) or not isinstance(recorded, str):
        return None  # saved before these fields
    file = Path(path)
    try:
        info = file.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > RESULTS_DIGEST_BYTES:
            return None
        if hashlib.sha256(file.read_bytes()).hexdigest() == recorded:
            return None
    except OSError:
        return None
    return (
        f"{path} changed since this predictor was fitted on it: it ranks and suggests from the "
        "results it held then; --fit it again to use what it holds now"
    )


def check_save_path(path: Path, overwrite: bool, inputs: Sequence[Path] = ()) -> Path:
    """Refuse, before any work, a ``--save`` that would write an input, a file that is not a
    predictor, or an existing predictor without ``overwrite``; the file to write, where the
    system finds it."""
    check_folder_text(str(path), "--save")  # `~/p.json` quoted: a folder named ~ made here
    # where the system finds it: `x/../p.json` looked like no file there (an existing one was
    # replaced), and made a folder x
    path = located(path, "--save")
    try:
        _check_save_path(path, overwrite, inputs)
    except OSError as error:
        raise MsltError(f"--save: cannot write {str(path)!r}: {error.strerror}") from None
    return path


def _check_save_path(path: Path, overwrite: bool, inputs: Sequence[Path]) -> None:
    check_path_names(path, "--save")  # control characters, names past the file system's limit
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise MsltError(f"--save: {str(parent)!r} is not a folder")
    check_not_an_input(path, inputs, "--save", noun="file")  # nor inside a tokenizer's folder
    check_file_outside_outputs(path, "--save")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise MsltError(f"--save: {str(path)!r} exists and is not a regular file")
    check_writable(parent, "--save")  # before the fit, not after it
    if path.exists():
        if not overwrite:
            raise MsltError(f"--save: {str(path)!r} exists; pass --overwrite to replace it")
        try:
            read_document(path, "--save")  # only a predictor mslt-it wrote may be replaced
        except MsltError as error:
            why = str(error).partition(f"{path}: ")[2].split(";")[0] or "unreadable"
            raise MsltError(
                f"--save: {str(path)!r} is not a predictor mslt-it wrote, unchanged ({why}); "
                "--overwrite replaces only those: remove it yourself or choose another file"
            ) from None


OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "size_model": (str,), "l2v_variant": (str,), "tokenizer": (str, type(None)),
    "data": (str,), "split": (str,), "sample": (int,),
}  # fmt: skip
"""The type of each of :data:`FEATURE_OPTIONS` in a predictor file."""


def _check_options(options: dict[str, Any], where: str) -> None:
    """A predictor's feature options, typed and within what ``select`` allows (an edited and
    re-sealed file is still the user's input)."""
    for name, value in options.items():
        kinds = OPTION_TYPES[name]
        if not isinstance(value, kinds) or isinstance(value, bool) or value == "":
            wanted = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise MsltError(
                f"{where}: options.{name} is {clipped(value, 40)}; allowed: {wanted}, not empty"
            )
    try:
        SelectionOptions(**options)
    except MsltError as error:
        raise MsltError(f"{where}: options: {error}") from None


KIND_NAMES: dict[Any, str] = {
    int: "a whole number",
    str: "a text",
    list: "a list",
    dict: "a mapping",
}
"""How a predictor file's field kinds read in a message ("not a int" read as Python)."""


def _field(document: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = document.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise MsltError(
            f"{where}: field {name!r} is missing or not {KIND_NAMES.get(kind, 'of its kind')}"
        )
    return value


def read_document(path: str | Path, option: str) -> dict[str, Any]:
    """A predictor file's JSON, proven to be one mslt-it wrote and unchanged since (its format,
    version and seal); what it holds is checked by :func:`load_predictor`."""
    where = f"{option}: {path}"
    text = read_user_text(path, option, MAX_PREDICTOR_BYTES)
    try:  # a byte-order mark an editor added: Python's advice ("decode using utf-8-sig") was
        document = json.loads(text.removeprefix("\ufeff"))  # the user's only word of it
    except (ValueError, RecursionError) as error:  # not JSON, or a number too long to read
        raise MsltError(f"{where}: not a predictor file (not JSON: {str(error)[:160]})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise MsltError(f"{where}: not a predictor file (written by mslt-it select --fit --save)")
    if type(document.get("version")) is not int or document.get("version") != VERSION:
        raise MsltError(
            f"{where}: predictor version {document.get('version')!r}; allowed: {VERSION}"
        )
    if not is_sealed(document):
        raise MsltError(f"{where}: the file was changed after it was saved; fit it again")
    return document


def load_predictor(path: str | Path, *, option: str = "--predictor") -> TransferPredictor:
    """A predictor saved by :meth:`TransferPredictor.save`; anything else is a one-line error."""
    lgb = _lightgbm()

    path = path_argument(path, option)
    where = f"{option}: {path}"
    document = read_document(path, option)
    task = _field(document, "task", str, where)
    k = _field(document, "k", int, where)
    if k < 1:
        raise MsltError(f"{where}: field 'k' is {k}; allowed: a set size >= 1")
    objective = _field(document, "objective", str, where)
    if objective not in OBJECTIVES:
        raise MsltError(f"{where}: objective {objective!r}; allowed: {allowed(OBJECTIVES)}")
    names = _field(document, "features", list, where)
    options = _field(document, "options", dict, where)
    unknown = sorted(set(options) - set(FEATURE_OPTIONS))
    if unknown:
        raise MsltError(f"{where}: options {unknown[0]!r}; allowed: {allowed(FEATURE_OPTIONS)}")
    _check_options(options, where)
    singles = _singles(document, where)
    expected = feature_names(bool(options.get("tokenizer")), bool(singles))
    if names != expected:
        raise MsltError(
            f"{where}: its features are not the ones this mslt-it computes; fit it again"
        )
    trained_on = _field(document, "trained_on", dict, where)
    for key in ("sets", "targets"):
        values = trained_on.get(key)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise MsltError(f"{where}: field 'trained_on.{key}' is not a list of strings")
    sizes = sorted({len(s.split("+")) for s in trained_on["sets"]})
    if sizes and sizes != [k]:
        raise MsltError(
            f"{where}: field 'k' is {k}, but it was fitted on sets of {', '.join(map(str, sizes))}"
        )
    models = _field(document, "models", list, where)
    if not models:
        raise MsltError(f"{where}: field 'models' is empty")
    boosters = []
    for number, entry in enumerate(models):
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            raise MsltError(f"{where}: models[{number}] is not a model")
        if entry.get("sha256") != _digest(entry["text"]):
            raise MsltError(f"{where}: models[{number}] was changed after it was saved")
        try:
            text = checked_model_text(entry["text"], len(names), objective)
        except MsltError as error:
            raise MsltError(
                f"{where}: models[{number}] is not a LightGBM model as mslt-it writes it ({error})"
            ) from None
        try:
            booster = lgb.Booster(model_str=text)
        except lgb.basic.LightGBMError as error:
            raise MsltError(
                f"{where}: models[{number}] is not a LightGBM model ({error})"
            ) from None
        if booster.num_feature() != len(names):
            raise MsltError(
                f"{where}: models[{number}] has {booster.num_feature()} features, "
                f"the file names {len(names)}"
            )
        boosters.append(booster)
    return TransferPredictor(
        task,
        k,
        objective,
        [str(n) for n in names],
        options,
        boosters[0],
        boosters[1:],
        trained_on,
        document.get("validation") if isinstance(document.get("validation"), dict) else {},
        singles,
        _identities(document, where),
        where,
    )


def _identities(document: dict[str, Any], where: str) -> dict[str, Any]:
    """The file's option identities (absent in files saved before them): one per feature
    option, each a mapping of short strings."""
    value = document.get("identities", {})
    valid = isinstance(value, dict) and all(
        name in FEATURE_OPTIONS
        and isinstance(entry, dict)
        and all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in entry.items())
        for name, entry in value.items()
    )
    if not valid:
        raise MsltError(f"{where}: field 'identities' is not a table of option and content digest")
    return value


def _score(value: Any) -> float | None:
    """``value`` as a score a results file could hold, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return number if math.isfinite(number) and abs(number) <= MAX_ABS_SCORE else None


def _singles(document: dict[str, Any], where: str) -> dict[str, dict[str, float]]:
    """The file's measured single-source scores (absent in files without such runs), held to
    what ``--fit`` accepts from a results file."""
    value = document.get("singles", {})
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise MsltError(f"{where}: field 'singles' is not a table of source, target and score")
    out: dict[str, dict[str, float]] = {}
    for source, scores in value.items():
        out[source] = {}
        for target, score in scores.items():
            number = _score(score)
            if number is None:
                raise MsltError(
                    f"{where}: field 'singles': {source} alone on {target} is "
                    f"{str(score)[:40]!r}; allowed: a finite number within ±{MAX_ABS_SCORE:g}"
                )
            out[source][target] = number
    return out
