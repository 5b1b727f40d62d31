"""What a task is: its data schema, label space, and the variables its prompt templates may use.

A task is plain data plus two small functions (composition, not a class hierarchy), built from a
YAML definition by :mod:`mslt_it.tasks.definitions`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mslt_it.languages import all_languages, get_language, languages_of_task

Verbalizer = Mapping[str, str]
"""Label name -> the word a template uses for it (in one language)."""

Row = dict[str, Any]

# Scripts written without spaces between words: tokens are joined with "" there.
SCRIPTIO_CONTINUA = frozenset({"Hani", "Jpan", "Thai", "Laoo", "Khmr", "Mymr"})


@dataclass(frozen=True)
class Task:
    """One evaluation/training task, as mslt-it knows it.

    ``columns`` are the fields a data file must have; ``fields`` the variables a prompt template may
    use; ``verbalizer_keys`` the labels a template must give words for. ``to_variables(row,
    verbalizer, lang, label)`` gives a template's variables; ``label`` (an index into ``labels``)
    renders the row as if that label were its gold one, which is how rank mode gets every
    candidate answer (and a multiple-choice context per choice).
    """

    name: str
    title: str
    hub_id: str
    kind: Literal["classification", "ner", "multiple_choice", "instructions"]
    splits: tuple[str, ...]
    columns: tuple[str, ...]
    labels: tuple[str, ...]
    verbalizer_keys: tuple[str, ...]
    fields: frozenset[str]
    to_variables: Callable[[Row, Verbalizer, str, int | None], dict[str, Any]]
    gold_label: Callable[[Row, str], str]
    valid_label_ids: frozenset[int] | None = None
    check_row: Callable[[Row], None] | None = None
    cluster_of: Callable[[Row], str] | None = None
    """A row's cluster key (the definition's ``cluster``): rows sharing one are resampled
    together by every bootstrap. None: rows are independent."""
    parallel: bool = False
    """Row N of every language is the same item translated (the definition's ``parallel``):
    averages over languages draw each item in all of them at once."""
    languages_from_registry: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def languages(self) -> tuple[str, ...]:
        """Language codes this task has data for: its definition's list, or a registry column."""
        listed = self.extra.get("languages")
        if listed is not None:
            return tuple(listed)
        if self.languages_from_registry == "all":
            return tuple(all_languages())
        return tuple(languages_of_task(self.languages_from_registry or self.name))

    def language_value(self, lang: str) -> str | None:
        """What a single-table corpus's language column holds for ``lang`` (None: no column)."""
        if not self.extra.get("language_column"):
            return None
        exceptions = self.extra.get("language_value_exceptions") or {}
        if lang in exceptions:
            return exceptions[lang]
        if self.extra.get("language_values") == "iso639_3":
            return get_language(lang).iso639_3
        return lang

    def hub_config(self, lang: str) -> str:
        """The Hub dataset config for a language (the definition's format, or an exception)."""
        exceptions = self.extra.get("hub_configs") or {}
        if lang in exceptions:
            return exceptions[lang]
        return str(self.extra.get("hub_config", "{lang}")).format(lang=lang)


COMMON_FIELDS = frozenset({"lang", "lang_name"})


def common_variables(lang: str) -> dict[str, Any]:
    """Variables every template may use, whatever the task."""
    return {"lang": lang, "lang_name": get_language(lang).name}


def join_tokens(tokens: Sequence[str], lang: str) -> str:
    """Join word tokens as the language writes them (no spaces for Chinese, Japanese, Thai…)."""
    sep = "" if get_language(lang).script in SCRIPTIO_CONTINUA else " "
    return sep.join(tokens)


def row_id(task: Task, lang: str, split: str, index: int) -> str:
    """A row's stable id: its position in the original split, ``task/lang/split/index``."""
    return f"{task.name}/{lang}/{split}/{index}"


def row_id_parts(identifier: str) -> list[str] | None:
    """``[task, lang, split, index]`` of an id :func:`row_id` made; None for an id of another
    shape (not mslt-it's: nothing to hold it to)."""
    parts = identifier.split("/")
    return parts if len(parts) == 4 else None
