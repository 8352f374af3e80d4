"""The decision service over HTTP: FastAPI app, API keys, problem details, metrics.

>>> from vigil.api import create_app
>>> create_app.__name__
'create_app'
"""

from vigil.api.app import create_app

__all__ = ["create_app"]
