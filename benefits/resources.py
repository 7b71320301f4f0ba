"""Where the rule pack, the sample delivery and the report templates are found.

In a clone they are the repository's top-level ``rules/``, ``datasets/sample/`` and
``reports/`` (policy staff edit ``rules/`` there); an installed wheel carries copies of them
in ``benefits/_data/`` (``setup.py`` puts them there when the wheel is built). The rule pack
and the sample can also be named by an environment variable, which wins over both.

Example:
    >>> (rules_folder() / "pack.yaml").is_file(), (sample_folder() / "persons.csv").is_file()
    (True, True)
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CLONE = PACKAGE.parent  # the repository root when running from a clone
SHIPPED = PACKAGE / "_data"  # the copies inside an installed wheel

ENV_RULES = "BENEFITS_RULES"
ENV_DATA = "BENEFITS_DATA"

# name -> (folder in a clone, folder in the wheel, a file that proves it is the right folder)
LOCATIONS: dict[str, tuple[Path, Path, str]] = {
    "rules": (CLONE / "rules", SHIPPED / "rules", "pack.yaml"),
    "sample": (CLONE / "datasets" / "sample", SHIPPED / "sample", "persons.csv"),
    "reports": (CLONE / "reports", SHIPPED / "reports", "report.css"),
}


def bundled(name: str) -> Path:
    """The clone's folder `name` (rules, sample, reports), else the wheel's copy of it.

    The result is absolute, so it does not depend on the working directory. When neither
    exists (a broken install) the clone's path is returned, so the error names it.
    """
    clone, shipped, marker = LOCATIONS[name]
    if (clone / marker).is_file():
        return clone
    if (shipped / marker).is_file():
        return shipped
    return clone


def rules_folder() -> Path:
    """The default rule pack: ``$BENEFITS_RULES``, else the clone's ``rules/``, else the
    copy shipped in the package."""
    env = os.environ.get(ENV_RULES)
    return Path(env).resolve() if env else bundled("rules")


def sample_folder() -> Path:
    """The bundled sample district (``datasets/sample/`` in a clone, else the shipped copy)."""
    return bundled("sample")


def default_data_folder() -> Path:
    """The extracts the web app sweeps by default: ``$BENEFITS_DATA``, else the sample."""
    env = os.environ.get(ENV_DATA)
    return Path(env).resolve() if env else sample_folder()


def reports_folder() -> Path:
    """The printable report templates (``reports/`` in a clone, else the shipped copy)."""
    return bundled("reports")
