"""The Markdown summary of a GPU check's report (``gpu_check.md``).

Pure formatting of the report's JSON into the table pasted into BENCHMARKS.md's GPU section, and
``status_note`` (a run's status and reason in words), which the run log uses too. It imports
nothing else of the package.
"""

from __future__ import annotations

from typing import Any

RUN_LABELS = {
    "lora_padded_torch": "LoRA, padded, plain torch loop",
    "lora_packed_torch": "LoRA, packed, plain torch loop",
    "qlora_padded_torch": "QLoRA (NF4), padded, plain torch loop",
    "lora_padded_trl": "LoRA, padded, mslt-it train (TRL)",
    "lora_packed_trl": "LoRA, packed, mslt-it train (TRL)",
}


def fmt(value: Any, pattern: str = "{:,.0f}", unit: str = "") -> str:
    return "" if value is None else pattern.format(value) + unit


def status_note(entry: dict[str, Any]) -> str:
    if entry.get("status", "done") == "done":
        return "done"
    return f"{entry['status']}: {entry.get('reason', '')}"


def markdown(report: dict[str, Any]) -> str:
    """The summary to paste into BENCHMARKS.md's GPU section."""
    m, model, data = report["machine"], report.get("model", {}), report.get("data", {})
    lines = [
        f"`{report['command']}` — {report['date']}, {m['device']}, Python {m['python']}, "
        f"torch {m['torch']}, transformers {m['transformers']}, peft {m['peft']}; "
        f"{report['mode']} mode, budget {report['budget']['total_s']:.0f} s "
        f"(spent {report['budget'].get('spent_s', 0):.0f} s).",
        "",
        f"Optional packages: {package_line(report['packages'])}.",
        f"Model: random Llama, {model.get('parameters', 0) / 1e6:.1f}M parameters, "
        f"{model.get('dtype', '?')}, LoRA r=16 on all linear layers, max length "
        f"{model.get('max_length', '?')}. Data: synthetic XNLI "
        f"{'+'.join(data.get('languages', []))}, mean tokens "
        + ", ".join(f"{k} {v:.0f}" for k, v in data.get("mean_tokens", {}).items())
        + f". MFU peak: {report.get('peak_source', 'unknown')}.",
        "",
        "| part | configuration | throughput | peak memory MB | MFU | note |",
        "|---|---|---:|---:|---:|---|",
    ]
    lines += training_rows(report["parts"]["training"])
    lines += evaluation_rows(report["parts"]["evaluation"])
    lines += profile_rows(report["parts"]["profile"])
    return "\n".join(lines) + "\n"


def package_line(packages: dict[str, dict[str, Any]]) -> str:
    return ", ".join(
        f"{name} {info['version']}" if info["importable"] else f"{name} ✗"
        for name, info in packages.items()
    )


def training_rows(part: dict[str, Any]) -> list[str]:
    rows = []
    for name, run in part.get("runs", {}).items():
        rate = run.get("tokens_per_second")
        mfu = run.get("mfu")
        note = status_note(run)
        if "packing_isolation" in run:
            note += f"; examples isolated: {run['packing_isolation']['isolated']}"
        if run.get("attention"):
            note += f"; {run['attention']}, {run.get('rows_per_step')} per step"
        rows.append(
            f"| training | {RUN_LABELS[name]} | {fmt(rate, unit=' tokens/s')} | "
            f"{fmt(run.get('peak_memory_mb'))} | {fmt(mfu, '{:.1%}')} | {note} |"
        )
    return rows or [f"| training | | | | | {status_note(part)} |"]


def evaluation_rows(part: dict[str, Any]) -> list[str]:
    if "generate_single" not in part:
        return [f"| evaluation | | | | | {status_note(part)} |"]
    single = part["generate_single"]
    rows = [
        f"| evaluation | generate, one at a time ({single['examples']} of {part['prompts']}) | "
        f"{fmt(single['examples_per_second'], '{:,.2f}')} ex/s | | | "
        f"{single.get('stopped', 'done')} |"
    ]
    for key, entry in part.items():
        if not key.startswith("generate_batch_"):
            continue
        if "examples_per_second" not in entry:
            rows.append(f"| evaluation | generate, batch {key[15:]} | | | | {status_note(entry)} |")
            continue
        rows.append(
            f"| evaluation | generate, batch {key[15:]} ({part['prompts']} prompts) | "
            f"{fmt(entry['examples_per_second'], '{:,.2f}')} ex/s | | | "
            f"{fmt(entry.get('speedup_vs_single'), '{:.1f}')}× one at a time; identical: "
            f"{entry['identical_to_single'] and entry['identical_across_batch_sizes']}"
            f"{agreement(entry)} |"
        )
    control = part.get("float32_control", {})
    if "identical_to_single" in control:
        rows.append(
            f"| evaluation | generate in float32, batch {control['batch_size']} vs one at a time "
            f"({control['prompts']} prompts) | | | | identical: {control['identical_to_single']}"
            f"{agreement(control)} |"
        )
    rank = part.get("rank", {})
    if "examples_per_second" in rank:
        rows.append(
            f"| evaluation | rank, batch {rank['batch_size']} | "
            f"{fmt(rank['examples_per_second'], '{:,.2f}')} ex/s | | | same labels as batch 1: "
            f"{rank['identical_choices_vs_batch_1']} |"
        )
    return rows


def agreement(entry: dict[str, Any]) -> str:
    """How many outputs equal one-at-a-time generation's, where not all of them do."""
    share = entry.get("single_agreement")
    return "" if share is None or share == 1 else f" ({share:.0%} of outputs equal)"


def profile_rows(part: dict[str, Any]) -> list[str]:
    if "top" not in part:
        return [f"| profile | | | | | {status_note(part)} |"]
    kinds = ", ".join(f"{k} {v:.0%}" for k, v in part["time_by_kind"].items())
    busy = part["device_busy_share"]
    rows = [
        f"| profile | {part['what']}, {part['steps']} padded LoRA step(s) | | | | "
        f"{kinds}{'' if busy is None else f'; device busy {busy:.0%}'}: {part['hint']} |"
    ]
    rows += [
        f"| profile | top {i}: `{row['name'][:60]}` ({row['kind']}) | {row['calls']} calls | | | "
        f"{row['self_ms']:,.1f} ms, {row['share']:.0%} |"
        for i, row in enumerate(part["top"][:5], start=1)
    ]
    return rows
