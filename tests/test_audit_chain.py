"""Properties of the sealed, signed audit chain and of its verifier."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from order3.audit.canonical import canonical_json
from order3.audit.records import GENESIS_HASH, AuditEntry, ChainHead, hash_canonical, seal
from order3.audit.signing import SigningKey
from order3.audit.verify import Report, StoredRecord, verify_chain

KEY = SigningKey(Ed25519PrivateKey.generate())
NEXT_KEY = SigningKey(Ed25519PrivateKey.generate())  # the key after a rotation
ATTACKER = SigningKey(Ed25519PrivateKey.generate())
TRUSTED = {KEY.key_id: KEY.public_key, NEXT_KEY.key_id: NEXT_KEY.public_key}
GENESIS = ChainHead(0, GENESIS_HASH)
# The body fields that place a record in the chain; a forger who wants a record to pass
# keeps them as they are.
LINKS = frozenset({"seq", "prev_hash", "key_id"})

Path = tuple[str | int, ...]

names = st.text("abcdefghijklmnopqrstuvwxyz_.", min_size=1, max_size=12)
ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=16)
SAFE_INTEGER = 2**53 - 1  # the largest integer RFC 8785 (I-JSON) can carry exactly
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.integers(-SAFE_INTEGER, SAFE_INTEGER)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(names, children, max_size=3),
    max_leaves=6,
)
entries = st.builds(
    AuditEntry,
    workspace_id=st.none() | ids.map(lambda i: f"wsp_{i}"),
    actor=st.fixed_dictionaries(
        {"id": ids.map(lambda i: f"prn_{i}"), "type": st.sampled_from(["user", "agent"])}
    ),
    action=st.sampled_from(["draft.submitted", "draft.approved", "draft.executed"]) | names,
    subject=st.fixed_dictionaries(
        {"type": st.sampled_from(["draft", "principal"]), "id": ids.map(lambda i: f"drf_{i}")}
    ),
    outcome=st.none() | st.sampled_from(["allowed", "denied"]),
    decision=st.none() | st.dictionaries(names, json_values, max_size=3),
    details=st.dictionaries(names, json_values, max_size=3),
)
entry_lists = st.lists(entries, min_size=1, max_size=12)


def stored(
    entries: Sequence[AuditEntry], head: ChainHead = GENESIS, key: SigningKey = KEY
) -> list[StoredRecord]:
    """Seal ``entries`` after ``head`` and return them as storage gives them back."""
    return [
        StoredRecord(
            seq=r.seq,
            body=r.canonical.decode(),
            hash=r.hash,
            signature=r.signature,
            key_id=r.key_id,
        )
        for r in seal(entries, head, key)
    ]


def body_of(record: StoredRecord) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(record.body)
    return body


def with_body(record: StoredRecord, body: dict[str, Any]) -> StoredRecord:
    """``record`` with its body replaced, canonically encoded, its hash and signature kept."""
    return msgspec.structs.replace(record, body=canonical_json(body).decode())


def resealed(record: StoredRecord, body: dict[str, Any], key: SigningKey) -> StoredRecord:
    """``record`` with a new body, a hash recomputed over it and a signature by ``key``."""
    canonical = canonical_json(body)
    record_hash = hash_canonical(canonical)
    return msgspec.structs.replace(
        record,
        body=canonical.decode(),
        hash=record_hash,
        signature=key.sign_record(record_hash),
        key_id=body["key_id"],
    )


def leaf_paths(value: Any, path: Path = ()) -> Iterator[Path]:
    """Paths to every scalar and every empty array or object in ``value``."""
    if isinstance(value, dict | list) and value:
        children = value.items() if isinstance(value, dict) else enumerate(value)
        for step, child in children:
            yield from leaf_paths(child, (*path, step))
    else:
        yield path


def get_at(value: Any, path: Path) -> Any:
    for step in path:
        value = value[step]
    return value


def set_at(value: Any, path: Path, new: Any) -> None:
    get_at(value, path[:-1])[path[-1]] = new


def changed_body(
    data: st.DataObject, record: StoredRecord, keep: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The body of ``record`` with one leaf replaced by a different value, outside ``keep``."""
    body = body_of(record)
    paths = [p for p in leaf_paths(body) if p[0] not in keep]
    path = data.draw(st.sampled_from(paths), label="path")
    old = get_at(body, path)
    new = data.draw(json_values.filter(lambda v: json.dumps(v) != json.dumps(old)), label="new")
    set_at(body, path, new)
    return body


def assert_fails_at(report: Report, seq: int, *, after: int) -> str:
    """Assert the report names record ``seq`` as the first bad one, ``after`` good ones."""
    assert report.failure is not None, "verification passed"
    assert report.failure.seq == seq
    assert report.records == after
    return report.failure.reason


@settings(max_examples=30, deadline=None)
@given(entries=entry_lists)
def test_an_untouched_log_verifies(entries: list[AuditEntry]) -> None:
    """A log exactly as sealed verifies in full, and its head is the last record's hash."""
    records = stored(entries)

    report = verify_chain(records, TRUSTED)

    assert report.ok
    assert report.records == len(entries)
    assert report.head_hash == records[-1].hash


@settings(max_examples=30, deadline=None)
@given(entries=entry_lists, data=st.data())
def test_any_changed_character_fails_at_that_record(
    entries: list[AuditEntry], data: st.DataObject
) -> None:
    """Any character changed in a record's body, hash, key id or signature fails there."""
    records = stored(entries)
    i = data.draw(st.integers(0, len(records) - 1), label="record")
    field = data.draw(st.sampled_from(["body", "hash", "key_id", "signature"]), label="field")
    text = getattr(records[i], field)
    at = data.draw(st.integers(0, len(text) - 1), label="at")
    new = data.draw(
        st.characters(exclude_characters=text[at]) | st.sampled_from("eE9-."), label="c"
    )
    assume(new != text[at])
    records[i] = msgspec.structs.replace(records[i], **{field: text[:at] + new + text[at + 1 :]})

    report = verify_chain(records, TRUSTED)

    assert_fails_at(report, records[i].seq, after=i)


@settings(max_examples=40, deadline=None)
@given(entries=entry_lists, data=st.data())
def test_a_changed_value_fails_at_that_record(
    entries: list[AuditEntry], data: st.DataObject
) -> None:
    """Any value changed inside a body, re-encoded canonically under the old hash, fails there."""
    records = stored(entries)
    i = data.draw(st.integers(0, len(records) - 1), label="record")
    records[i] = with_body(records[i], changed_body(data, records[i]))

    report = verify_chain(records, TRUSTED)

    assert_fails_at(report, records[i].seq, after=i)


@settings(max_examples=30, deadline=None)
@given(entries=entry_lists, data=st.data())
def test_a_rehashed_record_signed_by_another_key_fails_at_that_record(
    entries: list[AuditEntry], data: st.DataObject
) -> None:
    """A changed body with a recomputed hash, signed by a key other than the one it names, fails
    at that record on its signature."""
    records = stored(entries)
    i = data.draw(st.integers(0, len(records) - 1), label="record")
    records[i] = resealed(records[i], changed_body(data, records[i], keep=LINKS), ATTACKER)

    report = verify_chain(records, TRUSTED)

    reason = assert_fails_at(report, records[i].seq, after=i)
    assert "signature" in reason


@settings(max_examples=30, deadline=None)
@given(entries=entry_lists, data=st.data())
def test_an_insider_with_the_key_is_caught_only_by_the_next_record(
    entries: list[AuditEntry], data: st.DataObject
) -> None:
    """A record rewritten and re-signed with the real key breaks the chain at the next record;
    the last record can be rewritten undetected, which is why heads must be checkpointed."""
    records = stored(entries)
    i = data.draw(st.integers(0, len(records) - 1), label="record")
    records[i] = resealed(records[i], changed_body(data, records[i], keep=LINKS), KEY)

    report = verify_chain(records, TRUSTED)

    if i < len(records) - 1:
        assert_fails_at(report, records[i + 1].seq, after=i + 1)
    else:
        assert report.ok
        assert report.records == len(records)
        assert report.head_hash == records[i].hash


@settings(max_examples=30, deadline=None)
@given(entries=st.lists(entries, min_size=2, max_size=12), data=st.data())
def test_a_dropped_record_fails_at_the_record_after_the_gap(
    entries: list[AuditEntry], data: st.DataObject
) -> None:
    """Dropping any record but the last fails at the record found in the dropped one's place."""
    records = stored(entries)
    i = data.draw(st.integers(0, len(records) - 2), label="dropped")
    after_gap = records[i + 1]
    del records[i]

    report = verify_chain(records, TRUSTED)

    assert_fails_at(report, after_gap.seq, after=i)


@settings(max_examples=30, deadline=None)
@given(entries=st.lists(entries, min_size=2, max_size=12), data=st.data())
def test_a_truncated_tail_verifies_with_an_earlier_head(
    entries: list[AuditEntry], data: st.DataObject
) -> None:
    """Cutting records off the end leaves a valid chain; only the head hash shows the loss."""
    records = stored(entries)
    keep = data.draw(st.integers(1, len(records) - 1), label="kept")

    report = verify_chain(records[:keep], TRUSTED)

    assert report.ok
    assert report.records == keep
    assert report.head_hash == records[keep - 1].hash != records[-1].hash


@settings(max_examples=30, deadline=None)
@given(entries=entry_lists, forged_entry=entries, data=st.data())
def test_an_inserted_forgery_fails_at_the_inserted_record(
    entries: list[AuditEntry], forged_entry: AuditEntry, data: st.DataObject
) -> None:
    """A forged record inserted anywhere, numbered and linked to fit, fails where it stands."""
    records = stored(entries)
    at = data.draw(st.integers(0, len(records)), label="position")
    head = GENESIS if at == 0 else ChainHead(records[at - 1].seq, records[at - 1].hash)
    (forged,) = stored([forged_entry], head, KEY)
    forged = resealed(forged, body_of(forged), ATTACKER)  # claims KEY, signed by ATTACKER
    records.insert(at, forged)

    report = verify_chain(records, TRUSTED)

    reason = assert_fails_at(report, forged.seq, after=at)
    assert "signature" in reason


@settings(max_examples=30, deadline=None)
@given(entries=st.lists(entries, min_size=2, max_size=12), data=st.data())
def test_swapped_neighbours_fail_at_the_first_of_the_pair(
    entries: list[AuditEntry], data: st.DataObject
) -> None:
    """Swapping two adjacent records fails at the first position of the pair."""
    records = stored(entries)
    i = data.draw(st.integers(0, len(records) - 2), label="first")
    records[i], records[i + 1] = records[i + 1], records[i]

    report = verify_chain(records, TRUSTED)

    assert_fails_at(report, records[i].seq, after=i)


@settings(max_examples=30, deadline=None)
@given(entries=entry_lists, data=st.data())
def test_a_record_signed_by_an_untrusted_key_fails_at_that_record(
    entries: list[AuditEntry], data: st.DataObject
) -> None:
    """A record correctly signed by a key outside the trusted set fails there, naming the key."""
    records = stored(entries)
    i = data.draw(st.integers(0, len(records) - 1), label="record")
    body = body_of(records[i]) | {"key_id": ATTACKER.key_id}
    records[i] = resealed(records[i], body, ATTACKER)

    report = verify_chain(records, TRUSTED)

    reason = assert_fails_at(report, records[i].seq, after=i)
    assert ATTACKER.key_id in reason


@settings(max_examples=30, deadline=None)
@given(first=entry_lists, second=entry_lists)
def test_batches_sealed_head_to_tail_verify_as_one_chain(
    first: list[AuditEntry], second: list[AuditEntry]
) -> None:
    """A batch sealed after the previous batch's head, even under a rotated key, continues it."""
    earlier = stored(first, GENESIS, KEY)
    later = stored(second, ChainHead(earlier[-1].seq, earlier[-1].hash), NEXT_KEY)

    report = verify_chain(earlier + later, TRUSTED)

    assert report.ok
    assert report.records == len(first) + len(second)
    assert report.head_hash == later[-1].hash


@settings(max_examples=30, deadline=None)
@given(first=entry_lists, second=entry_lists, stale=st.integers(0, 11))
def test_a_batch_sealed_after_a_stale_head_fails_at_its_first_record(
    first: list[AuditEntry], second: list[AuditEntry], stale: int
) -> None:
    """A batch sealed after any head but the last one of the log fails at its first record."""
    earlier = stored(first, GENESIS, KEY)
    stale_head = GENESIS_HASH if stale >= len(earlier) - 1 else earlier[stale].hash
    later = stored(second, ChainHead(earlier[-1].seq, stale_head), KEY)

    report = verify_chain(earlier + later, TRUSTED)

    assert_fails_at(report, later[0].seq, after=len(earlier))


@pytest.mark.parametrize(
    "value", ["NaN", "Infinity", "1e400", "9007199254740993", '"\\ud800"'], ids=str
)
def test_a_body_without_canonical_form_is_a_failure_not_a_crash(value: str) -> None:
    """A body that is JSON but has no RFC 8785 form is reported as a failure at its record."""
    records = stored([AuditEntry(workspace_id=None, actor={}, action="a", subject={})] * 2)
    body = records[1].body.replace('"format":1', f'"format":{value}')
    records[1] = msgspec.structs.replace(records[1], body=body)

    report = verify_chain(records, TRUSTED)

    assert_fails_at(report, 2, after=1)


def test_a_signature_spelled_differently_fails() -> None:
    """A stored signature whose text differs from the one sealed fails verification."""
    records = stored([AuditEntry(workspace_id=None, actor={}, action="a", subject={})])
    signature = records[0].signature
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet[alphabet.index(signature[-3]) ^ 1]  # 64 bytes end in `x==`: 4 bits unused
    respelled = signature[:-3] + last + signature[-2:]
    records[0] = msgspec.structs.replace(records[0], signature=respelled)

    report = verify_chain(records, TRUSTED)

    assert base64.b64decode(respelled) == base64.b64decode(signature)
    assert_fails_at(report, 1, after=0)
