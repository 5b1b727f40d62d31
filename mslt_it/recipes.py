"""Recipes: one YAML file per experiment, expanded into the runs it names.

A recipe's ``sources`` names one source set or a grid (see :class:`~mslt_it.config.RecipeConfig`).
:func:`load_recipe` validates everything up front — unknown keys, bad values, languages the task
lacks, k larger than the pool — so a typo fails in a second, not after an hour of training.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it.arguments import path_argument
from mslt_it.config import (
    AllCombinations,
    DataConfig,
    RecipeConfig,
    SelectSpec,
    SweepK,
    load_yaml,
    validate_section,
)
from mslt_it.data import (
    check_max_length_is_read,
    check_script_mismatch_is_read,
    checked_template,
    mixture_parts,
    split_by_largest_remainder,
    with_defaults,
)
from mslt_it.errors import MsltError, allowed, clipped, field_named
from mslt_it.evaluation import EvalConfig
from mslt_it.evaluation.compare import check_distinct_models
from mslt_it.evaluation.plan import TaskPlan, evaluation_split, plan_tasks
from mslt_it.files import read_user_text
from mslt_it.modeling import check_base_model_folder, check_tokenizer_folder
from mslt_it.named_models import check_model_name, is_named_model, resolve_model_name
from mslt_it.paths import check_folder_text, is_data_folder
from mslt_it.prompts import PROMPTS_FIELD, get_template
from mslt_it.selection import (
    CRITERIA,
    FEATURE_OPTIONS,
    FROM_PREDICTOR,
    SelectionOptions,
    run_selection,
)
from mslt_it.tasks import check_languages, default_template, get_task, set_recipe_tasks_dirs
from mslt_it.tasks.base import Task
from mslt_it.tasks.sources import check_local_file, check_split, local_path, synthetic_generator
from mslt_it.tasks.synthetic import SPLIT_SIZES
from mslt_it.training import ModelConfig
from mslt_it.training.chat import CHAT_TEMPLATE_FILE_BYTES, CHAT_TEMPLATE_SUFFIXES
from mslt_it.training.config import check_watch, validate_train_section
from mslt_it.yamlfiles import load_yaml_text, problem_besides_missing

GRID_KINDS = ("all-combinations", "sweep-k", "select")
MAX_RUNS = 1000
"""Most runs (trainings) one recipe may hold: Slurm's default array limit (``MaxArraySize``
1001, indices 0..1000), and far above the paper's grid of 35."""


@dataclass(frozen=True)
class Run:
    """One training run of a recipe: a source set and how it was chosen."""

    run_id: str
    sources: tuple[str, ...]
    origin: str
    notes: tuple[str, ...] = field(default=(), compare=False)
    """What ``select`` said of the pick (a predictor showing no skill, results changed since
    its fit, a set measured already): the plan prints them, as ``select`` does."""

    @property
    def label(self) -> str:
        """``SSLT en`` or ``MSLT ar+en+zh``: how the paper names runs."""
        kind = "SSLT" if len(self.sources) == 1 else "MSLT"
        return f"{kind} {'+'.join(self.sources)}"


@dataclass
class Recipe:
    """A validated recipe with its runs expanded."""

    path: Path
    config: RecipeConfig
    runs: list[Run]
    model: Any = None
    train: Any = None
    eval: Any = None
    raw: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    """The file as it was read: the copy an experiment keeps is of the recipe its steps ran."""

    @property
    def output_dir(self) -> Path:
        return Path(self.config.output_dir or Path("runs") / self.config.name)

    def data_config(self, run: Run) -> DataConfig:
        """The build settings of one run: the recipe's data section with the run's sources."""
        settings = self.config.data.model_dump() | {"sources": list(run.sources)}
        return with_defaults(validate_section(DataConfig, settings, "data"))


def load_recipe(path: str | Path, output_dir: str | Path | None = None) -> Recipe:
    """Read, validate and expand a recipe file.

    ``output_dir`` (``mslt-it run --out``) replaces the recipe's own ``output_dir``; it is not part
    of any step's input hash, so a recipe's finished steps are found wherever they were written.
    """
    path = path_argument(path, "path")
    if output_dir is not None:  # b"x" was recorded as "b'x'", 5 as '5'
        checked = path_argument(output_dir, "output_dir")
        output_dir = output_dir if isinstance(output_dir, str) else str(checked)
    mapping, text = load_yaml_text(path)
    raw = one_sources_field(path, mapping)
    config = _validate(path, raw)
    use_recipe_tasks_dirs(path, config.tasks_dir)
    # Again, now that the recipe's own tasks are known: the defaults that depend on a task's
    # definition (a corpus's as-is template, a mixture part's split) must see them.
    config = _validate(path, raw)
    if output_dir is not None:
        check_folder_text(str(output_dir), "--out")  # model_copy validates nothing
        config = config.model_copy(update={"output_dir": str(output_dir)})
    try:
        task = get_task(config.data.task)
    except MsltError as error:  # an unknown name, or a definition file of tasks_dir (named)
        field = "data." if str(error).startswith("task:") else ""
        raise MsltError(f"{path}: {field}{error}") from None
    try:
        runs = expand_sources(config.sources, task.name, config.data.data, config.data.split)
        for run in runs:
            check_languages(task, list(run.sources), "sources")
    except MsltError as error:
        raise MsltError(f"{path}: {error}") from None
    recipe = Recipe(path, config, runs, raw=raw, text=text)
    _validate_parts(recipe)
    try:
        data = recipe.data_config(runs[0])  # the template is the same for every run
    except MsltError as error:  # a default it cannot fill (a mixed-in part's split)
        raise MsltError(f"{path}: {error}") from None
    sources = sorted({lang for run in runs for lang in run.sources})
    check_data_folder(data.data, f"{path}: data.data")
    try:  # a folder without the sources' files passed the dry run and stopped the first build
        check_local_rows(data.data, task, sources, str(data.split))
    except MsltError as error:
        raise MsltError(f"{path}: data.{error}") from None
    check_script_mismatch_is_read(data, f"{path}: data.script_mismatch")
    if data.max_length != DataConfig.model_fields["max_length"].default:
        check_max_length_is_read(data, f"{path}: data.max_length")  # as each build would
    try:  # first: every mixed-in part reads the same prompt folders
        with field_named("prompts_dir", PROMPTS_FIELD):
            get_template(str(data.template), data.prompts_dir)
    except MsltError as error:
        raise MsltError(f"{path}: data.{error}") from None
    for run in runs:  # each run's data settings, as its build step will see them
        try:
            check_mixture(recipe.data_config(run), "data")
        except MsltError as error:
            raise MsltError(f"{path}: run {run.run_id}: {error}") from None
    _check_evaluation(recipe)
    _check_watched_rows(recipe)
    _check_chat_template_file(recipe)
    return recipe


def _check_chat_template_file(recipe: Recipe) -> None:
    """A ``model.chat_template`` file is read at load, as each training will read it: a FIFO,
    a folder or a missing file stopped the run once the first dataset was built."""
    template = recipe.model.chat_template
    if isinstance(template, str) and template.endswith(CHAT_TEMPLATE_SUFFIXES):
        read_user_text(template, f"{recipe.path}: model.chat_template", CHAT_TEMPLATE_FILE_BYTES)


def one_sources_field(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """A recipe names its sources at the top level (``sources: [en, de]``, or a grid); a single
    set written as ``data.sources`` (the shape ``build --recipe`` reads) is the same and is
    accepted. Given both, or neither, is a one-line error saying where the field goes."""
    data = raw.get("data")
    nested = data.get("sources") if isinstance(data, dict) else None
    if "sources" in raw and nested not in (None, []) and nested != raw["sources"]:
        raise MsltError(
            f"{path}: sources: given twice, at the top level ({clipped(raw['sources'], 40)}) "
            f"and as "
            f"data.sources ({clipped(nested, 40)}); keep the top-level one"
        )
    if "sources" not in raw:
        if nested in (None, []):
            raise MsltError(
                f"{path}: sources: required field is missing; name the source languages at the "
                "top level of the recipe (`sources: [en, de]`, or a grid such as "
                "`sources: {all-combinations: {pool: [...], k: 3}}`), or as data.sources"
            )
        raw = {**raw, "sources": nested}
    return raw


def recipe_sources(path: str | Path, raw: dict[str, Any]) -> list[str] | None:
    """The one source set of a recipe for ``build --recipe`` (its ``data.sources``, else its
    top-level ``sources`` when that is a list of codes); None when it names a grid."""
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    if data.get("sources"):
        return None  # the data section has its own
    spec = raw.get("sources")
    if isinstance(spec, list) and spec and all(isinstance(code, str) for code in spec):
        return list(spec)
    return None  # a grid: build --recipe needs --sources


def use_recipe_tasks_dirs(path: Path, folders: Any) -> None:
    """Make a recipe's ``tasks_dir`` folders known (relative ones from the working directory, as
    ``--tasks-dir``); every command that reads a recipe calls this before it looks up a task.
    They replace the folders of the recipe read before (none: that recipe's are dropped), so
    two recipes may each define a task of one name; ``--tasks-dir`` folders stay."""
    if folders is None:
        folders = []
    if not isinstance(folders, list) or not all(isinstance(f, str) for f in folders):
        raise MsltError(
            f"{path}: tasks_dir: expected a list of folders, got {clipped(folders, 80)}"
        )
    try:
        with field_named("tasks_dir", "tasks-dir"):  # the option's name: the recipe's field
            set_recipe_tasks_dirs(folders)
    except MsltError as error:
        raise MsltError(f"{path}: {error}") from None


def recipe_section(path: str | Path, name: str) -> Any:
    """One section of a recipe (``data`` for ``build --recipe``, ``eval`` for ``eval --recipe``),
    with the recipe's ``tasks_dir`` made known first, as ``mslt-it run`` does: a single-step
    command finds the tasks the recipe defines. None when the recipe has no such section."""
    path = Path(path)
    raw = load_yaml(path)
    use_recipe_tasks_dirs(path, raw.get("tasks_dir"))
    # the rest of the recipe is checked as `run` checks it (this section is checked with the
    # command's options, whose own errors come first)
    problem = problem_besides_missing(RecipeConfig, {k: v for k, v in raw.items() if k != name})
    if problem is not None:
        raise MsltError(f"{path}: {problem}")
    if name != "train" and isinstance(raw.get("train"), dict):  # its pass-through fields
        try:  # (sft, lora) are checked beyond the schema, as `run` checks them
            validate_train_section(raw["train"], "train")
        except MsltError as error:
            raise MsltError(f"{path}: {error}") from None
    section = raw.get(name)
    if section is not None and not isinstance(section, dict):
        raise MsltError(
            f"{path}: {name}: expected a section (a mapping of settings), got "
            f"{clipped(section, 40)}"
        )
    if name == "data" and isinstance(section, dict) and not section.get("sources"):
        sources = recipe_sources(path, raw) if "sources" in raw else None
        if sources:
            section = {**section, "sources": sources}
    return section


def check_mixture(config: DataConfig, where: str = "data") -> None:
    """Each mixed-in part's share, folder, task, split, languages and template, checked before
    any row is read; every error starts with the part's path (``data.mixture.1: …``), since two
    parts may share a task's name in a message but never a position."""
    if not config.mixture:
        return
    config = with_defaults(config)
    shares = [1 - sum(part.share for part in config.mixture), *(p.share for p in config.mixture)]
    budgets = split_by_largest_remainder(config.budget, np.array(shares))
    for number, (part, budget) in enumerate(zip(config.mixture, budgets[1:], strict=True)):
        if budget < 1 or (config.budget_mode == "total" and budget < len(config.sources)):
            raise MsltError(
                f"{where}.mixture.{number}.share: {part.share:g} of budget {config.budget} gives "
                f"{budget} examples, too few for {len(config.sources)} source languages; raise "
                "the share or the budget"
            )
        check_data_folder(part.data or config.data, f"{where}.mixture.{number}.data")
    try:
        parts = mixture_parts(config)
    except MsltError as error:
        raise MsltError(f"{where}: {error}") from None
    _check_parts(parts[1:], where)


def _check_parts(parts: Sequence[DataConfig], where: str) -> None:
    """The task, split, languages and template of each mixed-in part (see check_mixture)."""
    for number, part in enumerate(parts):
        try:
            task = get_task(part.task)
            check_split(task, part.split)
            if part.data == "synthetic":
                generator = synthetic_generator(task)
                if part.split not in SPLIT_SIZES[generator]:
                    raise MsltError(
                        f"split: the synthetic {generator} data has no split {part.split!r}; its "
                        f"splits: {allowed(SPLIT_SIZES[generator])}"
                    )
            checked_template(part)
        except MsltError as error:
            raise MsltError(f"{where}.mixture.{number}: {error}") from None


def _check_evaluation(recipe: Recipe) -> None:
    """The tasks, languages, splits, data folder and template the eval section names: known
    before any work, not after the trainings."""

    try:
        tasks = plan_tasks(recipe.eval)
        check_data_folder(recipe.eval.data, "data")
        check_local_splits(recipe.eval.data, tasks)
        for folder in recipe.eval.prompts_dir:
            if not Path(folder).expanduser().is_dir():
                raise MsltError(f"prompts_dir: {folder!r} is not a folder of prompt templates")
        if recipe.eval.template:
            get_template(recipe.eval.template, recipe.eval.prompts_dir)
    except MsltError as error:
        raise MsltError(f"{recipe.path}: eval.{error}") from None
    _check_eval_template(recipe, tasks)
    check_data_folder(recipe.config.data.data, f"{recipe.path}: data.data")


def _check_eval_template(recipe: Recipe, tasks: Sequence[TaskPlan]) -> None:
    """An ``eval.template`` other than the one the adapters train with, on their task, or a
    file of that id in ``eval.prompts_dir`` other than the one trained with, is refused by the
    evaluation unless ``eval.allow_template_mismatch``: said at load, where it stopped the run
    after every training."""
    trained_task = recipe.config.data.task
    given = recipe.eval.template
    if recipe.eval.allow_template_mismatch:
        return
    if not any(plan.task.name == trained_task for plan in tasks):
        return  # the adapters' template does not apply to another task
    trained = recipe.config.data.template or default_template(trained_task)
    if given is not None and given != trained:
        raise MsltError(
            f"{recipe.path}: eval.template: {given!r} is not the template the adapters are "
            f"trained with ({trained!r}, data.template); set eval.allow_template_mismatch: true "
            "to evaluate with another one"
        )
    if list(recipe.eval.prompts_dir) == list(recipe.config.data.prompts_dir):
        return  # the same folders: the file the build read (eval's own default)
    try:
        read = get_template(trained, recipe.eval.prompts_dir)
    except MsltError as error:
        raise MsltError(f"{recipe.path}: eval.{error}") from None
    built = get_template(trained, recipe.config.data.prompts_dir)  # checked at load: it loads
    if read.sha256 != built.sha256:
        raise MsltError(
            f"{recipe.path}: eval.prompts_dir: its {trained!r} ({str(read.path)!r}) is not the "
            f"file the adapters are trained with ({str(built.path)!r}, data.prompts_dir); set "
            "eval.allow_template_mismatch: true to evaluate with it"
        )


def _check_watched_rows(recipe: Recipe) -> None:
    """Each watch's split and rows (its ``data``, else the build's): a watch of a split or a
    folder that is not there passed the dry run and stopped the first training, after its
    build."""
    for number, spec in enumerate(recipe.train.watch):
        where = f"{recipe.path}: train.watch.{number}"
        task = get_task(spec.task)  # known: check_watch read it
        split = spec.split or evaluation_split(task)
        data = spec.data or recipe.config.data.data
        try:
            check_split(task, split)
        except MsltError as error:
            raise MsltError(f"{where}.{error}") from None
        check_data_folder(data, f"{where}.data")
        try:
            if data == "synthetic":
                synthetic_generator(task)
            check_local_rows(data, task, spec.langs, split)
        except MsltError as error:
            raise MsltError(f"{where}.{error}") from None


def check_data_folder(data: str | None, field: str) -> None:
    """``hub``, ``synthetic`` or an existing folder (checked at load, before any work), as the
    readers take the path (``~`` is not expanded there either)."""
    if not is_data_folder(data) or Path(data).is_dir():
        return
    raise MsltError(
        f"{field}: {data!r} is not a folder; use hub, synthetic or a folder laid out as "
        "DIR/<task>/<lang>/<split>.jsonl"
    )


def check_local_splits(data: str | None, tasks: Sequence[TaskPlan]) -> None:
    """Every (task, language, split) an evaluation reads has its file in a local ``data``
    folder: found by the dry run, not after the trainings."""
    for plan in tasks:
        check_local_rows(data, plan.task, plan.languages, plan.split)


def check_local_rows(data: str | None, task: Task, langs: Sequence[str], split: str) -> None:
    """Each language's file of ``task``'s ``split`` in a local ``data`` folder (nothing to check
    for hub and synthetic)."""
    if not is_data_folder(data):
        return
    root = Path(str(data))
    for lang in langs:
        path = local_path(root, task, lang, split)
        if path is None:
            raise MsltError(
                f"data: {str(data)!r} has no file for {task.name}/{lang}/{split} "
                f"(expected {root / task.name / lang / split}.jsonl or .parquet)"
            )
        check_local_file(path)  # a FIFO, a folder or a huge file, before any training


def inherit_prompts_dir(eval_config: EvalConfig, data: DataConfig) -> EvalConfig:
    """The eval section without ``prompts_dir`` uses the data section's: the adapters are
    evaluated through the template they were trained with, found where the build found it."""
    if eval_config.prompts_dir or not data.prompts_dir:
        return eval_config
    return eval_config.model_copy(update={"prompts_dir": list(data.prompts_dir)})


def _validate(path: Path, raw: dict[str, Any]) -> RecipeConfig:
    data = raw.get("data")
    try:
        if isinstance(data, dict):
            DataConfig.check_temperature_is_read(data, "data.temperature")
        return validate_section(RecipeConfig, raw)
    except (MsltError, ValueError) as error:
        raise MsltError(f"{path}: {error}") from None


def _validate_parts(recipe: Recipe) -> None:
    """Validate the model, train and eval sections with the models of the steps that use them."""

    config = recipe.config
    try:
        recipe.model = validate_section(ModelConfig, config.model, "model")
        check_model_name(recipe.model.name_or_path, "model.name_or_path")
        check_base_model_folder(recipe.model.name_or_path, "model.name_or_path")
        tokenizer = config.data.tokenizer  # read by every build: named before the first
        if tokenizer:
            check_model_name(str(tokenizer), "data.tokenizer")
            if not is_named_model(str(tokenizer)):
                check_tokenizer_folder(str(tokenizer), "data.tokenizer")
        recipe.train = validate_train_section(config.train, "train")
        if recipe.train.sft.get("save_only_model") is True:
            raise MsltError(  # a run killed again and again (a Slurm time limit) never ends
                "train.sft.save_only_model: true saves no optimizer or scheduler state, so a "
                "training `mslt-it run` finds killed could only start again from step 0, and one "
                "cut by a time limit would never finish; leave it out (or train with `mslt-it "
                "train`, whose --resume refuses such a checkpoint)"
            )
        max_steps = recipe.train.sft.get("max_steps", -1)
        check_watch(recipe.train.watch, max_steps if isinstance(max_steps, int) else -1)
        recipe.eval = inherit_prompts_dir(
            validate_section(EvalConfig, config.eval, "eval"), config.data
        )
        for number, name in enumerate(recipe.eval.compare_models):
            check_model_name(name, f"eval.compare_models.{number}")
            if not is_named_model(name):  # mslt-it's own are built when the step runs
                check_base_model_folder(name, f"eval.compare_models.{number}")
        compared = [recipe.model.name_or_path, *recipe.eval.compare_models]
        fields = ["model.name_or_path"] + [
            f"eval.compare_models.{number}" for number in range(len(compared) - 1)
        ]
        check_distinct_models(compared, fields)
    except MsltError as error:
        raise MsltError(f"{recipe.path}: {error}") from None


def expand_sources(
    spec: Any, task: str, data: str = "synthetic", split: str = "train"
) -> list[Run]:
    """Turn a recipe's ``sources`` into runs (duplicates removed, order kept). ``data`` and
    ``split``: the recipe's rows, whose text ``select``'s coverage and embedding criteria
    read (as the recipe's builds do)."""
    text = (data, split)
    if isinstance(spec, dict):
        runs = _expand_grid(spec, task, text)
    elif isinstance(spec, list) and spec and all(isinstance(s, str) for s in spec):
        runs = [_run(spec, "explicit")]
    elif isinstance(spec, list) and spec:
        runs = []
        for i, entry in enumerate(spec):
            runs += _expand_entry(entry, task, text, f"sources.{i}")
    else:
        raise MsltError(
            f"sources: expected a language list, a list of lists or one of "
            f"{allowed(GRID_KINDS)}, got {spec!r}"
        )
    unique: dict[str, Run] = {}
    for run in runs:
        unique.setdefault(run.run_id, run)
    if len(unique) > MAX_RUNS:
        raise MsltError(f"sources: {len(unique):,} runs; a recipe holds at most {MAX_RUNS:,}")
    return list(unique.values())


def _expand_entry(entry: Any, task: str, text: tuple[str, str], where: str) -> list[Run]:
    if isinstance(entry, list) and entry and all(isinstance(s, str) for s in entry):
        return [_run(entry, "explicit")]
    if isinstance(entry, dict):
        return _expand_grid(entry, task, text, where)
    raise MsltError(f"{where}: expected a list of language codes or {{select: …}}, got {entry!r}")


def _expand_grid(
    spec: dict[str, Any], task: str, text: tuple[str, str], where: str = "sources"
) -> list[Run]:
    if len(spec) != 1 or next(iter(spec)) not in GRID_KINDS:
        raise MsltError(f"{where}: expected one key of {allowed(GRID_KINDS)}, got {list(spec)}")
    kind, body = next(iter(spec.items()))
    if kind == "all-combinations":
        combos = validate_section(AllCombinations, body, f"{where}.all-combinations")
        _check_pool(combos.pool, task, f"{where}.all-combinations.pool")
        count = math.comb(len(combos.pool), combos.k)
        if count > MAX_RUNS:  # before a list of them is made: C(40, 20) would fill the memory
            raise MsltError(
                f"{where}.all-combinations: C({len(combos.pool)}, {combos.k}) = {count:,} sets, "
                f"one training each; a recipe holds at most {MAX_RUNS:,} runs (a smaller pool "
                "or k, or `select` to rank the sets without training them)"
            )
        return [
            _run(list(s), f"all-combinations k={combos.k}")
            for s in itertools.combinations(combos.pool, combos.k)
        ]
    if kind == "sweep-k":
        sweep = validate_section(SweepK, body, f"{where}.sweep-k")
        if sweep.criterion in FROM_PREDICTOR:  # it has no predictor field to read one from
            raise MsltError(
                f"{where}.sweep-k.criterion: {sweep.criterion!r} reads a predictor file, which "
                "sweep-k takes none of; give one `select:` entry per k with `predictor:`"
            )
        if sweep.criterion not in CRITERIA:
            raise MsltError(
                f"{where}.sweep-k.criterion: unknown criterion {clipped(sweep.criterion, 40)}; "
                f"allowed: {allowed(CRITERIA)}"
            )
        _check_pool(sweep.pool, task, f"{where}.sweep-k.pool")
        return [
            _selected(
                SelectSpec(criterion=sweep.criterion, k=k, pool=sweep.pool),
                task,
                text,
                f"{where}.sweep-k",
            )
            for k in sweep.k
        ]
    select = validate_section(SelectSpec, body, f"{where}.select")
    _check_pool(select.pool, task, f"{where}.select.pool")
    given = frozenset(name for name in FEATURE_OPTIONS if name in body)
    return [_selected(select, task, text, f"{where}.select", given)]


def _check_pool(pool: list[str], task: str, where: str) -> None:
    check_languages(get_task(task), pool, where)
    if len(set(pool)) != len(pool):
        raise MsltError(f"{where}: duplicate language in the pool {pool}")


def _selected(
    spec: SelectSpec,
    task: str,
    text: tuple[str, str],
    where: str,
    given: frozenset[str] = frozenset(),
) -> Run:
    """The top set under a selection criterion (``mslt-it select``'s first answer); ``given``
    names the entry's fields the user wrote (held to a predictor's, even at their defaults)."""

    try:
        result = run_selection(
            task=task,
            pool=spec.pool,
            k=spec.k,
            criterion=spec.criterion,
            targets=spec.targets or None,
            include=spec.include,
            targets_as_sources=spec.targets_as_sources,
            top=1,
            seed=spec.seed,
            options=SelectionOptions(
                size_model=spec.size_model,
                size_missing=spec.size_missing,
                predictor=spec.predictor,
                vectors=spec.vectors,
                tokenizer=resolve_model_name(spec.tokenizer, "tokenizer")
                if spec.tokenizer
                else None,
                model=resolve_model_name(spec.model, "model") if spec.model else None,
                data=text[0],
                split=text[1],
                given=given,
            ),
        )
    except MsltError as error:
        raise MsltError(f"{where}: {in_recipe_words(str(error))}") from None
    origin = f"select {spec.criterion} k={spec.k}"
    if result.searches[0].ties_beyond:  # `script` ties often: the plan must not call it a pick
        origin += " (tied at the top; the first alphabetically)"
    if result.sets[0].sources in result.measured:  # a run the user has already
        origin += " (measured already: the predictor was fitted on it)"
    notes = tuple(f"{where}: {in_recipe_words(note)}" for note in result.notes)
    return _run(list(result.sets[0].sources), origin, notes)


SELECT_OPTION = re.compile(
    r"--(criterion|k|pool|targets-as-sources|targets|include|seed|size-model|size-missing"
    r"|predictor|vectors|tokenizer|model)\b(?!-)"
)
"""``mslt-it select``'s options that are fields of a recipe's ``select:`` entry."""


def in_recipe_words(message: str) -> str:
    """``--criterion learned: needs --predictor FILE`` -> ``criterion learned: needs predictor
    FILE``: the selection code speaks of the command line; a recipe's user wrote fields."""
    return SELECT_OPTION.sub(lambda match: match.group(1).replace("-", "_"), message)


def _run(sources: list[str], origin: str, notes: tuple[str, ...] = ()) -> Run:
    ordered = tuple(sorted(sources))
    if len(set(ordered)) != len(ordered):
        raise MsltError(f"sources: duplicate language in {sources}")
    return Run(run_id="+".join(ordered), sources=ordered, origin=origin, notes=notes)
