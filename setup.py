"""Packaging hook: a wheel carries the folders users read, copy and plug into (task
definitions, prompt templates, eval suites, recipes, accelerate configs) inside the package.

A clone keeps them at the top of the repository, where users find them, and an editable
install (``pip install -e .``) reads them there. A wheel (``pip install .``, ``pip install
git+URL``) holds only the package: without this copy every template and suite was unknown.
:mod:`mslt_it.paths` reads the package's copy when it is there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED_FOLDERS = ("tasks", "prompts", "eval", "recipes", "configs")
"""The top-level folders a wheel carries as ``mslt_it/shipped/<name>`` (``paths.SHIPPED_DIR``)."""


class BuildWithShippedFolders(build_py):
    """``build_py`` that also copies :data:`SHIPPED_FOLDERS` into the built package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # the package is read from the clone, beside its folders
            return
        root = Path(__file__).resolve().parent
        for name in SHIPPED_FOLDERS:
            target = Path(self.build_lib) / "mslt_it" / "shipped" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(
                root / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )


setup(cmdclass={"build_py": BuildWithShippedFolders})
