"""Surveys run by cxloop: definitions and versions, answer links, the answers, tracking, results.

One concept per module: :mod:`~cxloop.surveys.definitions` (what a survey asks, from TOML/JSON),
:mod:`~cxloop.surveys.versions` (surveys in the store, states, versions), :mod:`~cxloop.surveys.links`
(personal and public links, the mail-merge CSV), :mod:`~cxloop.surveys.answers` (answering through a
link or the API), :mod:`~cxloop.surveys.tracking` (sent, opened, started, completed, response rate),
:mod:`~cxloop.surveys.results` (results over time, comments). The CLI, API and pages only call these.
"""
