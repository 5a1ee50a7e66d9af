"""ipywidgets front-ends built from ``viz``: the only place that imports ipywidgets."""
