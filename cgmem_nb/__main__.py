"""``python -m cgmem_nb``: the command line (see :mod:`cgmem_nb.integrations.cli`)."""

from __future__ import annotations

from .integrations.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
