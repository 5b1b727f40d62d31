"""``mslt-it tiny-model``: build the tiny offline model that the tests and the demo train on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mslt_it.cli.common import nonempty_path, stdout_console
from mslt_it.errors import MsltError

STDOUT = stdout_console()


def register(app: typer.Typer) -> None:
    app.command("tiny-model")(tiny_model)


def tiny_model(
    out_dir: Annotated[
        Path,
        typer.Argument(help="Folder to write the model and tokenizer to.", parser=nonempty_path),
    ],
    seed: Annotated[
        int,
        typer.Option(
            help="Seed of the weights, of the pre-training and of the text the tokenizer is "
            "trained on (another seed, another vocabulary).",
            min=0,
            max=2**32 - 1,
        ),
    ] = 0,
    steps: Annotated[
        int | None,
        typer.Option(help="Pre-training steps (default 0: random weights).", min=0, max=1_000_000),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
    world: Annotated[
        bool,
        typer.Option(
            help="Pre-train on the synthetic world (code-switched text, task frames with random "
            "answers; --steps default 2000, minutes on one core)."
        ),
    ] = False,
    sized: Annotated[
        bool,
        typer.Option(
            help="With --world: each language's amount of text follows its CC-100 size "
            "(exponent 0.3; mslt-it:tiny-world-sized, the synthetic study's base)."
        ),
    ] = False,
) -> None:
    """Build a tiny Llama model + byte-level BPE tokenizer offline (random weights unless --steps).

    The folder loads with AutoModelForCausalLM / AutoTokenizer like any Hub model, so every
    command can be tried without a network or a GPU.

    Example: mslt-it tiny-model models/tiny
    """
    from mslt_it.tiny import build_tiny_model  # torch and transformers: only for this command

    if world and steps is not None and steps < 1:  # 0 would read as "the default" below
        raise MsltError(f"--steps: the world base needs at least 1 step, got {steps}")

    path = build_tiny_model(
        out_dir,
        seed=seed,
        pretrain_steps=0 if steps is None else steps,  # 0 with --world: its WORLD_STEPS
        overwrite=overwrite,
        world=world,
        sized=sized,
    )
    STDOUT.print(f"tiny model written to {path}", highlight=False, soft_wrap=True)
