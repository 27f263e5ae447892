"""Build and execute ``notebooks/06-dashboard-and-prometheus.ipynb`` (``.venv/bin/python notebooks/make_06_dashboard_and_prometheus.py``).

The web dashboard, /metrics for Prometheus, the JSON and CSV APIs, exports, the memory guard.
The shared machinery (cells, execution, writing) is in ``notebooks/tutorial.py``.
"""

from __future__ import annotations

import sys

from tutorial import code, main, md

CELLS = [

    md(
        "# Watching a kernel from a browser tab and from Prometheus\n\n"
        "A notebook that builds a sizeable table is the kind that runs out of memory halfway. In this "
        "tutorial we keep an eye on such a kernel from outside it:\n\n"
        "1. start the **web dashboard** inside the kernel (a Bokeh server on a background thread),\n"
        "2. profile a cell that builds a table,\n"
        "3. scrape **`/metrics`** the way Prometheus would, and read the JSON and CSV APIs,\n"
        "4. export results to files and read them back,\n"
        "5. let the **memory guard** stop a runaway loop before the OOM killer does,\n"
        "6. stop the server.\n\n"
        "Everything runs on data the notebook makes itself."
    ),
    code("%load_ext cgmem_nb\nimport json, tempfile, urllib.request\nimport numpy as np, pandas as pd\nfrom cgmem_nb import MEMORY_PROFILER, MemoryDashboard, ProfileResult, export"),
    md(
        "## 1. Start the dashboard\n\n"
        "`port=0` picks a free port (the default is 8080). The server binds 127.0.0.1, so only this machine "
        "can reach it; binding any other address requires a token. Open the printed URL in a browser: the "
        "charts update four times a second, also while a cell is running. (`%memdash --port 0` does the same "
        "from a magic.) The page fits a phone: it carries a viewport meta tag, so a 390 px screen lays it out "
        "in one column at its own width; the memory axis fits the data, ticks read as clock times, and the "
        "peak card says since when it counts (`peak since In[3] started`)."
    ),
    code("# NBVAL_IGNORE_OUTPUT\ndash = MemoryDashboard()\nurl = dash.start_server(port=0)\nbase = f\"http://127.0.0.1:{dash.port}\""),
    md("## 2. Profile a cell that builds a table\n\nOne million orders with a price, a quantity and a categorical status."),
    code(
        "%%memprofile -q -o orders_profile\n"
        "rng = np.random.default_rng(0)\n"
        "orders = pd.DataFrame({\n"
        "    \"price\": rng.uniform(1, 100, 1_000_000),\n"
        "    \"qty\": rng.integers(1, 10, 1_000_000),\n"
        "    \"status\": pd.Categorical.from_codes(rng.integers(0, 3, 1_000_000), [\"new\", \"paid\", \"shipped\"]),\n"
        "})\n"
        "orders[\"total\"] = orders.price * orders.qty"
    ),
    code("# NBVAL_IGNORE_OUTPUT\norders_profile.lines[[\"location\", \"code\", \"peak_bytes\", \"retained_bytes\"]].head(5)"),
    md(
        "## 3. Scrape `/metrics` like Prometheus\n\n"
        "The endpoint serves the Prometheus text exposition format. We fetch it with `urllib` and parse "
        "it with `prometheus_client`'s own parser: gauges for current, peak and limit bytes, bytes per "
        "category and the pressure level; counters for allocations, deallocations, leaks and sessions."
    ),
    code(
        "from prometheus_client.parser import text_string_to_metric_families\n\n"
        "text = urllib.request.urlopen(base + \"/metrics\").read().decode()\n"
        "families = {f.name: f for f in text_string_to_metric_families(text)}\n"
        "for name, fam in sorted(families.items()):\n"
        "    print(f\"{fam.type:8} {name}\")"
    ),
    code(
        "# NBVAL_IGNORE_OUTPUT\n"
        "value = lambda name: families[name].samples[0].value\n"
        "print(f\"current {value('cgmem_memory_current_bytes') / 1e6:,.0f} MB, \"\n"
        "      f\"peak {value('cgmem_memory_peak_bytes') / 1e6:,.0f} MB, \"\n"
        "      f\"limit {value('cgmem_memory_limit_bytes') / 1e9:,.1f} GB, \"\n"
        "      f\"pressure level {value('cgmem_pressure_level'):.0f} (0 Low ... 3 Critical)\")\n"
        "for s in families[\"cgmem_category_bytes\"].samples:\n"
        "    print(f\"  {s.labels['category']:10} {s.labels['source']:13} {s.value / 1e6:8.1f} MB\")"
    ),
    md("The same figures as JSON, and every table of the profiler's state as CSV:"),
    code(
        "metrics = json.loads(urllib.request.urlopen(base + \"/api/metrics.json\").read())\n"
        "print(sorted(metrics))\n"
        "print(\"sessions finished:\", metrics[\"sessions_finished\"])"
    ),
    code(
        "import io\n"
        "csv_text = urllib.request.urlopen(base + \"/api/export.csv?table=sessions\").read().decode()\n"
        "sessions = pd.read_csv(io.StringIO(csv_text), **export.read_csv_kwargs())\n"
        "print(\"labels are cells:\", sessions.label.str.startswith(\"In[\").all())\n"
        "# The sampled peak varies by a few MB between runs: check it here, show only stable columns.\n"
        "orders_mb = orders.memory_usage(deep=True).sum() / 1e6\n"
        "assert 0.8 * orders_mb < sessions.peak_bytes.iloc[-1] / 1e6 < 3 * orders_mb, sessions.peak_bytes\n"
        "sessions[[\"tracer\", \"interrupted\"]]"
    ),
    md(
        "## 4. Export results to files\n\n"
        "`to_json` round-trips exactly; `to_csv` writes one file per table plus a `manifest.json` with the "
        "dtypes, so the tables come back with the right types. Every file is written atomically "
        "(a temporary file, then a rename)."
    ),
    code(
        "from pathlib import Path\nfolder = Path(tempfile.mkdtemp())\n"
        "orders_profile.to_json(folder / \"orders.json\")\n"
        "print(\"JSON round-trips:\", ProfileResult.from_json(folder / \"orders.json\") == orders_profile)\n"
        "orders_profile.to_csv(folder / \"orders_csv\")\n"
        "print(sorted(p.name for p in (folder / \"orders_csv\").iterdir()))\n"
        "tables = export.read_csv_tables(folder / \"orders_csv\")\n"
        "print(\"CSV tables equal:\", all(tables[n].equals(orders_profile.table(n)) for n in orders_profile.table_names))\n"
        "print({c: str(t) for c, t in tables[\"lines\"].dtypes.items()})"
    ),
    md("The whole profiler's state (metrics, sessions, manual records, the monitor's timeline, every stored result) exports the same way: `MEMORY_PROFILER.export_json()`, `.export_csv(directory)`, `.export_prometheus()`."),
    code(
        "MEMORY_PROFILER.export_csv(folder / \"state\")\n"
        "sorted(export.read_csv_tables(folder / \"state\"))"
    ),
    md(
        "## 5. The memory guard\n\n"
        "A loop that keeps appending will eventually take the kernel down. A guarded session interrupts it "
        "(`KeyboardInterrupt`, like the *Interrupt* button) when memory reaches 95% of the limit, after "
        "recording which lines hold the memory. Here the limit is set to 300 MB above what the kernel uses "
        "now; in a cell you would write `%%memprofile --guard`."
    ),
    code(
        "# NBVAL_IGNORE_OUTPUT\n"
        "import time\n"
        "from cgmem_nb.engine import probes\n"
        "chunks = []\n"
        "try:\n"
        "    with MEMORY_PROFILER.session(\"runaway\", guard=True, limit=probes.rss() + 300_000_000):\n"
        "        for i in range(1000):  # 5 GB if nothing stopped it\n"
        "            chunks.append(b\"x\" * 5_000_000)\n"
        "            time.sleep(0.005)\n"
        "except KeyboardInterrupt:\n"
        "    print(f\"interrupted after {len(chunks)} chunks ({len(chunks) * 5} MB)\")"
    ),
    code(
        "guard = MEMORY_PROFILER.last_result.summary.guard\n"
        "top = guard.top_lines[0]\n"
        "print(\"guard triggered:\", MEMORY_PROFILER.last_result.summary.guard_triggered)\n"
        "print(\"line holding the most memory:\", top.code)\n"
        "print(\"a line of a notebook cell:\", top.location.startswith(\"In[\") and top.location.endswith(\":8\"))\n"
        "del chunks  # the kernel, and `orders`, are still here\n"
        "len(orders)"
    ),
    md("## 6. Stop the server\n\n`stop()` closes every page's session and frees the port."),
    code("dash.stop()\nprint(dash.url)"),
]

if __name__ == "__main__":
    sys.exit(main("06-dashboard-and-prometheus.ipynb", CELLS))
