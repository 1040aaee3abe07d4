"""Options for the whole suite."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz-long",
        action="store_true",
        default=False,
        help="run the down-checker's generated-scenario fuzzer with thousands of examples"
        " (FUZZ_EXAMPLES=N sets how many; the default run checks a bounded, seeded number)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A long fuzz run is one test of thousands of scenarios (tens of minutes): the suite's
    per-test timeout, there to catch a hung broker, would cut it short."""
    if config.getoption("--fuzz-long"):
        for item in items:
            if item.get_closest_marker("fuzz") is not None:
                item.add_marker(pytest.mark.timeout(0))
