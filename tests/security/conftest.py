"""The web fixtures (a seeded ledger with its app, per test) for the security tests."""

from tests.web.conftest import seeded, seeded_template  # noqa: F401
