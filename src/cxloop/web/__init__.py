"""The web application: a FastAPI app factory, pages, the REST API, accounts and roles.

Importing this package imports no web framework: the CLI's ``cxloop users`` uses
:mod:`cxloop.web.accounts` and :mod:`cxloop.web.roles` without paying for FastAPI. The app is
built by :func:`cxloop.web.app.create_app`.
"""
