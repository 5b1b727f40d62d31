"""``mslt-it merge``: fold a LoRA adapter into its base model, for serving without PEFT.

The base is loaded in full precision even when the adapter was trained on a 4-bit base: merging
into quantised weights would round the adapter's update away. The merged folder gets the
adapter's tokenizer (with the chat template the run trained with) and a copy of ``run.json``, so
evaluation reads the same template from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mslt_it.arguments import expect, flag_argument, path_argument
from mslt_it.errors import MsltError
from mslt_it.identity import check_base_unchanged
from mslt_it.io import atomic_write_json
from mslt_it.modeling import (
    check_model_folder,
    load_failure,
    load_report_in_errors,
    load_tokenizer,
    model_load_errors,
)
from mslt_it.named_models import recorded_base
from mslt_it.outputs import claim_output, first_changed, owner_kind, replacing_output
from mslt_it.paths import check_not_a_model_name
from mslt_it.peft_adapters import (
    check_adapter_folder,
    check_finished_run,
    edited_since_training,
    load_adapters,
    read_adapter_config,
    read_run_record,
    run_record_edited,
)
from mslt_it.progress import library_bars_quieted
from mslt_it.random_state import kept_random_state
from mslt_it.training.outputs import RUN_FILE


def base_of(adapter_dir: Path) -> tuple[str, bool, dict[str, Any] | None]:
    """(base model, trust_remote_code, run record) from run.json, else adapter_config.json."""
    run = read_run_record(adapter_dir, "adapter")
    if run is not None and run.get("base_model"):
        return str(recorded_base(run)), bool(run.get("trust_remote_code", False)), run
    adapter = read_adapter_config(adapter_dir, "adapter")  # not JSON: said so, not "no base"
    if not adapter.get("base_model_name_or_path"):
        raise MsltError(
            f"adapter: {str(adapter_dir)!r} has neither run.json nor an adapter_config.json "
            "naming its base model; is it the output folder of `mslt-it train`?"
        )
    trust = bool((run or {}).get("trust_remote_code", False))
    return str(adapter["base_model_name_or_path"]), trust, run  # run.json's identity still holds


def check_adapter_intact(adapter_dir: Path) -> None:
    """An adapter mslt-it wrote is merged only whole: with run.json gone, the check that its
    base model is unchanged would be skipped, and a killed run has no final weights."""
    if owner_kind(adapter_dir) != "adapter":
        return  # a PEFT adapter from elsewhere: adapter_config.json names its base
    check_finished_run(adapter_dir)
    edited = edited_since_training(adapter_dir)
    if edited is not None:
        # the merged model would carry run.json's record of a training that made other weights
        raise MsltError(
            f"adapter: {str(adapter_dir)!r} is mslt-it's adapter, but its {edited} was edited "
            "since training, so its run.json describes another adapter; nothing was merged (copy "
            "the PEFT files, adapter_config.json, the weights and the tokenizer's, to a folder "
            "of your own to merge them as your adapter)"
        )
    changed = first_changed(adapter_dir)
    if changed is not None and not (adapter_dir / changed).exists():
        # removed, not edited: a run.json edited to name a moved base is the user's right,
        # and the check of the base's identity below still holds it to the trained one
        raise MsltError(
            f"adapter: {str(adapter_dir)!r} is mslt-it's adapter, but its {changed} was removed "
            "since training; nothing was merged"
        )


MERGE_DTYPES = ("auto", "bfloat16", "float16", "float32")


@kept_random_state()  # a notebook's random streams are its own
def merge_adapter(
    adapter_dir: str | Path, out: str | Path, *, overwrite: bool = False, dtype: str = "auto"
) -> Path:
    """Write ``base + adapter`` as one model (and its tokenizer) to ``out``; returns ``out``.

    ``out`` may not read as one of mslt-it's model names (``mslt-it:tiny2``): every command
    would resolve that name to its own model, never to this folder."""
    adapter_dir = path_argument(adapter_dir, "adapter")
    given = out
    out = path_argument(out, "out")
    check_not_a_model_name(str(given), "--out")  # as written: ./mslt-it:x is a folder
    flag_argument(overwrite, "overwrite")
    expect(dtype, str, "dtype", f"one of {', '.join(MERGE_DTYPES)}")
    if dtype not in MERGE_DTYPES:
        raise MsltError(f"--dtype: unknown dtype {dtype!r}; use one of {', '.join(MERGE_DTYPES)}")
    if adapter_dir.exists() and not adapter_dir.is_dir():
        what = "a file" if adapter_dir.is_file() else "not a folder (a FIFO or a device)"
        raise MsltError(f"adapter: {str(adapter_dir)!r} is {what}; give an adapter folder")
    if not adapter_dir.is_dir():
        raise MsltError(f"adapter: no such folder {str(adapter_dir)!r}")
    check_adapter_folder(adapter_dir, "adapter")
    check_adapter_intact(adapter_dir)
    base, trust_remote_code, run = base_of(adapter_dir)
    check_model_folder(base, "the adapter's base model")
    recorded = run.get("base_model_identity") if run is not None else None
    check_base_unchanged(
        recorded, base, "adapter: it", "nothing was merged", run_record_edited(adapter_dir)
    )

    inputs = [adapter_dir, base]
    with (
        library_bars_quieted(),  # "Loading weights", "Writing model shards": as the CLI
        claim_output(out, kind="model", overwrite=overwrite, inputs=inputs, field="--out"),
    ):
        return _merge(adapter_dir, out, base, trust_remote_code, run, overwrite, dtype)


def _merge(
    adapter_dir: Path,
    out: Path,
    base: str,
    trust_remote_code: bool,
    run: dict[str, Any] | None,
    overwrite: bool,
    dtype: str,
) -> Path:
    """:func:`merge_adapter` once ``out`` is checked and locked."""

    from transformers import AutoModelForCausalLM

    # the adapter's tokenizer (with its chat template) goes with the merged weights: read first,
    # so a damaged one is said before the base model loads
    tokenizer = load_tokenizer(str(adapter_dir), trust_remote_code, field="adapter")
    try:
        with load_report_in_errors():
            model = AutoModelForCausalLM.from_pretrained(
                base, dtype=dtype, trust_remote_code=trust_remote_code
            )
    except model_load_errors() as error:
        raise MsltError(
            f"model: cannot load the base {base!r}: {load_failure(base, error)}"
        ) from None

    merged = load_adapters(model, {"default": adapter_dir}).merge_and_unload()
    with replacing_output(out, "model", overwrite) as tmp:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if run is not None:
            atomic_write_json(tmp / RUN_FILE, {**run, "merged_from": str(adapter_dir.resolve())})
    return out


def describe(out: Path) -> str:
    """A one-line description of a merged folder, for the CLI."""
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    return f"merged {config.get('model_type', 'model')} written to {out}"
