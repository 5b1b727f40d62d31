"""Where the files users plug in live: prompts, eval suites and recipes.

They are data, not code, and sit at the top of the repository (an editable install keeps them
there). Users add their own folders with ``--prompts-dir``.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROMPTS_DIR = REPO_ROOT / "prompts"
EVAL_DIR = REPO_ROOT / "eval"
RECIPES_DIR = REPO_ROOT / "recipes"
RESOURCES_DIR = Path(__file__).resolve().parent / "resources"
