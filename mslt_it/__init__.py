"""mslt-it: multilingual instruction tuning of decoder LLMs with multi-source language training."""

__version__ = "0.1.0"
