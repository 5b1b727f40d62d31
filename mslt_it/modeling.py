"""Loading tokenizers and models from a Hub id or a local folder, one way for every command.

``trust_remote_code`` stays off unless a recipe turns it on: a model folder is data, and data
must not run code on the user's machine by default.
"""

from __future__ import annotations

from typing import Any

from mslt_it.errors import MsltError


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False) -> Any:
    """A tokenizer, with a one-line error when it cannot be found or read."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise MsltError(f"tokenizer: cannot load {name_or_path!r}: {first_line}") from None
