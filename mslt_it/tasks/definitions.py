"""Task definitions: one YAML file per benchmark, checked when loaded, made into a :class:`Task`.

A definition says what YAML can say: the Hub dataset and how a language maps to its config, the
splits, the languages, the columns a row must have, the kind of task, the label space and where a
row's gold label is, the variables prompt templates may use (Jinja expressions over the row,
rendered in the sandbox) and the metric. What YAML cannot express is a small named piece of code
that the definition refers to by its kind (:data:`KINDS`): the BIO tags and span format of NER,
for example. A ``multiple_choice`` task reads its choices from the row (``choices``, a Jinja
expression giving a list of texts) and its gold choice from a column or an expression (``gold``);
its ``labels`` name the choice slots (``[A, B]``), which templates give words to (``1``/``2``)
for generate mode. An ``instructions`` task is an instruction corpus (Bactrian-X, Aya, the
user's own JSONL): ``prompt`` and ``answer`` (or ``messages``, a whole conversation) are Jinja
expressions over the row, and a single-table corpus names its ``language_column``.

Every expression is evaluated in the bounded sandbox templates use (:mod:`mslt_it.prompt_bounds`).
A definition is checked whole when it loads (:func:`parse_definition`): at least two distinct
labels, a synthetic generator that makes rows of its kind and label count, a known registry
column, and its values computed once on its ``example`` (or a stand-in row), so a wrong gold or
choice expression blames the definition, not every template tried on it. Shipped definitions live
in the repository's ``tasks/`` folder; a user adds one by dropping a file into a folder passed
with ``--tasks-dir`` (or a recipe's ``tasks_dir``), as with lm-evaluation-harness's include path.

    name: xnli
    title: XNLI
    kind: classification
    hub: {id: facebook/xnli, config: "{lang}"}
    splits: [train, validation, test]
    languages: {registry: xnli}
    columns: [premise, hypothesis, label]
    labels: [entailment, neutral, contradiction]
    label_column: label
    variables: {premise: row.premise, hypothesis: row.hypothesis}
    metric: accuracy
    synthetic: xnli
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2 import nodes
from jinja2.parser import Parser

from mslt_it.arguments import given, is_bool
from mslt_it.errors import MsltError, allowed, clipped
from mslt_it.files import MAX_TEXT_BYTES, listed, read_user_bytes, resolved_path
from mslt_it.identity import file_state
from mslt_it.label_words import folded_answer
from mslt_it.languages import REGISTRY_COLUMNS, all_languages, languages_of_task
from mslt_it.paths import TASKS_DIR
from mslt_it.prompt_bounds import (
    ENVIRONMENT,
    describe,
)
from mslt_it.tasks import instructions, ner
from mslt_it.tasks.base import COMMON_FIELDS, Row, Task, Verbalizer, common_variables
from mslt_it.tasks.compile import LimitError, compile_variables, on_row, remember_rows
from mslt_it.tasks.schema import KIND_FIELDS, RegistryLanguages, TaskFile, columns_read
from mslt_it.tasks.synthetic import GENERATOR_KINDS, generator_columns
from mslt_it.yamlfiles import compose_yaml, read_text_file, validate_yaml_file, yaml_in_other_case

# ------------------------------------------------------------------------------------ kinds


KindVariables = Callable[[Row, Verbalizer, str, "int | None"], dict[str, Any]]


def classification_variables(labels: tuple[str, ...], label_column: str) -> KindVariables:
    """label, label_word and choices from the gold label id and the template's words."""

    def variables(
        row: Row, verbalizer: Verbalizer, lang: str, label: int | None = None
    ) -> dict[str, Any]:
        index = row[label_column] if label is None else label
        if type(index) is not int or not 0 <= index < len(labels):  # -1 read the last label
            index = label_index(index, labels, row, label_column if label is None else None)
        name = labels[index]
        return {
            "label": name,
            "label_word": verbalizer[name],
            "choices": [verbalizer[label] for label in labels],
        }

    return variables


def label_index(value: object, labels: tuple[str, ...], row: Row, column: str | None) -> int:
    """``value`` as an index into ``labels``, else a one-line error naming it: a row's label
    ``-1`` (the Hub's unlabelled rows) rendered the last label as the gold answer, ``7`` was a
    bare IndexError and ``"1"`` a TypeError. ``column``: the row's label column it came from
    (None: the label asked for)."""
    if isinstance(value, numbers.Integral) and not is_bool(value) and 0 <= value < len(labels):
        return int(value)
    row_id = row.get("id") if isinstance(row, Mapping) else None
    where = "label"
    if column:
        where = f"row {row_id!r}, column {column!r}" if row_id is not None else f"column {column!r}"
    unlabelled = " (-1 marks an unlabelled row, as on the Hub)" if value == -1 else ""
    raise MsltError(
        f"{where}: {given(value)} is no label{unlabelled}; allowed: 0 to {len(labels) - 1} "
        f"({', '.join(labels)})"
    )


@dataclass(frozen=True)
class ChoiceReader:
    """A multiple-choice row's choice texts and gold index, as its definition computes them.

    Both are checked on every row a split opens (:meth:`check`), so a row with the wrong number
    of choices or an index out of range is a one-line error before any model is loaded.
    """

    labels: tuple[str, ...]
    compute: Callable[[Row], dict[str, Any]]

    def gold(self, row: Row) -> int:
        return self.compute(row)["gold"]

    def check(self, row: Row) -> None:
        """Raise ``ValueError`` naming what is wrong with a row's choices or gold index."""
        values = self.compute(row)
        options, gold = values["options"], values["gold"]
        if not isinstance(options, list | tuple) or not all(isinstance(o, str) for o in options):
            raise ValueError(f"choices must give a list of texts, got {options!r}"[:200])
        if len(options) != len(self.labels):
            raise ValueError(
                f"choices gives {len(options)} choices; the task has {len(self.labels)} "
                f"({', '.join(self.labels)})"
            )
        if isinstance(gold, bool) or not isinstance(gold, int) or not 0 <= gold < len(options):
            raise ValueError(f"gold gives index {gold!r}; allowed: 0 to {len(options) - 1}")


def multiple_choice_variables(reader: ChoiceReader) -> KindVariables:
    """label, label_word, choices (the slots' words), options (the texts), option, answer_index."""
    labels = reader.labels

    def variables(
        row: Row, verbalizer: Verbalizer, lang: str, label: int | None = None
    ) -> dict[str, Any]:
        values = reader.compute(row)
        options = list(values["options"])
        index = values["gold"] if label is None else label
        return {
            "label": labels[index],
            "label_word": verbalizer[labels[index]],
            "choices": [verbalizer[name] for name in labels],
            "options": options,
            "option": options[index],
            "answer_index": index,
        }

    return variables


# ------------------------------------------------------------------------------------ build


def build_task(spec: TaskFile, where: str) -> Task:
    """The :class:`Task` a definition describes."""
    own = compile_variables(spec.variables, where)
    labels = tuple(spec.labels)
    check_row = None
    turns = None
    if spec.kind == "ner":
        kind_variables = ner.variables
        gold_label = ner.gold_label
        verbalizer_keys = (*labels, ner.NONE_KEY)
        valid_label_ids = None
    elif spec.kind == "instructions":
        reader = instructions.turn_reader(spec, where)
        kind_variables = instructions.kind_variables(reader)
        turns = reader.turns

        def gold_label(row: Row, lang: str) -> str:
            return reader.turns(row).answer

        verbalizer_keys = ()
        valid_label_ids = None
        check_row = reader.check
    elif spec.kind == "multiple_choice":
        reader = choice_reader(spec, where)
        kind_variables = multiple_choice_variables(reader)

        def gold_label(row: Row, lang: str) -> str:
            return labels[reader.gold(row)]

        verbalizer_keys = labels
        valid_label_ids = None
        check_row = reader.check
    else:
        label_column = str(spec.label_column)
        kind_variables = classification_variables(labels, label_column)

        def gold_label(row: Row, lang: str) -> str:
            return labels[row[label_column]]

        verbalizer_keys = labels
        valid_label_ids = frozenset(range(len(labels)))

    def to_variables(
        row: Row, verbalizer: Verbalizer, lang: str, label: int | None = None
    ) -> dict[str, Any]:
        variables = common_variables(lang)
        if spec.variables:  # most definitions have none: no empty evaluation per row
            variables.update(own(row))
        variables.update(kind_variables(row, verbalizer, lang, label))
        return variables

    registry = spec.languages.registry if isinstance(spec.languages, RegistryLanguages) else ""
    return Task(
        name=spec.name,
        title=spec.title,
        hub_id=spec.hub.id if spec.hub else "",
        kind=spec.kind,
        splits=tuple(spec.splits),
        columns=tuple(spec.columns),
        labels=labels,
        verbalizer_keys=verbalizer_keys,
        fields=COMMON_FIELDS | set(spec.variables) | set(KIND_FIELDS[spec.kind]),
        to_variables=to_variables,
        gold_label=gold_label,
        valid_label_ids=valid_label_ids,
        check_row=check_row,
        cluster_of=cluster_reader(spec, where),
        parallel=spec.parallel,
        languages_from_registry=registry,
        extra={
            "definition": where,
            "hub_config": spec.hub.config if spec.hub else "{lang}",
            "hub_configs": dict(spec.hub.configs) if spec.hub else {},
            "language_column": spec.language_column,
            "language_values": spec.language_values,
            "language_value_exceptions": dict(spec.language_value_exceptions),
            "conversation": spec.messages is not None,
            "turns": turns,
            "languages": None if registry else tuple(spec.languages),  # type: ignore[arg-type]
            "metric": spec.metric,
            "cluster": spec.cluster,
            "synthetic": spec.synthetic,
            "label_column": spec.label_column,
            "example": dict(spec.example) if spec.example is not None else None,
            "text_columns": text_columns(spec),
            "values": {column: tuple(values) for column, values in spec.values.items()},
        },
    )


def text_columns(spec: TaskFile) -> tuple[str, ...]:
    """The columns every row must hold as text (a number or a list would reach the prompt as
    Python's text of it): those the expressions a template sees read (``variables``,
    ``choices``, ``prompt``, ``answer``), but the label column and the columns the ``gold``
    expression reads (XStoryCloze's ``answer_right_ending`` is a number, Belebele's
    ``correct_answer_num`` text or a number). A column no expression reads never reaches a
    prompt (a second label column a user keeps). None in an ner task (tokens and tags are
    lists, checked as such) nor in a conversation (``messages`` is a list of turns)."""
    if spec.kind == "ner" or spec.messages is not None:
        return ()
    shown = {
        f: e for f, e in spec.expressions().items() if f not in ("gold", "messages", "cluster")
    }
    read = set().union(*(columns_read(source) for source in shown.values()))
    gold_read = columns_read(spec.gold or "")
    return tuple(
        column
        for column in spec.columns
        if column in read and column != spec.label_column and column not in gold_read
    )


def cluster_reader(spec: TaskFile, where: str) -> Callable[[Row], str] | None:
    """A row's cluster key by the definition's ``cluster`` expression (None without one): a
    text, or a whole number written as text (a passage's id)."""
    if spec.cluster is None:
        return None
    compute = compile_variables({"cluster": spec.cluster}, where, fields={"cluster": "cluster"})

    def cluster_of(row: Row) -> str:
        value = compute(row)["cluster"]
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise MsltError(
            f"{where}: cluster{on_row(row)}: gives {clipped(value, 40)} "
            f"({type(value).__name__}); allowed: a text or a whole number"
        )

    return cluster_of


def choice_reader(spec: TaskFile, where: str) -> ChoiceReader:
    """The choices and gold expressions of a multiple-choice definition, compiled once."""
    gold = spec.gold if spec.gold is not None else f"row.{spec.label_column}"
    compute = compile_variables(
        {"options": str(spec.choices), "gold": gold},
        where,
        fields={"options": "choices", "gold": "gold" if spec.gold else "label_column"},
    )
    return ChoiceReader(tuple(spec.labels), remember_rows(compute))


def check_language_codes(spec: TaskFile, path: Path) -> None:
    """Listed languages must be ones mslt-it knows (names, scripts, lang2vec codes), each once;
    a registry column must be one ``languages.csv`` has (else the task fails later, namelessly).
    """
    if isinstance(spec.languages, RegistryLanguages):
        if spec.languages.registry not in REGISTRY_COLUMNS:
            raise MsltError(
                f"{path}: languages.registry: {spec.languages.registry!r} is not a column of "
                f"mslt-it's language registry; allowed: {allowed(REGISTRY_COLUMNS)}"
            )
        return
    if not spec.languages:
        raise MsltError(f"{path}: languages: the list is empty; name at least one language")
    known = all_languages()
    seen: set[str] = set()
    for code in spec.languages:
        if code not in known:
            raise MsltError(
                f"{path}: languages: {code!r} is not in mslt-it's language registry "
                "(mslt_it/resources/languages.csv); use its codes, e.g. en, sw, zh"
            )
        if code in seen:
            raise MsltError(f"{path}: languages: {code!r} is listed twice; list each once")
        seen.add(code)


def check_labels(spec: TaskFile, path: Path) -> None:
    """A label set a model can be scored on: at least two distinct, non-empty names.

    One label (or two spellings of one) would score 100 % on any model.
    """
    if spec.kind not in ("classification", "multiple_choice"):
        return
    what = "choice slots" if spec.kind == "multiple_choice" else "labels"
    labels = spec.labels
    blank = [label for label in labels if not label.strip()]
    if blank:
        raise MsltError(f"{path}: labels: {labels!r} has an empty name; name every one")
    compared = [folded_answer(label) for label in labels]  # as an answer meets its gold
    twice = [label for label, key in zip(labels, compared, strict=True) if compared.count(key) > 1]
    if twice:
        alike = " and ".join(repr(label) for label in dict.fromkeys(twice[:2]))
        spelt = (
            ""
            if len(set(twice[:2])) == 1
            else " (an answer and its gold are compared case and spacing aside)"
        )
        raise MsltError(
            f"{path}: labels: {labels!r} names {alike} twice{spelt}; a {spec.kind} task needs "
            f"distinct {what}"
        )
    if len(labels) < 2:
        raise MsltError(
            f"{path}: labels: {labels!r} has {len(labels)}; a {spec.kind} task needs at least "
            f"two distinct {what} (one would score 100 % on any model)"
        )


def check_choices_count(spec: TaskFile, path: Path) -> None:
    """A ``choices`` expression written as a list (``[row.a, row.b]``) has one item per slot."""
    if spec.kind != "multiple_choice" or spec.choices is None:
        return
    try:
        node = Parser(ENVIRONMENT, spec.choices, state="variable").parse_expression()
    except jinja2.TemplateSyntaxError:
        return  # compile_variables names the syntax error
    if isinstance(node, nodes.List | nodes.Tuple) and len(node.items) != len(spec.labels):
        raise MsltError(
            f"{path}: choices: {spec.choices!r} gives {len(node.items)} choices; labels names "
            f"{len(spec.labels)} ({', '.join(spec.labels)}): one choice per label"
        )


def check_synthetic(spec: TaskFile, path: Path) -> None:
    """The definition's kind, labels and columns fit the synthetic generator it names."""
    generator = spec.synthetic
    if generator is None:
        return
    if generator not in GENERATOR_KINDS:
        raise MsltError(
            f"{path}: synthetic: unknown generator {generator!r}; known: {allowed(GENERATOR_KINDS)}"
        )
    kind, count = GENERATOR_KINDS[generator]
    columns = generator_columns(generator)
    if spec.kind != kind:
        fitting = [name for name, shape in GENERATOR_KINDS.items() if shape[0] == spec.kind]
        raise MsltError(
            f"{path}: synthetic: the {generator} generator makes {kind} rows, not "
            f"{spec.kind} ones; allowed for {spec.kind}: {allowed(fitting) or 'none'}"
        )
    if count and len(spec.labels) != count:
        raise MsltError(
            f"{path}: synthetic: the {generator} generator's rows have {count} labels (ids 0 to "
            f"{count - 1}), but labels names {len(spec.labels)}: {', '.join(spec.labels)}"
        )
    for column in spec.columns:
        if column not in columns:
            raise MsltError(
                f"{path}: columns: {column!r} is not a column of the synthetic {generator} rows; "
                f"they have: {', '.join(columns)}"
            )


def stand_in_row(spec: TaskFile) -> Row:
    """The row a definition without synthetic rows is tried on: its ``example``, else every
    column filled (text, label 0, one untagged token), as
    :func:`mslt_it.tasks.synthetic.sample_row` gives templates."""
    if spec.example is not None:
        return dict(spec.example)
    row: Row = {column: "text" for column in spec.columns}
    row.update({column: values[0] for column, values in spec.values.items()})  # an allowed one
    if spec.kind == "ner":
        row.update(tokens=["text"], ner_tags=[0])
    if spec.label_column:
        row[spec.label_column] = 0
    return row


def first_language(spec: TaskFile) -> str:
    """A language of the definition, to try its variables in."""
    if isinstance(spec.languages, RegistryLanguages):
        if spec.languages.registry == "all":
            return next(iter(all_languages()))
        return languages_of_task(spec.languages.registry)[0]
    return spec.languages[0]


def check_sample(task: Task, spec: TaskFile, path: Path) -> None:
    """Compute the definition's values on its example (or the stand-in row) once, at load.

    A gold index of the wrong type, choices that are no list of texts, or an expression that
    cannot read the row are the definition's fault: said here once, naming the file and field,
    rather than as a failure of every template tried on the row later. A definition with a
    synthetic generator and no example is checked against the generator instead.
    """
    if spec.synthetic is not None and spec.example is None:
        return
    row = stand_in_row(spec)
    lang = first_language(spec)
    try:
        if spec.kind == "classification":
            gold = row.get(str(spec.label_column))
            count = len(spec.labels)
            if isinstance(gold, bool) or not isinstance(gold, int) or not 0 <= gold < count:
                raise ValueError(
                    f"label_column {spec.label_column!r} holds {gold!r}; allowed: a label id, "
                    f"0 to {count - 1}"
                )
        if task.check_row is not None:
            task.check_row(row)
        words = {key: key for key in task.verbalizer_keys}
        labelled = spec.kind in ("classification", "multiple_choice")
        for label in (None, *range(len(spec.labels))) if labelled else (None,):
            task.to_variables(row, words, lang, label)
        if task.cluster_of is not None:
            task.cluster_of(row)
    except Exception as error:  # MsltError from an expression, ValueError from a check, …
        reason = describe(error).removeprefix(f"{path}: ")
        if spec.example is not None or isinstance(error, LimitError):
            place = "example: " if spec.example is not None else ""
            raise MsltError(f"{path}: {place}{reason}") from None
        raise MsltError(
            f"{path}: {reason} (on a stand-in row whose columns all hold 'text'; give the "
            "definition an example row in the dataset's schema)"
        ) from None


SCORING_KEYS = ("cluster", "parallel")
"""The entries that decide how rows are resampled, never a prediction: their lines are left out
of a definition's identity (an evaluation whose definition gained or changed one is re-scored,
not predicted again; each is an evaluation setting of its own)."""

BYTE_ORDER_MARK = b"\xef\xbb\xbf"
BREAKS = "\x85\u2028\u2029"
"""Line breaks to YAML that are none to a file's lines: one on a left-out line would leave the
YAML line after it out of the identity."""


def scoring_lines(data: bytes, keys: Sequence[str] = SCORING_KEYS) -> list[int]:
    """The numbers (from 0) of the lines that begin ``<key>:`` for one of ``keys`` (the first
    line read after a byte-order mark, which YAML reads past)."""
    lines = data.splitlines()
    if lines:
        lines[0] = lines[0].removeprefix(BYTE_ORDER_MARK)
    starts = tuple(f"{key}:".encode() for key in keys)
    return [number for number, line in enumerate(lines) if line.startswith(starts)]


def identity_bytes(data: bytes) -> bytes:
    """A definition file's bytes as its identity reads them: without its ``cluster:`` and
    ``parallel:`` lines (:data:`SCORING_KEYS`).

    A definition loads only when each such line is that entry's own, whole, and no other line
    begins so (:func:`check_scoring_lines`).
    """
    dropped = set(scoring_lines(data))
    lines = data.splitlines(keepends=True)
    kept = b"".join(line for number, line in enumerate(lines) if number not in dropped)
    marked = 0 in dropped and data.startswith(BYTE_ORDER_MARK)
    return BYTE_ORDER_MARK + kept if marked else kept  # the mark is the file's, not the line's


def identity_sha256(path: str | Path, field: str = "task definition") -> str:
    """SHA-256 of a definition file's :func:`identity_bytes`, read under the usual limits."""
    data = read_user_bytes(path, field, MAX_TEXT_BYTES)
    return hashlib.sha256(identity_bytes(data)).hexdigest()


def check_scoring_lines(spec: TaskFile, text: str, path: Path) -> None:
    """Each of :data:`SCORING_KEYS` set is a top-level key at a line's start with its whole
    value on that line, read by no other field, and no other line begins ``<key>:``: what
    :func:`identity_bytes` leaves out is those entries and nothing else.

    Each way round it was a hole through which an edit reaching every prompt kept the stale
    predictions, dataset and adapter: a line of a quoted variable beginning ``cluster:``, a
    rule anchored (``cluster: &x row.a``) and read as ``*x`` by a variable, and a YAML line
    break (U+2028) that no file line break matches, which moved the line left out."""
    encoded = text.encode()
    for key in SCORING_KEYS:
        found = scoring_lines(encoded, (key,))
        if getattr(spec, key) in (None, False) and not found:
            continue
        entry = _entry_line(text, key)
        if entry is None or found != [entry] or any(mark in text for mark in BREAKS):
            example = "<expression>" if key == "cluster" else "true"
            raise MsltError(
                f"{path}: {key}: write it on one line of its own, `{key}: {example}` at the "
                "line's start of a block-style definition, with no anchor, alias or tag, and no "
                "U+0085, U+2028 or U+2029 in the file (that line is left out of the definition's "
                f"identity); begin no other line with `{key}:`"
            )


def _entry_line(text: str, name: str) -> int | None:
    """The line (from 0) of the top-level ``name`` entry when its key begins that line, its
    value is a scalar of that line that nothing else reads (no anchor, alias or tag); None
    otherwise (or without one)."""
    try:
        root = compose_yaml(text)
    except MsltError:
        return None
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == name and key.style is None:
            line = key.start_mark.line
            plain = isinstance(value, yaml.ScalarNode) and value.end_mark.line == line
            written = text.splitlines()[line][len(name) + 1 :].lstrip() if plain else ""
            alone = plain and written[:1] not in ("&", "*", "!") and _uses(root, value) == 1
            return line if key.start_mark.column == 0 and alone else None
    return None


def _uses(root: yaml.Node, node: yaml.Node) -> int:
    """How many times ``node`` is in the document (an alias is the anchored node again)."""
    count, stack, seen = 0, [root], set()
    while stack:
        current = stack.pop()
        count += current is node
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            stack += [part for pair in current.value for part in pair]
        elif isinstance(current, yaml.SequenceNode):
            stack += current.value
    return count


def parse_definition(path: Path) -> Task:
    """Read, validate and build one definition file; every problem is one line naming it."""
    text = read_text_file(path)
    spec = validate_yaml_file(path, text, TaskFile, "a task definition")
    if spec.name != path.stem:
        raise MsltError(f"{path}: name is {spec.name!r} but the file is called {path.name}")
    check_scoring_lines(spec, text, path)
    check_language_codes(spec, path)
    check_labels(spec, path)
    check_choices_count(spec, path)
    check_synthetic(spec, path)
    task = build_task(spec, str(path))
    check_sample(task, spec, path)
    return task


def definition_files(folders: Iterable[Path]) -> list[Path]:
    """The ``*.yaml`` files of the given folders (a definition file given itself), in order,
    each file once.

    A file reached twice (the shipped ``tasks/`` given again as ``--tasks-dir``, a folder and a
    symlink to it) is one definition, not a task defined twice: files are told apart by their
    resolved path.
    """
    found = []
    seen: set[Path] = set()
    for folder in folders:
        if folder.is_file():  # one definition of a dataset's, not a folder the user gave
            files = [folder]
        elif not folder.is_dir():
            raise MsltError(f"tasks-dir: {str(folder)!r} is not a directory")
        else:
            files = listed(folder, "tasks-dir", "*.yaml", "*.yml")
            check_suffixes(folder)
        for path in files:
            if path.name.startswith("."):  # an editor's lock or backup (.#task.yaml), hidden
                continue
            resolved = resolved_path(path, "tasks-dir")
            if resolved not in seen:
                seen.add(resolved)
                found.append(path)
    return found


def check_suffixes(folder: Path) -> None:
    """A definition named ``task.YAML``, or put in a sub-folder, was never read and never
    named: the user's task silently did not exist ("unknown task"). Refused in one line, as a
    broken file is (a misplaced template is named likewise)."""
    for path in listed(folder, "tasks-dir", "*/*.yaml", "*/*.yml"):
        if not path.name.startswith(".") and path.is_file():
            raise MsltError(
                f"tasks-dir: {str(path)!r} is not read: a definition lives at "
                f"{str(folder / '<name>.yaml')!r}, not in a sub-folder"
            )
    for path in listed(folder, "tasks-dir", "*"):
        if yaml_in_other_case(path) and not path.name.startswith(".") and path.is_file():
            raise MsltError(
                f"tasks-dir: {str(path)!r} is not read: a definition's file name ends in "
                ".yaml or .yml (lower case)"
            )


REMEMBERED_FOLDER_SETS = 16
"""Sets of task folders whose parsed definitions :func:`load_definitions` keeps."""

_LOADED: dict[tuple[Path, ...], tuple[tuple[object, ...], tuple[Path, ...], dict[str, Task]]] = {}
"""Folders -> the state of them and their definition files when parsed, the files, the tasks."""


def load_definitions(folders: tuple[Path, ...]) -> dict[str, Task]:
    """Every task defined in ``folders``; a name defined twice (in two files) is an error.

    Parsed once while nothing changes: kept by the folders' and the files' states (size,
    times, inode), so a definition edited between two calls in one process (a notebook, a
    test) is read again. Keyed by the folders alone, an edited definition gave the old task
    while an evaluation recorded the new file's digest.
    """
    known = _LOADED.get(folders)
    if known is not None and known[0] == _state(folders, known[1]):
        return known[2]
    files = tuple(definition_files(folders))
    state = _state(folders, files)  # before parsing: an edit while parsing reads again
    tasks: dict[str, Task] = {}
    for path in files:
        task = parse_definition(path)
        if task.name in tasks:
            raise MsltError(
                f"tasks-dir: task {task.name!r} is defined twice: "
                f"{tasks[task.name].extra['definition']} and {path}"
            )
        tasks[task.name] = task
    if folders not in _LOADED and len(_LOADED) >= REMEMBERED_FOLDER_SETS:
        _LOADED.pop(next(iter(_LOADED)))
    _LOADED[folders] = (state, files, tasks)
    return tasks


def _state(folders: tuple[Path, ...], files: tuple[Path, ...]) -> tuple[object, ...]:
    """What changes when a definition is added, removed, replaced or edited in place: each
    folder's state (an entry added, removed or renamed into it) and each file's."""
    return tuple(file_state(path) for path in (*folders, *files))


def forget_definitions() -> None:
    """Parse every definition again on the next call (tests that swap folders)."""
    _LOADED.clear()


def user_definition(task: Task) -> dict[str, str] | None:
    """``{path, sha256}`` of a task defined outside mslt-it's own ``tasks/`` (a ``--tasks-dir``).

    Recorded in a dataset's manifest and in a recipe step's input hash, so a dataset says which
    definition made it and an edited definition rebuilds it (its ``cluster`` and ``parallel``
    lines aside, which no dataset reads: :func:`identity_bytes`). Shipped definitions are
    versioned with mslt-it itself (its version is in every manifest).
    """
    where = task.extra.get("definition")
    if not where:
        return None
    path = Path(where).resolve()
    if path.is_relative_to(TASKS_DIR.resolve()):
        return None
    return {"path": str(path), "sha256": identity_sha256(path)}
