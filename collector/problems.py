"""The one error shape for bad input files: every problem is a ``file:line: message`` line.

The agent config, the policy loader and the scenario loader each raise a subclass of
:class:`ProblemsError` (so callers can tell them apart), collecting every problem found rather
than stopping at the first; the CLI prints ``problems`` one per line and exits 2. :class:`Problem`
is what a parser raises from deep inside to say where (line) and what, for its caller to prefix
the file name and collect.
"""

from __future__ import annotations


class ProblemsError(ValueError):
    """One or more problems in an input file; ``problems`` holds ``file:line: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Problem(Exception):
    """A problem at ``line`` (1-based; 0: the document as a whole) of the document being parsed."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message

    def at(self, origin: str) -> str:
        """The ``file:line: message`` line of this problem in ``origin``."""
        return f"{origin}:{self.line}: {self.message}" if self.line > 0 else f"{origin}: {self.message}"
