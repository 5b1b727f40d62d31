"""Plan an evaluation before any model is loaded: what to run, on which rows, with which prompts.

Planning resolves the suites (task, split, languages), reads the adapters' run.json and checks
them against ``--model``, chooses each run's template and chat template (the ones training used,
unless the user explicitly overrides), and opens every language's split, so that every mistake a
user can make is reported in one line before minutes go into loading a model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mslt_it.config import blank_is_none
from mslt_it.errors import MsltError, allowed
from mslt_it.evaluation.adapters import Adapter, adapter_names, check_base_model, read_adapter
from mslt_it.evaluation.config import EvalConfig
from mslt_it.evaluation.prompting import ChatFormat, stop_token_ids
from mslt_it.evaluation.store import RunStore
from mslt_it.evaluation.suites import load_suite
from mslt_it.generation.base import dtype_name, resolve_dtype, run_device
from mslt_it.identity import model_identity, rows_sha256
from mslt_it.modeling import check_base_model_folder, load_tokenizer, model_load_errors
from mslt_it.peft_adapters import ADAPTER_CONFIG
from mslt_it.progress import progress_bar
from mslt_it.prompts import PromptTemplate, get_template
from mslt_it.tasks import check_languages, default_template, get_task
from mslt_it.tasks.base import Row, Task
from mslt_it.tasks.definitions import identity_sha256
from mslt_it.tasks.sources import check_split, open_split
from mslt_it.tasks.synthetic import sample_row

DEFAULT_MAX_TOKENS = {"classification": 32, "ner": 160, "multiple_choice": 16, "instructions": 64}


@dataclass(frozen=True)
class TaskPlan:
    """One task to evaluate: which split and languages, and the suite's default template."""

    task: Task
    suite: str
    split: str
    languages: tuple[str, ...]
    default_template: str | None
    max_tokens: int


@dataclass
class RunPlan:
    """One model variant (the base, or the base plus one adapter) and where it writes."""

    name: str
    adapter: Adapter | None
    folder: Path
    templates: dict[str, PromptTemplate]
    template_sources: dict[str, str]
    chat: ChatFormat
    store: RunStore | None = None
    seconds: float = 0.0
    predicted: int = 0


@dataclass
class EvalPlan:
    """Everything an evaluation needs before a model is loaded."""

    config: EvalConfig
    model: str
    trust_remote_code: bool
    tokenizer: Any
    stop_tokens: tuple[int, ...]
    tasks: list[TaskPlan]
    rows: dict[tuple[str, str], list[Row]]
    runs: list[RunPlan] = field(default_factory=list)
    model_identity: dict[str, Any] = field(default_factory=dict)
    context_length: int | None = None
    """Tokens the model attends to at most (None: unknown, nothing is cut)."""
    truncated: int = 0
    """Prompts cut to :attr:`context_length` so far (said once at the end)."""
    alike: dict[str, None] = field(default_factory=dict)
    """Rank-mode rows (by id) whose choices are the same text, so score alike (said once at
    the end: a tie goes to the first choice, and a row whose gold is first scored right)."""
    unlabelled: dict[tuple[str, str], int] = field(default_factory=dict)
    """Rows of each (task, language) split labelled -1, never scored: counted in results.json
    and said once, as ``build`` counts them (a score over 1 row of 100 looked like 100)."""
    clusters: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    """Row id -> cluster key, per (task, language) whose task has a ``cluster`` rule: computed
    with the rows, so a row the rule cannot read fails before anything is predicted."""


def plan_evaluation(config: EvalConfig, out: Path) -> EvalPlan:
    """Check everything that can be checked without a model, and decide what each run uses."""

    tasks = plan_tasks(config)
    names = adapter_names(config.adapters)
    require_run = not config.allow_template_mismatch
    adapters = [
        read_adapter(p, n, require_run) for p, n in zip(config.adapters, names, strict=True)
    ]
    if config.model:
        check_not_an_adapter(config.model)
    model = check_base_model(adapters, config.model)
    check_base_model_folder(model)  # a folder without weights: said before an engine starts
    trust = _trust_remote_code(config, adapters)
    rows, unlabelled = open_rows(tasks, config)
    tokenizer = load_tokenizer(model, trust_remote_code=trust, field="model")
    stops = list(stop_token_ids(model, tokenizer, trust))
    for adapter in adapters:  # training recorded the ids its labels ended with
        stops += [int(t) for t in (adapter.run or {}).get("stop_token_ids") or [] if t not in stops]
    plan = EvalPlan(config, model, trust, tokenizer, tuple(stops), tasks, rows)
    plan.unlabelled = unlabelled
    plan.clusters = cluster_keys(tasks, rows)
    plan.model_identity = model_identity(model)
    plan.context_length = model_context_length(model, tokenizer, trust)
    engine_length = (
        (config.vllm_args or {}).get("max_model_len") if config.backend == "vllm" else None
    )
    if isinstance(engine_length, int) and engine_length > 0:  # a vLLM engine made shorter
        plan.context_length = min(plan.context_length or engine_length, engine_length)
    check_answer_room(plan)
    # mslt-it cuts over-long prompts itself and says so once (runner.cut_to_context)
    getattr(tokenizer, "deprecation_warnings", {})[LONG_PROMPT_WARNING] = True
    variants: list[Adapter | None] = list(adapters)
    if not adapters or config.include_base:
        variants.insert(0, None)
    several = len(variants) > 1
    for adapter in variants:
        name = adapter.name if adapter else "base"
        folder = out / name if several else out
        plan.runs.append(plan_run(plan, adapter, adapters, name, folder))
    return plan


def check_answer_room(plan: EvalPlan) -> None:
    """In generate mode, an answer of ``max_tokens`` leaves room for the prompt in the model's
    context: one of the context's size cut every prompt to its last token, and the model
    answered a question it never saw."""
    if plan.config.mode != "generate" or plan.context_length is None:
        return
    for task_plan in plan.tasks:
        if task_plan.max_tokens >= plan.context_length:
            raise MsltError(
                f"max_tokens: {task_plan.max_tokens} ({task_plan.task.name}) leaves no room for "
                f"the prompt in the model's context ({plan.context_length} tokens); allowed: "
                f"1 to {plan.context_length - 1}, well below it"
            )


LONG_PROMPT_WARNING = "sequence-length-is-longer-than-the-specified-maximum"
"""transformers' warning (its key) for a text longer than the tokenizer's maximum length."""

CONTEXT_FIELDS = ("max_position_embeddings", "n_positions", "seq_length", "max_seq_len")
"""Where a model's config states its context length (Llama and most; GPT-2; others)."""


def model_context_length(model: str, tokenizer: Any, trust_remote_code: bool) -> int | None:
    """The model's context length from its config, else the tokenizer's ``model_max_length``
    when it states one (transformers puts a huge number there when it does not); None where
    neither says (ALiBi models such as BLOOM have no fixed length)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    except model_load_errors():  # the model's own load names it
        config = None
    for name in CONTEXT_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    stated = getattr(tokenizer, "model_max_length", None)
    return stated if isinstance(stated, int) and 0 < stated < 10_000_000 else None


def check_not_an_adapter(model: str) -> None:
    """A LoRA adapter folder given as the base model would be evaluated with the adapter applied
    (transformers loads it silently) but recorded as a base model: refuse, and say what to do."""
    folder = Path(model).expanduser()
    if (folder / ADAPTER_CONFIG).is_file() and not (folder / "config.json").is_file():
        base = read_adapter(folder, folder.name, False).base_model
        hint = f" --model {base}" if base else ""
        raise MsltError(
            f"model: {model!r} is a LoRA adapter, not a base model; evaluate it with "
            f"--adapter {model}{hint}"
        )


def definition_sha256(task: Task) -> str | None:
    """The content of the YAML file that defines ``task`` (shipped or a --tasks-dir's), its
    ``cluster`` and ``parallel`` lines aside: they are the task entry's own, which re-score and
    predict nothing (:func:`~mslt_it.tasks.definitions.identity_bytes`)."""
    where = task.extra.get("definition")
    return identity_sha256(where) if where else None


def plan_tasks(config: EvalConfig) -> list[TaskPlan]:
    """The tasks to evaluate, from the suites or from ``task`` + ``langs``."""
    if not config.suite and config.task is None:
        raise MsltError(
            "suite: give a suite (eval.suite, --suite) or a task with languages (eval.task and "
            "eval.langs, --task and --langs)"
        )
    if config.suite and config.task is not None:
        raise MsltError(f"task: give a suite or a task, not both (got task {config.task!r})")
    plans: list[TaskPlan] = []
    if config.task is not None:
        task = get_task(config.task)
        langs = config.langs or list(task.languages)  # lm-eval's default too: all of them
        if not langs:
            raise MsltError(f"langs: task {task.name} lists no languages; give --langs")
        split = config.split or evaluation_split(task)
        check_split(task, split)
        plans.append(_task_plan(config, task, task.name, split, langs, None))
    for reference in config.suite:
        suite = load_suite(reference)
        task = get_task(suite.task)
        split = config.split or suite.split
        check_split(task, split)
        outside = [lang for lang in config.langs or () if lang not in suite.languages]
        if outside:
            raise MsltError(
                f"langs: {outside[0]!r} is not one of suite {suite.name}'s languages; with a "
                f"suite, langs picks some of them: {allowed(suite.languages)}"
            )
        langs = config.langs or suite.languages
        plans.append(_task_plan(config, task, suite.name, split, langs, suite.template))
    seen = [p.task.name for p in plans]
    for name in seen:
        if seen.count(name) > 1:
            raise MsltError(f"suite: two suites evaluate task {name!r}; give one suite per task")
    return plans


EVALUATION_SPLITS = ("test", "eval", "validation", "dev")
"""The split ``eval`` reads by default: the first of these a task has (lm-evaluation-harness
also prefers a test split, then a validation split)."""


def evaluation_split(task: Task) -> str:
    """The split a task is evaluated on unless ``--split`` says otherwise."""
    for name in EVALUATION_SPLITS:
        if name in task.splits:
            return name
    others = [name for name in task.splits if name != "train"]
    return (others or list(task.splits) or ["test"])[0]


def _task_plan(
    config: EvalConfig,
    task: Task,
    suite: str,
    split: str,
    langs: Sequence[str],
    template: str | None,
) -> TaskPlan:
    check_languages(task, list(langs), field="langs")
    if config.mode != "generate" and task.kind in ("ner", "instructions"):
        raise MsltError(
            f"mode: {config.mode} scores label words, which task {task.name} does not have; "
            "use --mode generate"
        )
    if config.mode == "constrained" and task.kind == "multiple_choice":
        raise MsltError(
            f"mode: constrained decoding is for label words; for the multiple-choice task "
            f"{task.name} use --mode rank (each choice's likelihood) or --mode generate"
        )
    if config.mode == "constrained" and config.backend != "vllm":
        raise MsltError(
            "mode: constrained decoding needs --backend vllm (structured outputs); on hf use "
            "--mode rank, which scores every label word"
        )
    max_tokens = config.max_tokens or DEFAULT_MAX_TOKENS[task.kind]
    return TaskPlan(task, suite, split, tuple(langs), template, max_tokens)


def _trust_remote_code(config: EvalConfig, adapters: Sequence[Adapter]) -> bool:
    if config.trust_remote_code is not None:
        return config.trust_remote_code
    return any(adapter.trust_remote_code for adapter in adapters)


def open_rows(
    tasks: Sequence[TaskPlan], config: EvalConfig
) -> tuple[dict[tuple[str, str], list[Row]], dict[tuple[str, str], int]]:
    """The rows to evaluate per (task, language): the split's usable rows among its first
    ``limit`` (all without one); and how many of those rows were unlabelled (-1) and left out.
    The first ``limit`` rows of every language are the same items of a parallel benchmark: the
    first ``limit`` *labelled* rows were other items in a language with an unlabelled row."""
    rows: dict[tuple[str, str], list[Row]] = {}
    unlabelled: dict[tuple[str, str], int] = {}
    with progress_bar() as progress:
        bar = progress.add_task("loading data", total=sum(len(t.languages) for t in tasks))
        for plan in tasks:
            for lang in plan.languages:
                split = open_split(plan.task, lang, plan.split, config.data)
                count = len(split)
                dropped = split.dropped
                if config.limit is not None:
                    count = split.usable_among_first(config.limit)
                    dropped = min(config.limit, len(split) + split.dropped) - count
                if count == 0:
                    raise MsltError(
                        f"data: {split.origin} has no usable rows for {plan.task.name}/{lang}"
                        + (f" among its first {config.limit}" if config.limit else "")
                    )
                rows[(plan.task.name, lang)] = split.rows(list(range(count)))
                unlabelled[(plan.task.name, lang)] = dropped
                progress.advance(bar)
    return rows, unlabelled


def cluster_keys(
    tasks: Sequence[TaskPlan], rows: dict[tuple[str, str], list[Row]]
) -> dict[tuple[str, str], dict[str, str]]:
    """Each row's cluster key (row id -> key) per (task, language), for tasks with a rule."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for plan in tasks:
        cluster_of = plan.task.cluster_of
        if cluster_of is None:
            continue
        for lang in plan.languages:
            cell = (plan.task.name, lang)
            found[cell] = {row["id"]: cluster_of(row) for row in rows[cell]}
    return found


def plan_run(
    plan: EvalPlan, adapter: Adapter | None, adapters: Sequence[Adapter], name: str, folder: Path
) -> RunPlan:
    """The templates and chat format one run evaluates with."""
    templates: dict[str, PromptTemplate] = {}
    sources: dict[str, str] = {}
    for task_plan in plan.tasks:
        reference = adapter if adapter is not None else _shared_adapter(adapters)
        template, source = choose_template(task_plan, reference, plan.config, base=adapter is None)
        templates[task_plan.task.name], sources[task_plan.task.name] = template, source
    chat = choose_chat(plan, adapter, adapters)
    return RunPlan(name, adapter, folder, templates, sources, chat)


def _shared_adapter(adapters: Sequence[Adapter]) -> Adapter | None:
    """For the base run of a study: the adapters' template, when they all share one."""
    ids = {
        (a.template.get("id"), a.chat_template, blank_is_none(a.system_prompt)) for a in adapters
    }
    return adapters[0] if len(ids) == 1 else None


def choose_template(
    task_plan: TaskPlan, adapter: Adapter | None, config: EvalConfig, base: bool = False
) -> tuple[PromptTemplate, str]:
    """The template for a task: --template, else the adapter's run.json, else the suite's.

    A --template other than the adapter's, or a template file whose hash differs from run.json's,
    is an error unless --allow-template-mismatch: one template both ways.
    """
    task = task_plan.task.name
    recorded = adapter.template if adapter is not None else {}
    recorded_id = recorded.get("id")
    applies = recorded_id is not None and (
        adapter.task == task or (adapter.task is None and recorded_id.startswith(f"{task}/"))
    )
    if not applies:
        recorded_id = None
    strict = not config.allow_template_mismatch and not base
    if config.template is not None:
        if recorded_id and config.template != recorded_id and strict:
            raise MsltError(
                f"template: adapter {adapter.name} was trained with {recorded_id}, not "
                f"{config.template}; pass --allow-template-mismatch (a recipe's "
                "eval.allow_template_mismatch: true) to evaluate with another one"
            )
        chosen, source = config.template, "option"
    elif recorded_id:
        chosen, source = recorded_id, "run.json"
    elif task_plan.default_template:
        chosen, source = task_plan.default_template, "suite"
    else:
        chosen, source = default_template(task), "default"  # the one `build` defaults to
    template = get_template(chosen, config.prompts_dir)
    if template.spec.task != task:
        raise MsltError(f"template: {template.id} is a {template.spec.task} template, not {task}")
    for lang in task_plan.languages:
        template.check_language(lang)
    if config.mode == "generate":
        check_answers_are_words(template, task_plan.languages[0])
    recorded_sha = recorded.get("sha256") if recorded_id == chosen else None
    if recorded_sha and recorded_sha != template.sha256 and strict:
        raise MsltError(
            f"template: {template.path} changed since adapter {adapter.name} was trained (sha256 "
            f"{template.sha256[:12]}, run.json says {recorded_sha[:12]}); restore it, train again "
            "on it (a recipe's `mslt-it run` does), or evaluate anyway with "
            "--allow-template-mismatch (a recipe's eval.allow_template_mismatch: true)"
        )
    return template, source


def check_answers_are_words(template: PromptTemplate, lang: str) -> None:
    """Generate mode reads a label word in the output; a template whose answers are the choices'
    own texts (lm-eval's XCOPA or XStoryCloze prompt) can only be ranked."""

    task = template.task
    if task.kind != "multiple_choice":
        return
    row = sample_row(task, lang)
    words = template.verbalizer(lang)
    for index, label in enumerate(task.labels):
        if template.render(row, lang, label=index).answer != words[label].strip():
            raise MsltError(
                f"template: {template.id}'s answers are not its label words (they are the "
                "choices' texts), so a generated answer cannot be read; use --mode rank"
            )


def choose_chat(plan: EvalPlan, adapter: Adapter | None, adapters: Sequence[Adapter]) -> ChatFormat:
    """The run.json chat template and system prompt (the tokenizer's template for the base)."""
    config = plan.config
    reference = adapter if adapter is not None else _shared_adapter(adapters)
    chat_template = (reference.chat_template if reference else None) or getattr(
        plan.tokenizer, "chat_template", None
    )
    system = config.system_prompt
    if adapter is not None and adapter.run is not None:
        recorded = adapter.system_prompt
        changed = blank_is_none(system) != blank_is_none(recorded)
        if system is not None and changed and not config.allow_template_mismatch:
            raise MsltError(
                f"system_prompt: adapter {adapter.name} was trained with system prompt "
                f"{recorded!r}, not {system!r}; pass --allow-template-mismatch to change it"
            )
        system = recorded if system is None else system
    elif system is None and reference is not None:
        system = reference.system_prompt
    where = "chat template"
    if reference is not None and reference.chat_template:
        where = f"adapter {reference.name}: the chat template of its run.json"
    return ChatFormat(plan.tokenizer, chat_template, blank_is_none(system), where)


ANSWER_TOKENS = (
    "encoded after the prompt; plain contexts and choices unstripped; contexts sharing no token "
    "fed bare"
)
"""How rank mode tokenizes an answer (:meth:`ChatFormat.answer_ids`) and its contexts
(:mod:`.candidates`), in its runs' settings."""
PLAIN_TEXT = "unstripped"
"""A plain (lm-eval) template's text is kept as rendered, edge spaces and all (in its runs'
settings: an earlier mslt-it stripped it, in generate mode as in rank mode)."""


def precision(backend: str, dtype: str, device: str | None) -> dict[str, str]:
    """The dtype a run computes in (``auto`` resolved) and the kind of device it runs on: a run
    begun on a CPU (float32) and resumed on a GPU (bfloat16) would otherwise have mixed chunks
    of both under one identity, and two runs compared as evaluated alike."""
    import torch

    where = run_device(backend, device)
    return {
        "dtype": dtype_name(resolve_dtype(dtype, where)),
        "device": torch.device(where).type,
    }


def opened_precision(backend: Any) -> dict[str, str]:
    """:func:`precision` of a backend already open (``evaluate(backend=...)``): transformers'
    as its model was loaded, vLLM's as its options resolve; not the config's, which the caller
    may have opened it otherwise than."""
    import torch

    dtype, device = getattr(backend, "dtype", None), getattr(backend, "device", None)
    if dtype is not None and device is not None:
        return {"dtype": dtype_name(dtype), "device": torch.device(device).type}
    options = getattr(backend, "options", None)
    if options is None:  # a backend of the user's own, meeting the protocol and no more
        raise MsltError(
            "backend: the open backend says neither its dtype and device nor the options it "
            "was opened with; give it `dtype` and `device` attributes"
        )
    return precision(getattr(backend, "name", "hf"), options.dtype, options.device)


def prediction_settings(plan: EvalPlan, run: RunPlan, backend: Any = None) -> dict[str, Any]:
    """Everything that shapes a run's predictions (its resume identity), and nothing else.
    ``backend``: the open backend the caller gave, whose precision is the run's."""
    config = plan.config
    chat_template = run.chat.chat_template or ""
    settings: dict[str, Any] = {
        "model": plan.model,
        "adapter": run.adapter.summary() if run.adapter else None,
        "backend": config.backend,
        "mode": config.mode,
        "data": config.data,
        "limit": config.limit,
        **(
            opened_precision(backend)
            if backend is not None
            else precision(config.backend, config.dtype, config.device)
        ),
        "chunk_size": config.chunk_size,
        "chat_template_sha256": hashlib.sha256(chat_template.encode()).hexdigest(),
        "system_prompt": run.chat.system_prompt,
        "model_identity": plan.model_identity,
        "tasks": [
            {
                "task": t.task.name,
                "split": t.split,
                "languages": list(t.languages),
                "template": run.templates[t.task.name].id,
                "template_sha256": run.templates[t.task.name].sha256,
                "definition_sha256": definition_sha256(t.task),
                "rows_sha256": {
                    lang: rows_sha256(plan.rows[(t.task.name, lang)]) for lang in t.languages
                },
                "max_tokens": t.max_tokens,
                # which rows are resampled together: re-scores, predicts nothing (cell_identity)
                **({"cluster": t.task.extra["cluster"]} if t.task.extra.get("cluster") else {}),
                **({"parallel": True} if t.task.parallel else {}),
            }
            for t in plan.tasks
        ],
    }
    # where a prompt is cut, and where a generated answer stops (the study's adapters add
    # theirs; a set, in any order; rank mode generates nothing)
    settings["context_length"] = plan.context_length
    if config.mode != "rank":
        settings["stop_tokens"] = sorted(set(plan.stop_tokens))
    else:  # an earlier mslt-it tokenized an answer apart from its prompt (another ▁ for
        settings["answer_tokens"] = ANSWER_TOKENS  # SentencePiece) and stripped a plain
        # template's context and choice (lm-eval keeps their spaces): its scores are not these
    if any(template.plain for template in run.templates.values()):  # in any mode: a prompt
        settings["plain_text"] = PLAIN_TEXT  # an earlier mslt-it stripped is another prompt
    if config.backend == "hf":
        settings["batch_size"] = config.batch_size  # padding can move the last float bits
    else:
        settings["tensor_parallel_size"] = config.tensor_parallel_size
        settings["vllm_args"] = dict(config.vllm_args or {})  # quantization, max_model_len, …
    return settings
