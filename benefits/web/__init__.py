"""The officers' and auditors' web application (FastAPI + Jinja2) and its JSON API.

Pages are server-rendered, the API lives under ``/api/v1``; both sit on the ledger's database
and the sweep output folders. See ``docs/web.md``.

Example:
    >>> from benefits.web.app import create_app                  # doctest: +SKIP
    >>> from benefits.web.settings import WebSettings             # doctest: +SKIP
    >>> app = create_app(WebSettings(db="sqlite:///benefits.sqlite"))   # doctest: +SKIP
"""
