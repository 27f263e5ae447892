"""A fresh IPython shell per test, with cgmem_nb loaded."""

from __future__ import annotations

from typing import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    """A new InteractiveShell with ``%load_ext cgmem_nb`` done and history on."""
    InteractiveShell.clear_instance()
    ip = InteractiveShell.instance()
    ip.history_manager.enabled = True
    ip.run_line_magic("load_ext", "cgmem_nb")
    try:
        yield ip
    finally:
        ip.reset(new_session=False)
        InteractiveShell.clear_instance()
