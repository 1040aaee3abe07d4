"""User-written regexes, compiled with RE2: they run on untrusted text (process command lines,
log lines, agent-supplied labels), and RE2 matches in time linear in that text, so no pattern
can stall the process that runs it (``(a+)+$`` costs what ``a+$`` does; Python's ``re`` takes
seconds on 30 characters). The price is RE2's syntax: no backreferences, no lookaround."""

from __future__ import annotations

from typing import Any

import re2


def _options() -> Any:
    options = re2.Options()
    # A bad user pattern is reported once, as our ValueError, not logged by RE2 on stderr.
    options.log_errors = False
    return options


RE2_OPTIONS = _options()


def compile_re2(pattern: str, options: Any = RE2_OPTIONS) -> Any:
    """``pattern`` compiled by RE2; a ``ValueError`` with RE2's reason when it cannot be."""
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(str(reason)) from None
    except UnicodeEncodeError:  # lone surrogates cannot become the UTF-8 that RE2 reads
        raise ValueError("the pattern is not valid text") from None
