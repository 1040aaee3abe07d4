"""Running the ``fleetpulse`` command as a person would, for unit and integration tests."""

from __future__ import annotations

import subprocess
import sys


def fleetpulse(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``fleetpulse ARGS`` in a child process with this interpreter; never raises on exit code."""
    return subprocess.run(
        [sys.executable, "-m", "fleetpulse.cli", *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )
