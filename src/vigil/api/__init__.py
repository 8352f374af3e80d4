"""The decision service over HTTP: FastAPI app, API keys, problem details, metrics.

The app is built by :func:`vigil.api.app.create_app`. This package imports nothing itself, so
the command line's other verbs (``vigil import``, ``vigil replay``) start without FastAPI.

>>> from vigil.api.app import create_app
>>> create_app.__name__
'create_app'
"""
