"""Outputs: renderers of results (static report, plots, live panel, dashboard, exports)."""
