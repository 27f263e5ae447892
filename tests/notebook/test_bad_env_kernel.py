"""A bad MEMORY_PROFILER_* variable in a real kernel: a one-line error from the magics, no library
traceback, and the kernel goes on running cells."""

from __future__ import annotations

import pytest

try:
    from .kernel_helpers import execute, stdout
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    from kernel_helpers import execute, stdout  # type: ignore[no-redef]

pytestmark = pytest.mark.notebook


def test_a_bad_environment_variable_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORY_PROFILER_SAMPLING_RATE", "1e-300")
    nb = execute(["%load_ext cgmem_nb", "%%memprofile\nx = 1", "%memwatch on", "y = 2\nprint('alive', y)"], allow_errors=True)
    for cell in nb.cells[1:3]:
        # IPython shows a UsageError as one line on stderr (no traceback, no error output).
        assert [o.output_type for o in cell.outputs] == ["stream"] and cell.outputs[0].name == "stderr"
        text = cell.outputs[0].text
        assert text.startswith("UsageError: cgmem_nb: MEMORY_PROFILER_SAMPLING_RATE='1e-300' is not accepted")
        assert "1e-06" in text and text.count("\n") == 1 and "Traceback" not in text
    assert not [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert "alive 2" in stdout(nb.cells[3])
