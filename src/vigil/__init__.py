"""vigil: learn how each customer, card, account, terminal and device behaves; decide on events."""

# The one place the version is written: pyproject.toml reads it (setuptools' dynamic version),
# and so do the API's OpenAPI document and `vigil --version`. Record each release in CHANGELOG.md.
__version__ = "0.1.0"
