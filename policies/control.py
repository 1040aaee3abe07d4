"""The records of the control topics: published policy sets and silences (pure encoding).

Both topics are compacted, so their content is the current state: the policy topic holds
one record (key ``policy``) with every file of the applied set; the silence topic one record
per silence id (expiring a silence rewrites it with an end in the past).
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from collector.contract import MAX_EPOCH_S
from policies.model import MAX_DURATION_DAYS, MAX_DURATION_S, LabelMatch, Silence

POLICY_KEY = b"policy"
_MATCHER = re.compile(r"^\s*(?P<label>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>.*?)\s*$")


class ControlError(ValueError):
    """A control record or command-line matcher that cannot be read; the message says why."""


@dataclass(frozen=True)
class PublishedPolicy:
    """A policy set as published: its files, content version and who applied it when."""

    files: dict[str, str]
    version: str
    applied_at: float
    applied_by: str = ""

    def encode(self) -> bytes:
        return orjson.dumps(
            {"files": self.files, "version": self.version, "applied_at": self.applied_at, "applied_by": self.applied_by}
        )

    @classmethod
    def decode(cls, raw: bytes) -> PublishedPolicy:
        try:
            body = orjson.loads(raw)
            files = body["files"]
            if not isinstance(files, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in files.items()
            ):
                raise ControlError("'files' must map file names to texts")
            applied_at = _epoch(body["applied_at"], "applied_at")
            return cls(files, str(body["version"]), applied_at, str(body.get("applied_by", "")))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ControlError(f"unreadable policy record: {exc}") from None


def _epoch(value: Any, what: str) -> float:
    """A record's time: finite seconds since the epoch that a calendar can show (before 2286)."""
    if isinstance(value, bool):
        raise ValueError(f"{what!r} must be a number of seconds, got {value!r}")
    seconds = float(value)
    if not (math.isfinite(seconds) and 0 <= seconds < MAX_EPOCH_S):
        raise ValueError(f"{what!r} must be seconds since the epoch (0 .. {MAX_EPOCH_S:.0f}), got {value!r}")
    return seconds


def parse_matcher(text: str) -> LabelMatch:
    """``label=value``, ``label!=value``, ``label=~regex`` or ``label!~regex``."""
    match = _MATCHER.match(text)
    if not match:
        raise ControlError(f"cannot read matcher {text!r} (use label=value, label!=value, label=~re, label!~re)")
    try:
        return LabelMatch(match["label"], match["op"], match["value"])  # type: ignore[arg-type]
    except ValueError as exc:  # a regex RE2 cannot compile
        raise ControlError(f"bad regex in {text!r}: {exc}") from None


def format_matcher(m: LabelMatch) -> str:
    if m.op in ("in", "not in"):
        return f"{m.label} {m.op} ({', '.join(m.values)})"
    return f"{m.label}{m.op}{m.value}"


def new_silence(
    matchers: Iterable[LabelMatch],
    duration_s: float,
    comment: str = "",
    created_by: str = "",
    start: float | None = None,
) -> Silence:
    """A silence starting now (or at ``start``) for ``duration_s``; needs at least one matcher.

    The duration is at most ``MAX_DURATION_S`` and the silence ends before 2286: a record
    beyond that could not be written as JSON nor shown as a date.
    """
    matchers = tuple(matchers)
    if not matchers:
        raise ControlError("a silence needs at least one matcher (it would silence everything)")
    if not duration_s > 0:
        raise ControlError("a silence needs a duration > 0")
    if duration_s > MAX_DURATION_S:
        raise ControlError(f"a silence lasts at most {MAX_DURATION_DAYS}d")
    begin = time.time() if start is None else start
    if not (math.isfinite(begin) and begin >= 0 and begin + duration_s < MAX_EPOCH_S):
        raise ControlError(f"a silence must start after 1970 and end before 2286, got a start of {begin!r}")
    return Silence(uuid.uuid4().hex[:12], matchers, begin, begin + duration_s, created_by, comment)


def encode_silence(s: Silence) -> bytes:
    return orjson.dumps(
        {
            "id": s.id,
            "matchers": [[m.label, m.op, m.value, list(m.values)] for m in s.matchers],
            "starts_at": s.starts_at,
            "ends_at": s.ends_at,
            "created_by": s.created_by,
            "comment": s.comment,
        }
    )


def decode_silence(raw: bytes) -> Silence:
    try:
        body: dict[str, Any] = orjson.loads(raw)
        matchers = []
        for label, op, value, values in body["matchers"]:
            if op not in ("=", "!=", "=~", "!~", "in", "not in"):
                raise ControlError(f"unknown matcher operator {op!r}")
            matchers.append(LabelMatch(str(label), op, str(value), tuple(map(str, values))))
        return Silence(
            str(body["id"]),
            tuple(matchers),
            _epoch(body["starts_at"], "starts_at"),
            _epoch(body["ends_at"], "ends_at"),
            str(body.get("created_by", "")),
            str(body.get("comment", "")),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ControlError(f"unreadable silence record: {exc}") from None
