"""``mslt-it analyze``: how language-agnostic are a model's (and its adapters') representations?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mslt_it.cli.common import nonempty_path, print_whole, split_codes, stdout_console
from mslt_it.named_models import resolve_model_name
from mslt_it.terminal import STDERR, labelled

STDOUT = stdout_console()


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze)


def analyze(
    model: Annotated[str, typer.Option(help="Base model: Hub id or local folder.")],
    langs: Annotated[str, typer.Option(help="Comma-separated languages, e.g. en,de,ar,sw.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Folder for analysis.json and the PNGs.", parser=nonempty_path
        ),
    ],
    adapter: Annotated[
        list[str] | None,
        typer.Option(help="LoRA adapter folder (repeatable), analysed next to the base."),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(help="hub, synthetic (default), or a folder DIR/xnli/<lang>/<split>.*"),
    ] = None,
    parallel: Annotated[
        Path | None,
        typer.Option(
            help="CSV/JSONL/Parquet of parallel sentences, one column per language.",
            parser=nonempty_path,
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="XNLI split: train, validation or test.")] = "test",
    field: Annotated[
        str,
        typer.Option(
            "--field",
            help="XNLI sentence: premise or hypothesis. A hypothesis carries its label's cue "
            "word, so on it CKA also measures how well a model encodes the label "
            "(docs/analysis-measures.md).",
        ),
    ] = "premise",
    n: Annotated[int, typer.Option("--n", help="Parallel sentences per language.")] = 1000,
    layers: Annotated[
        str, typer.Option(help="all, or indices like 8,16,-1 (0 = embeddings).")
    ] = "all",
    pooling: Annotated[
        str,
        typer.Option(
            help="mean or last, over the sentence's own tokens, for the main results and plots; "
            "the settings table shows both."
        ),
    ] = "mean",
    chat_template: Annotated[
        bool,
        typer.Option(
            help="Wrap each sentence as a user turn of the chat template (the format adapters "
            "were trained on)."
        ),
    ] = False,
    center: Annotated[
        bool,
        typer.Option(
            help="Centre each language's representations before retrieval (CKA centres each "
            "language itself); the settings table shows both."
        ),
    ] = False,
    projection: Annotated[
        str, typer.Option(help="tsne or pca; the picture is named after it: tsne.png or pca.png.")
    ] = "tsne",
    plot_layer: Annotated[
        int | None,
        typer.Option(help="Layer shown in the projection and cka.png (default: last analysed)."),
    ] = None,
    plot_n: Annotated[
        int, typer.Option(help="Sentences per language in the projection picture.")
    ] = 200,
    batch_size: Annotated[int, typer.Option(help="Sentences per forward pass.")] = 32,
    max_length: Annotated[int, typer.Option(help="Tokens per sentence at most.")] = 256,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1…")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16 or float16.")] = "auto",
    seed: Annotated[
        int,
        typer.Option(help="Sentence sample, probe split and t-SNE seed.", min=0, max=2**32 - 1),
    ] = 0,
    trust_remote_code: Annotated[
        bool, typer.Option(help="Let the model folder run its own code.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing analysis.json.")] = False,
) -> None:
    """Measure how language-agnostic representations are, on parallel sentences, layer by layer.

    For the base model and each adapter: linear CKA between languages, translation retrieval, a
    language-ID probe and a silhouette score per layer, in analysis.json, with tsne.png (or
    pca.png), layers.png and cka.png. Then a settings table: every measure under mean and last
    pooling, retrieval raw and centred, per layer, with the order the models come in for each
    (in analysis.json as "settings" and as Markdown in "settings_table"): a direction that holds
    in one setting only is seen as such.

    Example: mslt-it analyze --model models/tiny --adapter runs/sslt --adapter runs/mslt
    --langs en,de,ar --data synthetic --n 300 --out runs/analysis
    """
    from mslt_it.analysis import AnalysisConfig, run_analysis
    from mslt_it.errors import MsltError

    if parallel is not None and data is not None:
        raise MsltError(f"--parallel: give either --parallel FILE or --data {data}, not both")
    config = AnalysisConfig(
        model=resolve_model_name(model) if model else model,  # mslt-it:tiny-world too
        langs=split_codes(langs, "--langs"),
        adapters=list(adapter or []),
        data="synthetic" if data is None else data,  # "" is refused, not read as synthetic
        parallel=str(parallel) if parallel is not None else None,
        split=split,
        sentence_field=field,
        n=n,
        layers=layers,
        pooling=pooling,
        chat_template=chat_template,
        center=center,
        projection=projection,
        plot_layer=plot_layer,
        plot_n=plot_n,
        batch_size=batch_size,
        max_length=max_length,
        device=device,
        dtype=dtype,
        seed=seed,
        trust_remote_code=trust_remote_code,
    )
    result = run_analysis(config, out, overwrite=overwrite)
    print_summary(result.data, result.path)


def print_summary(data: dict[str, Any], path: Path) -> None:
    """Each model's four numbers at the plotted layer, what they mean, and where the files are."""
    inputs = data["inputs"]
    layer = inputs["plot_layer"]
    table = Table(
        title=(
            f"layer {layer} of {inputs['num_layers']} · {len(inputs['langs'])} languages × "
            f"{inputs['n']} sentences · {inputs['pooling']} pooling"
        )
    )
    table.add_column("model")
    for header in ("CKA ↑", "retrieval ↑", "LID probe ↓", "silhouette ↓"):
        table.add_column(header, justify="right")
    for model in data["models"]:
        entry = next(e for e in model["layers"] if e["layer"] == layer)
        if entry.get("constant"):  # the warnings below say why
            table.add_row(model["label"], "not measured", "", "", "")
            continue
        table.add_row(
            model["label"],
            *(f"{entry[m]['value']:.3f}" for m in ("cka", "retrieval", "lid", "silhouette")),
        )
    print_whole(STDOUT, table)
    chance = data["chance"]
    STDOUT.print(
        f"chance: retrieval {chance['retrieval']:.3g}, LID {chance['lid']:.3g}; "
        "↑/↓ = the direction that means more language-agnostic",
        highlight=False,
    )
    for name, meaning in data["meanings"].items():
        STDOUT.print(f"- {name}: {meaning}", highlight=False, soft_wrap=True)
    if data.get("settings"):
        print_settings(data["settings"])
    for warning in data.get("warnings", []):
        STDERR.print(labelled("warning:", "yellow", str(warning)), soft_wrap=True)
    files = ", ".join(["analysis.json", *data["plots"]])
    STDOUT.print(f"wrote {files} → {path}", highlight=False, soft_wrap=True)


def print_settings(settings: dict[str, Any]) -> None:
    """The settings table: for each pooling and layer, the models' order on every measure."""
    measures = list(settings["measures"])
    table = Table(title="every setting: models from most to least language-agnostic (↑/↓ as above)")
    table.add_column("pooling")
    table.add_column("layer", justify="right")
    for name in measures:
        table.add_column(settings["measures"][name])
    for row in settings["rows"]:
        if row["constant"]:
            cells = ["(a language's sentences all the same: not measured)"]
            cells += [""] * (len(measures) - 1)
        else:
            cells = [row["measures"][name]["cell"] for name in measures]
        table.add_row(row["pooling"], str(row["layer"]), *cells)
    print_whole(STDOUT, table)
    names = settings["names"]
    for pair in settings["pairs"]:
        counts = ", ".join(
            f"{settings['measures'][name].rstrip(' ↑↓')} {pair['more'][name]}" for name in measures
        )
        STDOUT.print(
            f"{names[pair['model']]} more language-agnostic than {names[pair['against']]}, "
            f"settings out of {pair['settings']}: {counts}",
            highlight=False,
            soft_wrap=True,
        )
