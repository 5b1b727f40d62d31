"""``mslt-it train``: fine-tune a base model on a built dataset with TRL's SFTTrainer and LoRA.

:func:`train` reads top to bottom: open the dataset, settle the chat template and the configs,
look at the output folder (skip, resume or refuse), drop over-long examples, load the model,
let TRL prepare the data, check TRL's labels, train, save, and write ``run.json``.

Data-parallel runs are ``accelerate launch -m mslt_it train …``: every process runs this same
function, the Trainer shards batches and synchronises gradients, and only the main process
writes files (the Trainer guards its own saves; :func:`on_main` guards ours).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mslt_it.arguments import checked_config, expect, flag_argument, path_argument
from mslt_it.built_data import use_task_of
from mslt_it.data import check_data_files_inside, load_manifest, manifest_mismatch
from mslt_it.errors import MsltError, first_line, joined_lines
from mslt_it.files import check_regular_files, kind_of
from mslt_it.identity import DATA_FILES, model_identity, rows_sha256, tree_sha256
from mslt_it.modeling import load_tokenizer
from mslt_it.named_models import base_model_name, resolve_model_name
from mslt_it.outputs import (
    STAGING,
    check_nothing_foreign,
    claim_output,
    first_changed,
    fresh_staging,
    owner_kind,
)
from mslt_it.paths import check_folder_text
from mslt_it.progress import (
    library_bars_quieted,
    progress_enabled,
    training_progress_callback,
)
from mslt_it.random_state import kept_random_state
from mslt_it.tasks import tasks_dirs_kept
from mslt_it.terminal import STDERR
from mslt_it.training import checks, curves, outputs
from mslt_it.training.chat import has_generation_markers, resolve_chat_template, stop_token_ids
from mslt_it.training.config import (
    BEST_CHECKPOINT_FIELDS,
    NON_DETERMINING_SFT_FIELDS,
    ModelConfig,
    TrainConfig,
    config_hash,
    legacy_config_hash,
    lora_settings,
    sft_settings,
)
from mslt_it.training.heldout import heldout_dataset
from mslt_it.training.model import (
    check_lora_targets,
    compute_dtype,
    load_base_model,
    require_bitsandbytes,
    trainable_parameters,
)
from mslt_it.training.record import (
    checkpoint_step,
    hub_revision,
    last_logged_loss,
    lora_record,
    loss_history,
    peak_memory_mb,
    sft_differences,
    versions,
    whole_run_loss,
)
from mslt_it.training.watch import (
    WatchPlan,
    plan_watch,
    watch_callback,
    watch_record,
    watched_files,
)

METRIC_ROWS = 256  # rows the answer-token loss/accuracy is measured on


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did: the run record, and whether an identical finished run was found."""

    out: Path
    run: dict[str, Any]
    skipped: bool = False


@dataclass
class Prepared:
    """A dataset folder opened for training."""

    path: str
    manifest: dict[str, Any]
    rows: Any  # datasets.Dataset


@dataclass
class Plan:
    """Everything settled before the output folder is looked at: what the run *is*."""

    data: Prepared
    eval_data: Prepared | None
    fmt: str
    tokenizer: Any
    chat_template: str
    args: Any  # trl.SFTConfig
    lora: dict[str, Any]
    determining: dict[str, Any]
    config_hash: str
    heldout: Any = None  # datasets.Dataset of unused rows per language, or None
    heldout_counts: dict[str, int] | None = None
    watch: WatchPlan | None = None
    legacy_hash: str = ""  # the same run as versions before whole numbers hashed it
    notes: list[str] = dataclasses.field(default_factory=list)
    """What the run changed of its settings, said once the output is decided: said while the
    run was planned, a note came before an error about the output folder."""


@dataclass
class Checked:
    """A trainer whose prepared data passed every check, and what the checks counted."""

    trainer: Any
    rows: Any
    eval_rows: Any
    stop_ids: set[int]
    overlength: checks.OverlengthReport
    trl_dropped: dict[str, int]
    labels: checks.LabelReport
    tracker: curves.LanguageTracker | None = None
    hook: Any = None


def train(
    model_config: ModelConfig,
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    replace_other: bool = False,
) -> TrainResult:
    """Fine-tune ``model_config``'s base on ``config.dataset`` into the folder ``out``.

    ``replace_other``: replace a run of another configuration found in ``out`` (see
    :func:`mslt_it.training.outputs.decide`), and train again one whose last checkpoint
    cannot be resumed exactly (:func:`start_over`); a user's files in it still stop the run.
    """
    model_config = expect(model_config, ModelConfig, "model_config", MODEL_CONFIG)
    config = expect(config, TrainConfig, "config", TRAIN_CONFIG)
    model_config = checked_config(model_config, "model_config")
    config = checked_config(config, "config")
    out = path_argument(out, "out")
    for name, flag in (
        ("resume", resume),
        ("overwrite", overwrite),
        ("replace_other", replace_other),
    ):
        flag_argument(flag, name)
    model_config = with_named_model(model_config)
    inputs = [config.dataset, config.eval_dataset, model_config.name_or_path]
    lock = claim_output if launched_as_main() else _no_lock  # only the main process writes
    existed = out.exists()
    # the seeds TRL sets (train.sft.seed) and the library bars it would draw are this call's
    # only: a notebook's random streams and bars are as they were once it returns
    with (
        kept_random_state(),
        library_bars_quieted(),
        tasks_dirs_kept(),  # the dataset's own task definition, known for this call only
        lock(
            out, kind="adapter", overwrite=overwrite, inputs=inputs, field="--out", existing_ok=True
        ),
    ):
        try:
            return _train(
                model_config,
                config,
                out,
                resume=resume,
                overwrite=overwrite,
                replace_other=replace_other,
            )
        except BaseException:
            if launched_as_main() and not existed and out.is_dir() and outputs.holds_no_files(out):
                shutil.rmtree(out, ignore_errors=True)  # stopped before writing anything
            raise


MODEL_CONFIG = "a mslt_it.training.ModelConfig, e.g. ModelConfig(name_or_path='models/tiny')"
TRAIN_CONFIG = "a mslt_it.training.TrainConfig, e.g. TrainConfig(dataset='runs/data')"


def with_named_model(model_config: ModelConfig) -> ModelConfig:
    """``model_config`` with one of mslt-it's model names (``mslt-it:tiny-world``) as the
    folder it is made in, as ``mslt-it train --model`` and a recipe take it: given to the
    library, the name was read as a Hub id. Any other name is checked and kept."""
    name = resolve_model_name(model_config.name_or_path, "model.name_or_path")
    if name == model_config.name_or_path:
        return model_config
    return ModelConfig.model_validate(model_config.model_dump() | {"name_or_path": name})


@contextlib.contextmanager
def _no_lock(out: Path, **_: Any) -> Iterator[Path]:
    yield out


def _train(
    model_config: ModelConfig,
    config: TrainConfig,
    out: Path,
    *,
    resume: bool,
    overwrite: bool,
    replace_other: bool,
) -> TrainResult:
    """:func:`train` once ``out`` is checked and locked."""
    plan = plan_run(model_config, config, out)
    action = decide_output(
        out,
        plan.config_hash,
        resume=resume,
        overwrite=overwrite,
        replace_other=replace_other,
        also=(plan.legacy_hash,),
        args=plan.args,
    )
    if action == "skip":
        if on_main() and (out / outputs.STARTED_FILE).exists():  # killed while tidying
            outputs.tidy(out, config.keep_checkpoints)
        return TrainResult(out, outputs.load_run(out), skipped=True)
    checkpoint = outputs.last_checkpoint(out) if action == "resume" else None
    if checkpoint is not None and not resumes_exactly(checkpoint, plan.args):
        action, checkpoint = start_over(out, checkpoint, replace_other), None
    if on_main():  # each process of a multi-GPU run plans: one says it
        for note in plan.notes:
            STDERR.print(note, highlight=False, soft_wrap=True)

    try:
        checked = checked_trainer(plan, model_config, config)
    except BaseException:
        if on_main():
            outputs.remove_empty_folders(out)  # the Trainer creates its folder on init
        raise
    resumed = action == "resume"
    prepare_output(out, action, plan.config_hash, plan.determining)  # the first write

    trainer = checked.trainer
    tokens_before = tokens_in_checkpoint(checkpoint)
    started = time.monotonic()
    try:
        if checkpoint is not None and 0 < trainer.args.max_steps <= checkpoint_step(checkpoint):
            result = take_final_checkpoint(trainer, checkpoint)
        else:
            result = trainer.train(resume_from_checkpoint=checkpoint)
    except BaseException as error:
        if on_main() and not resumed and outputs.last_checkpoint(out) is None:
            outputs.clear(out)  # failed before its first checkpoint: leave nothing behind
        if isinstance(error, KeyError) and BEST_METRIC_MISSING in str(error):
            raise unreported_metric(trainer) from None
        raise
    seconds = time.monotonic() - started
    if checked.hook is not None:
        checked.hook.remove()
    broken = not_finite_weights(trainer.model)
    if broken:  # an adapter of NaN was written and recorded as trained, exit 0
        if on_main() and not resumed:
            outputs.clear(out)
        raise MsltError(
            f"train: the training diverged: {broken:,} of the adapter's weights are NaN or "
            f"infinite after step {trainer.state.global_step} (learning rate "
            f"{trainer.args.learning_rate:g}); lower the learning rate"
            + ("" if resumed else "; nothing was kept")
        )
    # adapter + tokenizer (with its chat template), aside until finish() lists them
    trainer.save_model(str(fresh_staging(out) if on_main() else out / STAGING))

    run = run_record(plan, model_config, config, checked, checkpoint)
    if checkpoint is not None:
        run["sft"] = intervals_used(run["sft"], plan.args, trainer.state)
    session_tokens = trainer.state.num_input_tokens_seen - tokens_before
    run.update(
        {
            "steps": trainer.state.global_step,
            "tokens_seen": int(trainer.state.num_input_tokens_seen),
            "tokens_per_second": round(session_tokens / seconds, 2) if seconds > 0 else None,
            "train_seconds": round(seconds, 2),
            "peak_memory_mb": peak_memory_mb(),
            "final_loss": last_logged_loss(trainer.state.log_history),
            "loss_history": loss_history(trainer.state.log_history),
            "train_loss": finite_or_none(
                whole_run_loss(
                    trainer.state.log_history,
                    checkpoint_step(checkpoint),
                    float(result.training_loss),
                    trainer.state.global_step,
                )
            ),
            **answer_metrics(trainer, prepared_eval_rows(trainer, checked)),
            "config_hash": plan.config_hash,
        }
    )
    run.update(curve_record(plan, config, checked, trainer.state.log_history))
    if on_main():
        outputs.finish(out, run, config.keep_checkpoints)
    wait_for_everyone()
    return TrainResult(out, run)


def not_finite_weights(model: Any) -> int:
    """How many trainable weights (the adapter's) are NaN or infinite: a learning rate of
    1e30 trains every LoRA weight to NaN while the logged loss stays a number."""
    import torch

    return sum(
        int((~torch.isfinite(parameter.detach())).sum())
        for parameter in model.parameters()
        if parameter.requires_grad
    )


def plan_run(model_config: ModelConfig, config: TrainConfig, out: Path) -> Plan:
    """Open the data, settle the chat template and the TRL/PEFT configs, hash the result.

    Cheap on purpose (no weights are loaded) so that a finished run is skipped in seconds and a
    bad option fails before minutes of model loading.
    """
    if config.qlora:
        require_bitsandbytes()
    data = open_dataset(config.dataset, "train.dataset")
    eval_data = (
        open_dataset(config.eval_dataset, "train.eval_dataset") if config.eval_dataset else None
    )
    fmt = data.manifest.get("format", "prompt-completion")

    tokenizer = load_tokenizer(
        model_config.name_or_path, model_config.trust_remote_code, field="model"
    )
    chat_template = resolve_chat_template(tokenizer, model_config.chat_template)
    if fmt == "messages" and not has_generation_markers(chat_template):
        raise MsltError(
            "model.chat_template: messages data trains on the assistant's turns only, which needs "
            "{% generation %} markers in the chat template; this one has none (build the dataset "
            "with --format prompt-completion, or set model.chat_template: default)"
        )
    evaluating = bool(config.eval_langs) or config.sft.get("eval_steps") is not None
    if evaluating or config.watch:  # more of the dataset's rows are read: from its own task
        use_task_of(data.manifest, "train.dataset")
    heldout, heldout_counts = (
        heldout_dataset(data.manifest, data.rows, config.eval_langs, config.heldout_rows)
        if evaluating
        else (None, None)
    )
    notes: list[str] = []
    args = sft_arguments(config, out, fmt, evaluate=heldout is not None, notes=notes)
    watch = plan_watch(config.watch, data.manifest, tokenizer, chat_template, args.max_steps)
    lora = lora_settings(config)
    check_lora_targets(
        model_config.name_or_path,
        model_config.trust_remote_code,
        lora["target_modules"],
        lora.get("modules_to_save"),
        lora.get("target_parameters"),
        lora.get("layers_to_transform"),
    )
    determining = determining_config(
        model_config, config, data, eval_data, chat_template, lora, args
    )
    measured_on = curve_rows_sha256(heldout, watch)
    if measured_on is not None:  # a run without curves keeps its identity
        determining["curves"]["rows_sha256"] = measured_on
    scored_through = watched_files(watch, data.manifest.get("task"))
    if scored_through:  # a run watching only shipped tasks keeps its identity
        determining["curves"]["files_sha256"] = scored_through
    return Plan(
        data,
        eval_data,
        fmt,
        tokenizer,
        chat_template,
        args,
        lora,
        determining,
        config_hash(determining),
        heldout,
        heldout_counts,
        watch,
        legacy_config_hash(determining),
        notes,
    )


def checked_trainer(plan: Plan, model_config: ModelConfig, config: TrainConfig) -> Checked:
    """Drop over-long rows, load the model, let TRL prepare the data, and check TRL's labels."""
    lengths = checks.token_lengths(plan.data.rows, plan.tokenizer)
    rows, overlength = checks.apply_overlength_policy(
        plan.data.rows, lengths, config.max_length, config.on_overlength
    )
    kept_lengths = [n for n in lengths if config.on_overlength != "drop" or n <= config.max_length]
    eval_rows = None
    if plan.eval_data is not None:  # held-out rows are only measured: drop the long ones
        eval_lengths = checks.token_lengths(plan.eval_data.rows, plan.tokenizer)
        eval_rows, _ = checks.apply_overlength_policy(
            plan.eval_data.rows, eval_lengths, config.max_length, "drop"
        )

    heldout = None
    if plan.heldout is not None:
        heldout_lengths = checks.token_lengths(plan.heldout, plan.tokenizer)
        heldout, _ = checks.apply_overlength_policy(
            plan.heldout, heldout_lengths, config.max_length, "drop"
        )

    args = plan.args
    model = load_base_model(
        model_config.name_or_path,
        trust_remote_code=model_config.trust_remote_code,
        qlora=config.qlora,
        dtype=compute_dtype(args.bf16, args.fp16),
        gradient_checkpointing=args.gradient_checkpointing,
        init_kwargs=args.model_init_kwargs if isinstance(args.model_init_kwargs, dict) else None,
    )
    stop_ids = stop_token_ids(plan.tokenizer, model)
    if plan.fmt == "messages":
        checks.check_stop_token_template(plan.tokenizer, stop_ids)
    evaluated = eval_rows  # held-out rows are named, so their metrics say eval_heldout_loss
    if heldout is not None:
        evaluated = {"heldout": heldout, **({"eval": eval_rows} if eval_rows is not None else {})}
        if plateau_metric_unset(args, config):  # it looked for eval_loss, which is not there
            named = "eval" if eval_rows is not None else "heldout"  # --eval-dataset's first
            args.metric_for_best_model = f"eval_{named}_loss"
    trainer = make_trainer(model, plan.tokenizer, args, plan.lora, rows, evaluated)

    trl_dropped = checks.verify_lengths(
        trainer.train_dataset, rows, kept_lengths, config.max_length, config.packing
    )
    labels = checks.count_labels(trainer, stop_ids, plan.tokenizer)
    checks.check_labels(labels, stop_ids, plan.tokenizer)
    tracker, hook = watch_languages(trainer, plan, rows, heldout, eval_rows)
    return Checked(
        trainer, rows, eval_rows, stop_ids, overlength, trl_dropped, labels, tracker, hook
    )


def watch_languages(
    trainer: Any, plan: Plan, rows: Any, heldout: Any, eval_rows: Any
) -> tuple[curves.LanguageTracker, Any]:
    """Per-language losses, the trained mix and the transfer watch, attached to the trainer.

    A forward hook reads TRL's per-token losses (:mod:`.curves`); two callbacks write them, and
    the watch's accuracies, into the Trainer's log entries and TensorBoard.
    """
    prepared = trainer.eval_dataset
    pairs = [(trainer.train_dataset, rows)]
    if isinstance(prepared, dict):
        pairs += [(prepared.get("heldout"), heldout), (prepared.get("eval"), eval_rows)]
    elif prepared is not None:
        pairs.append((prepared, heldout if heldout is not None else eval_rows))
    langs = list(plan.data.manifest.get("counts") or {})
    index = curves.language_index(plan.tokenizer, plan.args.max_length, pairs, langs)
    index.verify(trainer.train_dataset, "curves")
    tracker = curves.LanguageTracker(index)
    hook = trainer.model.register_forward_hook(tracker.hook, with_kwargs=True)
    board = tensorboard_callback(trainer, plan.args)
    trainer.add_callback(curves.curves_callback(tracker, board))
    if plan.watch is not None:
        # First of all callbacks: with --epochs, its steps are checked against the run's length
        # at the start of training, before TensorBoard's (or any other logger's) writer starts
        # a thread that would write into the output folder as the error removes it.
        watch = watch_callback(plan.watch, plan.tokenizer, board)
        trainer.callback_handler.callbacks.insert(0, watch)
    return tracker, hook


def tensorboard_callback(trainer: Any, args: Any) -> Any:
    """The Trainer's TensorBoard callback, writing into ``OUT/tensorboard`` (kept after the run;
    the Trainer's default is under the checkpoints, which are removed)."""
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback):
            if callback.logging_dir is None:  # TENSORBOARD_LOGGING_DIR, when set, wins
                callback.logging_dir = str(Path(args.output_dir).parent / TENSORBOARD)
            return callback
    return None


TENSORBOARD = "tensorboard"


def curve_record(
    plan: Plan, config: TrainConfig, checked: Checked, history: list[dict[str, Any]]
) -> dict[str, Any]:
    """run.json's per-language curves, the mix trained on, the held-out rows and the watch."""
    from collections import Counter

    rows = dict(Counter(checked.rows["lang"]))
    sources = list(plan.data.manifest.get("sources") or [])
    found: dict[str, Any] = {
        "curves": curves.language_curves(history),
        "trained_mix": curves.trained_mix(history, rows, plan.data.manifest, config.mix_tolerance),
        "heldout": {"rows": plan.heldout_counts, "eval_langs": list(config.eval_langs)}
        if plan.heldout_counts
        else None,
        "watch": watch_record(plan.watch, sources),
    }
    if checked.tracker is not None and checked.tracker.index.ambiguous:
        found["trained_mix"]["ambiguous_examples"] = checked.tracker.index.ambiguous
    return found


def run_record(
    plan: Plan,
    model_config: ModelConfig,
    config: TrainConfig,
    checked: Checked,
    checkpoint: str | None,
) -> dict[str, Any]:
    """run.json's description of the run (the measurements are added after training)."""
    manifest = plan.data.manifest
    trainable, total = trainable_parameters(checked.trainer.model)
    return {
        "kind": "mslt-it run",
        "base_model": model_config.name_or_path,
        **base_model_name(model_config.name_or_path),  # mslt-it:tiny-world, made again if gone
        "base_model_revision": hub_revision(model_config.name_or_path),
        # what the base's files were: a moved or copied base is recognised by content
        "base_model_identity": plan.determining["base_model_identity"],
        "trust_remote_code": model_config.trust_remote_code,
        "dataset": dataset_record(
            plan.data, checked.rows, plan.determining["dataset_files_sha256"]
        ),
        "eval_dataset": dataset_record(
            plan.eval_data,
            checked.eval_rows,
            plan.determining.get("eval_dataset_files_sha256"),
        ),
        "template": manifest.get("template"),
        "format": plan.fmt,
        "system_prompt": manifest.get("config", {}).get("system_prompt"),
        "chat_template": plan.chat_template,
        "eos_token": plan.tokenizer.eos_token,
        "stop_token_ids": sorted(checked.stop_ids),
        "lora": lora_record(plan.lora, checked.trainer.model),
        "qlora": config.qlora,
        "max_length": config.max_length,
        "packing": config.packing,
        "sft": sft_differences(plan.args),
        "overlength": {**checked.overlength.as_json(), "dropped_by_trl": checked.trl_dropped},
        "label_check": checked.labels.as_json(),
        "parameters": {"trainable": trainable, "total": total},
        "world_size": plan.args.world_size,
        "resumed_from_step": checkpoint_step(checkpoint) if checkpoint else None,
        "versions": versions(),
    }


# ---------------------------------------------------------------------------------------------
# Inputs and configuration
# ---------------------------------------------------------------------------------------------


def open_dataset(path: str | None, field: str) -> Prepared:
    """A dataset from ``mslt-it build``: its manifest (required) and rows."""
    if not path:
        raise MsltError(
            f"{field}: no dataset given; pass --dataset DIR (a folder from mslt-it build)"
        )
    import datasets

    check_folder_text(str(path), field)  # read as ./~/…: "has no manifest.json" misled
    check_not_special(path, field)
    check_regular_files(path, field)  # datasets opens every file of the folder
    manifest = load_manifest(path, field)
    check_data_files_inside(path, field)
    changed = first_changed(Path(path))  # the manifest names the sources and task run.json records
    if changed is not None:
        raise MsltError(
            f"{field}: {changed} in {str(path)!r} was changed after `mslt-it build` wrote it; "
            "build the dataset again"
        )
    try:
        # in memory: TRL's map() calls would otherwise write cache-*.arrow files (several times
        # the data) into the input folder, which may be read-only or shared. Inputs are read-only.
        rows = datasets.load_from_disk(path, keep_in_memory=True)
    except Exception as error:  # datasets raises many kinds for a damaged folder
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise MsltError(f"{field}: cannot read the dataset in {path!r}: {reason}") from None
    if not isinstance(rows, datasets.Dataset):
        raise MsltError(f"{field}: {path!r} holds a DatasetDict, not a dataset from mslt-it build")
    needed = {"messages"} if manifest.get("format") == "messages" else {"prompt", "completion"}
    missing = sorted((needed | {"id", "lang"}) - set(rows.column_names))
    if missing:
        raise MsltError(f"{field}: {path!r} lacks the column(s) {', '.join(missing)}")
    if len(rows) == 0:
        raise MsltError(f"{field}: {path!r} has no examples")
    for column in sorted(needed):
        check_conversations(rows.data.table.column(column), column, f"{field}: {path!r}")
    if owner_kind(Path(path)) != "dataset":  # no marker vouches for the rows: they must be the
        mismatch = manifest_mismatch(rows, manifest)  # manifest's, whose sources run.json records
        if mismatch is not None:
            raise MsltError(f"{field}: {path!r}: {mismatch}; build the dataset again")
    return Prepared(path, manifest, rows)


def check_not_special(path: str, field: str) -> None:
    """A device or a FIFO given as the dataset is said to be one (it was "a file"), in the
    words :mod:`mslt_it.files` uses for one inside a folder."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # missing or unreadable: the manifest's reader says which
    if not stat.S_ISDIR(mode) and not stat.S_ISREG(mode):
        raise MsltError(
            f"{field}: {path!r} is {kind_of(mode)}; give the dataset's folder (what `mslt-it "
            "build` wrote into its --out)"
        )


def check_conversations(values: Any, column: str, where: str) -> None:
    """Every cell of ``column`` a list of ``{role, content}`` messages with text in both, as
    ``mslt-it build`` writes them. A dataset saved by other code with a number, a plain string
    or an empty cell there reached the chat template and stopped as a bug in mslt-it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = values.type
    listed = pa.types.is_list(kind) or pa.types.is_large_list(kind)
    struct = listed and pa.types.is_struct(kind.value_type)
    names = (
        {kind.value_type.field(i).name for i in range(kind.value_type.num_fields)}
        if struct
        else set()
    )
    if not {"role", "content"} <= names:
        raise MsltError(
            f"{where}: column {column!r} holds {kind}; mslt-it trains on conversations, each a "
            "list of {role, content} messages, as mslt-it build writes them"
        )
    if values.null_count:
        row = values.to_pylist().index(None)
        raise MsltError(f"{where}: column {column!r} is empty (null) on row {row}")
    empty = pc.equal(pc.list_value_length(values), 0)
    if pc.any(empty).as_py():
        row = pc.index(empty, True).as_py()
        raise MsltError(f"{where}: column {column!r} holds no message on row {row}")
    flat, parents = pc.list_flatten(values), pc.list_parent_indices(values)
    for name in ("role", "content"):
        part = pc.struct_field(flat, name)
        if not (pa.types.is_string(part.type) or pa.types.is_large_string(part.type)):
            raise MsltError(
                f"{where}: column {column!r}: a message's {name} holds {part.type}; it is text"
            )
        if part.null_count:
            first = pc.index(pc.is_null(part), True).as_py()
            raise MsltError(
                f"{where}: column {column!r} has a message without {name} on row "
                f"{parents[first].as_py()}"
            )


BEST_METRIC_MISSING = "`metric_for_best_model` training argument is set to"
"""Words of the Trainer's KeyError when no evaluation reports ``metric_for_best_model`` (for the
best checkpoint and for ``reduce_lr_on_plateau``): a setting the user chose, not a bug."""

TIMING_METRICS = ("_runtime", "_samples_per_second", "_steps_per_second")


def unreported_metric(trainer: Any) -> MsltError:
    """The user's ``metric_for_best_model`` named against what the evaluation just reported
    (read from the log the Trainer keeps, not from its message): the metrics depend on the
    evaluated sets' names and on TRL's version, so they are only known once one has run."""
    step = trainer.state.global_step
    reported = sorted(
        {
            key
            for entry in trainer.state.log_history
            if entry.get("step") == step
            for key, value in entry.items()
            if key.startswith("eval_") and not key.endswith(TIMING_METRICS)
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
    )
    wanted = trainer.args.metric_for_best_model
    return MsltError(
        f"train.sft.metric_for_best_model: {wanted!r} is not a metric this run's evaluations "
        f"report (at step {step}: {', '.join(reported) or 'none'}; a name without eval_ gets it)"
    )


def plateau_metric_unset(args: Any, config: TrainConfig) -> bool:
    """``reduce_lr_on_plateau`` steps on ``metric_for_best_model``, ``eval_loss`` unless set:
    with the held-out rows named, the losses are ``eval_heldout_loss`` (and ``eval_eval_loss``
    for ``--eval-dataset``), and the Trainer's lookup of ``eval_loss`` was an internal error."""
    schedule = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
    return schedule == "reduce_lr_on_plateau" and "metric_for_best_model" not in config.sft


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def bf16_available() -> bool:
    """bf16 mixed precision where the GPU supports it; fp32 on CPU (bf16 autocast is slow there)."""
    import torch

    return cuda_available() and bool(torch.cuda.is_bf16_supported())


def sft_arguments(
    config: TrainConfig,
    out: Path,
    fmt: str,
    evaluate: bool = False,
    notes: list[str] | None = None,
) -> Any:
    """The SFTConfig: the user's pass-through fields over mslt-it's defaults, plus what we own.

    ``evaluate``: held-out rows exist, so the Trainer evaluates them every ``eval_steps``
    (default: its ``logging_steps``) unless ``eval_strategy`` says otherwise.
    """
    from trl import SFTConfig

    settings = sft_settings(config)
    settings.setdefault("bf16", bf16_available() and not settings.get("fp16", False))
    settings.setdefault("disable_tqdm", not progress_enabled())
    settings.setdefault("dataloader_pin_memory", cuda_available())
    # Without a GPU, say so: TRL's bf16 default refuses to construct otherwise, and processes
    # started by `accelerate launch` only join one gloo group when the state is told "CPU".
    settings.setdefault("use_cpu", not cuda_available())
    # LoRA uses every trainable parameter in every step: no extra autograd traversal for DDP.
    settings.setdefault("ddp_find_unused_parameters", False)
    if evaluate:
        settings.setdefault("eval_strategy", "steps")
    owned = {
        "output_dir": str(out / outputs.CHECKPOINTS),
        "max_length": config.max_length,
        "packing": config.packing,
        "completion_only_loss": True if fmt == "prompt-completion" else None,
        "assistant_only_loss": fmt == "messages",
    }
    try:
        args = SFTConfig(**owned, **settings)
        aligned = logging_at_checkpoints(args)
        if aligned is None:
            return args
        if notes is not None:  # said by the caller once the output is decided
            notes.append(
                f"note: logging every {aligned} step{'s' * (aligned != 1)}, not "
                f"{args.logging_steps:g}, so that every "
                f"checkpoint (every {args.save_steps:g} steps) ends a logging window and a resumed "
                "run logs the losses an uninterrupted one does"
            )
        if evaluate and args.eval_strategy == "steps":  # evaluating as often as before
            settings.setdefault("eval_steps", args.eval_steps or args.logging_steps)
        return SFTConfig(**owned, **{**settings, "logging_steps": aligned})
    except (TypeError, ValueError) as error:  # TRL's checks: short, some over several lines
        raise MsltError(f"train.sft: {joined_lines(error)}") from None


def logging_at_checkpoints(args: Any) -> int | None:
    """A logging interval that divides the checkpoint interval, where the two do not align.

    The Trainer logs the mean loss of the steps since its last log, and a resumed run starts
    that window at its checkpoint: a checkpoint between two logs made the resumed run's next
    logged loss (and the per-language curves, and ``train_loss``) cover only the steps after
    it, while its weights equalled an uninterrupted run's. None: nothing to change (they
    align, or either interval is a ratio of the run or not by steps).
    """
    log, save = args.logging_steps, args.save_steps
    by_steps = (
        getattr(x, "value", x) == "steps" for x in (args.save_strategy, args.logging_strategy)
    )
    if not all(by_steps):
        return None
    if not (float(log).is_integer() and float(save).is_integer() and log >= 1 and save >= 1):
        return None
    if int(save) % int(log) == 0:
        return None
    return math.gcd(int(save), int(log))


def determining_config(
    model_config: ModelConfig,
    config: TrainConfig,
    data: Prepared,
    eval_data: Prepared | None,
    chat_template: str,
    lora: dict[str, Any],
    args: Any,
) -> dict[str, Any]:
    """Everything that decides what a run learns: its hash names the run."""
    ignored = NON_DETERMINING_SFT_FIELDS
    if args.load_best_model_at_end:  # the final adapter is one of the checkpoints saved
        ignored = ignored - BEST_CHECKPOINT_FIELDS
    sft = {k: v for k, v in sft_differences(args).items() if k not in ignored}
    return {
        "base_model": model_config.name_or_path,
        "base_model_identity": model_identity(model_config.name_or_path),
        "trust_remote_code": model_config.trust_remote_code,
        "dataset_fingerprint": data.manifest.get("fingerprint"),
        "dataset_files_sha256": tree_sha256(data.path, DATA_FILES),
        "eval_dataset_fingerprint": eval_data.manifest.get("fingerprint") if eval_data else None,
        # Only with an eval dataset, so the identity of a run without one is unchanged.
        **(
            {"eval_dataset_files_sha256": tree_sha256(eval_data.path, DATA_FILES)}
            if eval_data
            else {}
        ),
        "chat_template": chat_template,
        "lora": lora,
        "qlora": config.qlora,
        "sft": sft,
        "max_length": config.max_length,
        "on_overlength": config.on_overlength,
        "packing": config.packing,
        "world_size": args.world_size,
        # what run.json measures beside the weights: a run without them is another run
        "curves": {
            "eval_langs": list(config.eval_langs),
            "heldout_rows": config.heldout_rows,
            "watch": [spec.model_dump(mode="json") for spec in config.watch],
        },
    }


def curve_rows_sha256(heldout: Any, watch: WatchPlan | None) -> str | None:
    """The digest of the rows the curves are measured on: held-out rows are read from the
    task's files, watched rows from the watch's data, so an edit to either (a target
    language's file the build never read) changes what run.json measures, and the run."""
    rows: list[Any] = list(heldout) if heldout is not None else []
    for entry in watch.tasks if watch is not None else []:
        rows += [{"watch": entry.spec.task, "lang": lang, **row}
                 for lang, found in entry.rows.items() for row in found]  # fmt: skip
    return rows_sha256(rows) if rows else None


def dataset_record(
    data: Prepared | None, rows: Any, files_sha256: str | None
) -> dict[str, Any] | None:
    """The dataset block of run.json: where it is, what it is, how many rows were trained on.

    ``fingerprint`` is what the dataset's manifest says of itself (the build's settings);
    ``files_sha256`` is the digest of the data files the run read, the one its identity uses.
    """
    if data is None:
        return None
    from collections import Counter

    counts = Counter(rows["lang"]) if rows is not None else {}
    return {
        "path": str(Path(data.path).resolve()),
        "fingerprint": data.manifest.get("fingerprint"),
        "files_sha256": files_sha256,
        "task": data.manifest.get("task"),
        "sources": data.manifest.get("sources"),
        "counts": {lang: counts.get(lang, 0) for lang in data.manifest.get("counts", counts)},
    }


# ---------------------------------------------------------------------------------------------
# Output folder and processes
# ---------------------------------------------------------------------------------------------


def on_main() -> bool:
    """Whether this is the process that writes files (always, outside a distributed launch)."""
    from accelerate import PartialState

    return PartialState().is_main_process


def launched_as_main() -> bool:
    """Whether the launcher (torchrun, accelerate launch) made this the main process.

    Read from the environment, not from accelerate: creating accelerate's state this early would
    settle its device before the training arguments choose one (CPU runs join over gloo).
    """
    return os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) == "0"


def wait_for_everyone() -> None:
    from accelerate import PartialState

    PartialState().wait_for_everyone()


def decide_output(
    out: Path,
    run_hash: str,
    *,
    resume: bool,
    overwrite: bool,
    replace_other: bool = False,
    also: tuple[str, ...] = (),
    args: Any = None,
) -> str:
    """start/resume/skip/restart, from what the folder holds; every process decides the same.
    ``args``: the run's SFTConfig, to tell a killed run that ``--resume`` could not continue.

    A restart clears the folder, so it first proves that nothing in it is the user's (a file
    the marker does not list): ``--overwrite`` replaces mslt-it's run, never a user's notes.
    The barrier makes every process look before any of them writes.
    """
    state = outputs.inspect_output(out, run_hash, also)
    if state is outputs.OutputState.INCOMPLETE and not (resume or overwrite) and args is not None:
        checkpoint = outputs.last_checkpoint(out)  # advised to pass --resume, the user was
        if checkpoint is not None and not resumes_exactly(checkpoint, args):  # refused by it
            raise MsltError(
                f"--out: {str(out)!r} holds an unfinished run whose last checkpoint, "
                f"{Path(checkpoint).name}, cannot be resumed (sft.save_only_model: no optimizer "
                "state); pass --overwrite to train it again"
            )
    action = outputs.decide(
        state, out, resume=resume, overwrite=overwrite, replace_other=replace_other
    )
    if action == "restart":
        check_nothing_foreign(out, "--out")
    elif action == "resume":  # the finished run's checkpoints go, and the Trainer rotates them
        check_nothing_foreign(out, "--out", within=f"{outputs.CHECKPOINTS}/")
    wait_for_everyone()
    return action


def prepare_output(out: Path, action: str, run_hash: str, determining: dict[str, Any]) -> None:
    """Clear the folder (restart) and mark it as this run's, once every check has passed.

    Done only now so that a run stopped by a check leaves the folder as it found it.
    """
    if on_main():
        if action == "restart":
            outputs.clear(out)
        if action != "resume" or not (out / outputs.STARTED_FILE).exists():
            outputs.mark_started(out, run_hash, determining)
    wait_for_everyone()


def finite_or_none(value: float) -> float | None:
    """A loss for run.json: rounded, or None where it is not known (NaN is not JSON)."""
    return round(value, 6) if math.isfinite(value) else None


def resumes_exactly(checkpoint: str, args: Any) -> bool:
    """Whether training on from ``checkpoint`` continues the run an uninterrupted one is: it
    holds the optimizer and scheduler state (``sft.save_only_model: true`` saves the weights
    alone, and the Trainer then starts both afresh without a word: the warmup again, Adam's
    moments at zero), or there is nothing left to train (:func:`take_final_checkpoint`)."""
    if 0 < args.max_steps <= checkpoint_step(checkpoint):
        return True
    return outputs.holds_optimizer_state(Path(checkpoint))


def start_over(out: Path, checkpoint: str, replace_other: bool) -> str:
    """What to do with a run whose last checkpoint cannot be resumed exactly: ``--resume`` is
    refused (the run would differ from the one its config hash names); a caller that owns the
    folder (``replace_other``: ``mslt-it run``, which resumes whatever it finds) trains it
    again from the start, which gives the run the hash names, at the cost of the steps done."""
    if not replace_other:
        raise MsltError(
            f"--resume: the last checkpoint, {checkpoint!r}, holds no optimizer or scheduler "
            "state (sft.save_only_model: true saves the weights alone), so training on from it "
            "would not be the run its settings name; pass --overwrite to train it again from "
            "the start"
        )
    check_nothing_foreign(out, "--out")
    if on_main():
        STDERR.print(
            f"note: the last checkpoint, {checkpoint!r}, holds no optimizer or scheduler state "
            "(saved with sft.save_only_model, or its files removed); training again from the "
            "start, since resuming would not be the same run",
            highlight=False,
            soft_wrap=True,
        )
    return "restart"


INTERVALS = ("logging_steps", "save_steps", "eval_steps")
"""The Trainer's intervals that a checkpoint's state keeps: a resumed training logs, saves and
evaluates as its checkpoint's run did, whatever it is given now (with a warning in its log)."""


def intervals_used(sft: dict[str, Any], args: Any, state: Any) -> dict[str, Any]:
    """``sft`` as run.json records it, with the intervals a resumed training kept from its
    checkpoint where they differ from those it was given: resumed with ``--save-steps 5``, a
    run saved and logged every 10 steps and recorded 5. Said in a note."""
    kept = {}
    for name in INTERVALS:
        given, used = getattr(args, name, None), getattr(state, name, None)
        # only a number of steps given (not a ratio of the run, not unset: eval_steps of a
        # run that does not evaluate is the state's default)
        if isinstance(given, int | float) and given >= 1 and used is not None and used != given:
            kept[name] = used
    if not kept:
        return sft
    if on_main():
        said = ", ".join(f"{name} {value:g}" for name, value in kept.items())
        STDERR.print(
            f"note: resumed with its checkpoint's {said} (the Trainer keeps a checkpoint's "
            "intervals); run.json records these",
            highlight=False,
            soft_wrap=True,
        )
    return {**sft, **kept}


def take_final_checkpoint(trainer: Any, checkpoint: str) -> Any:
    """A run stopped after its last step was saved has nothing left to train: its weights and
    state are the checkpoint's, or, with ``load_best_model_at_end``, the best checkpoint's, as
    the Trainer ends a run never stopped (the last one's were taken: another adapter under the
    same run's identity). (The Trainer, asked to resume from it, trains one step more than
    ``max_steps``.)"""
    from transformers.trainer_callback import TrainerState
    from transformers.trainer_utils import TrainOutput

    trainer.state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
    weights = checkpoint
    best = trainer.state.best_model_checkpoint
    if trainer.args.load_best_model_at_end and best:  # written as the Trainer was given --out
        found = Path(checkpoint).parent / Path(best).name
        if found.is_dir():
            weights = str(found)
    model = trainer.model  # a PeftModel: mslt-it trains only LoRA adapters
    model.load_adapter(weights, model.active_adapter, is_trainable=True)
    losses = [float(entry["loss"]) for entry in trainer.state.log_history if "loss" in entry]
    # No logged loss (logging_steps above the run's steps): the loss is not known, not 0.
    return TrainOutput(trainer.state.global_step, losses[-1] if losses else math.nan, {})


def tokens_in_checkpoint(checkpoint: str | None) -> int:
    """Tokens already seen when resuming (for this session's throughput)."""
    if checkpoint is None:
        return 0
    state = outputs.read_json(Path(checkpoint) / "trainer_state.json") or {}
    return int(state.get("num_input_tokens_seen", 0))


# ---------------------------------------------------------------------------------------------
# Trainer and measurements
# ---------------------------------------------------------------------------------------------


def prepared_eval_rows(trainer: Any, checked: Checked) -> Any:
    """TRL's prepared ``train.eval_dataset`` (beside the held-out rows, or alone), or None."""
    if checked.eval_rows is None:
        return None
    prepared = trainer.eval_dataset
    return prepared["eval"] if isinstance(prepared, dict) else prepared


def make_trainer(
    model: Any, tokenizer: Any, args: Any, lora: dict[str, Any], rows: Any, eval_rows: Any
) -> Any:
    """TRL's SFTTrainer with a LoRA adapter: configured, not subclassed."""
    from peft import LoraConfig
    from transformers import PrinterCallback, ProgressCallback
    from trl import SFTTrainer

    try:
        peft_config = LoraConfig(task_type="CAUSAL_LM", **lora)
    except (TypeError, ValueError) as error:
        raise MsltError(f"train.lora: {first_line(error)}") from None
    try:
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=rows,
            eval_dataset=eval_rows,
            processing_class=tokenizer,
            peft_config=peft_config,
        )
    except (ValueError, NotImplementedError, IndexError, KeyError, TypeError) as error:
        # PEFT's refusals (PeftError) among them, and a LoRA setting that fits its type but not
        # this model (trainable_token_indices past the vocabulary: an IndexError)
        first = first_line(error)
        raise MsltError(
            f"train.lora or train.sft: PEFT or TRL refused the settings: {first[:300]}"
        ) from None
    # One Rich bar instead of tqdm's, and no log dicts printed between the lines.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(training_progress_callback())
    return trainer


def answer_metrics(trainer: Any, eval_dataset: Any) -> dict[str, Any]:
    """Teacher-forced loss and accuracy on the trained (answer + end-of-turn) tokens.

    The base model's accuracy on the same tokens (the adapter switched off) is measured beside
    it, so a run says how much its adapter learnt, not only where it ended.

    Measured after training, with the final weights, dropout off, on fixed rows (the held-out
    dataset when there is one, else the first training rows), so runs compare; the Trainer's
    logged loss is a running mean over its last logging window, taken while the weights moved.
    On the tiny model both stay high (~1) even when the answers are right: its output
    distributions are flat, so the top-1 accuracy is the number that says "learnt".
    """
    import torch

    dataset = eval_dataset if eval_dataset is not None else trainer.train_dataset
    columns = [c for c in ("input_ids", "labels", "seq_lengths") if c in dataset.column_names]
    rows = dataset.select_columns(columns)
    size = trainer.args.per_device_eval_batch_size
    if "seq_lengths" in columns:
        # Packed rows hold several examples each; one per forward pass, since padding-free
        # collation would flatten a batch into one long sequence (dense attention with SDPA).
        per_row = max(1, round(sum(len(s) for s in rows[:8]["seq_lengths"]) / min(8, len(rows))))
        rows, size = rows.select(range(min(len(rows), -(-METRIC_ROWS // per_row)))), 1
    else:
        rows = rows.select(range(min(METRIC_ROWS, len(rows))))
    model = trainer.model_wrapped
    was_training = model.training
    model.eval()
    with torch.no_grad():
        loss, correct, count = token_counts(trainer, model, rows, size)
        base_correct = None
        disable = getattr(model, "disable_adapter", None)
        if disable is not None and count:
            with disable():
                base_correct = token_counts(trainer, model, rows, size)[1]
    model.train(was_training)
    if count == 0:
        return {}
    found = {
        "answer_token_loss": round(loss / count, 6),
        "answer_token_accuracy": round(correct / count, 6),
        "answer_metrics_on": "eval_dataset" if eval_dataset is not None else "train_rows",
    }
    if base_correct is not None:
        found["base_answer_token_accuracy"] = round(base_correct / count, 6)
    return found


def token_counts(trainer: Any, model: Any, rows: Any, size: int) -> tuple[float, int, int]:
    """Summed loss, correct top-1 predictions and number of the answer tokens of ``rows``."""
    import torch

    device = trainer.args.device
    total_loss, correct, count = 0.0, 0, 0
    for start in range(0, len(rows), size):
        batch = trainer.data_collator([rows[i] for i in range(start, min(start + size, len(rows)))])
        labels = batch.pop("labels").to(device)
        inputs = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
        logits = model(**inputs, use_cache=False).logits.float()
        shift_logits, shift_labels = logits[:, :-1], labels[:, 1:]
        mask = shift_labels != checks.IGNORE_INDEX
        if not mask.any():
            continue
        picked = shift_logits[mask]
        gold = shift_labels[mask]
        total_loss += float(torch.nn.functional.cross_entropy(picked, gold, reduction="sum"))
        correct += int((picked.argmax(-1) == gold).sum())
        count += int(mask.sum())
    return total_loss, correct, count
