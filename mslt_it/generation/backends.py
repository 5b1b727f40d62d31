"""The backends by name: one table, each entry loaded on first use.

As lm-evaluation-harness's model mapping: a name maps to ``"module:Class"`` and the module is
imported only when that backend is opened, so neither this table nor :mod:`~.base` imports a
backend (or its heavy libraries). A new backend is a module implementing
:class:`~mslt_it.generation.base.Backend` and one line here.
"""

from __future__ import annotations

import importlib

from mslt_it.errors import MsltError
from mslt_it.generation.base import Backend, BackendOptions, install_hint

BACKENDS: dict[str, str] = {
    "hf": "mslt_it.generation.hf:HFBackend",
    "vllm": "mslt_it.generation.vllm:VLLMBackend",
}
"""Backend name -> ``module:Class``."""

REQUIRES: dict[str, str] = {"vllm": "vllm"}
"""Backend name -> the optional library it needs, checked before its module is loaded."""


def open_backend(name: str, options: BackendOptions) -> Backend:
    """Open the backend called ``name`` (a key of :data:`BACKENDS`)."""
    if name not in BACKENDS:
        raise MsltError(f"backend: unknown backend {name!r}; choose {' or '.join(BACKENDS)}")
    library = REQUIRES.get(name)
    if library is not None:
        try:
            importlib.import_module(library)
        except ImportError:
            raise MsltError(
                f"backend: {library} is not installed here; install it with {install_hint()}, "
                "or use --backend hf"
            ) from None
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(options)
