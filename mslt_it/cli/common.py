"""Small helpers shared by the command modules."""

from __future__ import annotations

from mslt_it.errors import MsltError


def split_codes(value: str | None, field: str) -> list[str]:
    """``"en,de, zh"`` -> ``["en", "de", "zh"]``; an empty item is an error naming the option."""
    if value is None:
        return []
    codes = [code.strip() for code in value.split(",")]
    if any(not code for code in codes):
        raise MsltError(f"{field}: empty language code in {value!r}; write codes like en,de,zh")
    return codes
