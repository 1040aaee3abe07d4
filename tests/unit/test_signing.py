"""Signed control records: a worker with trusted keys obeys only what they signed, exactly as signed."""

from __future__ import annotations

import logging
import math
import time

import pytest
from aiokafka.structs import ConsumerRecord

from policies.control import POLICY_KEY, PublishedPolicy, encode_silence, new_silence, parse_matcher
from policies.model import PolicySet
from policies.signing import (
    SigningKeyError,
    new_private_key_pem,
    signer_from_pem,
    verifier_from_pems,
)
from streams.policy_holder import PolicyHolder
from streams.settings import WorkerStats
from tests.cli import fleetpulse

PRIVATE, PUBLIC = new_private_key_pem()
SIGNER = signer_from_pem(PRIVATE, "test.key")
VERIFIER = verifier_from_pems([(PUBLIC, "test.pub")])
OTHER = signer_from_pem(new_private_key_pem()[0], "other.key")
RULE = "rules:\n  - name: cpu_hot\n    when: cpu_pct > {}\n"


def _record(topic: str, key: bytes, value: bytes | None, headers: list[tuple[str, bytes]] | None) -> ConsumerRecord:
    return ConsumerRecord(topic, 0, 7, 0, 0, key, value, None, 0, 0, tuple(headers or ()))


def _policy(threshold: int, applied_at: float | None = None) -> bytes:
    files = {"cpu.yaml": RULE.format(threshold)}
    return PublishedPolicy(files, f"v{threshold}", time.time() if applied_at is None else applied_at, "t").encode()


def test_exactly_the_signed_record_verifies() -> None:
    value = _policy(90)
    headers = SIGNER.headers("fp.policies", POLICY_KEY, value)
    assert VERIFIER.problem("fp.policies", POLICY_KEY, value, headers) is None
    assert VERIFIER.problem("fp.policies", POLICY_KEY, value, None) == "unsigned"
    assert "bad signature" in (VERIFIER.problem("fp.policies", POLICY_KEY, value + b" ", headers) or "")
    assert "bad signature" in (VERIFIER.problem("fp.silences", POLICY_KEY, value, headers) or "")  # another topic
    assert "bad signature" in (VERIFIER.problem("fp.policies", b"other", value, headers) or "")  # another key
    forged = OTHER.headers("fp.policies", POLICY_KEY, value)
    assert f"signer {OTHER.key_id} not trusted" in (VERIFIER.problem("fp.policies", POLICY_KEY, value, forged) or "")
    tombstone = SIGNER.headers("fp.silences", b"s1", None)
    assert VERIFIER.problem("fp.silences", b"s1", None, tombstone) is None
    assert VERIFIER.problem("fp.silences", b"s1", b"", tombstone) is None  # empty and none sign alike
    assert VERIFIER.problem("fp.policies", POLICY_KEY, value, [("fp-signature", b"%%")]) == "signature unreadable"


def test_keys_of_the_wrong_kind_are_refused_by_file() -> None:
    with pytest.raises(SigningKeyError, match=r"a\.pub: not a PEM private key"):
        signer_from_pem(PUBLIC, "a.pub")
    with pytest.raises(SigningKeyError, match=r"a\.key: not a PEM public key"):
        verifier_from_pems([(PRIVATE, "a.key")])
    with pytest.raises(SigningKeyError, match="no public key"):
        verifier_from_pems([])


def test_a_worker_with_trusted_keys_refuses_unsigned_and_forged_sets_and_keeps_the_last_good(
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = PolicyHolder(PolicySet(), WorkerStats(), verifier=VERIFIER)
    good = _policy(90)
    holder.on_policy(_record("fp.policies", POLICY_KEY, good, SIGNER.headers("fp.policies", POLICY_KEY, good)))
    assert holder.evaluator.policy.version != PolicySet().version
    kept = holder.evaluator.policy.version
    with caplog.at_level(logging.ERROR, logger="streams.policy_holder"):
        evil = _policy(99)
        holder.on_policy(_record("fp.policies", POLICY_KEY, evil, None))
        holder.on_policy(_record("fp.policies", POLICY_KEY, evil, OTHER.headers("fp.policies", POLICY_KEY, evil)))
        old = _policy(10, applied_at=1.0)  # a replay of an older signed set
        holder.on_policy(_record("fp.policies", POLICY_KEY, old, SIGNER.headers("fp.policies", POLICY_KEY, old)))
    assert holder.evaluator.policy.version == kept and holder.stats.policies_refused == 3
    assert caplog.text.count("event=policy_refused reason=signature") == 2
    assert "event=policy_refused reason=stale" in caplog.text


def test_a_worker_with_trusted_keys_obeys_only_signed_silences(caplog: pytest.LogCaptureFixture) -> None:
    holder = PolicyHolder(PolicySet(), WorkerStats(), verifier=VERIFIER)
    silence = new_silence([parse_matcher("rule=cpu_hot")], 3600.0)
    value, key = encode_silence(silence), silence.id.encode()
    with caplog.at_level(logging.ERROR, logger="streams.policy_holder"):
        holder.on_silence(_record("fp.silences", key, value, None))
    assert holder.suppressor.silences == {} and "event=silence_refused reason=signature" in caplog.text
    holder.on_silence(_record("fp.silences", key, value, SIGNER.headers("fp.silences", key, value)))
    assert set(holder.suppressor.silences) == {silence.id}
    holder.on_silence(_record("fp.silences", key, None, None))  # an unsigned delete is refused too
    assert set(holder.suppressor.silences) == {silence.id}


def test_a_worker_without_trusted_keys_obeys_unsigned_records_as_before() -> None:
    holder = PolicyHolder(PolicySet(), WorkerStats())
    holder.on_policy(_record("fp.policies", POLICY_KEY, _policy(80), None))
    assert holder.evaluator.policy.version != PolicySet().version and not math.isinf(holder.applied_at)


def test_keygen_writes_a_private_key_only_its_owner_reads_and_will_not_overwrite(tmp_path: object) -> None:
    from pathlib import Path

    out = Path(str(tmp_path))
    made = fleetpulse("control", "keygen", "--out", str(out))
    assert made.returncode == 0, made.stderr
    assert (out / "control.key").stat().st_mode & 0o777 == 0o600
    signer = signer_from_pem((out / "control.key").read_bytes(), "control.key")
    verifier = verifier_from_pems([((out / "control.pub").read_bytes(), "control.pub")])
    assert verifier.problem("t", b"k", b"v", signer.headers("t", b"k", b"v")) is None
    assert signer.key_id in made.stdout and "BEGIN" not in made.stdout
    again = fleetpulse("control", "keygen", "--out", str(out))
    assert again.returncode == 1 and "--force" in again.stderr
