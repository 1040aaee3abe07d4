"""What the bad-input suites (``tests/unit/test_bad_input_*.py``) share: strategies for hostile
values, and the one assertion they make: only the documented error type escapes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

# Text an attacker or a typo can produce: control characters, huge numbers, format braces,
# regex metacharacters, lone surrogates (not valid UTF-8), long runs.
hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["{", "}", "{value[0]}", "{0}", "{value:99999999999}", "(a+)+$", "(a)\\1", "\x00", "\ud800"]),
    st.from_regex(r"[0-9]{1,400}(ms|s|m|h|d|w)?", fullmatch=True),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "9", "[", "{", "\\", "%"]), st.integers(0, 5000)),
)
hostile_numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(),  # NaN and infinities too
    st.sampled_from([0, -0.0, 1e308, -1e308, 5e-324, 2**63, 2**64]),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)


@contextlib.contextmanager
def only(documented: type[BaseException] | tuple[type[BaseException], ...]) -> Iterator[None]:
    """The block may raise ``documented`` (or nothing); any other exception fails the test with its type."""
    try:
        yield
    except documented:
        pass
    except Exception as exc:  # the finding: an undocumented error escaped
        raise AssertionError(f"{type(exc).__name__} escaped: {exc!r}"[:500]) from exc


def mutations(valid: dict[str, Any], values: st.SearchStrategy[Any] = json_values) -> st.SearchStrategy[dict[str, Any]]:
    """``valid`` with some of its keys replaced by anything, deleted, or joined by unknown ones."""
    keys = sorted(valid)
    replace = st.dictionaries(st.sampled_from(keys), values, max_size=3)
    delete = st.sets(st.sampled_from(keys), max_size=2)
    extra = st.dictionaries(st.text(max_size=8), values, max_size=2)

    def build(changes: dict[str, Any], gone: set[str], more: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in valid.items() if k not in gone}
        body.update(changes)
        return {**more, **body}

    return st.builds(build, replace, delete, extra)
