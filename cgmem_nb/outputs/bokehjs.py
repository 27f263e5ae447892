"""BokehJS on a notebook page: loaded inline once per kernel, its output emptied afterwards.

The live panel's charts are ``jupyter_bokeh`` widgets, which render only when BokehJS is on
the page. It is put there inline (a CDN load fails offline) when the first panel is shown,
in an output with a display id; once that panel is finished the output is emptied (the page
keeps the script it ran), so the saved notebook does not carry ~8 MB per kernel.
"""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["clear_bokehjs_output", "has_widget_frontend", "load_bokehjs"]

_bokehjs_loaded = False
_bokehjs_lock = threading.Lock()
# The display id of the output that carries BokehJS until a panel clears it.
_bokehjs_output: str | None = None


def has_widget_frontend() -> bool:
    """True inside a Jupyter kernel (ipykernel), where widgets can reach a front end.

    A terminal IPython or a plain process has no comm channel to a page; there
    the panel shows its text form and the static report instead.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def load_bokehjs() -> bool:
    """Put BokehJS on the page once per kernel process, inline (the CDN fails offline).

    Returns True if it was loaded by this call. Called when the first panel is
    shown, so kernels that never show a panel never carry the ~4 MB script.
    """
    global _bokehjs_loaded, _bokehjs_output
    with _bokehjs_lock:
        if _bokehjs_loaded or not has_widget_frontend():
            return False
        from bokeh.io import output_notebook
        from bokeh.resources import INLINE
        from IPython import get_ipython

        # The script is given a display id, so that a finished panel can empty that output
        # (clear_bokehjs_output): the page has run it by then, and the saved notebook does
        # not carry ~8 MB (the script twice, once per MIME type) for every kernel.
        display_id = f"cgmem-bokehjs-{id(_bokehjs_lock):x}-{time.time_ns():x}"
        publisher = get_ipython().display_pub
        original = publisher.publish

        def publish(data: Any, metadata: Any = None, *args: Any, **kwargs: Any) -> Any:
            transient = dict(kwargs.pop("transient", None) or {})
            transient.setdefault("display_id", display_id)
            return original(data, metadata, *args, transient=transient, **kwargs)

        publisher.publish = publish
        try:
            output_notebook(INLINE, hide_banner=True)
        finally:
            publisher.publish = original
        _bokehjs_loaded = True
        _bokehjs_output = display_id
        return True


def clear_bokehjs_output() -> bool:
    """Empty the output that carried BokehJS (the page keeps the script it ran). True if it did."""
    global _bokehjs_output
    with _bokehjs_lock:
        display_id, _bokehjs_output = _bokehjs_output, None
    if display_id is None:
        return False
    from IPython.display import update_display

    update_display({"text/plain": ""}, raw=True, display_id=display_id)  # type: ignore[no-untyped-call]
    return True
