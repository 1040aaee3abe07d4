"""Which partitions the worker's consumer re-reads from the beginning after a stopped flow."""

from __future__ import annotations

from faust.types import TP

from streams.consumer import never_committed


def test_partitions_without_a_committed_offset_are_re_read_and_changelogs_are_left_to_recovery() -> None:
    committed = {
        TP("fp.metrics", 0): 7,  # aiokafka seeks this one itself
        TP("fp.metrics", 1): None,  # nothing committed yet: left past the dropped records
        TP("fp.logs", 0): 0,  # committed 0: aiokafka does not seek it either
        TP("fp-hosts-changelog", 1): None,  # positioned by table recovery
    }
    assert never_committed(committed, {"fp-hosts-changelog"}) == [TP("fp.metrics", 1), TP("fp.logs", 0)]


def test_nothing_to_re_read_when_every_partition_has_a_commit() -> None:
    assert never_committed({TP("fp.metrics", 0): 3, TP("fp.metrics", 1): 1}, set()) == []
