"""The dashboard tests' fixtures live in dashfix.py (a plain module the tests import too)."""

from dashfix import browser, dashboard  # noqa: F401  (fixtures)
