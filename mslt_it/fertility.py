"""Tokenizer fertility of each evaluation language against its score.

Is a low score a tokenizer problem? A language that a tokenizer splits into many pieces per word
gives the model longer, rarer sequences; if scores fall as fertility rises, the tokenizer is a
suspect. With ``mslt-it report --tokenizer NAME``, each language's fertility on its evaluation
rows is measured and plotted against each run's score, with Spearman's rank correlation.

Fertility is tokens per whitespace word, or tokens per character for scripts written without
spaces (Han, Japanese, Thai, Lao, Khmer, Burmese), where "words" would be whole sentences.
The text is the row part of each prompt in ``predictions.jsonl``: the text every prompt of a
language shares at its start and end (the template's instruction, the chat template) is cut
off, so an English instruction does not dilute a Thai row's fertility. Tokens are counted
without special tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scipy.stats import spearmanr

from mslt_it.errors import MsltError
from mslt_it.evaluation.store import PREDICTIONS, read_jsonl
from mslt_it.languages import get_language
from mslt_it.modeling import load_tokenizer
from mslt_it.named_models import resolve_model_name
from mslt_it.tasks.base import SCRIPTIO_CONTINUA

MAX_ROWS = 500
"""Rows per language measured (the first ones): enough for a stable ratio."""


@dataclass(frozen=True)
class Fertility:
    """One language's fertility on its evaluation rows."""

    lang: str
    value: float
    unit: str  # "word" or "char"
    rows: int


def common_prefix(texts: Sequence[str]) -> str:
    """The longest text every one of ``texts`` starts with (character by character)."""
    first, last = min(texts), max(texts)  # the sorted extremes differ first where any two do
    pairs = enumerate(zip(first, last, strict=False))
    size = next((i for i, (a, b) in pairs if a != b), len(first))
    return first[:size]


def row_texts(prompts: Sequence[str]) -> list[str]:
    """The prompts without the prefix and suffix they all share (template and chat text)."""
    if len(prompts) < 2:
        return list(prompts)
    prefix = common_prefix(prompts)
    suffix = common_prefix([p[len(prefix) :][::-1] for p in prompts])[::-1]
    return [p[len(prefix) : len(p) - len(suffix)] for p in prompts]


def unit_of(lang: str) -> str:
    """``char`` for a script written without spaces, else ``word``."""
    try:
        script = get_language(lang).script
    except MsltError:
        return "word"
    return "char" if script in SCRIPTIO_CONTINUA else "word"


def measure(tokenizer: Any, lang: str, texts: Sequence[str]) -> Fertility | None:
    """Tokens per word (or character) over ``texts``; ``None`` if they hold no word."""
    unit = unit_of(lang)
    texts = [t for t in texts if t.strip()]
    if not texts:
        return None
    tokens = sum(len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"])
    if unit == "char":
        count = sum(len("".join(t.split())) for t in texts)
    else:
        count = sum(len(t.split()) for t in texts)
    return Fertility(lang, tokens / count, unit, len(texts)) if count else None


def language_prompts(results_files: Sequence[Path], task: str) -> dict[str, list[str]]:
    """Per language, the prompts of the first run that has predictions for it."""
    found: dict[str, list[str]] = {}
    for path in results_files:
        predictions = path.parent / PREDICTIONS
        if not predictions.is_file():
            continue
        mine: dict[str, list[str]] = {}
        for record in read_jsonl(predictions):
            if record.get("task") == task and isinstance(record.get("prompt"), str):
                mine.setdefault(str(record["lang"]), []).append(record["prompt"])
        for lang, prompts in mine.items():
            found.setdefault(lang, prompts[:MAX_ROWS])
    return found


def fertilities(tokenizer_name: str, results_files: Sequence[Path], task: str) -> list[Fertility]:
    """Every language's fertility under the tokenizer ``tokenizer_name`` (folder, Hub id, or
    one of mslt-it's model names)."""
    tokenizer = load_tokenizer(
        resolve_model_name(tokenizer_name, "--tokenizer"), field="--tokenizer"
    )
    found = []
    for lang, prompts in language_prompts(results_files, task).items():
        measured = measure(tokenizer, lang, row_texts(prompts))
        if measured is not None:
            found.append(measured)
    if not found:
        raise MsltError(f"--tokenizer: no prompts of task {task} in the runs' {PREDICTIONS}")
    return found


def correlations(
    measured: Sequence[Fertility], scores: Mapping[str, Mapping[str, float]]
) -> dict[str, tuple[float | None, int]]:
    """Per run: Spearman's rho between fertility and score over its languages, and how many.

    Fewer than three languages, or a constant column, gives ``None``.
    """
    fertility = {f.lang: f.value for f in measured}
    out: dict[str, tuple[float | None, int]] = {}
    for run, per_lang in scores.items():
        langs = [lang for lang in per_lang if lang in fertility]
        x = [fertility[lang] for lang in langs]
        y = [per_lang[lang] for lang in langs]
        rho = None
        if len(langs) >= 3 and len(set(x)) > 1 and len(set(y)) > 1:
            rho = float(spearmanr(x, y).statistic)
        out[run] = (rho, len(langs))
    return out


def plot(measured: Sequence[Fertility], scores: Mapping[str, Mapping[str, float]]) -> Any:
    """Score against fertility, one series per run, languages labelled; squares: per char.
    Returns the figure (the report saves it)."""
    import matplotlib.pyplot as plt

    fertility = {f.lang: f for f in measured}
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    for run, per_lang in scores.items():
        langs = [lang for lang in per_lang if lang in fertility]
        for unit, marker in (("word", "o"), ("char", "s")):
            chosen = [lang for lang in langs if fertility[lang].unit == unit]
            if not chosen:
                continue
            axis.scatter(
                [fertility[lang].value for lang in chosen],
                [per_lang[lang] for lang in chosen],
                marker=marker,
                label=run if unit == "word" or len(chosen) == len(langs) else None,
                color=f"C{list(scores).index(run)}",
                alpha=0.8,
            )
            for lang in chosen:
                axis.annotate(
                    lang, (fertility[lang].value, per_lang[lang]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points",
                )  # fmt: skip
    axis.set_xlabel("tokens per word (squares: per character)")
    axis.set_ylabel("score ×100")
    axis.set_title("Tokenizer fertility against score")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure


def markdown(
    measured: Sequence[Fertility], scores: Mapping[str, Mapping[str, float]], tokenizer: str
) -> str:
    """The fertility table and each run's rank correlation."""
    lines = [f"## Tokenizer fertility against scores (`{tokenizer}`)", ""]
    lines.append("| lang | " + " | ".join(f.lang for f in measured) + " |")
    lines.append("|---" * (len(measured) + 1) + "|")
    cells = [f"{f.value:.2f}{'/char' if f.unit == 'char' else ''}" for f in measured]
    lines += ["| tokens per word | " + " | ".join(cells) + " |", ""]
    for run, (rho, count) in correlations(measured, scores).items():
        text = (
            "undefined (fewer than 3 languages or a constant column)"
            if rho is None
            else (f"{rho:+.2f}")
        )
        lines.append(f"- {run}: Spearman's rho {text} over {count} languages")
    lines += [
        "",
        "A negative rho: languages the tokenizer splits more score lower. Rows: the prompt "
        "text that differs between rows (template and chat text cut off); the plot is "
        "fertility.png.",
        "",
    ]
    return "\n".join(lines)
