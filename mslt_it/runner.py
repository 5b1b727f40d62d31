"""``mslt-it run``: carry a recipe out from data to report, skipping what is already done.

The plan is a list of steps — per run: build, train, eval; then one report — each with an output
folder and an *input hash*: a content hash of everything the step's result depends on (settings,
template file, upstream fingerprints). A finished step leaves ``.mslt-it-step.json`` with its
hash; a step whose output carries the same hash is skipped. So a re-run after a crash continues
where it stopped, and a changed setting re-runs exactly the steps it affects.

Evaluation of a grid is one step over all adapters, so the base model loads once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mslt_it.arguments import expect, given
from mslt_it.data import build_dataset, mixture_parts
from mslt_it.errors import MsltError, allowed, clipped, field_named
from mslt_it.evaluation import compare_models, evaluate, reopen_evaluation
from mslt_it.evaluation.compare import reopen_comparison
from mslt_it.evaluation.scoring import ENTITY_SCORING
from mslt_it.evaluation.suites import load_suite, resolve_suite_path
from mslt_it.files import resolved_path
from mslt_it.identity import (
    DATA_FILES,
    file_sha256,
    model_identity,
    text_file_sha256,
    tokenizer_identity,
    tree_sha256,
)
from mslt_it.io import (
    OWNER_FILE,
    atomic_write_json,
    atomic_write_text,
    fingerprint_matches,
    read_json,
)
from mslt_it.locks import OutputBusy, output_lock
from mslt_it.modeling import check_model_reachable
from mslt_it.named_models import (
    TINY_MODELS,
    check_replaceable,
    ensure_named_model,
    is_named_model,
    named_model_folder,
)
from mslt_it.outputs import (
    ADOPTABLE_FILES,
    ANALYSIS_KIND,
    STEP_RECORD,
    check_destination,
    check_host,
    check_nothing_foreign,
    check_removable,
    holds_anything,
    in_hidden_folder,
    listed_files,
    mark_owner,
    output_intact,
    owner_kind,
    read_sealed_json,
    remove_own_output,
)
from mslt_it.paths import is_data_folder
from mslt_it.prompts import get_template
from mslt_it.recipes import Recipe, Run, use_recipe_tasks_dirs
from mslt_it.tasks import default_template, get_task
from mslt_it.tasks.definitions import user_definition
from mslt_it.tokens import TOKENIZER_FIELD
from mslt_it.training.config import lora_settings
from mslt_it.training.model import check_lora_targets
from mslt_it.yamlfiles import parse_yaml, read_text_file

MARKER = STEP_RECORD
WEIGHT_FILES = (".safetensors", ".bin")
"""An adapter's weight files: what an evaluation of it read."""
Status = Literal["done", "todo", "stale", "waiting"]


LATER_FIELDS = {
    "mixture": [],
    "script_mismatch": "count",
    "compare_models": [],
    "size_model": "xlmr",
}
"""Settings added after recipes were first run, and their defaults: left out of a step's input
hash while they hold the default, so a finished step of an earlier version stays done."""


def hashed_settings(section: Any) -> dict[str, Any]:
    """A section's settings as its step's input hash sees them (see :data:`LATER_FIELDS`)."""
    settings = section.model_dump(mode="json")
    for name, default in LATER_FIELDS.items():
        if name in settings and settings[name] == default:
            del settings[name]
    return settings


def content_hash(*parts: Any) -> str:
    """SHA-256 of the parts' canonical JSON."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Step:
    """One unit of work with a content-hashed output folder."""

    name: str
    runs: list[Run]
    output: Path
    input_hash: Callable[[], str | None]
    execute: Callable[[], None] = field(repr=False)
    after: list[Step] = field(default_factory=list, repr=False)
    """Steps whose output this one reads: while one of them is not done, this one waits (its
    hash would be computed from their old output)."""
    upstream: Callable[[], Any] | None = field(default=None, repr=False)
    """The content this step read from earlier steps' outputs (the adapters' weights, the
    evaluation's results), recorded when it finishes. An earlier step redone from the same
    settings can still write other content (a deleted adapter trained again), and then this
    step is stale although its input hash is not."""
    prepare: Callable[[], None] | None = field(default=None, repr=False)
    """What the step makes of its inputs before it runs (a named tiny model built on first
    use): made before the inputs' identity is taken for the step's record."""
    reopen: Callable[[], bool] | None = field(default=None, repr=False)
    """How to make the finished output unfinished again, in place of removing it, when it is to
    be made again: the evaluation keeps each prediction whose inputs are unchanged (one
    adapter retrained re-evaluates that adapter alone). False: it could not, and is removed."""

    @property
    def title(self) -> str:
        return f"{self.name} {', '.join(r.run_id for r in self.runs) or '(all)'}"

    def status(self) -> Status:
        """done: output matches its inputs; stale: output from other inputs; waiting: upstream."""
        if any(step.status() != "done" for step in self.after):
            return "waiting"
        wanted = self.input_hash()
        if wanted is None:
            return "waiting"
        marker = self.output / MARKER
        if not marker.is_file():
            return "todo"
        recorded = read_json(marker) or {}  # damaged or edited: from unknown inputs
        if recorded.get("input_hash") != wanted or not output_intact(self.output):
            return "stale"  # other inputs, or its files were changed or removed since
        if recorded.get("output", None) not in (None, self.output_digest()):
            return "stale"  # the record of another output (moved here by hand); None: a
            # record of a version that did not say what its output held
        if self.upstream is not None and recorded.get("upstream", None) not in (
            None,  # a marker of a version that did not record it
            content_hash(self.upstream()),
        ):
            return "stale"
        return "done"

    def output_digest(self) -> str:
        """What the output holds, as its marker lists it (each file's fingerprint): recorded
        with the step, so the record of one step's output put into another step's folder (the
        record of data ``en`` beside German rows) is not taken for a record of what is there.
        The record itself is no part of it: ``adopt`` lists it with the files it vouches for,
        and every adopted step was then made again."""
        listed = listed_files(self.output)
        if listed is not None:
            listed = {name: kept for name, kept in listed.items() if Path(name).name != MARKER}
        return content_hash(listed)

    def mark_done(self, input_hash: str) -> None:
        """Record the step as made from ``input_hash``: the inputs' identity taken *before* it
        ran (:func:`execute_plan`), so an input edited while it ran leaves it stale, not done
        with an output of the old content."""
        record = {"step": self.name, "input_hash": input_hash}
        record["output"] = self.output_digest()
        if self.upstream is not None:
            record["upstream"] = content_hash(self.upstream())
        atomic_write_json(self.output / MARKER, record)


@dataclass
class Plan:
    """The steps of a recipe, in the order they run."""

    recipe: Recipe
    steps: list[Step]
    model_path: Path | str

    def select(self, only: str | None) -> list[Step]:
        """Every step, or the steps of one run (``--only RUN_ID``, e.g. for a Slurm array task)."""
        if only is None:
            return self.steps
        ids = [run.run_id for run in self.recipe.runs]
        if only not in ids:
            raise MsltError(f"--only: no run {only!r} in this recipe; runs: {allowed(ids)}")
        return [s for s in self.steps if [r.run_id for r in s.runs] == [only]]


def make_plan(recipe: Recipe) -> Plan:
    """All steps of ``recipe``: build and train per run, evaluation of all adapters, report."""
    expect(recipe, Recipe, "recipe", "a mslt_it.recipes.Recipe (load_recipe(path) reads one)")
    use_recipe_tasks_dirs(recipe.path, recipe.config.tasks_dir)  # another recipe read since
    root = recipe.output_dir
    model_path = resolve_model(recipe)
    steps: list[Step] = []
    for run in recipe.runs:
        build = build_step(recipe, run, root)
        train = train_step(recipe, run, root, model_path)
        train.after.append(build)
        steps += [build, train]
    evaluation = eval_step(recipe, root, model_path)
    evaluation.after += [step for step in steps if step.name == "train"]
    steps.append(evaluation)
    if recipe.eval.compare_models:
        steps.append(compare_step(recipe, root, model_path))
    report = report_step(recipe, root)
    report.after.append(evaluation)
    steps.append(report)
    return Plan(recipe, steps, model_path)


def resolve_model(recipe: Recipe) -> Path | str:
    """The model to train; ``mslt-it:tiny`` (random), ``mslt-it:tiny-world`` and
    ``mslt-it:tiny-world-sized`` (pre-trained on the synthetic world, equal or CC-100-sized text
    per language) mean the tiny offline models, made once per recipe in its folder."""
    name = recipe.model.name_or_path
    if name not in TINY_MODELS:
        return name
    return resolved_path(recipe.output_dir / "tiny-model", f"{recipe.path}: output_dir (or --out)")


def ensure_model(recipe: Recipe, model_path: Path | str) -> None:
    """Make the recipe's tiny model once, in its folder (:mod:`mslt_it.named_models`)."""
    name = recipe.model.name_or_path
    if is_named_model(name):
        ensure_named_model(name, Path(model_path))


def build_step(recipe: Recipe, run: Run, root: Path) -> Step:
    output = root / "data" / run.run_id
    config = recipe.data_config(run)

    def input_hash() -> str:

        template = get_template(str(config.template), config.prompts_dir)
        definition = user_definition(get_task(config.task))
        parts = [hashed_settings(config), template.sha256]
        inputs = build_inputs(config)
        return content_hash(
            "build", *parts, *([definition] if definition else []), *([inputs] if inputs else [])
        )

    def execute() -> None:
        with field_named(f"{recipe.path}: data.tokenizer", TOKENIZER_FIELD):
            build_dataset(config, output, overwrite=True)

    return Step("build", [run], output, input_hash, execute)


def data_identity(
    data: str | None, task: str | None = None, langs: Iterable[str] = ()
) -> str | None:
    """A local data folder's content digest (its rows' files); None for synthetic or Hub data,
    whose content is fixed by mslt-it's version or the dataset id.

    With ``task`` and ``langs``: only the files those languages' rows are read from
    (``DIR/<task>/<lang>/``, and a table of every language in ``DIR/<task>/``), for what reads
    those languages only (a training's held-out rows and watched targets). A build hashes the
    whole folder: a mixed-in task may read it too, and a hash of fewer files would change every
    finished build's.
    """
    if not data or not Path(data).expanduser().is_dir():
        return None
    root = Path(data).expanduser()
    if task is None:
        return tree_sha256(root, DATA_FILES, users=True)
    folder = root / get_task(task).name
    tables = sorted(p for p in folder.glob("*") if p.suffix in DATA_FILES and p.is_file())
    return content_hash(
        {lang: tree_sha256(folder / lang, DATA_FILES, users=True) for lang in sorted(set(langs))},
        {table.name: file_sha256(table) for table in tables},
    )


def build_inputs(config: Any) -> dict[str, Any]:
    """The content a build reads beyond its settings: local data files, the tokenizer of its
    token statistics, and each mixed-in task's data, definition and template. Empty for a
    plain synthetic build, so earlier steps' hashes stay as they were."""
    inputs: dict[str, Any] = {}
    found = data_identity(config.data)  # the whole folder: a mixed-in task may read it too
    if found:
        inputs["data"] = found
    if config.tokenizer:  # the token statistics in the manifest are its; mslt-it's own
        # models are what their name and mslt-it's version make (a dry run makes none)
        name = str(config.tokenizer)
        inputs["tokenizer"] = {"name": name} if is_named_model(name) else tokenizer_identity(name)
    parts = mixture_parts(config)[1:]  # each part's settings, its template's id filled in
    for number, (part, settings) in enumerate(zip(config.mixture, parts, strict=True)):
        inputs[f"mixture.{number}"] = {
            "data": data_identity(getattr(part, "data", None)),  # else the recipe's, above
            "definition": user_definition(get_task(part.task)),
            "template": get_template(str(settings.template), settings.prompts_dir).sha256,
        }
    return inputs


TEMPLATE_FILES = (".yaml", ".yml", ".jinja")
"""The files of a prompt folder (``prompts_dir``) whose content a template is made of."""


def eval_inputs(eval_config: Any, models: list[Path | str]) -> dict[str, Any]:
    """The content an evaluation reads beyond its settings: the models' files (or Hub
    revisions), local data, the suites' and tasks' definition files, and the user's template
    folders (the template an evaluation renders through, and its shipped neighbours, are
    mslt-it's version)."""

    definitions = {}
    tasks = [eval_config.task] if eval_config.task else []
    for reference in eval_config.suite:
        definitions[f"suite {reference}"] = text_file_sha256(
            resolve_suite_path(reference), "eval.suite"
        )
        tasks.append(load_suite(reference).task)
    for name in tasks:
        where = get_task(name).extra.get("definition")
        definitions[f"task {name}"] = text_file_sha256(where, "task") if where else None
    inputs = {
        "models": [model_identity(model) for model in models],
        "data": data_identity(eval_config.data),
        "definitions": definitions,
    }
    if any(get_task(name).kind == "ner" for name in tasks):  # the others' steps stay done
        inputs["entity_scoring"] = ENTITY_SCORING
    if eval_config.prompts_dir:  # only then: an evaluation without its own stays as it was
        inputs["prompts"] = {
            folder: tree_sha256(Path(folder).expanduser(), TEMPLATE_FILES, users=True)
            for folder in eval_config.prompts_dir
            if Path(folder).expanduser().is_dir()
        }
    return inputs


def dataset_fingerprint(folder: Path) -> str | None:
    """The built dataset's fingerprint, or None while it is not built (or not finished)."""
    manifest = folder / "manifest.json"
    if not (folder / MARKER).is_file() or not manifest.is_file():
        return None
    fingerprint = (read_json(manifest) or {}).get("fingerprint")
    return fingerprint if isinstance(fingerprint, str) else None


def train_step(recipe: Recipe, run: Run, root: Path, model_path: Path | str) -> Step:
    data_dir = root / "data" / run.run_id
    output = root / "adapters" / run.run_id  # the folder name is the run's name in evaluation

    def input_hash() -> str | None:
        fingerprint = dataset_fingerprint(data_dir)
        if fingerprint is None:
            return None
        train = recipe.train.model_dump(mode="json")
        model = recipe.model.model_dump(mode="json")
        inputs = train_inputs(recipe, run.sources)
        return content_hash(
            "train", fingerprint, model, train, model_identity(model_path),
            *([inputs] if inputs else []),
        )  # fmt: skip

    def execute() -> None:
        run_training(recipe, data_dir, model_path, output)

    def upstream() -> dict[str, Any]:
        return read_by_training(data_dir)

    return Step(
        "train", [run], output, input_hash, execute, upstream=upstream,
        prepare=lambda: ensure_model(recipe, model_path),
    )  # fmt: skip


TRAINING_READS = ("fingerprint", "task", "sources", "template", "counts", "format")
"""What a training takes from its dataset's manifest: the rows (their fingerprint) and what
its run.json records for evaluation (the template's id and digest, the format)."""


TEMPLATE_PLACE = ("path", "prompts_dirs")
"""Where a manifest's template was read from: moving the prompt folder moves it, the rows and
their digest stay."""


def read_by_training(folder: Path) -> dict[str, Any]:
    """The part of a built dataset a training depends on. A dataset built again with all of it
    the same (after an edit to another language's data file, or the data folder moved) leaves
    its training done: a build takes seconds, a training hours."""
    manifest = read_json(folder / "manifest.json") or {}
    config = manifest.get("config") or {}
    read = {key: manifest.get(key) for key in TRAINING_READS}
    if isinstance(read["template"], dict):  # where its file was found is no part of it
        read["template"] = {k: v for k, v in read["template"].items() if k not in TEMPLATE_PLACE}
    return read | {
        "system_prompt": config.get("system_prompt"),
        "split": config.get("split"),  # of the held-out rows
    }


def chat_template_sha256(recipe: Recipe) -> str | None:
    """The content of the file the recipe's ``model.chat_template`` names (as training reads
    it: a ``.jinja`` or ``.j2`` path), or None when it names none."""
    template = recipe.model.chat_template
    if isinstance(template, str) and template.endswith((".jinja", ".j2")):
        return text_file_sha256(template, "model.chat_template")
    return None


def train_inputs(recipe: Recipe, sources: Iterable[str] | None = None) -> dict[str, Any]:
    """The content a training reads beyond its dataset and settings: a chat template file, each
    watched task's local rows (its languages' files in ``train.watch[].data``, else in the
    recipe's data folder), and the local rows its held-out loss is measured on
    (``train.eval_langs``: rows the dataset does not hold, so its fingerprint does not cover
    them). Empty when there is none, so earlier steps' hashes stay as they were."""
    inputs: dict[str, Any] = {}
    template = chat_template_sha256(recipe)
    if template is not None:
        inputs["chat_template"] = template
    for number, watch in enumerate(recipe.train.watch):
        # the watched languages' files only: another language's edit costs a build, not every
        # training of the grid
        found = data_identity(watch.data or recipe.config.data.data, watch.task, watch.langs)
        if found:
            inputs[f"watch.{number}"] = found
        own = watch_files(recipe, watch)
        if own:
            inputs[f"watch.{number}.files"] = own
    train, data = recipe.train, recipe.config.data
    heldout = train.heldout_rows and (train.eval_langs or train.sft.get("eval_steps") is not None)
    if sources is None:  # every run's
        sources = sorted({lang for run in recipe.runs for lang in run.sources})
    langs = [*sources, *train.eval_langs]
    found = data_identity(data.data, data.task, langs) if heldout else None
    if found:  # held-out rows: the sources' unused rows and eval_langs', read when training
        inputs["heldout"] = found
    return inputs


def watch_files(recipe: Recipe, watch: Any) -> dict[str, str]:
    """A watched task's own files, where they are the user's: its definition (``tasks_dir``)
    and the template it is scored through (from ``data.prompts_dir``; the build's own task is
    scored through the build's template, which the dataset's fingerprint covers). Shipped ones
    are mslt-it's version, so a recipe with a shipped watch hashes as before."""
    found: dict[str, str] = {}
    task = get_task(watch.task)
    definition = user_definition(task)
    if definition:
        found["definition"] = definition
    data = recipe.config.data
    if task.name != get_task(data.task).name and data.prompts_dir:
        template = get_template(default_template(task.name), data.prompts_dir).user_sha256
        if template is not None:
            found["template"] = template
    return found


def adapter_hash(folder: Path) -> str | None:
    marker = folder / MARKER
    if not marker.is_file():
        return None
    recorded = (read_json(marker) or {}).get("input_hash")
    return recorded if isinstance(recorded, str) else None


def eval_step(recipe: Recipe, root: Path, model_path: Path | str) -> Step:
    output = root / "eval"
    adapters = {run.run_id: root / "adapters" / run.run_id for run in recipe.runs}

    def input_hash() -> str | None:
        hashes = {run_id: adapter_hash(folder) for run_id, folder in adapters.items()}
        if any(h is None for h in hashes.values()):
            return None
        settings = hashed_settings(recipe.eval)
        inputs = eval_inputs(recipe.eval, [model_path])
        template = chat_template_sha256(recipe)
        if template is not None:  # the base model is evaluated with it too
            inputs["chat_template"] = template
        model = recipe.model.model_dump(mode="json")
        return content_hash("eval", hashes, model, settings, inputs)

    def execute() -> None:
        run_evaluation(recipe, model_path, adapters, output)

    def upstream() -> dict[str, str]:
        # each file's digest is remembered by its stat key: a dry run does not re-read weights
        return {run_id: tree_sha256(folder, WEIGHT_FILES) for run_id, folder in adapters.items()}

    return Step(
        "eval", [], output, input_hash, execute, upstream=upstream,
        prepare=lambda: ensure_model(recipe, model_path),
        reopen=lambda: reopen_evaluation(output),
    )  # fmt: skip


def compare_step(recipe: Recipe, root: Path, model_path: Path | str) -> Step:
    """The recipe's base model and ``eval.compare_models`` side by side, adapters aside."""
    output = root / "models"
    named = [m for m in recipe.eval.compare_models if is_named_model(m)]
    models = [
        str(model_path),
        *(
            str(named_model_folder(m)) if is_named_model(m) else m
            for m in recipe.eval.compare_models
        ),
    ]

    def input_hash() -> str:
        settings = hashed_settings(recipe.eval)
        inputs = eval_inputs(recipe.eval, models)
        model = recipe.model.model_dump(mode="json")
        return content_hash("compare", models, model, settings, inputs)

    def prepare() -> None:
        ensure_model(recipe, model_path)
        for name in named:  # mslt-it:tiny-world as a model to compare, as in model.name_or_path
            ensure_named_model(name, named_model_folder(name))

    def execute() -> None:
        config = recipe.eval.model_copy(
            update={"adapters": [], "include_base": False, "compare_models": []}
        )
        compare_models(config, models, output, update=True)  # reopened: what changed

    return Step(
        "compare", [], output, input_hash, execute, prepare=prepare,
        reopen=lambda: reopen_comparison(output),
    )  # fmt: skip


def report_step(recipe: Recipe, root: Path) -> Step:
    output = root / "report"
    eval_dir = root / "eval"

    def input_hash() -> str | None:
        upstream = adapter_hash(eval_dir)
        if upstream is None:
            return None
        config = recipe.config  # what report.md prints of the recipe besides the results
        shown = {  # the recipe as the file it is: `rec/x.yaml` and `/abs/rec/x.yaml` are one
            "name": config.name,
            "description": config.description,
            "recipe": str(Path(recipe.path).resolve()),
        }
        return content_hash("report", upstream, hashed_settings(config.report), shown)

    def execute() -> None:
        from mslt_it.report import write_report  # keep: SciPy, language ID and plots load here

        write_report([eval_dir], output, recipe=recipe)

    def upstream() -> dict[str, str]:
        results = {
            path.relative_to(eval_dir).as_posix(): file_sha256(path, field="report")
            for path in sorted(eval_dir.rglob("results.json"))
            if not in_hidden_folder(path.relative_to(eval_dir))  # as report reads them
        }
        return {**results, **analysis_files_beside(eval_dir)}

    return Step("report", [], output, input_hash, execute, upstream=upstream)


def analysis_files_beside(eval_dir: Path) -> dict[str, str]:
    """The files of each ``mslt-it analyze`` output beside the experiment's evaluation
    (``runs/x/analysis``), by their digests: the report shows such an analysis of an evaluated
    adapter (:func:`mslt_it.report_results.analyses_beside`), so an analysis added or made again
    there left the report done, with the old numbers and pictures. A folder of the same layout
    that analyze did not write is not shown, nor counted. Keys lie outside the evaluation
    (``../analysis/pca.png``), so a report with no analysis beside it keeps its record."""
    found: dict[str, str] = {}
    for document in sorted(eval_dir.resolve().parent.glob("*/analysis.json")):
        folder = document.parent
        if read_sealed_json(document, ANALYSIS_KIND) is None:
            continue
        for name in ADOPTABLE_FILES["analysis"]:  # analysis.json and the pictures it records
            path = folder / name
            if path.is_file() and not path.is_symlink():
                found[f"../{folder.name}/{name}"] = file_sha256(path, field="report")
    return found


def run_training(recipe: Recipe, data_dir: Path, model_path: Path | str, output: Path) -> None:
    """Train one adapter (``mslt-it train`` with the recipe's settings); resumes a killed run.

    A killed run of an earlier version of the recipe is replaced: the folder is this
    experiment's, and its settings changed (a finished one would be ``stale``).
    """
    from mslt_it.training.run import train  # keep: TRL and PEFT load here

    model = recipe.model.model_copy(update={"name_or_path": str(model_path)})
    config = recipe.train.model_copy(update={"dataset": str(data_dir)})
    train(model, config, output, resume=True, replace_other=True)


def run_evaluation(
    recipe: Recipe, model_path: Path | str, adapters: dict[str, Path], output: Path
) -> None:
    """Evaluate every adapter of the grid in one engine (the base model loads once)."""

    config = recipe.eval.model_copy(  # the models to compare are the compare step's
        update={
            "model": str(model_path),
            "adapters": [str(a) for a in adapters.values()],
            "compare_models": [],
        }
    )
    evaluate(config, output, restart_changed=True)  # a killed run of other settings: redo it


RECIPE_COPY = "recipe.yaml"
"""The copy of the recipe an experiment folder keeps: the one file its root holds itself (each
step's folder carries its own marker)."""


def recipe_inputs(recipe: Recipe) -> list[str]:
    """Every file or folder the recipe reads (relative paths from the working directory, as
    the steps read them): the experiment is written inside none of them."""
    data, evaluation = recipe.config.data, recipe.eval
    inputs = [str(recipe.path), recipe.model.name_or_path, *recipe.config.tasks_dir]
    inputs += [*data.prompts_dir, *(part.data for part in data.mixture if part.data)]
    inputs += [watch.data for watch in recipe.train.watch if watch.data]
    if evaluation is not None:
        inputs += [evaluation.data, *evaluation.prompts_dir]
    # the model and the template folders are no data: a blank one is theirs to refuse
    return [path for path in [data.data, *inputs] if path and is_data_folder(path)]


def check_experiment_folder(recipe: Recipe) -> None:
    """The recipe's output folder can be the experiment's: new, empty, or an earlier run of a
    recipe (its marker says so: never guessed from what it holds), not an input nor inside
    one, writable. Checked before the plan is shown, so a dry run says what the run would
    refuse, and the refusal is the only line."""
    root = recipe.output_dir
    field = f"{recipe.path}: output_dir (or --out)"
    check_destination(root, field=field, inputs=recipe_inputs(recipe))
    check_host(root, "experiment", field)  # not in an adapter or a dataset, not in another one
    kind = owner_kind(root) if root.is_dir() else None
    if root.is_dir() and holds_anything(root) and kind != "experiment":
        if kind:
            raise MsltError(
                f"{field}: {str(root)!r} holds an mslt-it {kind}, not an experiment of a "
                "recipe; choose another folder"
            )
        raise MsltError(  # mslt-it's outputs inside (an experiment's adapters/) or the user's
            f"{field}: {str(root)!r} holds files mslt-it did not write as an experiment (no "
            f"experiment's {OWNER_FILE}); choose another folder (an experiment of an older "
            "mslt-it: `mslt-it adopt FOLDER --kind experiment`)"
        )
    _check_recipe_copy(recipe, field)
    _check_same_recipe(recipe, field)


def _check_same_recipe(recipe: Recipe, field: str) -> None:
    """An experiment is a recipe's: one of another name sharing its ``output_dir`` replaced
    its evaluation and report without a word and left its adapters beside. An edited recipe
    keeps its name, and runs on."""
    copy = recipe.output_dir / RECIPE_COPY
    if not copy.is_file() or copy.is_symlink():
        return
    try:
        earlier = parse_yaml(read_text_file(copy, field), str(copy))
    except MsltError:
        return  # not a recipe that could be read: the copy's own check answers for it
    name = earlier.get("name") if isinstance(earlier, dict) else None
    if isinstance(name, str) and name != recipe.config.name:
        raise MsltError(
            f"{field}: {str(recipe.output_dir)!r} holds the experiment of the recipe named "
            f"{clipped(name, 60)}, not {clipped(recipe.config.name, 60)}; choose another "
            "folder, or keep the recipe's name"
        )


def _check_recipe_copy(recipe: Recipe, field: str) -> None:
    """The experiment's ``recipe.yaml`` is replaced only when the marker lists it unchanged or
    it holds what would be written anyway: a copy the user edited there is theirs."""
    copy = recipe.output_dir / RECIPE_COPY
    if not copy.exists() and not copy.is_symlink():
        return
    if copy.is_file() and not copy.is_symlink():
        text = recipe.text
        if copy.stat().st_size <= 2 * len(text.encode("utf-8")) and (
            copy.read_text(encoding="utf-8", errors="replace") == text
        ):
            return
        listed = (read_json(recipe.output_dir / OWNER_FILE) or {}).get("files")
        if not isinstance(listed, dict):  # a marker of a version that listed no files
            return  # vouches for its kind's files, recipe.yaml among them
        if fingerprint_matches(copy, listed.get(RECIPE_COPY)):  # this one file, not the tree
            return
    raise MsltError(
        f"{field}: {str(copy)!r} is not the copy of a recipe mslt-it wrote (edited since?); "
        "move it out of the folder, mslt-it keeps its copy of the recipe there"
    )


def claim_experiment_folder(recipe: Recipe) -> None:
    """The recipe's output folder: new, empty, or an earlier run of a recipe (never the user's),
    marked as an experiment (its marker lists the recipe's copy and nothing else: files the user
    keeps there stay theirs).

    Not locked as a whole: a Slurm array runs one task per run in it at once; each step locks
    its own folder.
    """
    check_experiment_folder(recipe)
    recipe.output_dir.mkdir(parents=True, exist_ok=True)
    mark_owner(recipe.output_dir, "experiment", patterns=(RECIPE_COPY,))


def record_recipe_copy(recipe: Recipe) -> None:
    """Write the copy of the recipe whose steps just finished: ``recipe.yaml`` is the recipe of
    the last run that completed. Written when the run started, a run that then stopped (another
    process held a step, a user's file was in the way) left its recipe beside the results of
    another."""
    text = recipe.text
    coming = {RECIPE_COPY: "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()}
    # Marked first, the copy listed before it is written: a kill between the two leaves a
    # folder the next run knows as an experiment (a copy written first, unmarked, would not be).
    mark_owner(recipe.output_dir, "experiment", patterns=(RECIPE_COPY,), coming=coming)
    atomic_write_text(recipe.output_dir / RECIPE_COPY, text)


def clear_outputs_to_redo(steps: list[Step]) -> None:
    """Remove, before any step runs (and after each build, for the steps after it), every
    finished output that will be made again (:func:`to_redo`): a step made from other inputs
    (stale), or one whose earlier step is to be redone (waiting). Left
    until its turn, an old report would look current after a kill between the training and
    the report, although its numbers came from the adapters before the edit.

    The steps of every run as well as those this run makes: ``--only RUN`` retrains one
    adapter, and the evaluation and report of the old one are stale from then on, whether or
    not a later run makes them again (another run's own steps are left to it). Each is
    removed under its lock, and looked at again there: the tasks of a Slurm array clear them
    at once, so a held one is waited for briefly (:data:`CLEAR_WAIT_SECONDS`), then named."""
    redo = check_outputs_to_redo(steps)
    for step in redo:
        _remove_when_free(step)


def check_outputs_to_redo(steps: list[Step]) -> list[Step]:
    """The finished outputs among ``steps`` to be made again, once each is proven removable.

    Every folder is looked at before any is removed: a file of the user's found in the
    report's folder stopped the run after the adapter was gone, beside the report of it, and a
    read-only folder did the same."""
    finished = [(step, step.status()) for step in steps if (step.output / MARKER).is_file()]
    redo = [step for step, status in finished if to_redo(step, status)]
    for step in redo:
        check_nothing_foreign(step.output, f"{step.title}: output")
    for step, status in finished:  # one waiting for builds may be removed after them: proven now
        if status in ("stale", "waiting"):
            check_removable(step.output, f"{step.title}: output")
    return redo


def check_model_folder(recipe: Recipe, model_path: Path | str) -> None:
    """The folder of the recipe's tiny model, if it holds another model or an edited one, is
    replaced by the first training: checked before any stale step is removed."""
    name = recipe.model.name_or_path
    if is_named_model(name):
        check_replaceable(name, Path(model_path))


def check_plan_can_start(plan: Plan, only: str | None = None) -> None:
    """What would stop the run after it removed something, said before it removes anything
    (and by ``--dry-run``)."""
    check_model_folder(plan.recipe, plan.model_path)
    check_compared_models_first(plan, plan.select(only))
    check_outputs_to_redo(steps_to_clear(plan, only))
    check_new_outputs(plan.select(only))


def check_new_outputs(steps: list[Step]) -> None:
    """A step to be made whose output folder holds files and no marker of mslt-it's is refused
    when its turn comes (they are the user's): said before anything runs, and by ``--dry-run``,
    naming the step. It was said after the other runs' builds and trainings, as ``--out`` and
    ``--overwrite``, options ``mslt-it run`` does not have."""
    for step in steps:
        out = step.output
        if not out.is_dir() or out.is_symlink() or (out / MARKER).is_file():
            continue
        if owner_kind(out) is None and holds_anything(out):
            check_nothing_foreign(out, f"{step.title}: output")


def steps_to_clear(plan: Plan, only: str | None) -> list[Step]:
    """The steps whose stale outputs a run removes before it starts: every step, or with
    ``--only RUN`` that run's and those of every run (the evaluation, the report), never another
    run's adapter (edited settings left it stale; its own task makes it again)."""
    steps = plan.select(only)
    return [step for step in plan.steps if step in steps or not step.runs]


def check_compared_models_first(plan: Plan, steps: list[Step]) -> None:
    """Each model of ``eval.compare_models`` loads, when the comparison is to run: one missing
    offline was named after every build, training and evaluation of the recipe had run."""
    if not any(step.name == "compare" and step.status() != "done" for step in steps):
        return
    for number, name in enumerate(plan.recipe.eval.compare_models):
        if not is_named_model(name):  # mslt-it's own are made when the step runs
            check_model_reachable(
                name, plan.recipe.model.trust_remote_code, f"eval.compare_models.{number}"
            )


def to_redo(step: Step, status: Status | None = None) -> bool:
    """Whether a finished step will be made again: made from other inputs, or after an earlier
    step that will be. Except while it waits only for datasets to be built again: a rebuilt
    dataset with the same rows and template leaves its training done, so the training (and
    what was made from it) is looked at again once the builds it waits for have run."""
    status = step.status() if status is None else status  # given: computed already
    return status == "stale" or (status == "waiting" and not waits_for_builds_only(step))


def waits_for_builds_only(step: Step) -> bool:
    """Whether every earlier step ``step`` waits for is a build, or a finished step that waits
    only for builds. A step that recorded nothing of what it read from a build (a marker of an
    earlier version) cannot be told the same afterwards: it is redone as before."""
    pending = [earlier for earlier in step.after if earlier.status() != "done"]
    if not pending:
        return False  # waiting on its own missing input (an adapter without its record)
    for earlier in pending:
        if earlier.name == "build":
            recorded = read_json(step.output / MARKER) or {}
            if step.upstream is None or "upstream" not in recorded:
                return False
        elif not (
            (earlier.output / MARKER).is_file()
            and earlier.status() == "waiting"
            and waits_for_builds_only(earlier)
        ):
            return False
    return True


CLEAR_WAIT_SECONDS = 30.0
"""How long clearing a stale output waits for another process that holds it: long enough for
another task of the array clearing it too, not for an evaluation being written (that is said)."""


def _remove_when_free(step: Step) -> None:
    field = f"{step.title}: output"
    deadline = time.monotonic() + CLEAR_WAIT_SECONDS
    while True:
        try:
            with output_lock(step.output, field):
                if (step.output / MARKER).is_file() and to_redo(step):
                    undo_output(step, field)
                return
        except OutputBusy as busy:
            if time.monotonic() > deadline:
                raise MsltError(
                    f"{field} {str(busy.out)!r} is to be made again, but another mslt-it process"
                    f"{busy.holder} is using it; wait for it to finish"
                ) from None
            time.sleep(0.2)


def undo_output(step: Step, field: str) -> None:
    """Take back a finished output that is to be made again: reopened (:attr:`Step.reopen`)
    where the step keeps what is unchanged, otherwise removed whole. Either way only once
    nothing of the user's is in it, and its record goes first: a kill in between leaves a step
    to do, never one done from the old inputs."""
    check_nothing_foreign(step.output, field)
    (step.output / MARKER).unlink(missing_ok=True)
    if step.reopen is None or not step.reopen():
        remove_own_output(step.output, field)


def check_lora_targets_first(plan: Plan, steps: list[Step]) -> None:
    """A LoRA target the model lacks (``target_modules: [q_proj, qv_proj]``) is named before
    the first step, not when the first training starts after every dataset was built (with a
    large corpus, hours). Checked on the model's empty module tree, when a training is to run
    and the model is at hand: a folder, a Hub id, or a tiny model this experiment made."""
    if not any(step.name == "train" and step.status() != "done" for step in steps):
        return
    model = plan.model_path
    if isinstance(model, Path) and not (model / "config.json").is_file():
        return  # a tiny model not made yet: made by its first training, checked there
    lora = lora_settings(plan.recipe.train)
    check_lora_targets(
        str(model),
        plan.recipe.model.trust_remote_code,
        lora.get("target_modules"),
        lora.get("modules_to_save"),
        lora.get("target_parameters"),
        lora.get("layers_to_transform"),
    )


def why_waiting(step: Step, made: frozenset[str] = frozenset()) -> str:
    """Why a step of this run still waits when its turn comes: an earlier step it ran became
    stale again (its inputs were edited while the run went on), or one was not run. ``made``:
    the steps this run made, which another process can only have undone since."""
    for earlier in step.after:
        status = earlier.status()
        if status == "waiting":
            return why_waiting(earlier, made)
        if status == "todo" and earlier.title in made:
            return (
                f"{earlier.title}, made by this run, was removed or made again by another "
                "process meanwhile (another `mslt-it run` of an edited recipe?); run the recipe "
                "again"
            )
        if status == "stale":
            return (
                f"{earlier.title} is stale again: its inputs changed while this run went on; "
                "run the recipe again"
            )
        if status == "todo":
            return f"{earlier.title} has not run; run the recipe again"
    return "an earlier step has not finished; run the recipe again"


@contextlib.contextmanager
def holding_what_it_reads(step: Step) -> Iterator[None]:
    """Hold the outputs of the steps ``step`` reads (a training's dataset) while it runs and is
    marked done: another ``mslt-it run`` of the edited recipe rebuilt the dataset while this
    one trained on the old rows, and the adapter was marked done from the new ones. That
    process now waits for them, then is named (:func:`clear_outputs_to_redo`)."""
    with contextlib.ExitStack() as held:
        for earlier in step.after:
            held.enter_context(output_lock(earlier.output, f"{earlier.title}: output"))
        yield


def execute_plan(
    plan: Plan, only: str | None = None, on_step: Callable[[Step, str], None] | None = None
) -> None:
    """Run every step that is not done (or only one run's), in order. ``on_step(step,
    what)`` is told of each step as it is skipped, started and done."""
    expect(plan, Plan, "plan", "a mslt_it.runner.Plan (make_plan(recipe) makes one)")
    if only is not None:
        expect(only, str, "only", "a run's id")
    if on_step is not None and not callable(on_step):  # checked before the folder is claimed
        raise MsltError(f"on_step: got {given(on_step)}; expected a function (step, what)")
    use_recipe_tasks_dirs(plan.recipe.path, plan.recipe.config.tasks_dir)  # its own tasks
    steps = plan.select(only)
    claim_experiment_folder(plan.recipe)
    check_lora_targets_first(plan, steps)
    check_compared_models_first(plan, steps)
    check_model_folder(plan.recipe, plan.model_path)
    check_new_outputs(steps)
    ours = steps_to_clear(plan, only)
    clear_outputs_to_redo(ours)
    made: set[str] = set()
    for step in steps:
        status = step.status()
        if status == "done":
            if on_step:
                on_step(step, "skipped (done)")
            continue
        if status == "waiting":
            raise MsltError(f"{step.title}: {why_waiting(step, frozenset(made))}")
        if status == "stale":  # made from other inputs (again, since the clearing above):
            _remove_when_free(step)  # under its lock, as a Slurm task beside may write it
        if on_step:
            on_step(step, "running")
        try:
            with holding_what_it_reads(step):
                if step.prepare is not None:
                    step.prepare()
                made_from = step.input_hash()
                step.execute()
                step.mark_done(made_from)
        except OutputBusy as busy:  # the user named no folder: the step did
            raise MsltError(
                f"{step.title}: {str(busy.out)!r} is in use (being written, or read by a "
                f"training) by another mslt-it process{busy.holder}, perhaps another `mslt-it "
                "run` of this recipe; wait for it to finish"
            ) from None
        made.add(step.title)
        if on_step:
            on_step(step, "done")
        if step.name == "build":  # what waited for it is now done, or to be made again
            clear_outputs_to_redo(ours[ours.index(step) + 1 :])
    record_recipe_copy(plan.recipe)
