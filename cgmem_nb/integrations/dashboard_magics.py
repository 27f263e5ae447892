"""``%memdash``: start, show or stop the web dashboard of this kernel.

``%memdash`` starts it on ``ProfilerConfig.dashboard_port`` (8080) at 127.0.0.1,
``%memdash --port 0`` picks a free port, ``%memdash --host 0.0.0.0`` serves other
machines (a token is generated and printed; give your own with ``--token``),
``%memdash --allow-host dash.example.com`` also answers to a reverse proxy's name,
``%memdash --stop`` stops it. While it runs, every cell's start and end is marked
on the timeline (from the cell events the extension publishes).
"""

# IPython's magic decorators carry no type annotations.
# mypy: disable-error-code="no-untyped-call,untyped-decorator"
from __future__ import annotations

from typing import Any

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from ..errors import CgmemError
from ..outputs.dashboard import MemoryDashboard
from . import magic_args

#: The kernel's dashboard, once started by ``%memdash``.
DASHBOARD: MemoryDashboard | None = None


@magics_class
class DashboardMagics(Magics):
    """The ``%memdash`` magic."""

    @magic_arguments.magic_arguments()
    @magic_arguments.argument("--port", type=int, metavar="N", help="Port to serve (default: ProfilerConfig.dashboard_port, 8080; 0 picks a free port).")
    @magic_arguments.argument("--host", default="127.0.0.1", metavar="H", help="Address to bind (default 127.0.0.1). Any other address requires a token.")
    @magic_arguments.argument("--token", metavar="T", help="Token required on every request (generated for a non-loopback host when not given).")
    @magic_arguments.argument(
        "--allow-host", action="append", default=[], metavar="NAME",
        help="Also answer to this Host name (e.g. a reverse proxy's); repeat for several. See docs/security.md.",
    )
    @magic_arguments.argument("--stop", action="store_true", help="Stop the dashboard and free its port.")
    @line_magic
    def memdash(self, line: str) -> Any:
        """Serve a live memory dashboard of this kernel in a browser tab (and /metrics for Prometheus).

        Prints and returns the URL. Runs on a background thread, so the page keeps
        updating while cells run.
        """
        global DASHBOARD
        args = magic_args.parse(self.memdash, line)
        magic_args.checked_config()
        if args.stop:
            if DASHBOARD is None or not DASHBOARD.running:
                print("cgmem_nb dashboard: not running")
                return None
            DASHBOARD.stop()
            print("cgmem_nb dashboard: stopped")
            return None
        if DASHBOARD is not None and DASHBOARD.running:
            print(f"cgmem_nb dashboard: already running at {DASHBOARD.url} (use %memdash --stop first)")
            return DASHBOARD.url
        DASHBOARD = MemoryDashboard()
        try:
            DASHBOARD.start_server(port=args.port, host=args.host, token=args.token, allow_hosts=args.allow_host)  # prints the URL
        except CgmemError as exc:
            raise UsageError(str(exc)) from None
        return None
