"""Parsing helpers the scenario loader and every fault kind share: durations, counts, flags and
host selections, each raising :class:`~collector.problems.Problem` (line and message) with
the same wording wherever it is used."""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

from collector.problems import Problem
from policies.model import parse_duration
from policies.yaml_lines import LineMapping

if TYPE_CHECKING:
    from fleetpulse.sim.scenario import Scenario

INF = math.inf


def parse_seconds(value: Any, line: int, key: str, *, positive: bool = False) -> float:
    """``value`` (seconds or a duration like ``90s``, ``2m``) in seconds, for key ``key``."""
    try:
        seconds = parse_duration(value)
    except (ValueError, TypeError):
        raise Problem(line, f"'{key}' must be seconds or a duration like 30s, 2m; got {value!r}") from None
    if positive and seconds <= 0:
        raise Problem(line, f"'{key}' must be > 0, got {value!r}")
    return seconds


def parse_count(value: Any, line: int, key: str, minimum: int) -> int:
    """``value`` as an integer of at least ``minimum`` (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise Problem(line, f"'{key}' must be an integer >= {minimum}, got {value!r}")
    return value


def parse_flag(value: Any, line: int, key: str) -> bool:
    """``value`` as ``true`` or ``false``."""
    if not isinstance(value, bool):
        raise Problem(line, f"'{key}' must be true or false, got {value!r}")
    return value


def select_hosts(spec: Any, line: int, kind: str, index: int, sc: Scenario, used: set[str]) -> tuple[str, ...]:
    """The hosts a fault's ``spec`` names: an id, a list of ids, or ``{region, count}`` (a
    seeded pick, per fault ``index``, of hosts not ``used`` by an earlier fault)."""
    known = {h.host_id for h in sc.hosts}
    if isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, list):
        ids = tuple(str(s) for s in spec)
        unknown = [h for h in ids if h not in known]
        if unknown:
            raise Problem(line, f"{kind}: unknown host(s) {', '.join(unknown)} (ids look like {sc.hosts[0].host_id})")
        if not ids:
            raise Problem(line, f"{kind}: no hosts given")
        return ids
    if not isinstance(spec, LineMapping) or set(spec) - {"region", "count"}:
        raise Problem(line, f"{kind}: hosts are a list of ids, an id, or {{region: R, count: N}}")
    region = spec.get("region")
    if region is not None and str(region) not in sc.regions:
        raise Problem(spec.line_of("region"), f"{kind}: unknown region {region!r} (regions: {', '.join(sc.regions)})")
    count = parse_count(spec.get("count", 1), spec.line_of("count"), "count", 1)
    pool = [h.host_id for h in sc.hosts if (region is None or h.region == str(region)) and h.host_id not in used]
    if len(pool) < count:
        where = f"region {region}" if region is not None else "the fleet"
        raise Problem(line, f"{kind}: wants {count} host(s) but {where} has {len(pool)} not used by earlier faults")
    return tuple(sorted(random.Random(f"{sc.seed}:{index}").sample(pool, count)))


