"""``analyze`` from start to finish: sentences → representations → metrics → plots → analysis.json.

Everything cheap is checked before anything expensive: options, adapter folders, languages and
the sentence count, then the layer range from the model's config, and only then are weights
loaded. The base model is read once; adapters are switched on it.
"""

from __future__ import annotations

import platform
import re
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mslt_it.analysis.extract import (
    DTYPES,
    POOLINGS,
    Adapter,
    Encoded,
    count_hidden_states,
    encode_sentences,
    extract_pooled,
    load_model,
    read_adapter,
    resolve_device,
    resolve_dtype,
    unique_labels,
    variants,
)
from mslt_it.analysis.metrics import MEANINGS, chance_levels, layer_metrics
from mslt_it.analysis.parallel import ParallelSentences, load_parallel
from mslt_it.analysis.plots import PROJECTIONS, plot_cka, plot_layers, plot_projection
from mslt_it.analysis.settings import (
    TABLE_POOLINGS,
    build_table,
    markdown,
    setting_measures,
    table_layers,
)
from mslt_it.arguments import (
    codes_argument,
    expect,
    flag_argument,
    int_argument,
    path_argument,
    sequence_argument,
)
from mslt_it.errors import MsltError, allowed
from mslt_it.generation.base import dtype_name
from mslt_it.identity import check_base_unchanged, model_identity, same_model
from mslt_it.io import atomic_write_json, file_fingerprint, read_json, seal, temporary_folder
from mslt_it.locks import output_lock
from mslt_it.modeling import check_base_model_folder, load_tokenizer
from mslt_it.named_models import resolve_model_name
from mslt_it.outputs import (
    ANALYSIS_KIND,
    check_destination,
    marked_output,
    move_into,
    owner_kind,
    record_file,
    sealed_json_of_kind,
)
from mslt_it.paths import is_data_folder
from mslt_it.peft_adapters import run_record_edited
from mslt_it.progress import progress_bar
from mslt_it.random_state import kept_random_state

RESULT_FILE = "analysis.json"
PLOT_FILES = {"tsne": "tsne.png", "pca": "pca.png", "layers": "layers.png", "cka": "cka.png"}
"""Every picture analyze may write; the 2-D projection is named after its method."""


def plot_files(projection: str) -> list[str]:
    """The pictures one analysis writes: its projection's, layers.png and cka.png."""
    return [PLOT_FILES[projection], PLOT_FILES["layers"], PLOT_FILES["cka"]]


@dataclass
class AnalysisConfig:
    """What to analyse and how; every field is a ``mslt-it analyze`` option of the same name."""

    model: str = field(metadata={"help": "Base model: Hub id or local folder."})
    langs: list[str] = field(metadata={"help": "Languages of the parallel sentences (≥ 2)."})
    adapters: list[str] = field(
        default_factory=list, metadata={"help": "LoRA adapter folders, analysed on the base."}
    )
    data: str = field(
        default="synthetic", metadata={"help": "hub, synthetic, or DIR/xnli/<lang>/<split>.*"}
    )
    parallel: str | None = field(
        default=None, metadata={"help": "CSV/JSONL/Parquet with one column per language."}
    )
    split: str = field(default="test", metadata={"help": "XNLI split: train, validation or test."})
    sentence_field: str = field(
        default="premise", metadata={"help": "XNLI field: premise or hypothesis."}
    )
    n: int = field(default=1000, metadata={"help": "Parallel sentences per language."})
    layers: str = field(
        default="all", metadata={"help": "all, or comma-separated indices (0 = embeddings, -1)."}
    )
    pooling: str = field(
        default="mean",
        metadata={
            "help": "mean or last (sentence tokens) for the main results; the settings table "
            "has both."
        },
    )
    chat_template: bool = field(
        default=False, metadata={"help": "Wrap each sentence as a user turn."}
    )
    center: bool = field(
        default=False,
        metadata={
            "help": "Centre each language before retrieval (CKA centres each language itself); "
            "the settings table has both."
        },
    )
    projection: str = field(
        default="tsne", metadata={"help": "tsne or pca: the picture is tsne.png or pca.png."}
    )
    plot_layer: int | None = field(
        default=None,
        metadata={"help": "Layer of the projection and cka.png (default: last analysed)."},
    )
    plot_n: int = field(
        default=200, metadata={"help": "Sentences per language in the projection picture."}
    )
    batch_size: int = field(default=32, metadata={"help": "Sentences per forward pass."})
    max_length: int = field(default=256, metadata={"help": "Tokens per sentence at most."})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:1…"})
    dtype: str = field(default="auto", metadata={"help": "auto, float32, bfloat16, float16."})
    seed: int = field(default=0, metadata={"help": "Sentence sample, probe split, t-SNE."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Let the model folder run its own code."}
    )

    def __post_init__(self) -> None:
        """Each field of the type it is read as (a notebook's config, not the CLI's): a flag
        given as ``"no"`` ran as True, ``langs="en,de"`` was read one character at a time, a
        Path as the model crashed the JSON record after all the work. A path (str or
        pathlib.Path) is kept as its str."""
        self.model = text_or_path(self.model, "model")
        self.langs = codes_argument(self.langs, "langs")
        items = sequence_argument(self.adapters, "adapters", "a list of adapter folders")
        self.adapters = [
            text_or_path(item, f"adapters.{number}") for number, item in enumerate(items)
        ]
        self.data = text_or_path(self.data, "data")
        if self.parallel is not None:
            self.parallel = text_or_path(self.parallel, "parallel")
        for name in ("split", "sentence_field", "layers", "pooling", "projection", "device"):
            expect(getattr(self, name), str, name, "a string")
        expect(self.dtype, str, "dtype", "a string")
        for name in ("n", "plot_n", "batch_size", "max_length", "seed"):
            setattr(self, name, int_argument(getattr(self, name), name))
        if self.plot_layer is not None:
            self.plot_layer = int_argument(self.plot_layer, "plot_layer")
        for name in ("chat_template", "center", "trust_remote_code"):
            flag_argument(getattr(self, name), name)


def text_or_path(value: object, name: str) -> str:
    """A model, folder or file given as a str (kept as written: ``""`` is judged later, as the
    CLI's) or a pathlib.Path (as its str, which analysis.json can record)."""
    if isinstance(value, str):
        return value
    return str(path_argument(value, name))


@dataclass
class AnalysisResult:
    """The written analysis: its folder and the content of analysis.json."""

    path: Path
    data: dict[str, Any]


def check_options(config: AnalysisConfig) -> None:
    """Options that need no data or model to judge."""
    seen: dict[Path, str] = {}
    for adapter in config.adapters:  # ad and ./ad/ are one adapter, analysed twice under one label
        folder = Path(adapter).expanduser().resolve()
        if folder in seen:
            same = "is given twice" if seen[folder] == adapter else f"and {seen[folder]!r} are one"
            raise MsltError(f"--adapter: {adapter!r} {same}; give each adapter once")
        seen[folder] = adapter
    if not 0 <= config.seed < 2**32:
        raise MsltError(f"--seed: must be an integer in [0, 2**32), got {config.seed}")
    if config.pooling not in POOLINGS:
        raise MsltError(
            f"--pooling: unknown pooling {config.pooling!r}; use one of {allowed(POOLINGS)}"
        )
    if config.projection not in PROJECTIONS:
        raise MsltError(
            f"--projection: unknown projection {config.projection!r}; "
            f"use one of {allowed(PROJECTIONS)}"
        )
    if config.dtype not in DTYPES:
        raise MsltError(f"--dtype: unknown dtype {config.dtype!r}; use one of {allowed(DTYPES)}")
    for name in ("batch_size", "max_length", "plot_n"):
        value = getattr(config, name)
        if value < 1:
            raise MsltError(f"--{name.replace('_', '-')}: {value} is too small; use 1 or more")
    if config.parallel is not None and config.data != "synthetic":
        raise MsltError(
            f"--parallel: give either --parallel FILE or --data {config.data}, not both"
        )
    if config.parallel is not None and (config.split, config.sentence_field) != (
        "test",
        "premise",
    ):
        option = "--split" if config.split != "test" else "--field"
        raise MsltError(
            f"{option}: chooses XNLI rows, and --parallel gives the sentences themselves; "
            "give one or the other"
        )


def parse_layers(spec: str, num_states: int) -> list[int]:
    """``all`` or ``8,16,-1`` → sorted distinct indices into the model's hidden states.

    Index 0 is the embedding output and ``num_states - 1`` the last layer; negative indices
    count from the end, as in Python.
    """
    last = num_states - 1
    if spec.strip() == "all":
        return list(range(num_states))
    allowed_range = f"all, 0..{last} or -{num_states}..-1 (0 = embeddings, {last} = last layer)"
    layers = set()
    for part in spec.split(","):
        if not re.fullmatch(r"-?[0-9]+", part.strip()):  # int() took "0_1" as 1, and "١" too
            raise MsltError(f"--layers: {part.strip()!r} is not a layer; use {allowed_range}")
        index = int(part.strip())
        if not -num_states <= index <= last:
            raise MsltError(
                f"--layers: {index} is out of range for a model with {last} layers; "
                f"use {allowed_range}"
            )
        layers.add(index % num_states)
    return sorted(layers)


def check_analysis_host(out: Path) -> None:
    """An analysis goes into a folder of its own, beside an evaluation (whose report finds it),
    or inside an experiment's folder; never into another output of mslt-it's. Written into a
    model it changed the model's identity (every adapter trained on it was then refused), and
    into a dataset it was a stranger that stopped the dataset's ``--overwrite``."""
    holder = marked_output(out / RESULT_FILE, levels=4)
    kind = owner_kind(holder) if holder is not None else None
    if holder is None or kind in ("evaluation", "analysis"):  # an analysis adopted: its own
        return
    if kind == "experiment" and holder != out.absolute():
        return  # a folder of its own inside the experiment's (runs/demo/analysis)
    where = "is" if holder == out.absolute() else f"lies inside {str(holder)!r},"
    raise MsltError(
        f"--out: {str(out)!r} {where} mslt-it's {kind}; an analysis goes into a folder of its "
        "own or beside an evaluation, choose another folder"
    )


def resolve_plot_layer(plot_layer: int | None, layers: list[int], num_states: int) -> int:
    """The layer shown in the projection and cka.png: one of the analysed layers."""
    if plot_layer is None:
        return layers[-1]
    index = plot_layer % num_states if -num_states <= plot_layer < num_states else None
    if index not in layers:
        raise MsltError(
            f"--plot-layer: {plot_layer} is not among the analysed layers "
            f"({allowed(layers)}); pick one of them or add it to --layers"
        )
    return index


@kept_random_state()  # a notebook's random streams are its own
def run_analysis(
    config: AnalysisConfig, out: str | Path, overwrite: bool = False
) -> AnalysisResult:
    """Analyse the base model and each adapter; write analysis.json and the PNGs to ``out``."""

    started = time.perf_counter()
    expect(config, AnalysisConfig, "config", "a mslt_it.analysis.AnalysisConfig")
    out = path_argument(out, "out")
    flag_argument(overwrite, "overwrite")
    if isinstance(config.model, str) and config.model:  # mslt-it:tiny-world, as `analyze`
        config = replace(config, model=resolve_model_name(config.model, "model"))
    check_options(config)
    if out.exists() and not out.is_dir():
        raise MsltError(f"--out: {out} is a file; give a folder for analysis.json and the PNGs")
    check_analysis_host(out)
    # a FIFO as config.json, a dataset or an adapter as a model, a folder without a tokenizer
    check_base_model_folder(config.model, "--model", adapter_option="--adapter")
    earlier = (out / RESULT_FILE).exists()
    if earlier and not sealed_json_of_kind(ANALYSIS_KIND)(out / RESULT_FILE):
        raise MsltError(
            f"--out: {out / RESULT_FILE} exists and is not an analysis.json written by mslt-it "
            "analyze (or it was edited since); choose another folder"
        )
    ours = earlier_files(out) if earlier else {}
    clashing = [name for name in plot_files(config.projection) if (out / name).exists()]
    for name in clashing:  # a picture the earlier analysis did not write, or one edited since
        if file_fingerprint(out / name) not in ours.get(name, set()):
            raise MsltError(
                f"--out: {out / name} exists and is not a picture mslt-it analyze wrote there "
                "(or it was edited since); move it or choose another folder"
            )
    # after the pictures are proven: --overwrite was advised, then refused them
    if earlier and not overwrite:
        listed = (read_json(out / RESULT_FILE) or {}).get("files")
        missing = [n for n in listed if not (out / n).is_file()] if isinstance(listed, dict) else []
        if missing:  # killed while its pictures were moved in: said, not "already exists"
            raise MsltError(
                f"--out: the analysis in {out} lacks its {missing[0]} (stopped before its "
                "pictures were in place, or removed since); pass --overwrite to analyse again"
            )
        raise MsltError(
            f"--out: {out / RESULT_FILE} already exists; pass --overwrite to replace it"
        )
    if clashing and not overwrite:
        raise MsltError(f"--out: {out / clashing[0]} already exists; pass --overwrite")
    adapters = unique_labels([read_adapter(path) for path in config.adapters])
    check_adapter_bases(config.model, adapters)
    # the folder may hold other outputs (an evaluation's): only analysis files are replaced, so
    # no ownership check, but never an input, and writable before the models load
    data_folder = config.data if is_data_folder(config.data) else None
    check_destination(out, inputs=[config.model, *config.adapters, config.parallel, data_folder])
    with output_lock(out):
        return _run_analysis(config, out, adapters, started)


def _run_analysis(
    config: AnalysisConfig, out: Path, adapters: list[Any], started: float
) -> AnalysisResult:
    """:func:`run_analysis` once ``out`` is checked and locked."""

    sentences = load_parallel(
        config.langs,
        config.n,
        data=config.data,
        split=config.split,
        field=config.sentence_field,
        parallel_file=config.parallel,
        seed=config.seed,
    )
    num_states = count_hidden_states(config.model, config.trust_remote_code)
    layers = parse_layers(config.layers, num_states)
    plot_layer = resolve_plot_layer(config.plot_layer, layers, num_states)
    settings_layers = table_layers(layers, plot_layer)
    wanted = {
        pooling: layers if pooling == config.pooling else settings_layers
        for pooling in dict.fromkeys([config.pooling, *TABLE_POOLINGS])
    }

    tokenizer = load_tokenizer(
        config.model, trust_remote_code=config.trust_remote_code, field="--model"
    )
    texts = [text for lang in sentences.langs for text in sentences.texts[lang]]
    encoded = encode_sentences(tokenizer, texts, config.chat_template, config.max_length)
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    model = load_model(config.model, device, dtype, config.trust_remote_code)
    ran_on = {"dtype": dtype_name(dtype), "device": str(device)}
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    alike = tokenized_alike(encoded, len(sentences.langs))
    why_alike = "they are one text"
    if encoded.truncated:
        why_alike = "--max-length cut them all to the same tokens"
    shown = plot_sample(sentences, config.plot_n, config.seed)

    models: list[dict[str, Any]] = []
    clouds: list[tuple[str, np.ndarray]] = []
    measured: dict[str, dict[tuple[str, int], dict[str, float]]] = {}
    constant: set[tuple[str, int]] = set()
    warnings: list[str] = []
    for adapter in adapters:
        if adapter.edited is not None:
            warnings.append(
                f"{adapter.label}: its {adapter.edited} was edited since training, so it is "
                "named by its folder, not by its run.json (which no longer describes these "
                "weights' training)"
            )
    if encoded.truncated:
        warnings.append(
            f"{encoded.truncated} sentences were longer than --max-length {config.max_length} "
            "tokens and were cut"
        )
    with progress_bar() as progress:
        for label, folder, variant in variants(model, adapters):
            task = progress.add_task(f"{label}: hidden states", total=len(encoded))
            pooled = extract_pooled(
                variant,
                encoded,
                wanted,
                batch_size=config.batch_size,
                pad_id=pad_id,
                on_batch=lambda done, task=task: progress.advance(task, done),
            )
            reps = pooled[config.pooling]
            work = len(layers) + sum(len(v) for k, v in wanted.items() if k != config.pooling)
            task = progress.add_task(f"{label}: metrics", total=work)
            per_layer = []
            measured[label] = {}
            for j, layer in enumerate(layers):
                by_lang = np.split(reps[j], len(sentences.langs))
                warnings += constant_warnings(
                    label, layer, sentences.langs, by_lang, dict.fromkeys(alike, why_alike),
                    config.pooling,
                )  # fmt: skip
                metrics = layer_metrics(by_lang, center=config.center, seed=config.seed)
                same = is_constant(by_lang)
                kept = not_measured(metrics) if same else metrics  # no 0.0 passed off as one
                per_layer.append({"layer": layer, **kept, "constant": same})
                if layer in settings_layers:
                    known = {m: metrics[m]["value"] for m in ("cka", "lid", "silhouette")}
                    retrieval = "retrieval_centred" if config.center else "retrieval"
                    known[retrieval] = metrics["retrieval"]["value"]
                    measured[label][config.pooling, layer] = setting_measures(
                        by_lang, seed=config.seed, known=known
                    )
                    if same:
                        constant.add((config.pooling, layer))
                progress.advance(task)
            for pooling, array in pooled.items():
                if pooling == config.pooling:
                    continue
                for j, layer in enumerate(wanted[pooling]):
                    by_lang = np.split(array[j], len(sentences.langs))
                    measured[label][pooling, layer] = setting_measures(by_lang, seed=config.seed)
                    if is_constant(by_lang):
                        constant.add((pooling, layer))
                    progress.advance(task)
            adapter_path = None if folder is None else str(folder)
            models.append({"label": label, "adapter": adapter_path, "layers": per_layer})
            # Only the plotted layer of the plotted sentences outlives the model's turn.
            clouds.append((label, reps[layers.index(plot_layer)][shown]))
            del reps, pooled

    chance = chance_levels(sentences.n, len(sentences.langs))
    settings = build_table(measured, settings_layers, constant)
    stale = stale_plots(out, config.projection)
    staging = temporary_folder(out, STAGING)
    try:
        plots = draw_plots(
            staging, models, clouds, sentences, plot_layer, num_states, chance, config
        )
        data = {
            "inputs": {
                **inputs_section(config, adapters, sentences, layers, plot_layer, num_states),
                "ran_on": ran_on,  # what auto resolved to: bf16 on a GPU moves the numbers
            },
            "sentences": {
                "origin": sentences.origin,
                "source_rows": sentences.source_rows,
                "ids": sentences.ids,
                "truncated": encoded.truncated,
            },
            "kind": ANALYSIS_KIND,
            "meanings": dict(MEANINGS),
            "chance": chance,
            "models": models,
            "settings": settings,
            "settings_table": markdown(settings, chance),
            "plots": plots,
            "warnings": warnings,
            "versions": versions(),
            "seconds": round(time.perf_counter() - started, 2),
        }
        data["files"] = {  # what proves, next time, that these pictures are analyze's own
            name: file_fingerprint(staging / name)
            for name in plot_files(config.projection)
            if (staging / name).is_file()
        }
        # The pictures they replace were proven analyze's before this run started: a kill between
        # the record and the renames below leaves them, and they stay provably ours.
        # So are the earlier projection's pictures, removed only once the new ones are in.
        data["replaced"] = {
            **stale,
            **{n: file_fingerprint(out / n) for n in data["files"] if (out / n).is_file()},
        }
        atomic_write_json(out / RESULT_FILE, seal(data))
        move_into(out, staging, data["files"])  # recorded first: never a picture unlisted
        for name in stale:
            (out / name).unlink(missing_ok=True)
        # In a marked output (an evaluation it lies beside, an adopted analysis), its marker
        # learns of them: its --overwrite called them files mslt-it did not write.
        for name in [RESULT_FILE, *data["files"]]:
            record_file(out / name, removed=[out / n for n in stale])
    finally:  # moved in; or a failure, which leaves the earlier files as they were
        shutil.rmtree(staging, ignore_errors=True)
    return AnalysisResult(out, data)


STAGING = "analysis-pictures"
"""Names the folder (:func:`mslt_it.io.temporary_folder`, a new one each run) where the pictures
are drawn before analysis.json lists them and they are moved into place."""


def earlier_files(out: Path) -> dict[str, set[str]]:
    """The pictures an earlier (sealed) analysis.json in ``out`` lists, each with the
    fingerprints it may have: the one it wrote, or the one it was replacing when a kill stopped
    it before the picture was moved into place."""
    document = read_json(out / RESULT_FILE) or {}
    found: dict[str, set[str]] = {}
    for key in ("files", "replaced"):
        listed = document.get(key)
        for name, fingerprint in (listed if isinstance(listed, dict) else {}).items():
            found.setdefault(name, set()).add(fingerprint)
    return found


def not_measured(metrics: dict[str, Any]) -> dict[str, Any]:
    """A layer's metrics where some language's sentences all got one representation: every
    value and pair ``None``. The numbers computed there (CKA 0, silhouette 0) measure nothing,
    and analysis.json, layers.png, cka.png and the projection's titles showed them as
    measurements while the tables said "not measured"."""
    return {
        name: {key: None for key in measure} if isinstance(measure, dict) else measure
        for name, measure in metrics.items()
    }


def is_constant(by_lang: list[np.ndarray]) -> bool:
    """Some language's sentences all got one representation."""
    return any(not np.any(np.ptp(reps, axis=0) > 0) for reps in by_lang)


def stale_plots(out: Path, projection: str) -> dict[str, str]:
    """An earlier analysis's projection picture under the other method's name, with its
    fingerprint: it goes once the new pictures are in place, so the folder then holds the
    pictures analysis.json lists, no more (a kill before leaves the earlier ones whole). Only
    called once analysis.json is proven mslt-it's (or absent); only names analyze writes, as
    analyze wrote them, are taken."""
    if not (out / RESULT_FILE).exists():
        return {}
    ours = earlier_files(out)
    found = {}
    for method in PROJECTIONS:
        stale = out / PLOT_FILES[method]
        if method == projection or stale.is_symlink() or not stale.is_file():
            continue
        fingerprint = file_fingerprint(stale)
        if fingerprint in ours.get(stale.name, set()):
            found[stale.name] = fingerprint
    return found


def constant_warnings(
    label: str,
    layer: int,
    langs: tuple[str, ...],
    by_lang: list[np.ndarray],
    alike: dict[int, str] | None = None,
    pooling: str = "mean",
) -> list[str]:
    """Flag languages whose sentences all got one representation: metrics there mean nothing.

    It happens at every layer when a language's sentences are one sequence of tokens
    (``alike``: those languages' positions, with why: ``--max-length`` cut them alike, or they
    are one text), and with last-token pooling at the embedding layer when every sentence ends
    in the same full stop; otherwise the model itself mapped them to one point.
    """
    alike = alike or {}

    def why(i: int) -> str:
        if i in alike:
            return alike[i]
        if pooling == "last" and layer == 0:
            return "last-token pooling at the embeddings sees only the final token"
        return "the model maps them all to one point here"

    return [
        f"{label}, layer {layer}: every {lang} sentence has the same representation ({why(i)}); "
        "ignore this layer"
        for i, (lang, reps) in enumerate(zip(langs, by_lang, strict=True))
        if not np.any(np.ptp(reps, axis=0) > 0)
    ]


def tokenized_alike(encoded: Encoded, languages: int) -> set[int]:
    """The languages (by position) whose sentences are all one sequence of tokens (the same
    text, or cut to ``--max-length`` alike)."""
    per = len(encoded) // languages
    alike = set()
    for i in range(languages):
        seen = {tuple(ids) for ids in encoded.input_ids[i * per : (i + 1) * per]}
        if len(seen) == 1:
            alike.add(i)
    return alike


def check_adapter_bases(model: str, adapters: list[Adapter]) -> None:
    """Every adapter was trained on ``model``: the same id or folder, or a moved or copied folder
    whose files are those training recorded (``base_model_identity``). As ``mslt-it eval``: an
    adapter on another base is a one-line error, not a warning beside numbers that mean
    nothing."""
    for adapter in adapters:
        base = adapter.base_model
        if base is None or same_model(base, model):
            check_base_unchanged(
                adapter.run.get("base_model_identity"), model, f"--adapter: {adapter.label}",
                "analyse it with the base it was trained on, or train it again",
                run_record_edited(adapter.path),
            )  # fmt: skip
            continue
        recorded = adapter.run.get("base_model_identity")
        folder = Path(model).expanduser()
        known = isinstance(recorded, dict) and "sha256" in recorded and folder.is_dir()
        if known and model_identity(folder) == recorded:
            continue
        raise MsltError(
            f"--adapter: {adapter.label} was trained on base model {base!r}, not --model "
            f"{model!r} (nor a copy of it); analyse it with its own base model"
        )


def plot_sample(sentences: ParallelSentences, plot_n: int, seed: int) -> np.ndarray:
    """Row indices (into the language-major stack) of the sentences in the projection picture.

    The same sentences in every language and for every model, so panels compare like with like.
    """
    n = sentences.n
    keep = np.sort(np.random.default_rng(seed).permutation(n)[: min(plot_n, n)])
    return np.concatenate([k * n + keep for k in range(len(sentences.langs))])


NOT_MEASURED = "not measured (a language's sentences all the same here)"
"""What a picture says of a layer where some language's sentences got one representation."""


def draw_plots(
    out: Path,
    models: list[dict[str, Any]],
    clouds: list[tuple[str, np.ndarray]],
    sentences: ParallelSentences,
    plot_layer: int,
    num_states: int,
    chance: dict[str, float],
    config: AnalysisConfig,
) -> list[str]:
    """The projection (tsne.png or pca.png), layers.png and cka.png; their names, relative to
    ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    where = layer_name(plot_layer, num_states)
    per_lang = len(clouds[0][1]) // len(sentences.langs)
    method = "t-SNE" if config.projection == "tsne" else "PCA"
    subtitles = []
    for model in models:
        entry = next(e for e in model["layers"] if e["layer"] == plot_layer)
        subtitles.append(
            NOT_MEASURED
            if entry.get("constant")
            else f"retrieval {entry['retrieval']['value']:.2f} · LID {entry['lid']['value']:.2f}"
            f" · silhouette {entry['silhouette']['value']:.2f}"
        )
    plot_projection(
        [(label, points, sub) for (label, points), sub in zip(clouds, subtitles, strict=True)],
        sentences.langs,
        config.projection,
        f"{method} of sentence representations at {where}\n"
        f"{per_lang} parallel sentences per language, coloured by language",
        out / PLOT_FILES[config.projection],
        seed=config.seed,
    )
    plot_layers(models, chance, out / PLOT_FILES["layers"])
    matrices = []
    for model in models:
        entry = next(e for e in model["layers"] if e["layer"] == plot_layer)
        if entry.get("constant"):  # an empty panel that says why
            unmeasured = np.full((len(sentences.langs),) * 2, np.nan)
            matrices.append((f"{model['label']}\n{NOT_MEASURED}", unmeasured))
        else:
            matrices.append((model["label"], np.array(entry["cka"]["pairs"], dtype=float)))
    plot_cka(
        matrices,
        sentences.langs,
        f"Linear CKA between languages at {where}",
        out / PLOT_FILES["cka"],
    )
    return plot_files(config.projection)


def layer_name(layer: int, num_states: int) -> str:
    """``layer 0 (embeddings)``, ``layer 12 of 32``, ``layer 32 of 32 (last)``."""
    last = num_states - 1
    if layer == 0:
        return "layer 0 (embeddings)"
    return f"layer {layer} of {last}" + (" (last)" if layer == last else "")


def inputs_section(
    config: AnalysisConfig,
    adapters: list[Adapter],
    sentences: ParallelSentences,
    layers: list[int],
    plot_layer: int,
    num_states: int,
) -> dict[str, Any]:
    """What was analysed and how, enough to run the same analysis again."""
    settings = asdict(config)
    settings.pop("adapters")
    return {
        **settings,
        "langs": list(sentences.langs),
        "n": sentences.n,
        "layers": layers,
        "layers_spec": config.layers,
        "plot_layer": plot_layer,
        "num_layers": num_states - 1,
        "adapters": [
            {
                "path": str(a.path),
                "sha256": a.sha256,
                "label": a.label,
                "base_model": a.run.get("base_model"),
                "dataset": a.run.get("dataset") if a.edited is None else None,
            }
            for a in adapters
        ],
    }


def versions() -> dict[str, str]:
    """Library versions that can change the numbers."""
    import sklearn
    import torch
    import transformers

    found = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "scikit-learn": sklearn.__version__,
    }
    try:
        import peft

        found["peft"] = peft.__version__
    except ImportError:  # pragma: no cover - peft is a dependency, but analysis works without it
        pass
    return found
