"""ember's version, kept in one place and read by pyproject.toml."""

__version__ = "0.1.0"
