# mypy: disable-error-code="no-untyped-call,untyped-decorator"
"""``%mempanel``: one live panel for the whole kernel, following every cell until closed.

``%mempanel`` shows a :class:`~cgmem_nb.outputs.panel.LivePanel` under the cell
it runs in; the panel keeps moving while later cells run (it is drawn from the
monitor thread), notes each cell's peak and RSS change when the cell ends (from
the ``CellStarted`` / ``CellFinished`` events the extension publishes), and
fills its leak and recommendation sections as those events arrive.
``%mempanel --close`` stops it (the monitor thread is released; the widgets keep
their last state). Running ``%mempanel`` again replaces the open panel.
"""

from __future__ import annotations

import math
from typing import Any

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from ..errors import CgmemError
from . import magic_args

_KERNEL_PANEL: Any = None


def kernel_panel() -> Any:
    """The open ``%mempanel`` panel, or None."""
    return _KERNEL_PANEL


def close_kernel_panel() -> bool:
    """Close the ``%mempanel`` panel if one is open; True if one was."""
    global _KERNEL_PANEL
    panel, _KERNEL_PANEL = _KERNEL_PANEL, None
    if panel is None:
        return False
    panel.finalize(None)
    return True


@magics_class
class PanelMagics(Magics):
    """``%mempanel``."""

    @magic_arguments.magic_arguments()
    @magic_arguments.argument("--close", action="store_true", help="Close the open panel and release the monitor thread.")
    @magic_arguments.argument("--rate", type=float, default=4.0, metavar="N", help="Most redraws per second (default 4).")
    @line_magic
    def mempanel(self, line: str) -> None:
        """Show a live memory panel for the whole kernel: it follows every cell until ``%mempanel --close``.

        The chart (RSS and traced heap over time, the limit as a dashed line), the
        pressure bar and the current / peak / limit figures move while cells run;
        each finished cell adds a note with its peak and RSS change. Widget clicks
        reach the kernel only after a busy cell ends, so the panel has no buttons.
        """
        global _KERNEL_PANEL
        args = magic_args.parse(self.mempanel, line)
        magic_args.checked_config()
        if not (math.isfinite(args.rate) and 0.1 <= args.rate <= 60):
            raise magic_args.usage_error(self.mempanel, f"--rate {args.rate!r} is not accepted: give redraws per second from 0.1 to 60")
        if args.close:
            if not close_kernel_panel():
                print("cgmem_nb: no %mempanel is open")
            return
        close_kernel_panel()
        from ..outputs.panel import LivePanel

        try:
            panel = LivePanel("kernel (%mempanel)", max_rate=args.rate)
        except CgmemError as exc:
            raise UsageError(str(exc)) from None
        _KERNEL_PANEL = panel
        try:
            panel.show()
        except CgmemError as exc:
            _KERNEL_PANEL = None
            raise UsageError(str(exc)) from None
