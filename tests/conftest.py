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
