"""Outputs: what shows results and live data (static report, exports, the live feed, charts, live panel, dashboard)."""
