"""Prompt templates: YAML files with Jinja fields, validated when loaded, rendered in a sandbox.

A template file ``prompts/<task>/<name>.yaml`` has the id ``<task>/<name>``::

    id: xnli/en-instruct
    task: xnli
    description: English instruction, English label words.
    instruction: |-
      Premise: {{ premise }}
      Hypothesis: {{ hypothesis }}
      Answer with one word: {{ choices | join(", ") }}.
    answer: "{{ label_word }}"
    verbalizers: {entailment: entailment, neutral: neutral, contradiction: contradiction}
    by_lang:            # optional per-language overrides of instruction / answer / verbalizers
      de: {verbalizers: {entailment: Folgerung, neutral: neutral, contradiction: Widerspruch}}

Templates render in :data:`mslt_it.prompt_bounds.ENVIRONMENT` (Jinja's immutable sandbox, with
time, size and work bounds shared with task definitions' expressions) and strict undefined
variables, so a template can neither reach into Python objects, nor run without end, nor silently
print nothing for a misspelt field. Loading checks every field the template uses against what the
task provides, every verbalizer against the task's labels, and renders it once on a synthetic row.
"""

from __future__ import annotations

import hashlib
import numbers
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2 import meta
from pydantic import BaseModel, ConfigDict, field_validator

from mslt_it.arguments import expect, given, paths_argument
from mslt_it.errors import MsltError, allowed, clipped
from mslt_it.files import control_character, listed, resolved_path
from mslt_it.label_words import normalize, parse_label
from mslt_it.paths import PROMPTS_DIR, check_folder_text, shipped_folder
from mslt_it.prompt_bounds import (
    ENVIRONMENT,
    bounded_render,
    check_literals,
    describe,
)
from mslt_it.tasks import all_tasks, get_task
from mslt_it.tasks.base import Row, Task
from mslt_it.tasks.definitions import label_index
from mslt_it.tasks.synthetic import sample_row
from mslt_it.template_values import refuse_made_text
from mslt_it.yamlfiles import YAML_SUFFIXES, read_text_file, validate_yaml_file, yaml_in_other_case


class LanguageOverride(BaseModel):
    """Per-language replacements for a template's parts."""

    model_config = ConfigDict(extra="forbid")
    instruction: str | None = None
    answer: str | None = None
    verbalizers: dict[str, str] | None = None


class TemplateFile(BaseModel):
    """The schema of a template YAML file.

    ``format: chat`` (the default) is an instruction-tuning prompt: the instruction is the user's
    turn of the chat template and the answer the assistant's. ``format: plain`` is a
    language-model prompt as lm-evaluation-harness writes it: the instruction is the context,
    fed as it is, and the answer follows it after ``target_delimiter``; such a template is for
    evaluation (rank or generate), not for building a training set.
    """

    model_config = ConfigDict(extra="forbid")
    id: str
    task: str
    description: str
    format: Literal["chat", "plain"] = "chat"
    target_delimiter: str = " "
    instruction: str | None = None
    answer: str
    verbalizers: dict[str, str] | None = None
    languages: list[str] | None = None
    by_lang: dict[str, LanguageOverride] = {}

    @field_validator("id")
    @classmethod
    def _printable_id(cls, value: str) -> str:
        """An id is printed in titles, tables and manifests: a control character in it (an
        escape from the file's name) reached the terminal raw."""
        character = control_character(value)
        if character is not None:
            raise ValueError(
                f"holds the control character {character!r}; an id is <task>/<name> in "
                "printable characters"
            )
        return value


_ENVIRONMENT = ENVIRONMENT
"""The bounded sandbox (:data:`mslt_it.prompt_bounds.ENVIRONMENT`), under its former name."""


@dataclass(frozen=True)
class RenderedExample:
    """One rendered example: what the user says and what the assistant should answer."""

    instruction: str
    answer: str


def check_row_argument(row: object, task: Task) -> None:
    """``row`` something a row's columns are read from (a dict, a pandas row): ``render(None,
    "en")`` was a TypeError deep in the task's code. A column it lacks is said when it is
    read (:meth:`PromptTemplate.render`): not every column is read by every render."""
    if (
        row is None
        or isinstance(row, str | bytes | numbers.Number | list | tuple | set)
        or not hasattr(row, "__getitem__")
    ):
        raise MsltError(
            f"row: got {given(row)}; expected a mapping of {task.name}'s columns (one row of "
            "its data)"
        )


def check_verbalizer_argument(verbalizer: object, task: Task) -> None:
    """A verbalizer maps each of ``task``'s labels to its word."""
    expect(verbalizer, Mapping, "verbalizer", f"a mapping of {task.name}'s labels to words")
    missing = [key for key in task.verbalizer_keys if key not in verbalizer]  # type: ignore[operator]
    if missing:
        raise MsltError(
            f"verbalizer: gives no word for {allowed(missing)}; {task.name}'s labels are "
            f"{allowed(task.verbalizer_keys)}"
        )


@dataclass(frozen=True)
class PromptTemplate:
    """A loaded, validated template. Use :meth:`render` to turn a row into an example."""

    spec: TemplateFile
    path: Path
    source_text: str

    @property
    def id(self) -> str:
        return self.spec.id

    @cached_property
    def task(self) -> Task:
        return get_task(self.spec.task)

    @property
    def sha256(self) -> str:
        """Hash of the file's text: recorded in manifests so a changed template is noticed."""
        return hashlib.sha256(self.source_text.encode()).hexdigest()

    @property
    def user_sha256(self) -> str | None:
        """:attr:`sha256` of a template outside mslt-it's own ``prompts/`` (a ``--prompts-dir``'s),
        else None: what reads it records its content, and a shipped template is mslt-it's version
        (so a step that reads only shipped ones hashes as it did)."""
        if self.path.resolve().is_relative_to(PROMPTS_DIR.resolve()):
            return None
        return self.sha256

    @cached_property
    def languages(self) -> tuple[str, ...]:
        """Languages this template can render (those with an instruction and verbalizers)."""
        candidates = self.spec.languages or list(self.task.languages)
        return tuple(lang for lang in candidates if self._covers(lang))

    def _covers(self, lang: str) -> bool:
        override = self.spec.by_lang.get(lang, LanguageOverride())
        has_instruction = (override.instruction or self.spec.instruction) is not None
        has_verbalizer = (override.verbalizers or self.spec.verbalizers) is not None
        return has_instruction and (has_verbalizer or not self.task.verbalizer_keys)

    def verbalizer(self, lang: str) -> dict[str, str]:
        """Label name -> word in ``lang`` (the per-language one if the template has it)."""
        self.check_language(lang)
        override = self.spec.by_lang.get(lang)
        return dict((override and override.verbalizers) or self.spec.verbalizers or {})

    def check_language(self, lang: str) -> None:
        if lang not in self.languages:
            raise MsltError(
                f"template {self.id} has no instruction or verbalizer for language {lang!r}; "
                f"it covers: {allowed(self.languages)}"
            )

    @cached_property
    def _compiled(self) -> dict[str, CompiledParts]:
        compiled = {}
        for lang in self.languages:
            override = self.spec.by_lang.get(lang, LanguageOverride())
            instruction = override.instruction or self.spec.instruction or ""
            compiled[lang] = CompiledParts(instruction, override.answer or self.spec.answer)
        return compiled

    @property
    def plain(self) -> bool:
        """A language-model prompt (lm-evaluation-harness style), not a chat turn."""
        return self.spec.format == "plain"

    def variables(self, row: Row, lang: str) -> dict[str, Any]:
        """The variables the template sees for ``row``."""
        return self.task.to_variables(row, self.verbalizer(lang), lang, None)

    def render(
        self,
        row: Row,
        lang: str,
        verbalizer: Mapping[str, str] | None = None,
        label: int | None = None,
    ) -> RenderedExample:
        """Render one row of the template's task, in language ``lang``.

        ``label`` (an index into the task's labels) renders the row as if that were its gold
        label: rank mode scores every label's answer (and, for a multiple-choice template whose
        context names the choice, every choice's context) this way.
        """
        self.check_language(lang)
        check_row_argument(row, self.task)  # a notebook's string or list: a TypeError deep in
        if verbalizer is not None:
            check_verbalizer_argument(verbalizer, self.task)
        if label is not None and self.task.kind in ("classification", "multiple_choice"):
            label = label_index(label, self.task.labels, row, None)  # 7, "1": named, not bare
        try:
            variables = self.task.to_variables(
                row, verbalizer or self.verbalizer(lang), lang, label
            )
        except KeyError as missing:  # a column the row lacks: a bare KeyError before
            raise MsltError(
                f"row: lacks the column {clipped(missing.args[0], 40)} that "
                f"{self.task.name} reads (its columns: {allowed(self.task.columns)})"
            ) from None
        try:
            instruction, answer = self._compiled[lang].render(variables)
            refuse_made_text((instruction, answer), variables)
        except MsltError:
            raise
        except Exception as error:  # the bounds, a bad filter, a type error on this row's data
            which = (  # a template is checked on the task's example row in every language
                f"row {row['id']}"
                if isinstance(row.get("id"), str)
                else f"the task's example row in language {lang!r}"
            )
            field = self._failing_part(lang, variables)
            raise MsltError(
                f"{self.path}: {field}: cannot render {which}: {describe(error)}"
            ) from None
        if self.plain:  # lm-evaluation-harness keeps a context and a choice as they are: a
            return RenderedExample(instruction, answer)  # story's last space moves to the choice
        return RenderedExample(instruction.strip(), answer.strip())

    def _failing_part(self, lang: str, variables: dict[str, Any]) -> str:
        """The field whose text failed to render (``instruction``, ``answer``, or a language's
        own, ``by_lang.de.answer``): both render as one, and the error named neither. The
        instruction is rendered again alone, within the same bounds; it rendered, the answer
        is to blame."""
        override = self.spec.by_lang.get(lang, LanguageOverride())
        parts = self._compiled[lang]
        try:
            bounded_render(_compile(parts.instruction), variables)
            name = "answer"
        except Exception:  # the same failure: the bounds, a filter, this row's data
            name = "instruction"
        return f"by_lang.{lang}.{name}" if getattr(override, name) else name


PLAIN_VARIABLE = re.compile(r"^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")
PART_SEPARATOR = "\x1e"
"""ASCII record separator between the instruction and the answer in the joint render."""


@dataclass(frozen=True)
class CompiledParts:
    """A template's instruction and answer (Jinja sources) for one language, rendered in one pass.

    Building a dataset renders every example, and Jinja's per-render set-up (a fresh context
    merged with the globals) costs as much as a short template's own work: rendering both parts
    as one template halves it, and plain-dict globals make the merge cheap. Each part sits in its
    own ``{% with %}`` scope, so a ``{% set %}`` in one cannot leak into the other, exactly as
    when they were rendered apart. A row whose text itself holds the separator is rendered part
    by part instead.
    """

    instruction: str
    answer: str

    @cached_property
    def joint(self) -> jinja2.Template:
        """Both parts as one template, each in its own scope, joined by the separator."""
        return _compile(
            "{% with %}" + self.instruction + "{% endwith %}" + PART_SEPARATOR
            + "{% with %}" + self.answer + "{% endwith %}"
        )  # fmt: skip

    @cached_property
    def plain_names(self) -> tuple[str, str] | None:
        """The variables of a template whose two parts are each one bare ``{{ name }}`` (a
        corpus's as-is template): rendered without Jinja, to the same text."""
        names = [PLAIN_VARIABLE.match(part) for part in (self.instruction, self.answer)]
        if names[0] is None or names[1] is None:
            return None
        return names[0].group(1), names[1].group(1)

    def render(self, variables: dict[str, Any]) -> tuple[str, str]:
        """``(instruction, answer)`` rendered with ``variables`` (not yet stripped)."""
        plain = self.plain_names
        if plain is not None:
            instruction, answer = variables.get(plain[0]), variables.get(plain[1])
            if isinstance(instruction, str) and isinstance(answer, str):
                return instruction, answer
        text = bounded_render(self.joint, variables)
        if text.count(PART_SEPARATOR) == 1:
            instruction, _, answer = text.partition(PART_SEPARATOR)
            return instruction, answer
        return (
            bounded_render(_compile(self.instruction), variables),
            bounded_render(_compile(self.answer), variables),
        )


@lru_cache(maxsize=256)
def _compile(source: str) -> jinja2.Template:
    """Compile in the sandbox, with the globals copied into a plain dict (cheap to merge).

    Cached by source: most templates use one instruction for every language, compiled once.
    """
    check_literals(ENVIRONMENT, source)
    template = ENVIRONMENT.from_string(source)
    template.globals = dict(template.globals)
    return template


def parse_template(path: Path, text: str, expected_id: str | None = None) -> PromptTemplate:
    """Parse and validate a template file's text; every problem names the file and field."""
    spec = validate_yaml_file(path, text, TemplateFile, "a template")
    if expected_id is not None and spec.id != expected_id:
        raise MsltError(f"{path}: id is {spec.id!r} but the file's place says {expected_id!r}")
    folder = spec.id.split("/", 1)[0]
    if "/" in spec.id and folder != spec.task:  # `prompts list --task` finds it by its task
        raise MsltError(
            f"{path}: task: {clipped(spec.task, 40)}, but the id {spec.id!r} places it among "
            f"the templates of {folder!r} (prompts/<task>/<name>.yaml)"
        )
    try:
        task = get_task(spec.task)
    except MsltError as error:  # the task's message alone did not say which file
        raise MsltError(f"{path}: {error}") from None
    template = PromptTemplate(spec, path, text)
    _check_fields(template, task)
    _check_verbalizers(template, task)
    _trial_render(template)
    return template


def _jinja_fields(path: Path, part: str, source: str) -> set[str]:
    try:
        return set(meta.find_undeclared_variables(ENVIRONMENT.parse(source)))
    except jinja2.TemplateSyntaxError as error:
        raise MsltError(
            f"{path}: {part}: Jinja syntax error on line {error.lineno}: {error.message}"
        ) from None
    except RecursionError:  # Jinja's parser recurses once per bracket: ((((…)))) 80 deep
        raise MsltError(f"{path}: {part}: nested too deeply for Jinja's parser") from None


def _check_fields(template: PromptTemplate, task: Task) -> None:
    spec = template.spec
    parts: list[tuple[str, str | None]] = [
        ("instruction", spec.instruction),
        ("answer", spec.answer),
    ]
    for lang, override in spec.by_lang.items():
        parts += [
            (f"by_lang.{lang}.instruction", override.instruction),
            (f"by_lang.{lang}.answer", override.answer),
        ]
    for part, source in parts:
        if source is None:
            continue
        for name in sorted(_jinja_fields(template.path, part, source) - task.fields):
            raise MsltError(
                f"{template.path}: {part} uses field {name!r}, which task {task.name} does not "
                f"provide; fields: {allowed(sorted(task.fields))}"
            )


def _check_verbalizers(template: PromptTemplate, task: Task) -> None:
    spec = template.spec
    valid_langs = set(task.languages)
    for lang in [*(spec.languages or []), *spec.by_lang]:
        if lang not in valid_langs:
            raise MsltError(
                f"{template.path}: language {lang!r} is not one of task {task.name}'s: "
                f"{allowed(task.languages)}"
            )
    named = [("verbalizers", spec.verbalizers)] + [
        (f"by_lang.{lang}.verbalizers", o.verbalizers) for lang, o in spec.by_lang.items()
    ]
    for field_name, words in named:
        if words is None:
            continue
        for key in task.verbalizer_keys:
            if key not in words:
                raise MsltError(
                    f"{template.path}: {field_name} is missing a verbalizer for {key!r}"
                )
        for key in words:
            if key not in task.verbalizer_keys:
                raise MsltError(
                    f"{template.path}: {field_name} has unknown label {key!r}; "
                    f"labels: {allowed(task.verbalizer_keys)}"
                )
        folded = [normalize(w).strip() for w in words.values()]  # as an answer is read
        if len(set(folded)) != len(folded) or not all(folded):
            raise MsltError(
                f"{template.path}: {field_name} words must be distinct and non-empty (in any "
                f"case and Unicode form, as answers are read: ＯＫ is ok), got {words}"
            )
        for key, word in words.items():
            if any(unicodedata.category(ch) == "Cc" for ch in word):
                raise MsltError(
                    f"{template.path}: {field_name}.{key} is {word!r}, which holds a control "
                    "character; a label word is text the model writes"
                )
    if not task.verbalizer_keys:  # an instruction corpus: answers are text, not labels
        return
    if spec.verbalizers is None and not any(o.verbalizers for o in spec.by_lang.values()):
        raise MsltError(
            f"{template.path}: verbalizers: missing (no default and no by_lang verbalizers)"
        )
    if not template.languages:
        raise MsltError(f"{template.path}: no language has both an instruction and verbalizers")


def _trial_render(template: PromptTemplate) -> None:
    """Render each distinct variant of the template once on a sample row, so runtime errors
    surface at load.

    Languages without their own instruction, answer or words share one variant (WikiAnn's 176
    languages are one or two), so loading stays fast; a language with an override is tried alone.
    """
    tried: set[tuple[object, ...]] = set()
    for lang in template.languages:
        parts = template._compiled[lang]
        variant = (
            parts.instruction,
            parts.answer,
            tuple(sorted(template.verbalizer(lang).items())),
        )
        if variant in tried:
            continue
        tried.add(variant)
        row = sample_row(template.task, lang)
        rendered = template.render(row, lang)  # any failure is already one line naming the file
        if template.task.kind not in LABELLED_KINDS:  # else each label's render is checked
            _check_not_empty(template, rendered, lang)
        _check_labels_told_apart(template, row, lang)


LABELLED_KINDS = ("classification", "multiple_choice")
"""Tasks whose rows render once per label (rank mode scores each label's answer)."""


def _check_not_empty(
    template: PromptTemplate, rendered: RenderedExample, lang: str, label: str | None = None
) -> None:
    """An instruction or answer that renders empty (``instruction: ""``, or an answer empty for
    one label) built a dataset of empty prompts or trained an empty answer without a word."""
    for part, text in (("instruction", rendered.instruction), ("answer", rendered.answer)):
        if not text:
            which = f" for label {label!r}" if label is not None else ""
            raise MsltError(
                f"{template.path}: {part} renders empty text on the task's example row in "
                f"language {lang!r}{which}; it must give the model something to read and answer"
            )


def _check_labels_told_apart(template: PromptTemplate, row: Row, lang: str) -> None:
    """Each label must render to its own example: a template whose answer ignores the label
    (``answer: "yes"``) would train one answer for every row, and rank mode would score every
    label alike."""
    task = template.task
    if task.kind not in LABELLED_KINDS:
        return
    seen: dict[RenderedExample, str] = {}
    instructions: dict[str, str] = {}
    for index, name in enumerate(task.labels):
        rendered = template.render(row, lang, label=index)
        _check_not_empty(template, rendered, lang, name)
        instructions.setdefault(rendered.instruction, name)
        if task.kind == "classification" and len(instructions) > 1:
            first = next(iter(instructions.values()))
            raise MsltError(  # a multiple-choice context may name its choice; this one the gold
                f"{template.path}: the instruction for {lang} differs between labels {first!r} "
                f"and {name!r}; a classification prompt must not hold the answer (use "
                "{{ label_word }} or {{ label }} in the answer only)"
            )
        if rendered in seen:
            raise MsltError(
                f"{template.path}: labels {seen[rendered]!r} and {name!r} render the same "
                f"instruction and answer for {lang}; the answer must name the label (e.g. "
                "{{ label_word }}) or the instruction the choice"
            )
        seen[rendered] = name
    if task.kind != "classification":
        return
    words = template.verbalizer(lang)
    for rendered, name in seen.items():  # every answer, a model's or a template's, read so
        if parse_label(rendered.answer, words) != name:
            raise MsltError(
                f"{template.path}: the answer for label {name!r} in {lang} "
                f"({clipped(rendered.answer, 40)}) does not read as that label: an answer must "
                "hold its label word as a word ({{ label_word }}), and no other label's"
            )


PROMPTS_FIELD = "prompts-dir"


def template_files(dirs: Iterable[Path]) -> list[tuple[str, Path]]:
    """``(id, path)`` of every ``<task>/<name>.yaml`` under the given prompt folders.

    A file reached twice (the shipped folder given again as ``--prompts-dir``, or through a
    symlink) is listed once: it is one template, not an id defined twice.
    """
    found = []
    seen: set[Path] = set()
    for root in dirs:
        root = Path(root)
        if not root.is_dir():
            raise MsltError(f"prompts-dir: {str(root)!r} is not a directory")
        for path in listed(root, PROMPTS_FIELD, "*/*.yaml", "*/*.yml"):
            if path.name.startswith("."):  # an editor's lock or backup (.#x.yaml), hidden
                continue
            resolved = resolved_path(path, "prompts-dir")
            if resolved in seen:
                continue
            seen.add(resolved)
            found.append((f"{path.parent.name}/{path.stem}", path))
    return found


def misplaced_templates(dirs: Iterable[Path]) -> list[tuple[Path, MsltError]]:
    """YAML files under the prompt folders that are never read as templates, each with why.

    Templates live at ``<dir>/<task>/<name>.yaml``; a file at ``<dir>/<name>.yaml`` or below a
    task folder, or named ``.YAML``, used to be skipped without a word, and the user's template
    silently did not exist. They are problems of their own files (``prompts list`` shows the
    rest; another template still loads), and an unknown id names them.
    """
    found = []
    for root in dirs:
        root = Path(root)
        for path in listed(root, PROMPTS_FIELD, "*", "*/*", "*/*/*"):
            if path.name.startswith(".") or path.suffix.lower() not in YAML_SUFFIXES:
                continue
            if not path.is_file():
                continue
            if len(path.relative_to(root).parts) != 2:
                where = str(root / "<task>" / "<name>.yaml")
                reason = f"is not where a template is read: a template lives at {where!r}"
            elif yaml_in_other_case(path):
                reason = "is not read: a template's file name ends in .yaml or .yml (lower case)"
            else:
                continue
            found.append((path, MsltError(f"prompts-dir: {str(path)!r} {reason}")))
    return found


def prompt_dirs(extra: Iterable[str | Path] | str | Path = ()) -> list[Path]:
    """The built-in prompt folder followed by the user's: a list of folders, or one folder (a
    str or a pathlib.Path) as the list of it (``"prompts"`` was read as the folders ``p``,
    ``r``, …)."""
    if isinstance(extra, Iterator):  # a generator of folders: read once
        extra = list(extra)
    folders = paths_argument(extra, "prompts_dir", one=True)
    for folder in folders:  # read as given: a "~/…" would be ./~/…, not the home folder's
        check_folder_text(str(folder), PROMPTS_FIELD)
    return [shipped_folder(PROMPTS_DIR), *folders]


def load_templates(
    extra_dirs: Iterable[str | Path] | str | Path = (),
) -> dict[str, PromptTemplate]:
    """Load and validate every template; an id defined twice, or any broken file, is an error.
    ``extra_dirs``: folders of the user's templates, or one folder (a str or a Path)."""
    templates, problems = survey_templates(extra_dirs)
    if problems:
        raise problems[0][1]
    return templates


def survey_templates(
    extra_dirs: Iterable[str | Path] | str | Path = (),
) -> tuple[dict[str, PromptTemplate], list[tuple[Path, MsltError]]]:
    """Every template that loads, and each file that does not with its error. ``extra_dirs``:
    folders of the user's templates, or one folder (a str or a pathlib.Path) as the list of it.

    ``prompts list`` shows both, so one broken file does not hide the rest of its folder. The
    task definitions are loaded first: a broken definition is its own one error, not a failure
    of every template.
    """
    all_tasks()
    templates: dict[str, PromptTemplate] = {}
    dirs = prompt_dirs(extra_dirs)
    problems: list[tuple[Path, MsltError]] = []
    for template_id, path in template_files(dirs):
        if template_id in templates:
            problems.append(
                (
                    path,
                    MsltError(
                        f"template id {template_id!r} is defined twice: "
                        f"{templates[template_id].path} and {path}"
                    ),
                )
            )
            continue
        try:
            templates[template_id] = parse_template(path, read_text_file(path), template_id)
        except MsltError as error:
            problems.append((path, error))
    return templates, [*problems, *misplaced_templates(dirs)]


def get_template(
    template_id: str, extra_dirs: Iterable[str | Path] | str | Path = ()
) -> PromptTemplate:
    """Load one template by id (only its file is parsed, so one broken file elsewhere is no bar).
    ``extra_dirs``: folders of the user's templates, or one folder (a str or a pathlib.Path)."""
    expect(template_id, str, "template_id", "a template id such as 'xnli/en-instruct'")
    dirs = prompt_dirs(extra_dirs)
    files = template_files(dirs)
    matches = [(tid, path) for tid, path in files if tid == template_id]
    if not matches:
        misplaced = misplaced_templates(dirs)  # where the user's may be: said first, the file
        name = template_id.rsplit("/", 1)[-1].casefold()  # its file, wherever it was put
        named = [(p, e) for p, e in misplaced if p.stem.casefold() == name]
        unread = f" ({named[0][1]})" if named else ""  # the file of that id, never another's
        if misplaced and not named:
            unread = f" ({len(misplaced)} YAML file(s) not read: `mslt-it prompts list` names them)"
        ids = [tid for tid, _ in files]
        raise MsltError(f"template: unknown id {template_id!r}{unread}; available: {allowed(ids)}")
    if len(matches) > 1:
        raise MsltError(
            f"template id {template_id!r} is defined twice: {matches[0][1]} and {matches[1][1]}"
        )
    path = matches[0][1]
    return parse_template(path, read_text_file(path, "template"), template_id)
