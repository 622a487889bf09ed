"""Fleet tests: gateway, broker, serve, PostgreSQL (a package, so its conftest does not shadow tests/conftest.py)."""
