"""The incident API (FastAPI): incidents, timelines (JSON and SSE), anomalies, log clusters,
changes, topology, series for charts, health and metrics, and the web incident room at ``/``.

It imports ``schemas/``, ``sinks/`` and ``operators/``, never ``flows/``. ``create_app`` in
``api.app`` builds the app; ``opscopilot serve`` runs it.
"""
