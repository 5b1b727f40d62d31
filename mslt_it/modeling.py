"""Loading tokenizers and models from a Hub id or a local folder, one way for every command.

``trust_remote_code`` stays off unless a recipe turns it on: a model folder is data, and data
must not run code on the user's machine by default.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mslt_it.chat_bounds import check_chat_template
from mslt_it.errors import MsltError, clipped, first_line
from mslt_it.files import check_regular_files, read_user_text

MODEL_FILES = ("config.json", "adapter_config.json")
"""What makes a folder a model: transformers' config (or a PEFT adapter's, naming its base)."""

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tekken.json",
)
"""Files one of which every tokenizer folder holds (besides a model's config.json)."""

DATASET_FILES = ("dataset_info.json", "state.json", "manifest.json", "dataset_dict.json")
"""Files of a dataset folder (``datasets``' save_to_disk, mslt-it's manifest): named in the error,
since a dataset given as ``--model`` is a common slip."""


def _what_it_holds(folder: Path) -> str:
    """``it holds a dataset (dataset_info.json)`` or ``it is empty``: a hint for the error."""
    present = [name for name in DATASET_FILES if (folder / name).is_file()]
    if present:
        return f"; it holds a dataset ({present[0]})"
    try:
        empty = not any(folder.iterdir())
    except OSError:
        empty = False
    return "; it is empty" if empty else ""


def check_local_name(name_or_path: str, field: str) -> None:
    """A name that can only be a local path (``/…``, ``./…``, ``~…``) must be a folder: the Hub
    would answer a FIFO or a missing folder with "Repo id must be in the form …"."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    # a Hub id is org/name: a path with more parts, or ending in "/" (a folder), is local
    local = (
        looks_like_a_path(text) or text.startswith(".") or text.count("/") > 1 or text.endswith("/")
    )
    if path.is_symlink() and not path.exists():  # a loop, or a link to nothing: never the Hub's
        raise MsltError(
            f"{field}: {text!r} is a link that leads to no folder; give a model folder or a Hub id"
        )
    if path.exists() and not path.is_dir():
        raise MsltError(f"{field}: {text!r} is not a folder; give a model folder or a Hub id")
    if local and not path.exists():
        raise MsltError(f"{field}: no such folder {text!r}; give a model folder or a Hub id")


def check_model_folder(name_or_path: str, field: str = "model") -> None:
    """A local folder given as a model must hold one (``config.json``, or a PEFT adapter's
    ``adapter_config.json``); a Hub id is left to the Hub.

    Without this a dataset folder as ``--model`` reaches transformers, whose guess at the
    problem ("install sentencepiece or tiktoken") sends the user the wrong way.
    """
    check_local_name(name_or_path, field)
    folder = Path(name_or_path).expanduser()
    if not folder.is_dir():
        return
    if not any(_present(folder / name) for name in MODEL_FILES):  # before any walk: see below
        raise MsltError(
            f"{field}: the folder {name_or_path!r} holds no model (no config.json)"
            f"{_what_it_holds(folder)}; give a model folder or a Hub id"
        )
    check_regular_files(folder, field)
    if (folder / "config.json").is_file():
        check_model_config(folder / "config.json", field)


MAX_CONFIG_BYTES = 10_000_000
"""Largest model or adapter config read (a few KB in practice)."""

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.gguf")
"""A local model folder's weight files, as transformers names them."""


def _holds(folder: Path, patterns: tuple[str, ...]) -> bool:
    """Whether ``folder`` holds a file matching one of ``patterns`` (a LoRA adapter's
    ``adapter_model.*`` is no model's weights)."""
    return any(
        path.is_file() and not path.name.startswith("adapter_model")
        for pattern in patterns
        for path in folder.glob(pattern)
    )


def check_base_model_folder(
    name_or_path: str, field: str = "model", adapter_option: str | None = None
) -> None:
    """:func:`check_model_folder` for a base model (to train on, or to evaluate beside the
    recipe's): a local folder must hold weights (an adapter's ``adapter_model.*`` are none) and
    its tokenizer, so a missing one is named before any step runs. A LoRA adapter's folder is
    refused (transformers' AutoConfig answered one with "Unrecognized model … should have a
    `model_type` key"), naming its base and ``merge``, which makes a model of both, or, for a
    command that applies adapters itself, its ``adapter_option``."""
    check_model_folder(name_or_path, field)
    folder = Path(name_or_path).expanduser()
    if not folder.is_dir():
        return  # a Hub id
    if _holds(folder, WEIGHT_PATTERNS):  # a model's folder: its tokenizer is loaded with it
        check_has_tokenizer(folder, field)
        return
    if not (folder / "adapter_config.json").is_file():
        raise MsltError(
            f"{field}: the folder {name_or_path!r} holds no weights "
            f"({', '.join(WEIGHT_PATTERNS)}){_what_it_holds(folder)}; give a model folder or a "
            "Hub id"
        )
    try:
        config = json.loads(read_user_text(folder / "adapter_config.json", field, MAX_CONFIG_BYTES))
    except (ValueError, RecursionError, MsltError):
        config = None
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    named = f" ({clipped(base, 80)})" if isinstance(base, str) and base else ""
    instead = (
        f"and the adapter as {adapter_option}"
        if adapter_option
        else "or merge the adapter into it first (mslt-it merge)"
    )
    raise MsltError(
        f"{field}: {name_or_path!r} is a LoRA adapter, not a base model; give its base"
        f"{named}, {instead}"
    )


def _present(path: Path) -> bool:
    """A file of that name is there, whatever it is (a folder or a FIFO named config.json is
    then named by :func:`check_regular_files`). Looked for before the folder is walked: ``/usr``
    or ``''`` as --model was walked whole, and a device deep inside it named as the problem."""
    return path.exists() or path.is_symlink()


MODEL_SIZES = {
    "vocab_size": 10_000_000,
    "hidden_size": 1_000_000,
    "intermediate_size": 10_000_000,
    "num_hidden_layers": 10_000,
    "num_attention_heads": 100_000,
    "num_key_value_heads": 100_000,
    "max_position_embeddings": 100_000_000,
}
"""A config's sizes, and the most any model has (with room): a negative or absurd one made
transformers fail with a validation traceback, or ask torch for terabytes."""


def check_model_config(path: Path, field: str) -> None:
    """A model's ``config.json`` must be a JSON object whose sizes are whole numbers in range."""
    try:
        config = json.loads(read_user_text(path, field, MAX_CONFIG_BYTES))
    except (ValueError, RecursionError):
        return  # transformers names a file it cannot parse
    if not isinstance(config, dict):
        raise MsltError(f"{field}: {path} is not a JSON object, so not a model's config")
    for name, most in MODEL_SIZES.items():
        value = config.get(name)
        if value is None or isinstance(value, list):  # some models give one size per layer
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
            raise MsltError(
                f"{field}: {path}: {name} is {clipped(value, 40)}; a model's is a whole number in "
                f"1..{most:,}"
            )


def check_tokenizer_folder(name_or_path: str, field: str = "tokenizer") -> None:
    """A local folder given as a tokenizer must hold a model's ``config.json`` or tokenizer
    files (see :func:`check_model_folder` for why). A name that is neither a folder here nor a
    Hub id is said to be that, not in the Hub's own words ("Repo id must use alphanumeric
    chars …")."""
    check_local_name(name_or_path, field)
    folder = Path(name_or_path).expanduser()
    if not folder.exists():
        from huggingface_hub.errors import HFValidationError
        from huggingface_hub.utils import validate_repo_id

        try:
            validate_repo_id(str(name_or_path))
        except HFValidationError:
            raise MsltError(
                f"{field}: {str(name_or_path)!r} is neither a folder here nor a Hub id (org/name)"
            ) from None
    if not folder.is_dir():
        return
    if not any(_present(folder / name) for name in (*MODEL_FILES, *TOKENIZER_FILES)):
        raise MsltError(
            f"{field}: the folder {name_or_path!r} holds no model or tokenizer (no config.json "
            f"or tokenizer.json){_what_it_holds(folder)}; give a model folder or a Hub id"
        )
    check_has_tokenizer(folder, field)
    check_regular_files(folder, field)  # the model's weights are read from here next


def check_has_tokenizer(folder: Path, field: str) -> None:
    """A model's folder (not a PEFT adapter's, whose tokenizer transformers takes from its base)
    must hold a tokenizer's files: without them transformers tried to convert one and said
    "You need to have sentencepiece or tiktoken installed to convert a slow tokenizer to a",
    cut mid-sentence."""
    if (folder / "adapter_config.json").exists() or any(
        _present(folder / name) for name in TOKENIZER_FILES
    ):
        return
    raise MsltError(
        f"{field}: the folder {str(folder)!r} holds no tokenizer ({', '.join(TOKENIZER_FILES)})"
        f"{_what_it_holds(folder)}; give a model folder with its tokenizer, or a Hub id"
    )


def load_failure(name_or_path: str, error: BaseException) -> str:
    """Why ``name_or_path`` did not load, in one line (the error's first line). A name that is
    no path here and that the Hugging Face cache lacks, with the Hub offline or out of reach,
    is said to be that: transformers' own words ("We couldn't connect to
    'https://huggingface.co' …") hid a mistyped folder behind a network problem."""
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    cause: BaseException | None = error
    for _ in range(8):  # the chain transformers builds is two or three deep
        if cause is None or isinstance(cause, LocalEntryNotFoundError):
            break
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, LocalEntryNotFoundError) and not Path(name_or_path).expanduser().exists():
        hub = (
            "is offline here (HF_HUB_OFFLINE is set)"
            if constants.HF_HUB_OFFLINE
            else "is out of reach"
        )
        return f"no such folder, and the Hugging Face cache has no copy of it; the Hub {hub}"
    return first_line(error)


def check_model_reachable(name_or_path: str, trust_remote_code: bool, field: str) -> None:
    """The model's config and tokenizer load (a folder, the cache, or the Hub when it can be
    reached) and a local folder holds weights: checked before work whose end needs the model.
    A model missing offline, or a folder of its config alone, was found only after every
    build, training and evaluation before it had run."""
    from transformers import AutoConfig

    check_base_model_folder(name_or_path, field)
    try:
        AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except model_load_errors() as error:
        raise MsltError(
            f"{field}: cannot load {name_or_path!r}: {load_failure(name_or_path, error)}"
        ) from None
    load_tokenizer(name_or_path, trust_remote_code, field)


def config_failure(name_or_path: str, trust_remote_code: bool) -> str | None:
    """Why the model's config does not load (None: it loads). A tokenizer reads it too, and a
    bad ``hidden_size`` in it was said as a tokenizer that cannot load."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except Exception as error:  # compared with the tokenizer's, whatever it is
        return str(error)
    return None


def load_tokenizer(
    name_or_path: str,
    trust_remote_code: bool = False,
    field: str = "tokenizer",
    check_template: bool = True,
) -> Any:
    """A tokenizer, with a one-line error naming ``field`` (the option it came from).

    ``check_template=False`` leaves :func:`check_chat_template` to the caller: its time limit
    holds in the main thread only, so a tokenizer loaded on another thread is checked when the
    main thread takes it (a template looping for ever hung a build there, SIGTERM unheard)."""
    from transformers import AutoTokenizer

    check_tokenizer_folder(name_or_path, field)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except Exception as error:  # the tokenizer reads the model's config too
        # a damaged tokenizer.json: transformers' converter raises KeyError ('added_tokens'),
        # the tokenizers library a plain Exception ("data did not match any variant …")
        if not isinstance(error, (*model_load_errors(), KeyError)) and type(error) is not Exception:
            raise
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        if isinstance(error, OSError):
            reason = load_failure(name_or_path, error)
        elif isinstance(error, KeyError):
            reason = f"a file lacks the field {reason}"
        # the config's own failure, raised again by the tokenizer: the config is what is wrong
        from_config = config_failure(name_or_path, trust_remote_code) == str(error)
        what = "the config" if from_config else "a tokenizer"
        raise MsltError(f"{field}: cannot load {what} from {name_or_path!r}: {reason}") from None
    if check_template:
        check_tokenizer_template(tokenizer, field)
    return tokenizer


def check_tokenizer_template(tokenizer: Any, field: str) -> None:
    """A loaded tokenizer's own chat template within the bounds (:func:`check_chat_template`);
    in the main thread, where its time limit holds."""
    source = getattr(tokenizer, "chat_template", None)
    check_chat_template(source, tokenizer.special_tokens_map, field)


def check_device(device: str, field: str = "--device") -> str:
    """``device`` if this machine has it; a one-line error (not a CUDA traceback) otherwise."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise MsltError(f"{field}: {device!r} is not a device; use cpu, cuda or cuda:N") from None
    if parsed.type not in ("cpu", "cuda", "mps", "xpu"):  # meta holds no data to run on
        raise MsltError(f"{field}: {device!r} cannot run a model; use cpu, cuda or cuda:N")
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise MsltError(f"{field}: {device!r} asked for, but this machine has no CUDA device")
        if parsed.index is not None and parsed.index >= count:
            raise MsltError(
                f"{field}: {device!r} asked for, but this machine has {count} CUDA device(s) "
                f"(cuda:0 to cuda:{count - 1})"
            )
    return device


LOAD_REPORT_LOGGER = "transformers.modeling_utils"
"""Where transformers logs its LOAD REPORT, a table of the weights it could not load."""


@contextlib.contextmanager
def load_report_in_errors(refuse_missing: bool = True) -> Iterator[None]:
    """Hold back transformers' LOAD REPORT while a model loads.

    Weights that do not fit the config (``vocab_size`` edited) were logged as an 8-line table,
    and then the error said only "look at the above report". The table is held; a failed load
    raises with its rows in one line, for the caller's one-line error. So does a load whose
    checkpoint lacks weights the model has (``num_hidden_layers`` raised): transformers filled
    them with random values and every number measured after meant nothing.
    ``refuse_missing=False`` where a head may be new by design (an encoder's pooler). A load
    that succeeds logs the table as transformers would have (unexpected weights, dropped).
    """
    import logging

    held: list[logging.LogRecord] = []

    def hold(record: logging.LogRecord) -> bool:
        if "LOAD REPORT" in str(record.msg):
            held.append(record)
            return False
        return True

    logger = logging.getLogger(LOAD_REPORT_LOGGER)
    logger.addFilter(hold)
    try:
        yield
    except RuntimeError as error:
        rows = report_rows(held)
        if not rows:
            raise
        raise RuntimeError(f"the weights do not fit the model's config: {brief(rows)}") from error
    else:
        logger.removeFilter(hold)
        missing = [row for row in report_rows(held) if ": MISSING" in row]
        if refuse_missing and missing:
            raise RuntimeError(
                "the checkpoint lacks weights the model's config has (they would be random): "
                f"{brief(missing)}"
            )
        for record in held:
            logger.handle(record)
    finally:
        logger.removeFilter(hold)


def brief(rows: list[str]) -> str:
    """The first two rows of a report, and how many more, for a one-line error."""
    more = f" (and {len(rows) - 2} more)" if len(rows) > 2 else ""
    return "; ".join(rows[:2]) + more


def report_rows(records: list[Any]) -> list[str]:
    """``key: STATUS detail`` for each row of the held LOAD REPORT tables (colours stripped)."""
    import re

    rows = []
    for record in records:
        text = re.sub(r"\x1b\[[0-9;]*m", "", record.getMessage())
        for line in text.splitlines():
            cells = [cell.strip() for cell in line.split("|")]
            if len(cells) >= 3 and cells[1].isupper() and cells[0] not in ("Key", ""):
                rows.append(f"{cells[0]}: {cells[1]} {' '.join(cells[2].split())}".strip())
    return rows


@contextlib.contextmanager
def loading_adapter(path: str | Path, field: str = "adapter") -> Iterator[None]:
    """Turn a failure to read an adapter's files (truncated weights, a damaged config: PEFT and
    safetensors raise many kinds) into a one-line error naming the folder."""
    try:
        yield
    except MsltError:
        raise
    except Exception as error:
        text = " ".join(str(error).split())[:200] or type(error).__name__
        if isinstance(error, KeyError):  # PEFT looking up a weight the file does not hold
            text = f"its weights lack {text} (damaged, or saved by another PEFT version)"
        raise MsltError(f"{field}: cannot load the adapter in {str(path)!r}: {text}") from None


def model_load_errors() -> tuple[type[BaseException], ...]:
    """What loading a model's weights raises for a damaged folder (caught by the loaders, which
    turn each into a one-line error naming the model): transformers' OSError and ValueError,
    safetensors' own error for a truncated or empty weights file, the Hub library's for a
    config field of the wrong type or heads that do not divide the hidden size, a RuntimeError
    for weights whose shapes the config contradicts, a field of the wrong type that the library
    calls a method of (``"tokenizer_class": 5``), and a config nested past Python's limit."""
    from safetensors import SafetensorError

    errors: tuple[type[BaseException], ...] = (
        OSError, ValueError, TypeError, AttributeError, RuntimeError, RecursionError,
        SafetensorError,
    )  # fmt: skip
    try:
        from huggingface_hub.errors import StrictDataclassError
    except ImportError:  # an older huggingface_hub: configs were not validated
        return errors
    return (*errors, StrictDataclassError)


def looks_like_a_path(name: str) -> bool:
    """``/models/x``, ``./x``, ``../x``, ``~/x``: a local folder, never a Hub id (``org/name``)."""
    return name.startswith(("/", "./", "../", "~")) or name in (".", "..")
