"""The records of the control topics: published policy sets and silences (pure encoding).

Both topics are compacted, so their content is the current state: the policy topic holds
one record (key ``policy``) with every file of the applied set; the silence topic one record
per silence id (expiring a silence rewrites it with an end in the past).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from policies.model import LabelMatch, Silence

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
            return cls(files, str(body["version"]), float(body["applied_at"]), str(body.get("applied_by", "")))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ControlError(f"unreadable policy record: {exc}") from None


def parse_matcher(text: str) -> LabelMatch:
    """``label=value``, ``label!=value``, ``label=~regex`` or ``label!~regex``."""
    match = _MATCHER.match(text)
    if not match:
        raise ControlError(f"cannot read matcher {text!r} (use label=value, label!=value, label=~re, label!~re)")
    op = match["op"]
    if op in ("=~", "!~"):
        try:
            re.compile(match["value"])
        except re.error as exc:
            raise ControlError(f"bad regex in {text!r}: {exc}") from None
    return LabelMatch(match["label"], op, match["value"])  # type: ignore[arg-type]


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
    """A silence starting now (or at ``start``) for ``duration_s``; needs at least one matcher."""
    matchers = tuple(matchers)
    if not matchers:
        raise ControlError("a silence needs at least one matcher (it would silence everything)")
    if duration_s <= 0:
        raise ControlError("a silence needs a duration > 0")
    begin = time.time() if start is None else start
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
            float(body["starts_at"]),
            float(body["ends_at"]),
            str(body.get("created_by", "")),
            str(body.get("comment", "")),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, re.error) as exc:
        raise ControlError(f"unreadable silence record: {exc}") from None
