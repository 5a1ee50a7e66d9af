"""Plotly figures as pure functions of plans and telemetry records (imports neither ``dist`` nor ``train``)."""
