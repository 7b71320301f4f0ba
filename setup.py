"""Build hook: ship the top-level rule pack, sample delivery and report templates in the wheel.

The repository keeps ``rules/``, ``datasets/sample/`` and ``reports/`` at the top, where policy
staff and developers edit them; a wheel carries copies of them as ``benefits/_data/rules``,
``benefits/_data/sample`` and ``benefits/_data/reports`` (found by ``benefits.resources``).
Everything else about the package is declared in ``pyproject.toml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIPPED = {"rules": "rules", "sample": "datasets/sample", "reports": "reports"}


class BuildWithData(build_py):
    """`build_py` that also copies the shipped folders into ``benefits/_data/``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the clone's folders directly
        target = Path(self.build_lib) / "benefits" / "_data"
        for name, source in SHIPPED.items():
            folder = HERE / source
            if not folder.is_dir():
                raise SystemExit(f"setup.py: {folder} is missing; it is shipped in the wheel")
            shutil.rmtree(target / name, ignore_errors=True)
            shutil.copytree(folder, target / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip


setup(cmdclass={"build_py": BuildWithData})
