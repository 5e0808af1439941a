"""One line on the terminal from a service fixture, shown even while pytest captures
output (no ``-s`` needed), so a long install or start is never silent."""

from __future__ import annotations

import pytest


def announce(config: pytest.Config, line: str) -> None:
    """Write ``line`` on its own line of pytest's terminal output, now."""
    writer = config.get_terminal_writer()
    with config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        if writer.width_of_current_line:  # after progress dots or a test's name
            writer.line()
        writer.line(line, flush=True)
