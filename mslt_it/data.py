"""Build a multilingual instruction dataset and its manifest (``mslt-it build``).

The steps read top to bottom in :func:`build_dataset`: check the inputs, open each source
language's split, decide how many rows each language gets, sample them with the seed, render them
through the prompt template, shuffle the mixture, and write the dataset with ``manifest.json``
into place atomically. The manifest says what went in and what came out, down to a content
fingerprint: the same inputs give the same fingerprint and the same bytes.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import math
import platform
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it import __version__
from mslt_it.arguments import checked_config, expect, flag_argument, path_argument
from mslt_it.config import DataConfig, validate_section
from mslt_it.corpus import open_corpus_split, render_corpus
from mslt_it.errors import MsltError, clipped, field_named
from mslt_it.examples import language_rng, to_chat_columns
from mslt_it.files import MAX_JSON_BYTES, read_user_text, resolved_path
from mslt_it.identity import file_sha256
from mslt_it.io import atomic_write_json
from mslt_it.named_models import resolve_model_name
from mslt_it.outputs import claim_output, replacing_output
from mslt_it.paths import NAMED_DATA
from mslt_it.progress import progress_bar
from mslt_it.prompts import PromptTemplate, RenderedExample, get_template, survey_templates
from mslt_it.tasks import (
    check_languages,
    default_split,
    default_template,
    get_task,
    tasks_dirs,
)
from mslt_it.tasks.definitions import user_definition
from mslt_it.tasks.sources import SplitRows
from mslt_it.terminal import STDERR
from mslt_it.tokens import TOKENIZER_FIELD, TokenCounter

MANIFEST = "manifest.json"
TRACKED_LIBRARIES = ("datasets", "jinja2", "pyarrow", "tokenizers", "transformers", "torch", "trl")


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_dataset` wrote."""

    path: Path
    manifest: dict[str, Any]


def with_defaults(config: DataConfig) -> DataConfig:
    """``config`` with the task registry's defaults filled in: the task's default template
    (``as-is`` for a corpus, ``en-instruct`` for a benchmark) and each mixture part's split.

    The schema only checks shape; names are resolved here, where the settings are used, since
    the registry may learn a recipe's own tasks (``tasks_dir``) after its sections are read.
    """
    update: dict[str, Any] = {}
    if config.template is None:
        update["template"] = default_template(config.task)
    if any(part.split is None for part in config.mixture):
        update["mixture"] = []
        for number, part in enumerate(config.mixture):
            with field_named(f"data.mixture.{number}.split", "split"):
                split = part.split or default_split(part.task)
            update["mixture"].append(part.model_copy(update={"split": split}))
    return config.model_copy(update=update) if update else config


def build_dataset(config: DataConfig, out: str | Path, overwrite: bool = False) -> BuildResult:
    """Build the instruction dataset described by ``config`` into the directory ``out``.

    A setting read only beside another (``temperature`` without ``budget_mode="temperature"``,
    ``max_length`` without ``tokenizer``, ``script_mismatch="drop"`` without a corpus) is an
    error here, as on the command line, rather than recorded in the manifest and ignored.
    """
    config = expect(config, DataConfig, "config", DATA_CONFIG)
    config = checked_config(config, "config")
    out = path_argument(out, "out")
    flag_argument(overwrite, "overwrite")
    check_settings_are_read(config)
    config = with_defaults(config)
    if config.tokenizer:  # mslt-it:NAME is that model's (made) folder, as select's --tokenizer
        config = config.model_copy(
            update={"tokenizer": resolve_model_name(str(config.tokenizer), TOKENIZER_FIELD)}
        )
    parts = [(part, checked_template(part)) for part in mixture_parts(config)]
    inputs = [config.data, config.tokenizer, *config.prompts_dir, *tasks_dirs()[1:]]
    inputs += [part.data for part, _ in parts[1:]]
    with claim_output(out, kind="dataset", overwrite=overwrite, inputs=inputs, field="--out"):
        return _build(config, parts, out, overwrite)


@dataclass
class Part:
    """One task's share of a dataset: its opened splits, examples and cleaning counts."""

    config: DataConfig
    template: PromptTemplate
    splits: dict[str, SplitRows]
    examples: list[dict[str, Any]]
    cleaning: dict[str, dict[str, int]] | None


def _build(
    config: DataConfig,
    parts: list[tuple[DataConfig, PromptTemplate]],
    out: Path,
    overwrite: bool,
) -> BuildResult:
    """Render, shuffle and write the dataset (``out`` already claimed)."""
    with collection_paused(), token_counter(config) as counter:
        built = []
        extra_from = 0  # where the next part's odd examples start: each language gets its turn
        for number, (part, template) in enumerate(parts):
            # a mixed-in task's missing file names its recipe entry, not the main task's data
            where = "data" if number == 0 else f"data.mixture.{number - 1}.data"
            with field_named(where, "data"):
                built.append(build_part(part, template, counter, extra_from))
            extra_from += part.budget % max(len(part.sources), 1)
        if counter is not None:
            counter.flush()  # the last texts are counted while the dataset is written
        examples = [example for part in built for example in part.examples]
        if not examples:  # --take-available took every row there was, and cleaning left none
            raise MsltError(
                f"budget: no example is left to write ({', '.join(config.sources)} in the "
                f"{config.split} split, after cleaning); a dataset needs at least one"
            )
        for part in built:  # a source with no examples is not a source: the run is another
            given = {example["lang"] for example in part.examples}
            empty = [lang for lang in config.sources if lang not in given]
            if empty:
                mixed = f" of {part.config.task}" if len(built) > 1 else ""
                raise MsltError(
                    f"budget: {empty[0]} gives no example{mixed} ({part.config.split} split, "
                    "after cleaning: duplicates and empty answers are dropped); a dataset of "
                    f"{', '.join(config.sources)} without it is a run of fewer sources than it "
                    "says; give it rows of its own or leave it out of the sources"
                )
        say_shortfall(config, examples)
        order = np.random.default_rng(config.seed).permutation(len(examples))
        examples = [examples[i] for i in order]

        main = built[0]
        manifest = make_manifest(config, main.template, main.splits, examples)
        if main.cleaning is not None:
            manifest["cleaning"] = main.cleaning
        if len(built) > 1:
            manifest["mixture"] = [mixture_entry(part) for part in built]
        with replacing_output(out, "dataset", overwrite) as tmp:
            write_examples(examples, tmp, manifest["fingerprint"])
            if counter is not None:
                manifest["tokens"] = counter.statistics(list(config.sources))
            atomic_write_json(tmp / MANIFEST, manifest)
    return BuildResult(out, manifest)


def say_shortfall(config: DataConfig, examples: list[dict[str, Any]]) -> None:
    """A dataset smaller than its budget (``--take-available`` took what a language had) is
    said, with each language's count: runs compared "at the same budget" need the same size,
    and the build's last line alone showed the smaller total without a word about why."""
    asked = config.budget * (len(config.sources) if config.budget_mode == "per_language" else 1)
    if len(examples) >= asked:
        return
    counts = Counter(example["lang"] for example in examples)
    STDERR.print(
        f"note: budget: {len(examples)} examples of the {asked} asked for (--take-available "
        f"took what there was: {', '.join(f'{lang} {counts[lang]}' for lang in config.sources)}"
        "); runs compared at the same budget need datasets of the same size",
        highlight=False,
        soft_wrap=True,
    )


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a dataset is built, as it was afterwards.

    A build makes a few small dicts, lists and strings per example and keeps them until the
    dataset is written; the collector's passes over that growing heap find almost nothing (a
    whole build leaves a few hundred objects in cycles, however many rows it has) yet cost about
    a sixth of a short corpus row's time. Reference counting frees everything else as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def mixture_parts(config: DataConfig) -> list[DataConfig]:
    """The main task and each mixed-in one as its own build settings, budgets split by share.

    The budgets add up to the whole budget exactly (largest remainder), so a mixture is as large
    as the dataset would be without one.
    """
    if not config.mixture:
        return [config]
    shares = [1 - sum(part.share for part in config.mixture), *(p.share for p in config.mixture)]
    budgets = split_by_largest_remainder(config.budget, np.array(shares))
    # each source needs an example of every part, unless each takes the budget (per_language)
    least = 1 if config.budget_mode == "per_language" else len(config.sources)
    if budgets[0] < least:
        raise MsltError(
            f"data.mixture: the shares ({sum(shares[1:]):g} in all) leave {config.task} "
            f"{budgets[0]} of the {config.budget} examples, too few for {len(config.sources)} "
            "source languages"
        )
    parts = [config.model_copy(update={"budget": budgets[0]})]
    for number, (part, budget) in enumerate(zip(config.mixture, budgets[1:], strict=True)):
        if budget < least:
            raise MsltError(
                f"mixture: {part.task}'s share {part.share:g} of budget {config.budget} gives "
                f"{budget} examples, too few for {len(config.sources)} source languages"
            )
        settings = config.model_dump() | {
            "task": part.task,
            "template": part.template,
            "data": part.data or config.data,
            "split": part.split or default_split(part.task),
            "budget": budget,
            "mixture": [],
        }
        part_config = validate_section(DataConfig, settings, f"data.mixture.{number}")
        parts.append(with_defaults(part_config))
    return parts


DATA_CONFIG = "a mslt_it.config.DataConfig, e.g. DataConfig(task='xnli', sources=['en'], budget=90)"


def check_settings_are_read(config: DataConfig) -> None:
    """Each setting that shapes a build only beside another is given with it (the checks of
    ``mslt-it build``, made for every caller: a notebook's ``temperature=2.0`` with the default
    budget mode was recorded in the manifest as the default 3.33 and read nowhere).

    Only values other than the defaults count: a config written back whole (a recipe's data
    section, a manifest's) holds every default, whatever its mode.
    """
    fields = DataConfig.model_fields
    if config.temperature != fields["temperature"].default:
        try:
            DataConfig.check_temperature_is_read(
                {"temperature": config.temperature, "budget_mode": config.budget_mode},
                "temperature",
            )
        except ValueError as error:
            raise MsltError(str(error)) from None
    if config.max_length != fields["max_length"].default:
        check_max_length_is_read(config, "max_length")
    check_script_mismatch_is_read(config, "script_mismatch")


def check_max_length_is_read(config: DataConfig, field: str) -> None:
    """``max_length`` is the token count above which an example is counted as too long: with
    no ``tokenizer`` nothing is counted, and the manifest recorded a limit nothing applied."""
    if config.tokenizer is None:
        raise MsltError(
            f"{field}: {config.max_length!r} is read only with a tokenizer (examples are counted "
            "as too long in its tokens); give tokenizer, or leave max_length out"
        )


def check_script_mismatch_is_read(config: DataConfig, field: str) -> None:
    """``script_mismatch: drop`` cleans instruction corpora; with no corpus among the task and
    its mixture it changed nothing while the manifest recorded it (as ``temperature`` with
    another budget mode, an error rather than ignored)."""
    if config.script_mismatch != "drop":
        return
    tasks = [config.task, *(part.task for part in config.mixture)]
    if any(get_task(name).kind == "instructions" for name in tasks):
        return
    raise MsltError(
        f"{field}: drop leaves out rows of instruction corpora written in another script; "
        f"{', '.join(dict.fromkeys(tasks))} holds no corpus (leave it out, or mix a corpus in)"
    )


def checked_template(config: DataConfig) -> PromptTemplate:
    """The task's languages and the template, checked before anything is written."""
    config = with_defaults(config)
    task = get_task(config.task)
    check_languages(task, config.sources)
    template = get_template(str(config.template), config.prompts_dir)
    check_template(template, config)
    return template


def build_part(
    config: DataConfig,
    template: PromptTemplate,
    counter: TokenCounter | None,
    extra_from: int = 0,
) -> Part:
    """Open, sample and render one task's share (a corpus is also cleaned as it is sampled);
    ``extra_from``: :func:`plan_quotas`."""
    splits = open_sources(config)
    available = {lang: len(split) for lang, split in splits.items()}
    quotas = plan_quotas(available, config, extra_from)
    if template.task.kind == "instructions":
        examples, cleaning = render_corpus(config, template, splits, quotas, counter)
        return Part(config, template, splits, examples, cleaning)
    examples = render_examples(config, template, splits, quotas, counter)
    return Part(config, template, splits, examples, None)


def mixture_entry(part: Part) -> dict[str, Any]:
    """A mixture part in the manifest: what it is, how many examples each language gave, and
    the digest of each local file its rows came from (as the main task's, under ``data``: a
    part's file edited after the build left every recorded digest as it was)."""
    counts = dict.fromkeys(part.config.sources, 0)
    for example in part.examples:
        counts[example["lang"]] += 1
    entry = {
        "task": part.config.task,
        "template": {"id": part.template.id, "sha256": part.template.sha256},
        "data": part.config.data,
        "split": part.config.split,
        "budget": part.config.budget,
        "counts": counts,
        **_files_record(part.splits),
    }
    if part.cleaning is not None:
        entry["cleaning"] = part.cleaning
    return entry


def token_counter(config: DataConfig) -> TokenCounter | contextlib.nullcontext[None]:
    """A background token counter when a tokenizer is given (see :mod:`mslt_it.tokens`)."""
    if not config.tokenizer:
        return contextlib.nullcontext()
    return TokenCounter(str(config.tokenizer), config.max_length)


def check_template(template: PromptTemplate, config: DataConfig) -> None:
    """The template must belong to the task and cover every source language."""
    if template.spec.task != config.task:
        raise MsltError(
            f"template: {template.id} is a {template.spec.task} template, not {config.task}"
        )
    if template.plain:
        loaded, _ = survey_templates(config.prompts_dir)  # an error's path: every file parsed
        chat = sorted(t.id for t in loaded.values() if t.spec.task == config.task and not t.plain)
        example = f", e.g. {chat[0]}" if chat else f" (none for {config.task} yet: write one)"
        raise MsltError(
            f"template: {template.id} is a plain language-model prompt (format: plain), for "
            f"evaluation; build instructions with a chat template (format: chat){example}"
        )
    for lang in config.sources:
        template.check_language(lang)


def open_sources(config: DataConfig) -> dict[str, SplitRows]:
    """Open the split of every source language (a progress bar: Hub loads can take a while).

    Local files go through the corpus reader's checks (long lines, truncated or array files,
    a language column of numbers), for every task, not only corpora.
    """
    task = get_task(config.task)
    splits: dict[str, SplitRows] = {}
    with progress_bar() as progress:
        bar = progress.add_task("loading", total=len(config.sources))
        for lang in config.sources:
            progress.update(bar, description=f"loading {config.task}/{lang}/{config.split}")
            splits[lang] = open_corpus_split(task, lang, config.split, config.data)
            if len(splits[lang]) == 0:
                raise MsltError(f"data: {splits[lang].origin} has no usable rows")
            progress.advance(bar)
    return splits


def plan_quotas(
    available: dict[str, int], config: DataConfig, extra_from: int = 0
) -> dict[str, int]:
    """How many examples each language contributes under the budget mode.

    In ``total`` mode a budget that does not divide by the number of languages gives one
    example more to some: to the languages from the ``extra_from``-th on (cyclically). A
    mixture's parts start where the last one stopped, so each language's total differs from
    another's by one at most; every part starting at the first gave it every part's extra.
    """
    langs = list(available)
    if config.budget_mode == "per_language":
        wanted = dict.fromkeys(langs, config.budget)
    elif config.budget_mode == "total":  # each source gets one: DataConfig, mixture_parts
        base, extra = divmod(config.budget, len(langs))
        first = extra_from % len(langs)
        given = {(first + step) % len(langs) for step in range(extra)}
        wanted = {lang: base + (index in given) for index, lang in enumerate(langs)}
    else:
        # rows^(1/T) in log space: a small T must not overflow to inf (and NaN shares)
        logs = np.log(np.array([available[lang] for lang in langs], float)) / config.temperature
        weights = np.exp(logs - logs.max())
        wanted = dict(zip(langs, split_by_largest_remainder(config.budget, weights), strict=True))
        starved = [lang for lang, count in wanted.items() if count == 0]
        if starved:  # a source with no examples is not a source: the run would be another
            lang = starved[0]
            raise MsltError(
                f"budget: temperature sampling (T = {config.temperature:g}) gives {lang} none of "
                f"the {config.budget} examples ({available[lang]:,} rows against "
                f"{max(available.values()):,}); raise the budget or the temperature, or use "
                "budget_mode total"
            )
    for lang, count in wanted.items():
        if count > available[lang]:
            if not config.take_available:
                raise MsltError(
                    f"budget: {lang} has only {available[lang]} usable rows in the "
                    f"{config.split} split but {count} were asked for; lower the budget or "
                    "allow taking what there is (--take-available / take_available: true)"
                )
            wanted[lang] = available[lang]
    return wanted


def split_by_largest_remainder(total: int, weights: np.ndarray) -> list[int]:
    """Integer shares of ``total`` proportional to ``weights`` that add up to ``total`` exactly.

    Ties go to the earlier language, so the split is deterministic.
    """
    exact = total * weights / weights.sum()
    shares = np.floor(exact).astype(int)
    remainder = total - int(shares.sum())
    by_fraction = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in by_fraction[:remainder]:
        shares[i] += 1
    return [int(s) for s in shares]


def sample_indices(n_available: int, n_wanted: int, seed: int, lang: str) -> np.ndarray:
    """A seeded sample without replacement; each language draws from its own stream."""
    rng = language_rng(seed, lang)
    if n_wanted == n_available:
        return np.arange(n_available)
    return np.sort(rng.choice(n_available, size=n_wanted, replace=False))


def render_examples(
    config: DataConfig,
    template: PromptTemplate,
    splits: dict[str, SplitRows],
    quotas: dict[str, int],
    counter: TokenCounter | None = None,
) -> list[dict[str, Any]]:
    """Render the sampled rows of every language into training examples.

    Each language's examples go to ``counter`` as soon as they are rendered, so their tokens are
    counted while the next language renders.
    """
    examples: list[dict[str, Any]] = []
    with progress_bar() as progress:
        bar = progress.add_task("rendering", total=sum(quotas.values()))
        for lang, split in splits.items():
            progress.update(bar, description=f"rendering {lang}")
            indices = sample_indices(len(split), quotas[lang], config.seed, lang).tolist()
            rows = split.rows(indices)
            rendered = render_language(
                config, template, lang, rows, advance=lambda n: progress.advance(bar, n)
            )
            if counter is not None:
                counter.add(lang, rendered)
            examples += rendered
    return examples


PROGRESS_EVERY = 100
"""Rows rendered between two advances of the progress bar."""


def render_language(
    config: DataConfig,
    template: PromptTemplate,
    lang: str,
    rows: list[dict[str, Any]],
    advance: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """The training examples of one language's sampled rows. ``advance`` is told every
    :data:`PROGRESS_EVERY` rows, so a slow template shows its pace within a language too."""
    task = template.task
    verbalizer = template.verbalizer(lang)
    examples = []
    for row in rows:
        rendered = template.render(row, lang, verbalizer)
        check_rendered_text(template, rendered, row, lang)
        example = {
            "id": row["id"],
            "task": task.name,
            "lang": lang,
            "template_id": template.id,
            "label": task.gold_label(row, lang),
        }
        example.update(to_chat_columns(rendered.instruction, rendered.answer, config))
        examples.append(example)
        if advance is not None and len(examples) % PROGRESS_EVERY == 0:
            advance(PROGRESS_EVERY)
    if advance is not None:
        advance(len(rows) % PROGRESS_EVERY)
    return examples


def check_rendered_text(
    template: PromptTemplate, rendered: RenderedExample, row: dict[str, Any], lang: str
) -> None:
    """A template that renders empty on some rows (``{% if ... %}{% endif %}`` around the
    answer, an empty column) wrote empty prompts or trained empty answers without a word: the
    load-time check tries only the task's example row."""
    for part, text in (("instruction", rendered.instruction), ("answer", rendered.answer)):
        if not text:
            raise MsltError(
                f"{template.path}: {part} renders empty text on row {clipped(row.get('id'), 60)} "
                f"of {lang}; every example must give the model something to read and answer"
            )


def fingerprint(examples: Iterable[dict[str, Any]]) -> str:
    """SHA-256 of the examples' canonical JSON, in order: equal content, equal fingerprint."""
    digest = hashlib.sha256()
    # one encoder for all; an example is never circular, so skip that check (same text, faster)
    encode = json.JSONEncoder(sort_keys=True, ensure_ascii=False, check_circular=False).encode
    for example in examples:
        digest.update(encode(example).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def manifest_mismatch(rows: Any, manifest: dict[str, Any]) -> str | None:
    """Why a saved dataset's ``rows`` are not those its ``manifest`` describes (its
    fingerprint, its counts per language), or None. Where no marker vouches for a dataset (an
    older version's, a copy), this is the proof that its manifest, which names the sources a
    training records, is the rows': rows swapped in from another build were trained on and
    recorded under the manifest's languages."""
    if fingerprint(rows) != manifest.get("fingerprint"):  # streamed: a row at a time
        return "its rows are not those its manifest.json's fingerprint names"
    counts = Counter(str(lang) for lang in rows["lang"])
    recorded = manifest.get("counts")
    if isinstance(recorded, dict) and recorded != dict(counts):
        return "its manifest.json's counts are not those of its rows"
    return None


def library_versions(extra: Iterable[str] = ()) -> dict[str, str]:
    """Versions of the libraries whose behaviour shapes the output (plus ``extra`` ones).

    A library that is not installed is left out.
    """
    versions = {"python": platform.python_version(), "mslt-it": __version__}
    for name in (*TRACKED_LIBRARIES, *extra):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def make_manifest(
    config: DataConfig,
    template: PromptTemplate,
    splits: dict[str, SplitRows],
    examples: list[dict[str, Any]],
) -> dict[str, Any]:
    """Everything needed to know (and reproduce) what the dataset holds."""
    counts = dict.fromkeys(config.sources, 0)
    for example in examples:
        counts[example["lang"]] += 1
    return {
        "kind": "mslt-it dataset",
        "config": config.model_dump(mode="json"),
        "task": config.task,
        "sources": list(config.sources),
        "template": {
            "id": template.id,
            "sha256": template.sha256,
            "verbalizers": {lang: template.verbalizer(lang) for lang in config.sources},
            "path": str(Path(template.path).resolve()),
            "prompts_dirs": [str(Path(d).expanduser().resolve()) for d in config.prompts_dir],
        },
        "data": {
            "source": config.data,
            "split": config.split,
            "origins": {lang: split.origin for lang, split in splits.items()},
            "available": {lang: len(split) for lang, split in splits.items()},
            "dropped_unlabelled": {lang: split.dropped for lang, split in splits.items()},
            **_files_record(splits),
            **_folder_record(config.data),
        },
        "counts": counts,
        "num_examples": len(examples),
        "format": config.format,
        "columns": list(examples[0]) if examples else [],
        "seed": config.seed,
        "fingerprint": fingerprint(examples),
        "versions": library_versions(),
    } | _user_task(config.task)


def _files_record(splits: dict[str, SplitRows]) -> dict[str, Any]:
    """The digest of each local file a language's rows came from. Rows are named by their
    place in the file, so a file edited after the build names other rows by the same ids: a
    training's held-out rows, "rows the build did not use", could be rows it trained on. A Hub
    split's is ``datasets``' fingerprint, which another revision of the dataset changes."""
    found = {
        lang: read_as_recorded(split)
        for lang, split in splits.items()
        if getattr(split, "path", None) is not None
    }
    hub = {lang: getattr(split, "hub_fingerprint", None) for lang, split in splits.items()}
    hub = {lang: value for lang, value in hub.items() if isinstance(value, str)}
    return ({"files_sha256": found} if found else {}) | ({"hub_fingerprints": hub} if hub else {})


def read_as_recorded(split: Any) -> str:
    """The digest of the bytes a split's rows were read from: taken before the read, and still
    the file's now. A file replaced while the build read it recorded the new file's digest
    beside rows of the old one, and every later check trusted them as current."""
    now = file_sha256(split.path)
    before = getattr(split, "sha256", None)
    if before is not None and before != now:
        raise MsltError(
            f"data: {split.path} changed while the build read it; build again once it is written"
        )
    return now


def _folder_record(data: str) -> dict[str, Any]:
    """A local data folder as an absolute path: a training reads its held-out rows from it,
    wherever it runs (``--data x1`` named the folder in the build's working folder only)."""
    if data in NAMED_DATA:
        return {}
    return {"folder": str(Path(data).expanduser().resolve())}


def _user_task(name: str) -> dict[str, Any]:
    """The manifest's record of a task defined in a --tasks-dir folder (nothing for shipped):
    the definition's real path and digest, and ``file``, the name it was found by (a link
    named after the task, which a definition file must be, to a file of another name)."""
    task = get_task(name)
    definition = user_definition(task)
    if not definition:
        return {}
    return {
        "task_definition": definition | {"file": str(Path(task.extra["definition"]).absolute())}
    }


def write_examples(examples: list[dict[str, Any]], folder: Path, content_fingerprint: str) -> None:
    """Save as a datasets ``Dataset`` (``datasets.load_from_disk(folder)`` reads it back).

    The dataset's own fingerprint is set to the content fingerprint, so identical content gives
    identical bytes on disk (datasets would otherwise pick a random one).
    """
    import datasets

    table = arrow_table(examples)
    dataset = datasets.Dataset(datasets.table.InMemoryTable(table), fingerprint=content_fingerprint)
    were_off = datasets.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # our own bars already cover the build
    try:
        dataset.save_to_disk(str(folder), num_shards=max(1, math.ceil(len(examples) / 200_000)))
    finally:  # a notebook's own datasets calls draw their bars as before
        if not were_off:
            datasets.enable_progress_bars()


def arrow_table(examples: list[dict[str, Any]], sample: int = 256) -> Any:
    """The examples as an Arrow table, with the schema inferred from a sample of them.

    Every example has the same shape, and converting with a known schema is about three times
    faster than letting Arrow infer it over all rows; a row that does not fit the sampled schema
    (say, a null in the sample) falls back to full inference.
    """
    import pyarrow as pa

    schema = pa.Table.from_pylist(examples[:sample]).schema
    try:
        return pa.Table.from_pylist(examples, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.Table.from_pylist(examples)


def load_manifest(folder: str | Path, field: str = "dataset") -> dict[str, Any]:
    """Read a built dataset's manifest; a folder without one is not an mslt-it dataset."""
    path = Path(folder) / MANIFEST
    resolved_path(folder, field)  # a link that leads back to itself is said to be one
    if Path(folder).exists() and not Path(folder).is_dir():
        raise MsltError(
            f"{field}: {str(folder)!r} is a file; give the dataset's folder (what `mslt-it "
            "build` wrote into its --out)"
        )
    if not path.is_file():
        raise MsltError(
            f"{field}: {str(folder)!r} has no {MANIFEST}; build it with `mslt-it build`"
        )
    text = read_user_text(path, field, MAX_JSON_BYTES)  # a regular file, within the limit
    try:
        manifest = json.loads(text)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        reason = " ".join(str(error).split())[:120]
        raise MsltError(f"{field}: {path} is damaged ({reason}); build it again") from None
    if not isinstance(manifest, dict) or "fingerprint" not in manifest:
        raise MsltError(f"{field}: {path} is not an mslt-it manifest; build it again")
    return manifest


STATE_FILE = "state.json"
"""Where a saved ``datasets.Dataset`` lists its data files (``_data_files``)."""


def check_data_files_inside(folder: str | Path, field: str = "dataset") -> None:
    """Every data file a saved dataset's ``state.json`` names must be a file of the folder.

    ``datasets.load_from_disk`` joins each name to the folder as it is, so an edited
    ``../other/data.arrow`` or an absolute path is read from outside: rows that the folder's
    content identity never hashed, and a later run "complete" on other data.
    """
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        return  # datasets names the missing file itself
    text = read_user_text(path, field, MAX_JSON_BYTES)
    try:
        state = json.loads(text)
    except (ValueError, RecursionError):
        raise MsltError(f"{field}: {path} is damaged; build the dataset again") from None
    listed = state.get("_data_files") if isinstance(state, dict) else None
    if not isinstance(listed, list) or not listed:
        raise MsltError(f"{field}: {path} lists no data files; build the dataset again")
    for entry in listed:
        name = entry.get("filename") if isinstance(entry, dict) else None
        if (
            not isinstance(name, str)
            or name in ("", ".", "..")
            or "/" in name
            or "\\" in name
            or not (Path(folder) / name).is_file()
        ):
            raise MsltError(
                f"{field}: {path} names the data file {clipped(name, 80)}, which is not a file of "
                f"{str(folder)!r}; a dataset reads only its own files, build it again"
            )
