"""Held-out rows per language: the per-language held-out loss at ``eval_steps``.

For each source language, and each target language of ``train.eval_langs``, a few rows of the
dataset's task and split that the build did *not* use (by row id: the dataset keeps every row's
id), rendered with the dataset's own template and chat columns. The trainer evaluates them as one
held-out set and :mod:`.curves` splits its losses by language, so a source that the model
memorises (training loss falling, held-out flat) and a target that moves with it both show.
"""

from __future__ import annotations

from typing import Any

from mslt_it.built_data import built_from, built_template
from mslt_it.config import DataConfig
from mslt_it.corpus import open_corpus_split
from mslt_it.data import render_language
from mslt_it.errors import MsltError, clipped
from mslt_it.identity import file_sha256
from mslt_it.tasks import check_languages, get_task
from mslt_it.yamlfiles import validate_section

SCAN = 256  # rows looked at per read while searching for unused ones


def heldout_dataset(
    manifest: dict[str, Any],
    used: Any,
    eval_langs: list[str],
    per_language: int,
) -> tuple[Any, dict[str, int]]:
    """The held-out rows (a ``datasets.Dataset``, or None) and how many each language got.

    ``used`` is the training dataset (its ``id`` and ``lang`` columns). A language of
    ``eval_langs`` with no unused row left is an error; a source without one is only skipped
    (a build may take every row of a small source).
    """
    if per_language == 0:
        if eval_langs:
            raise MsltError("train.heldout_rows: 0 leaves train.eval_langs no rows; set it >= 1")
        return None, {}
    import datasets

    task = get_task(str(manifest.get("task")))
    config = validate_section(DataConfig, manifest.get("config") or {}, "dataset manifest")
    if task.kind == "instructions":
        if eval_langs:
            raise MsltError(
                f"train.eval_langs: {task.name} is an instruction corpus, whose rows are cleaned "
                "and deduplicated as they are sampled; held-out rows are for task datasets"
            )
        return None, {}
    check_languages(task, list(eval_langs), field="train.eval_langs")
    template = built_template(manifest, "train.dataset")
    for lang in eval_langs:
        template.check_language(lang)
    taken: dict[str, set[str]] = {}
    for row_id, lang in zip(used["id"], used["lang"], strict=True):
        taken.setdefault(lang, set()).add(str(row_id))
    examples: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    built, built_hub = recorded(manifest, "files_sha256"), recorded(manifest, "hub_fingerprints")
    for lang in dict.fromkeys([*manifest.get("sources", []), *eval_langs]):
        split = open_corpus_split(task, lang, config.split, built_from(manifest))
        check_unchanged(split, built.get(lang))
        check_same_revision(split, built_hub.get(lang))
        rows = unused_rows(split, taken.get(lang, set()), per_language)
        if not rows:
            if lang in eval_langs:
                raise MsltError(
                    f"train.eval_langs: {lang} has no {task.name}/{config.split} rows left after "
                    f"the build (it used all {len(split)}); held-out rows must be unseen"
                )
            continue
        counts[lang] = len(rows)
        examples += render_language(config, template, lang, rows)
    if not examples:
        return None, {}
    return datasets.Dataset.from_list(examples), counts


def recorded(manifest: dict[str, Any], key: str) -> dict[str, str]:
    """The manifest's ``data.<key>``, a digest per language (empty if the build recorded none).
    A hand-edited record of another shape is refused, not read as "nothing to check"."""
    data = manifest.get("data")
    value = data.get(key, {}) if isinstance(data, dict) else {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise MsltError(
            f"train.dataset: the manifest's data.{key} is {clipped(value, 60)}, not a digest per "
            "language; build the dataset again"
        )
    return value


def check_unchanged(split: Any, built: str | None) -> None:
    """The file a source's rows came from must be as the build read it: rows are named by
    their place in it, so in an edited file the ids the build did not use can name rows it
    trained on, and a "held-out" loss would be measured on them."""
    path = getattr(split, "path", None)
    if built is None or path is None or (split.sha256 or file_sha256(path)) == built:
        return
    raise MsltError(
        f"train.dataset: {path} changed since the dataset was built from it, so the held-out "
        "rows (those the build did not use) cannot be told from the trained ones; build the "
        "dataset again"
    )


def check_same_revision(split: Any, built: str | None) -> None:
    """A Hub split must be the revision the build read, for the reason a local file must be
    unchanged: its row ids are places in it."""
    found = getattr(split, "hub_fingerprint", None)
    if built is None or found is None or found == built:
        return
    raise MsltError(
        f"train.dataset: {split.origin} is not the revision the dataset was built from (its "
        "fingerprint changed), so the held-out rows (those the build did not use) cannot be "
        "told from the trained ones; build the dataset again"
    )


def unused_rows(split: Any, used: set[str], wanted: int) -> list[dict[str, Any]]:
    """The first ``wanted`` rows of ``split`` whose ids are not in ``used`` (in split order)."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(split), SCAN):
        for row in split.rows(list(range(start, min(start + SCAN, len(split))))):
            if str(row["id"]) not in used:
                found.append(row)
                if len(found) == wanted:
                    return found
    return found
