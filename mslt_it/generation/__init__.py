"""Inference backends behind one small interface: transformers (``hf``) and vLLM (``vllm``).

Example::

    backend = open_backend("hf", BackendOptions(model="models/tiny", adapters={"a": Path("a")}))
    backend.generate([[1, 2, 3]], max_tokens=8, adapter="a")

Heavy libraries are imported only when a backend is opened (:data:`BACKENDS`).
"""

from __future__ import annotations

from mslt_it.generation.backends import BACKENDS, open_backend
from mslt_it.generation.base import Backend, BackendOptions, SupportsChoice, install_hint

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendOptions",
    "SupportsChoice",
    "install_hint",
    "open_backend",
]
