"""Run an evaluation: plan it, predict chunk by chunk, score, and write the results.

:func:`evaluate` reads top to bottom:

1. **plan** (:mod:`.plan`): resolve the suites (task, split, languages), the adapters (their
   run.json, checked against ``--model``), and per adapter the template and chat template training
   used; open every language's split so an empty one fails before a model is loaded;
2. **predict**: open one backend for the whole study (the base model loads once; adapters are
   switched), and for every run, task and language, predict fixed-size chunks of examples, each
   saved as soon as it is done (a killed run resumes from there);
3. **score**: parse and score the predictions, and write ``predictions.jsonl`` and
   ``results.json`` (plus ``timings.json``) atomically.

One adapter (or none) writes into ``OUT``; several write ``OUT/<name>/`` each and ``OUT/study.json``
listing them (:func:`load_results` reads either layout).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it.arguments import checked_config, expect, flag_argument, given, path_argument
from mslt_it.data import library_versions
from mslt_it.errors import MsltError, clipped
from mslt_it.evaluation.candidates import row_candidates
from mslt_it.evaluation.config import EvalConfig
from mslt_it.evaluation.plan import (
    EvalPlan,
    RunPlan,
    TaskPlan,
    plan_evaluation,
    prediction_settings,
)
from mslt_it.evaluation.sanity import adapter_sanity
from mslt_it.evaluation.scoring import Record, check_records, parse_record, score_records
from mslt_it.evaluation.store import (
    CHUNKS,
    PREDICTIONS,
    RESULTS,
    SETTINGS,
    TIMINGS,
    RunStore,
    read_jsonl,
    reopen_run,
)
from mslt_it.generation import BackendOptions, open_backend
from mslt_it.identity import model_identity
from mslt_it.io import atomic_write_json, fingerprint_matches
from mslt_it.modeling import check_device
from mslt_it.outputs import (
    OWNER_FILE,
    STAGING,
    changed_files,
    check_nothing_foreign,
    claim_output,
    drop_derived_reports,
    fresh_staging,
    holds_anything,
    in_hidden_folder,
    listed_files,
    mark_finished,
    mark_owner,
    move_in_listed,
    owner_kind,
    remove_own_output,
)
from mslt_it.peft_adapters import weights_sha256
from mslt_it.progress import progress_bar
from mslt_it.prompts import PromptTemplate
from mslt_it.random_state import kept_random_state
from mslt_it.tasks import tasks_dirs
from mslt_it.tasks.base import Row, Task
from mslt_it.terminal import STDERR

STUDY = "study.json"


@dataclass(frozen=True)
class EvalOutcome:
    """What :func:`evaluate` wrote: run name -> its folder and results."""

    out: Path
    results: dict[str, dict[str, Any]]
    folders: dict[str, Path]


def unread_device_note(config: EvalConfig) -> str | None:
    """A recipe's ``eval.device`` with the vLLM backend, which places the model itself: said
    (by the evaluation and by ``run --dry-run``), not refused (``eval --device`` is), so that
    a recipe written for hf still loads."""
    if not config.device or config.backend == "hf":
        return None
    return (
        f"note: eval.device {config.device!r} is read by backend hf only; vLLM places the "
        "model itself (choose its GPUs with CUDA_VISIBLE_DEVICES)"
    )


@kept_random_state()  # a notebook's random streams are its own
def evaluate(
    config: EvalConfig,
    out: str | Path,
    overwrite: bool = False,
    backend: Any = None,
    restart_changed: bool = False,
    update: bool = False,
) -> EvalOutcome:
    """Evaluate the model (and adapters) in ``config`` and write the results under ``out``.

    ``backend``: an open backend to reuse (e.g. one vLLM engine across several evaluations in a
    notebook); it must hold this model's files, each adapter's weights under its name and the
    stop tokens the settings record (:func:`check_open_backend`), and is left open. By default
    one is opened for this call and closed at the end.

    ``overwrite`` replaces the whole earlier evaluation in ``out`` (refused if the folder holds a
    file mslt-it did not write); ``restart_changed`` (the recipe runner) makes a run whose inputs
    changed again instead of refusing it, predicting only the tasks and languages whose inputs
    changed, and drops the runs no longer asked for. ``update`` (``eval --update``) does that to
    the finished evaluation in ``out`` too, reopened first (:func:`reopen_evaluation`): a kill
    halfway leaves no results of the settings before beside those of the new ones.
    """
    config = expect(config, EvalConfig, "config", "a mslt_it.evaluation.EvalConfig")
    config = checked_config(config, "config")
    out = path_argument(out, "out")
    for name, flag in (("overwrite", overwrite), ("restart_changed", restart_changed),
                       ("update", update)):  # fmt: skip
        flag_argument(flag, name)
    if config.compare_models:  # the command line compares them; evaluate() left them out
        raise MsltError(
            "compare_models: evaluate() evaluates one model (and its adapters); compare models "
            "with mslt_it.evaluation.compare_models(config, models, out)"
        )
    if update and overwrite:
        raise MsltError("--update: give --update (keep what is unchanged) or --overwrite, not both")
    plan = plan_evaluation(config, out)
    if config.device and config.backend == "hf":
        check_device(config.device)  # before the output folder is touched
    if backend is not None:  # likewise: a wrong one was refused after --overwrite removed
        check_open_backend(plan, plan.runs, backend)  # the evaluation it would replace
    note = unread_device_note(config)
    if note:
        STDERR.print(note, highlight=False, soft_wrap=True)
    inputs = [plan.model, *config.adapters, config.data, *config.prompts_dir]
    inputs += tasks_dirs()[1:]  # the user's task definitions: read, never written into
    created = not out.exists()
    with claim_output(out, kind="evaluation", overwrite=overwrite, inputs=inputs, existing_ok=True):
        if overwrite and out.is_dir() and holds_anything(out):
            remove_own_output(out, "--out")  # the whole earlier evaluation goes
        check_unedited(out)
        check_no_comparison(out)
        if update and out.is_dir() and owner_kind(out) == "evaluation":
            check_nothing_foreign(out, "--out")  # the user's files stay, and stop it first
            said_reports_removed(out, drop_derived_reports(out, "--out"))
            reopen_evaluation(out)
            restart_changed = True
        if restart_changed:  # the recipe runner's evaluation, reopened to be made again
            drop_other_runs(plan, out)
        else:
            check_same_runs(plan, out)
        try:
            return _evaluate(plan, out, overwrite or restart_changed, backend, restart_changed)
        except MsltError:
            if created and not saved_predictions(out):
                shutil.rmtree(out, ignore_errors=True)  # a bad row, found before any work
            raise


def said_reports_removed(out: Path, names: Sequence[str]) -> None:
    """A note on the reports :func:`~mslt_it.outputs.drop_derived_reports` took away: made from
    the evaluation before, they would show its old numbers."""
    if names:
        shown = ", ".join(repr(str(out / name)) for name in names)
        STDERR.print(
            f"note: removed the report(s) {shown}, made from this evaluation before --update; "
            "run mslt-it report again",
            highlight=False,
            soft_wrap=True,
        )


def check_unedited(out: Path) -> None:
    """A finished evaluation's files are read again when it is run again (a seed or the
    bootstrap changed: it re-scores): one edited since it wrote them (predictions marked
    correct by hand) was scored and sealed as the evaluation's own, and an edited results.json
    was replaced without a word. An edited file is the user's: it is neither read nor
    replaced, by ``--overwrite`` neither (a removed one is left to the other checks)."""
    # every changed file: a removed one listed first hid an edited one after it
    edited = [n for n in changed_files(out) if (out / n).exists()] if out.is_dir() else []
    if edited:
        raise MsltError(
            f"--out: {str(out / edited[0])!r} was edited since this evaluation wrote it, so it is "
            "yours now and is neither read nor replaced; move it out of the folder or choose "
            "another --out"
        )


def check_no_comparison(out: Path) -> None:
    """An evaluation is not written into a comparison of several models (a folder per model,
    each an evaluation of its own, and ``comparison/``): the models' results stayed beside the
    new ones, and ``--update`` kept them too. ``--overwrite`` removed the comparison before."""
    if not out.is_dir():
        return
    models = sorted(
        child.name
        for child in out.iterdir()
        if child.is_dir() and not child.is_symlink() and owner_kind(child) == "evaluation"
    )
    if models:
        raise MsltError(
            f"--out: {str(out)!r} holds a comparison of several models ({', '.join(models)}); an "
            "evaluation of one model is not written into it: choose another --out, or pass "
            "--overwrite to replace the comparison"
        )


def check_same_runs(plan: EvalPlan, out: Path) -> None:
    """An earlier evaluation in ``out`` of other runs is not added to: one adapter evaluated
    there (its results at the top) and then the adapter with the base (a study, a folder per
    run) left results of two limits side by side, and two models evaluated there and then
    another pair kept the old model's results beside the new ones; a report read them all."""
    listed = listed_files(out) if out.is_dir() else None
    earlier = {
        Path(name).parent.as_posix()
        for name in listed or {}
        if Path(name).name == RESULTS and not in_hidden_folder(name)  # not a killed finish's
    }
    wanted = {run.folder.relative_to(out).as_posix() for run in plan.runs}
    if earlier and earlier != wanted:
        shown = ", ".join(sorted(name if name != "." else "one run at the top" for name in earlier))
        raise MsltError(
            f"--out: {str(out)!r} holds an evaluation of other runs ({shown}); pass --update "
            "to predict only what changed, --overwrite to evaluate again, or choose another --out"
        )


def reopen_evaluation(out: Path) -> bool:
    """Make a finished evaluation unfinished again, each run with the settings it was made with
    (:func:`.store.reopen_run`), so that making it again keeps what is unchanged: an adapter
    retrained, a language's rows edited or a language added re-predicts those alone, not
    every adapter on every language. False (and nothing changed) when its marker lists no
    files (an older version's): it is removed as before."""
    listed = listed_files(out)
    if listed is None:
        return False
    runs = {Path(name).parent for name in listed if Path(name).name == RESULTS}
    # a run's results: at the top (one run) or a folder down, never in a working folder
    folders = sorted(
        out / run for run in runs if len(run.parts) <= 1 and not in_hidden_folder(run / RESULTS)
    )
    for folder in folders:
        if folder.is_dir() and not folder.is_symlink():
            reopen_run(folder)
    if STUDY in listed:
        (out / STUDY).unlink(missing_ok=True)
    mark_finished(out, "evaluation")  # lists the chunks it holds now, not the results it held
    return True


def drop_other_runs(plan: EvalPlan, out: Path) -> None:
    """A reopened evaluation (:func:`reopen_evaluation`) keeps its runs' saved chunks; those of a
    run no longer in the plan (an adapter taken out of the recipe, the base model no longer
    evaluated) go, with their folder once empty: the files mslt-it names, nothing else."""
    if not out.is_dir():
        return
    wanted = {run.folder for run in plan.runs}
    candidates = [out, *(p for p in sorted(out.iterdir()) if p.is_dir() and not p.is_symlink())]
    for folder in candidates:
        if folder in wanted or folder.name in (CHUNKS, STAGING) or not (folder / CHUNKS).is_dir():
            continue
        if folder != out and owner_kind(folder) is not None:
            continue  # an output of its own inside (a comparison): its marker answers for it
        RunStore(folder, {}).drop_chunks()
        if folder != out:
            with contextlib.suppress(OSError):  # not empty: what else is there stays
                folder.rmdir()
    if len(plan.runs) == 1:
        listed = listed_files(out) or {}
        study = out / STUDY
        if STUDY in listed and fingerprint_matches(study, listed[STUDY]):
            study.unlink()


def saved_predictions(out: Path) -> bool:
    """Whether any chunk of predictions was saved under ``out`` (worth keeping to resume)."""
    return any(path.name != SETTINGS for path in out.rglob(f"{CHUNKS}/*"))


def _evaluate(
    plan: EvalPlan, out: Path, overwrite: bool, backend: Any, restart_changed: bool = False
) -> EvalOutcome:
    """:func:`evaluate` once ``out`` is checked and locked."""
    out.mkdir(parents=True, exist_ok=True)
    if not (out / OWNER_FILE).is_file():
        mark_owner(out, "evaluation")  # a killed study is still recognised as mslt-it's
    made_with = versions(plan.config.backend)
    for run in plan.runs:
        settings = prediction_settings(plan, run, backend)
        run.store = RunStore(run.folder, settings, made_with, plan.rows)
        run.store.prepare(overwrite=False, restart_changed=overwrite or restart_changed)
        if run.store.note:
            STDERR.print(f"note: {run.store.note}", highlight=False, soft_wrap=True)
    pending = [run for run in plan.runs if not run.store.is_complete()]
    if pending:
        predict_all(plan, pending, backend)
    if plan.truncated:
        STDERR.print(
            f"note: {plan.truncated} prompt(s) longer than the model's context "
            f"({plan.context_length} tokens, less the answer's room) were cut from the left, as "
            "lm-evaluation-harness does (counted among the prompts predicted now, not those "
            "kept from before); predictions.jsonl gives each its 'truncated' tokens",
            highlight=False,
            soft_wrap=True,
        )
    if plan.alike:
        shown = ", ".join(clipped(row, 60) for row in list(plan.alike)[:3])
        STDERR.print(
            f"note: {len(plan.alike)} row(s) give two choices the same text ({shown}"
            f"{', …' if len(plan.alike) > 3 else ''}); rank mode scores such choices alike, and "
            "a tie goes to the first choice, as lm-evaluation-harness's argmax does",
            highlight=False,
            soft_wrap=True,
        )
    for run in plan.runs:  # said once it was evaluated: a weights file that does not load
        if run.adapter is not None and run.adapter.edited_note:  # is its own one line
            STDERR.print(f"warning: {run.adapter.edited_note}", highlight=False, soft_wrap=True)
    dropped = {key: n for key, n in plan.unlabelled.items() if n}
    if dropped:
        STDERR.print(
            f"note: {sum(dropped.values())} unlabelled row(s) (label -1) left out, never scored: "
            + ", ".join(f"{task}/{lang} {n}" for (task, lang), n in dropped.items()),
            highlight=False,
            soft_wrap=True,
        )
    records = {run.name: gather_records(plan, run) for run in plan.runs}
    base = next((run for run in plan.runs if run.adapter is None), None)
    results: dict[str, dict[str, Any]] = {}
    # Written aside, listed in the marker, then moved in: a kill never leaves a results file
    # the marker does not vouch for (which --overwrite would call the user's).
    staged = fresh_staging(out)
    for run in plan.runs:
        sanity = None
        if base is not None and run.adapter is not None:
            sanity = adapter_sanity(records[run.name], records[base.name], base.name)
        into = staged / run.folder.relative_to(out)
        results[run.name] = finish_run(plan, run, records[run.name], sanity, into)
    if len(plan.runs) > 1:
        write_study(staged, plan, results)
    move_in_listed(out, staged, "evaluation")
    for run in plan.runs:
        run.store.drop_chunks()
    mark_finished(out, "evaluation")  # again, now listing every file it wrote
    return EvalOutcome(out, results, {run.name: run.folder for run in plan.runs})


# ------------------------------------------------------------------------------------ predict


def predict_all(plan: EvalPlan, runs: Sequence[RunPlan], backend: Any = None) -> None:
    """Open one backend for all pending runs and predict every chunk not already saved."""
    adapters = {run.adapter.name: run.adapter.path for run in runs if run.adapter is not None}
    if backend is not None:  # checked by evaluate() before the output folder was touched
        predict_runs(plan, runs, backend)
        return
    backend = open_study_backend(plan, adapters)
    try:
        predict_runs(plan, runs, backend)
    finally:
        backend.close()


def check_open_backend(plan: EvalPlan, runs: Sequence[RunPlan], backend: Any) -> None:
    """An open backend given to :func:`evaluate` must hold what the plan names: the same model
    files, each adapter's own weights under its name (names are folder names: two studies'
    ``final`` adapters collided, one's predictions recorded as the other's), and the stop
    tokens the settings record."""
    if isinstance(backend, str | bytes | int | float | os.PathLike):  # a backend's name: "hf"
        raise MsltError(
            f"backend: got {given(backend)}; expected an open backend "
            "(mslt_it.generation.open_backend(...)); choose hf or vllm with config.backend"
        )
    options = getattr(backend, "options", None)
    loaded = dict(getattr(options, "adapters", {}) or {})
    model = getattr(options, "model", None)
    if model is not None and model_identity(model) != plan.model_identity:
        raise MsltError(
            f"backend: the open backend holds the model {clipped(str(model), 80)}, not the "
            f"files of --model {clipped(plan.model, 80)}; open one for this model"
        )
    for run in runs:
        if run.adapter is None:
            continue
        path = loaded.get(run.adapter.name)
        if path is None:
            raise MsltError(f"backend: the open backend has no adapter named {run.adapter.name!r}")
        if weights_sha256(Path(path), "backend") != run.adapter.sha256:
            raise MsltError(
                f"backend: the open backend's adapter {run.adapter.name!r} "
                f"({clipped(str(path), 80)}) holds other weights than "
                f"{clipped(str(run.adapter.path), 80)}; open one with this adapter"
            )
    stops = getattr(backend, "stop_token_ids", None)
    if plan.config.mode != "rank" and stops is not None and set(stops) != set(plan.stop_tokens):
        raise MsltError(
            f"backend: the open backend stops at tokens {sorted(set(stops))}, this evaluation "
            f"at {sorted(set(plan.stop_tokens))} (the model's and the adapters' ends of turn, "
            "which its settings record); open it with stop_token_ids of those"
        )


def open_study_backend(plan: EvalPlan, adapters: dict[str, Path]) -> Any:
    """One backend holding the base model and every adapter of the study."""

    config = plan.config
    options = BackendOptions(
        model=plan.model,
        adapters=adapters,
        dtype=config.dtype,
        trust_remote_code=plan.trust_remote_code,
        batch_size=config.batch_size,
        device=config.device,
        tensor_parallel_size=config.tensor_parallel_size,
        engine_args=config.vllm_args,
        stop_token_ids=plan.stop_tokens,
        pad_token_id=plan.tokenizer.pad_token_id,
    )
    return open_backend(config.backend, options)


def predict_runs(plan: EvalPlan, runs: Sequence[RunPlan], backend: Any) -> None:
    """Predict every pending run in turn, behind one progress bar."""
    total = sum(len(rows) for rows in plan.rows.values()) * len(runs)
    with progress_bar() as progress:
        bar = progress.add_task("evaluating", total=total)
        for run in runs:
            predict_run(plan, run, backend, progress, bar)


def predict_run(plan: EvalPlan, run: RunPlan, backend: Any, progress: Any, bar: Any) -> None:
    """Predict one run's chunks in order, skipping those already on disk."""
    size = plan.config.chunk_size
    for task_plan in plan.tasks:
        task = task_plan.task.name
        for lang in task_plan.languages:
            rows = plan.rows[(task, lang)]
            progress.update(bar, description=f"{run.name} {task}/{lang}")
            for index, start in enumerate(range(0, len(rows), size)):
                chunk = rows[start : start + size]
                ids = [row["id"] for row in chunk]
                if run.store.load_chunk(task, lang, index, ids) is None:
                    began = time.perf_counter()
                    records = predict_chunk(plan, run, task_plan, lang, chunk, backend)
                    run.seconds += time.perf_counter() - began
                    run.predicted += len(records)
                    run.store.save_chunk(task, lang, index, records)
                progress.advance(bar, len(chunk))


def predict_chunk(
    plan: EvalPlan, run: RunPlan, task_plan: TaskPlan, lang: str, rows: Sequence[Row], backend: Any
) -> list[Record]:
    """Prompts for a chunk of rows, the backend's answers, and the parsed prediction records."""
    task = task_plan.task
    template = run.templates[task.name]
    mode = plan.config.mode
    if mode == "rank":
        return rank_chunk(plan, run, task, template, lang, rows, backend)
    adapter = run.adapter.name if run.adapter else None
    rendered = [template.render(row, lang) for row in rows]
    texts = [prompt_text(run, template, r.instruction) for r in rendered]
    prompts = encode_prompts(run, template, texts)
    if mode == "generate":
        what = f"--max-tokens: an answer of {task_plan.max_tokens} tokens"
        prompts, cut = cut_to_context(plan, prompts, task_plan.max_tokens, what)
        outputs = backend.generate(prompts, task_plan.max_tokens, adapter)
    else:
        candidates = [label_answers(template, task, row, lang) for row in rows]
        # Structured outputs may spell a choice in more tokens than its usual encoding, but
        # never in more than its bytes; the grammar ends the answer once a choice is complete.
        longest = max(len(a.encode("utf-8")) for c in candidates for a in c)
        what = f"{task.name}/{lang}: the longest choice (with its end)"
        prompts, cut = cut_to_context(plan, prompts, longest + 2, what)
        outputs = backend.choose(prompts, candidates, longest + 2, adapter)
    answers = plan.tokenizer.batch_decode(outputs, skip_special_tokens=True)
    records = [
        parse_record(
            base_record(task, lang, row, template, run, texts[i], answers[i].strip(), mode),
            template,
        )
        for i, row in enumerate(rows)
    ]
    return mark_truncated(records, cut)


def cut_to_context(
    plan: EvalPlan | None, prompts: list[list[int]], room: int, what: str
) -> tuple[list[list[int]], list[int]]:
    """Each prompt cut from the left to leave ``room`` tokens of the model's context for the
    answer, as lm-evaluation-harness does; with the tokens each lost. A prompt longer than the
    context would otherwise run past the model's positions (transformers) or be refused
    (vLLM). An answer that fills the context alone (``what`` names it) is refused, as
    lm-evaluation-harness asserts: it was scored past the model's positions, or was an
    internal error. Without a plan (a training's watch, whose prompts its ``max_length``
    bounds) nothing is cut."""
    if plan is None or plan.context_length is None:
        return prompts, [0] * len(prompts)
    if room >= plan.context_length:
        raise MsltError(
            f"{what} takes {room} tokens, and the model's context holds "
            f"{plan.context_length} with the prompt; it cannot be scored (shorten it, or use "
            "a model with a longer context)"
        )
    keep = plan.context_length - room
    cut = [max(0, len(ids) - keep) for ids in prompts]
    plan.truncated += sum(1 for n in cut if n)
    return [ids[n:] for ids, n in zip(prompts, cut, strict=True)], cut


def mark_truncated(records: list[Record], cut: Sequence[int]) -> list[Record]:
    """``truncated``: the prompt tokens a record's model never saw (only where some were cut)."""
    for record, n in zip(records, cut, strict=True):
        if n:
            record["truncated"] = n
    return records


def rank_chunk(
    plan: EvalPlan | None,
    run: RunPlan,
    task: Task,
    template: PromptTemplate,
    lang: str,
    rows: Sequence[Row],
    backend: Any,
) -> list[Record]:
    """Rank mode: every label's answer scored by log-likelihood, the best one is the output.

    Each row's contexts share one prompt that is fed once (:mod:`.candidates`); a multiple-choice
    record also keeps each choice's length, from which ``acc_norm`` is scored.
    """
    adapter = run.adapter.name if run.adapter else None
    requests = [row_candidates(template, task, row, lang, run.chat) for row in rows]
    if plan is not None:
        for row, request in zip(rows, requests, strict=True):
            pairs = list(zip(request.contexts, request.answers, strict=True))
            if len(set(pairs)) < len(pairs):
                plan.alike[str(row.get("id"))] = None
    cut = [0] * len(requests)
    for i, request in enumerate(requests):
        room = max(len(c) for c in request.continuations)
        what = f"{task.name}/{lang}: row {clipped(rows[i].get('id'), 60)}: its longest choice"
        (prompt,), (cut[i],) = cut_to_context(plan, [request.prompt], room, what)
        if cut[i]:
            requests[i] = replace(request, prompt=prompt)
    scores = backend.loglikelihood(
        [r.prompt for r in requests],
        [r.continuations for r in requests],
        adapter,
        skip=[r.skip for r in requests],
    )
    records = []
    for row, request, row_scores in zip(rows, requests, scores, strict=True):
        row_scores = [round(score, 6) for score in row_scores]  # as recorded and re-scored
        best = int(np.argmax(row_scores))  # a tie: the first in the task's order, as score's
        record = base_record(
            task, lang, row, template, run, request.contexts[0], request.answers[best].strip(),
            "rank",
        )  # fmt: skip
        record["scores"] = dict(zip(task.labels, row_scores, strict=True))
        if task.kind == "multiple_choice":
            record["choice_lengths"] = dict(zip(task.labels, request.norm_lengths, strict=True))
            if not request.shared_context:
                record["contexts"] = request.contexts
        records.append(parse_record(record, template))
    return mark_truncated(records, cut)


def prompt_text(run: RunPlan, template: PromptTemplate, instruction: str) -> str:
    """The text a model is given: the chat-formatted instruction, or a plain template's as is."""
    return instruction if template.plain else run.chat.prompt_text(instruction)


def encode_prompts(run: RunPlan, template: PromptTemplate, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of prompt texts (a plain prompt gets the tokenizer's own special tokens)."""
    if template.plain:
        return [list(ids) for ids in run.chat.tokenizer(list(texts))["input_ids"]]
    return run.chat.encode(texts)


def label_answers(template: PromptTemplate, task: Task, row: Row, lang: str) -> list[str]:
    """The template's answer for each label of a row, in the task's label order."""
    return [template.render(row, lang, label=i).answer for i in range(len(task.labels))]


def base_record(
    task: Task,
    lang: str,
    row: Row,
    template: PromptTemplate,
    run: RunPlan,
    prompt: str,
    output: str,
    mode: str,
) -> Record:
    """A prediction line before parsing."""
    record: Record = {
        "task": task.name,
        "lang": lang,
        "id": row["id"],
        "adapter": run.name,
        "template": template.id,
        "mode": mode,
        "prompt": prompt,
        "output": output,
        "gold": task.gold_label(row, lang),
    }
    if task.kind == "ner":
        record["tokens"] = list(row["tokens"])
        record["ner_tags"] = [int(t) for t in row["ner_tags"]]
    return record


# -------------------------------------------------------------------------------------- score


def gather_records(plan: EvalPlan, run: RunPlan) -> list[Record]:
    """A run's prediction records: its finished predictions.jsonl, or its saved chunks."""
    store = run.store
    if store.is_complete():  # re-scored, parsed again (:func:`results_document`): checked first
        records = read_jsonl(store.folder / PREDICTIONS)
        check_records(records, store.folder / PREDICTIONS)
        ours = {(task, template.id) for task, template in run.templates.items()}
        for number, record in enumerate(records, start=1):
            if (record["task"], record["template"]) not in ours:  # parsed with its template
                raise MsltError(
                    f"--out: {store.folder / PREDICTIONS} record {number}: task "
                    f"{clipped(record['task'], 40)} with template {clipped(record['template'], 60)}"
                    " is not one this evaluation runs; the file was changed after it was written"
                )
    else:
        records = []
        for task_plan in plan.tasks:
            for lang in task_plan.languages:
                rows = plan.rows[(task_plan.task.name, lang)]
                size = plan.config.chunk_size
                for index, start in enumerate(range(0, len(rows), size)):
                    ids = [row["id"] for row in rows[start : start + size]]
                    chunk = store.load_chunk(task_plan.task.name, lang, index, ids)
                    if chunk is None:
                        raise MsltError(f"--out: chunk {index} of {lang} is missing; run again")
                    records.extend(chunk)
    return records


def finish_run(
    plan: EvalPlan,
    run: RunPlan,
    records: Sequence[Record],
    sanity: dict[str, Any] | None,
    into: Path,
) -> dict[str, Any]:
    """Score a run's records and write predictions and results ``into`` a folder aside (see
    :meth:`RunStore.finish`).

    ``sanity`` (:func:`.sanity.adapter_sanity` against the study's base model) goes into
    results.json as ``adapter_sanity``: an adapter equal to the base on every row is flagged.
    """
    store = run.store
    assign_clusters(plan, records)
    results = results_document(plan, run, records)
    if sanity is not None:
        results["adapter_sanity"] = sanity
    timings = None
    if run.predicted:
        timings = {
            "seconds_predicting": round(run.seconds, 3),
            "examples_predicted": run.predicted,
            "examples_per_second": round(run.predicted / run.seconds, 3),
        }
    elif not (store.folder / TIMINGS).is_file():  # resumed with every chunk already saved
        timings = {
            "examples_predicted": 0,
            "note": "nothing was predicted this time: every prediction was kept from an "
            "earlier run (interrupted, or made again with --update), whose timings were not kept",
        }
    store.finish(records, results, timings, into)
    return results


def assign_clusters(plan: EvalPlan, records: Sequence[Record]) -> None:
    """Set each record's ``cluster`` by its task's rule as it is now (a rule edited since the
    rows were predicted re-scores them), and take it from a task without one."""
    for record in records:
        key = plan.clusters.get((record["task"], record["lang"]), {}).get(record["id"])
        if key is None:
            record.pop("cluster", None)
        else:
            record["cluster"] = key


def results_document(plan: EvalPlan, run: RunPlan, records: Sequence[Record]) -> dict[str, Any]:
    """results.json: scores per task and language, averages, and what produced them."""
    config = plan.config
    templates = {t.id: t for t in run.templates.values()}
    sources = run.adapter.sources if run.adapter else []
    scored = score_records(
        records,
        lambda task, template_id: templates[template_id],
        seed=config.seed,
        samples=config.bootstrap_samples,
        sources=sources,
        reparse=True,  # a record's outcome is this version's reading of its output, never a
        world=config.data == "synthetic",  # saved `correct` (an adopted file's, set by hand)
    )
    tasks: dict[str, Any] = {}
    for task_plan in plan.tasks:
        name = task_plan.task.name
        template = run.templates[name]
        tasks[name] = {
            "suite": task_plan.suite,
            "split": task_plan.split,
            "max_tokens": task_plan.max_tokens,
            "template": {
                "id": template.id,
                "sha256": template.sha256,
                "source": run.template_sources[name],
                "verbalizers": {lang: template.verbalizer(lang) for lang in task_plan.languages},
            },
            **scored[name],
        }
        if task_plan.task.valid_label_ids is not None:  # where -1 means unlabelled
            tasks[name]["unlabelled_left_out"] = {
                lang: plan.unlabelled.get((name, lang), 0) for lang in task_plan.languages
            }
    settings = run.store.settings
    return {
        "kind": "mslt-it eval results",
        "run": run.name,
        # the run's identity, as its resume settings (plan.prediction_settings) hold it
        **{key: settings[key] for key in RESULT_IDENTITY},
        "bootstrap": {"samples": config.bootstrap_samples, "seed": config.seed, "level": 0.95},
        "tasks": tasks,
        "versions": versions(config.backend),
    }


RESULT_IDENTITY = (
    "model",
    "adapter",
    "backend",
    "mode",
    "data",
    "limit",
    "dtype",
    "chat_template_sha256",
    "system_prompt",
)


def versions(backend: str) -> dict[str, str]:
    """Library versions that shape predictions (vLLM's own, whichever wheel provided it)."""

    found = library_versions(("peft", "seqeval"))
    if backend == "vllm":
        try:  # asked before the engine starts: a missing vLLM is the engine's one-line error
            import vllm
        except ImportError:
            return found
        found["vllm"] = str(vllm.__version__)
    return found


def write_study(out: Path, plan: EvalPlan, results: dict[str, dict[str, Any]]) -> None:
    """``OUT/study.json``: the runs of a multi-adapter evaluation and their headline averages."""
    runs = {}
    for run in plan.runs:
        runs[run.name] = {
            "folder": run.name,
            "adapter": str(run.adapter.path) if run.adapter else None,
            "averages": {
                task: {
                    "metric": data["metric"],
                    "unweighted": data["average"]["unweighted"],
                    "targets": data["average_targets"]["unweighted"],
                }
                for task, data in results[run.name]["tasks"].items()
            },
        }
    atomic_write_json(
        out / STUDY, {"kind": "mslt-it eval study", "model": plan.model, "runs": runs}
    )


def load_results(out: str | Path) -> dict[str, dict[str, Any]]:
    """Run name -> results.json of an eval folder, single-run or study layout alike."""
    import json

    out = Path(out)
    if (out / STUDY).is_file():
        study = json.loads((out / STUDY).read_text(encoding="utf-8"))
        return {
            name: json.loads((out / run["folder"] / RESULTS).read_text(encoding="utf-8"))
            for name, run in study["runs"].items()
        }
    if (out / RESULTS).is_file():
        results = json.loads((out / RESULTS).read_text(encoding="utf-8"))
        return {results.get("run", "base"): results}
    raise MsltError(f"results: {str(out)!r} has neither {STUDY} nor {RESULTS}")
