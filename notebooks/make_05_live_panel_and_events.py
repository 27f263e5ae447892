"""Build and execute ``notebooks/05-live-panel-and-events.ipynb`` (``.venv/bin/python notebooks/make_05_live_panel_and_events.py``).

The live panel (%%memprofile --live, %mempanel) and the event stream.
The shared machinery (cells, execution, writing) is in ``notebooks/tutorial.py``.
"""

from __future__ import annotations

import sys

from tutorial import code, main, md

CELLS = [
    md("""# 05 · The live panel and the event stream

A long cell is a black box until it ends. With `%%memprofile --live` a panel appears **under the cell, before
its own output**, and moves while the cell runs: a chart of RSS and traced heap over time with the memory limit as
a red dashed line, a pressure bar coloured Low / Medium / High / Critical, the current / peak / limit figures, and
sections for leaks and recommendations that fill in as the analysis reports them.

Everything the panel draws comes from one live feed (the web dashboard reads the same one), fed by the
profiler's event stream, which your own code can read too: `MEMORY_PROFILER.start_monitoring()` gives an
async receiver, `MEMORY_PROFILER.subscribe()` a callback.

*On GitHub or in nbconvert you see the panel's text form, not the widgets: open the notebook in JupyterLab and run
it to watch the panel move.*"""),
    code("""%load_ext cgmem_nb
import time

import numpy as np
import pandas as pd

from cgmem_nb import MEMORY_PROFILER, format_bytes
from cgmem_nb.engine import probes

# A tight limit for this demo (a real kernel uses its container's limit or the machine's memory),
# so that the pressure bar has something to show.
MEMORY_PROFILER.initialize(memory_limit_bytes=probes.rss() + 600_000_000)
print("limit:", MEMORY_PROFILER.memory_limit().source)"""),
    md("""## Watching a feature build

We build a feature table column by column (each column is 8 MB of float64), as a slow pipeline would. The first
panel of a kernel also loads BokehJS inline (once per kernel, so it works offline); `-q` leaves out the static
report, `-o build` keeps the `ProfileResult`."""),
    code("""%%memprofile --live -q -o build
rng = np.random.default_rng(0)
features = pd.DataFrame(index=range(1_000_000))
for i in range(24):
    features[f"f{i}"] = rng.standard_normal(len(features))   # 8 MB per column
    time.sleep(0.1)
features.shape""", "nbval-ignore-output"),
    md("""When the cell ends, the panel stops moving and shows the final figures taken from the result (the
traced peak and the RSS peak of the cell). It also leaves a static picture of itself after it (an SVG of the
chart, the final figures and the findings), which JupyterLab hides next to the live widget and which is what
nbconvert's HTML, GitHub and a reopened notebook show; the output that carried BokehJS is emptied, so the saved
notebook does not grow by megabytes per `--live` cell. The same figures are in the result:"""),
    code("""# NBVAL_IGNORE_OUTPUT
s = build.summary
print(f"traced peak {format_bytes(s.peak_bytes)}, retained {format_bytes(s.retained_bytes)}, "
      f"RSS peak {format_bytes(s.rss_peak_bytes)}")"""),
    md("""The 24 columns are 192 MB of data, and the cell keeps them: the traced peak is barely above what it
retains, because adding a column to a DataFrame does not copy the others."""),
    code("""assert build.summary.retained_bytes >= 190_000_000
del features"""),
    md("""## Gaps: when a C call holds the GIL

The panel is drawn by the kernel's monitor thread. A C call that holds the GIL (here `sum` over a 250 MB bytes
object) stops every thread of the kernel, the monitor too, so no samples arrive while it runs. When samples resume,
the panel reads the kernel's own peak RSS (`VmHWM`): if it grew during the gap, the peak is drawn at the middle of
the gap as a grey triangle on a dashed segment, and counted in the peak figure."""),
    code("""%%memprofile --live -q -o gil
time.sleep(0.5)
total = sum(bytes(250_000_000) + b"x")   # one C call: allocate, add up, free, GIL held throughout
time.sleep(0.5)""", "nbval-ignore-output"),  # the panel's final picture holds measured figures
    code("""# NBVAL_IGNORE_OUTPUT
from cgmem_nb.outputs.panel import last_panel

panel = last_panel()
for start, end, rss, from_peak in panel.gaps:
    print(f"no samples from {start:.1f} s to {end:.1f} s; drawn at {format_bytes(rss)}"
          f"{' (kernel peak)' if from_peak else ''}")"""),
    md("""## One panel for the whole kernel

`%mempanel` shows a panel that follows every cell until `%mempanel --close`; each finished cell adds a note with its
peak and RSS change. Clicks on widgets reach the kernel only after a busy cell ends, so the panel has no buttons:
close it with the magic."""),
    code("%mempanel"),
    code("""chunks = [np.ones(5_000_000) for _ in range(10)]   # 400 MB
time.sleep(0.5)
del chunks"""),
    code("""# NBVAL_IGNORE_OUTPUT
print(last_panel().cell_notes[-1])"""),
    code("%mempanel --close", "nbval-ignore-output"),  # the panel's final picture holds measured figures
    md("""## The event stream

The panel is one listener of the process-wide event bus. Events are small frozen dataclasses: `Sample` (every
monitor tick), `MemoryPressure(level, current_usage, limit)` (once per level crossing, with hysteresis),
`SessionStarted` / `SessionFinished`, `CellStarted` / `CellFinished`, `LeakDetected`, `RecommendationGenerated`,
`ThresholdBreached`; all importable from `cgmem_nb`.

`start_monitoring()` returns a receiver for `async for` (top-level `await` works in a notebook). It keeps the monitor
thread sampling until it is closed; a slow reader loses the oldest events and `receiver.dropped` says how many.
Here a worker thread fills memory in 40 MB steps up to 86% of the limit and frees it, and we read the pressure
crossings it causes."""),
    code("""import asyncio
from cgmem_nb import MemoryPressure

MEMORY_PROFILER.initialize(memory_limit_bytes=probes.rss() + 400_000_000)
limit = MEMORY_PROFILER.memory_limit().bytes

def fill_and_free() -> None:
    blocks = []
    while probes.rss() < 0.86 * limit:
        blocks.append(np.ones(5_000_000))   # 40 MB
        time.sleep(0.15)
    time.sleep(0.3)
    blocks.clear()
    time.sleep(0.3)

async def watch() -> list[MemoryPressure]:
    crossings = []
    async with MEMORY_PROFILER.start_monitoring(maxsize=1000) as receiver:
        worker = asyncio.ensure_future(asyncio.to_thread(fill_and_free))
        while not worker.done():
            try:
                event = await asyncio.wait_for(receiver.recv(), timeout=0.5)
            except asyncio.TimeoutError:
                continue
            if isinstance(event, MemoryPressure):
                crossings.append(event)
        await worker
    return crossings

crossings = await watch()
[c.level.value for c in crossings]"""),
    md("""Low → Medium at 70% of the limit, Medium → High at 85%, and back to Low once the blocks are freed: one event
per crossing. A synchronous callback gets the same events on the monitor thread (keep it quick):"""),
    code("""from cgmem_nb import Sample

samples = []
with MEMORY_PROFILER.subscribe(samples.append, Sample):
    time.sleep(0.5)
print("samples received:", "some" if len(samples) >= 3 else "too few")
# Back to the detected limit (the container's, else the machine's memory).
profiler = MEMORY_PROFILER.initialize(memory_limit_bytes=None)"""),
]

if __name__ == "__main__":
    sys.exit(main("05-live-panel-and-events.ipynb", CELLS))
