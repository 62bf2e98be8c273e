"""Verifying the audit chain in worker processes finds exactly what checking one record at a
time finds, and the fast canonical-form check never accepts what the exact one refuses."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
import msgspec
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings

from order3.audit.records import GENESIS_HASH, AuditEntry, ChainHead, seal
from order3.audit.signing import SigningKey
from order3.audit.verify import (
    ChainVerifier,
    StoredRecord,
    _canonical_or_why_not,
    _certainly_canonical,
    verify_chain,
)

KEY = SigningKey(Ed25519PrivateKey.generate())
OTHER_KEY = SigningKey(Ed25519PrivateKey.generate())
KEYS = {KEY.key_id: KEY.public_key}

Tamper = Callable[[list[StoredRecord]], list[StoredRecord]]


def entry(n: int) -> AuditEntry:
    details: dict[str, Any] = {"n": n, "note": "Zoë ✓" if n % 3 else "plain"}
    if n % 7 == 0:
        details["emoji"] = "\U0001f600"  # sorted by UTF-16 units: the exact check decides
    if n % 5 == 0:
        details["ratio"] = n / 7  # a float: the exact check decides for these
    return AuditEntry(
        workspace_id="wsp_1",
        actor={"id": "prn_1", "type": "user"},
        action="draft.submitted",
        subject={"type": "draft", "id": f"dft_{n}"},
        outcome="allowed",
        details=details,
    )


def sealed_log(count: int, key: SigningKey = KEY) -> list[StoredRecord]:
    return [
        StoredRecord(
            seq=r.seq,
            body=r.canonical.decode(),
            hash=r.hash,
            signature=r.signature,
            key_id=r.key_id,
        )
        for r in seal((entry(n) for n in range(count)), ChainHead(0, GENESIS_HASH), key)
    ]


def replace(records: list[StoredRecord], index: int, **changes: Any) -> list[StoredRecord]:
    return [
        *records[:index],
        msgspec.structs.replace(records[index], **changes),
        *records[index + 1 :],
    ]


def resealed_after(records: list[StoredRecord], index: int) -> list[StoredRecord]:
    """The log rewritten from ``index`` by a signer: its own records chain and sign fine."""
    head = ChainHead(index, records[index - 1].hash) if index else ChainHead(0, GENESIS_HASH)
    rewritten = seal((entry(1000 + n) for n in range(len(records) - index)), head, OTHER_KEY)
    return [
        *records[:index],
        *(
            StoredRecord(
                seq=r.seq,
                body=r.canonical.decode(),
                hash=r.hash,
                signature=r.signature,
                key_id=r.key_id,
            )
            for r in rewritten
        ),
    ]


TAMPERS: dict[str, Tamper] = {
    "untouched": lambda log: log,
    "edited body": lambda log: replace(log, 23, body=log[23].body.replace("dft_23", "dft_99")),
    "spaced body": lambda log: replace(log, 17, body=log[17].body.replace(",", ", ", 1)),
    "float body": lambda log: replace(log, 25, body=log[25].body.replace('"n":25', '"n":25.0')),
    "not json": lambda log: replace(log, 30, body=log[30].body[:-1]),
    "bad signature": lambda log: replace(log, 40, signature=log[39].signature),
    "unknown key": lambda log: resealed_after(log, 33),
    "dropped record": lambda log: log[:12] + log[13:],
    "swapped records": lambda log: [*log[:8], log[9], log[8], *log[10:]],
    "two edits": lambda log: replace(
        replace(log, 44, body=log[44].body.replace("dft", "dgt")), 19, hash=log[20].hash
    ),
    "last record": lambda log: replace(log, len(log) - 1, hash=GENESIS_HASH),
}


@pytest.mark.parametrize("tamper", TAMPERS.values(), ids=TAMPERS.keys())
def test_workers_report_the_same_first_failure(tamper: Tamper) -> None:
    """With two worker processes and small batches, the report equals the sequential one."""
    records = tamper(sealed_log(60))

    sequential = verify_chain(records, KEYS)
    with ChainVerifier(KEYS, jobs=2, batch=7) as parallel:
        for record in records:
            if not parallel.feed(record):
                break
        report = parallel.report()

    assert report == sequential
    assert (report.failure is None) == (tamper is TAMPERS["untouched"])


def test_a_log_shorter_than_a_batch_is_checked_without_workers() -> None:
    """A few records are checked in the process itself, with the same outcome."""
    records = replace(sealed_log(5), 3, signature=sealed_log(5)[2].signature)

    report = verify_chain(records, KEYS, jobs=4)

    assert report == verify_chain(records, KEYS)
    assert report.failure is not None
    assert report.failure.seq == 4


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


def spellings(value: dict[str, Any]) -> list[str]:
    """The value as RFC 8785 writes it (if it can) and as other encoders do."""
    texts = [
        json.dumps(value),
        json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        msgspec.json.encode(value, order="sorted").decode(),
    ]
    with contextlib.suppress(ValueError):
        texts.append(rfc8785.dumps(value).decode())
    return texts


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=4), json_values, max_size=6))
def test_the_fast_canonical_check_accepts_only_what_the_exact_one_accepts(
    value: dict[str, Any],
) -> None:
    """Whenever the fast check says a body is canonical, the exact check agrees, byte for byte."""
    for text in spellings(value):
        fast = _certainly_canonical(text)

        if fast is not None:
            assert _canonical_or_why_not(text) == fast


def test_the_fast_canonical_check_accepts_ordinary_records() -> None:
    """Records without floats or astral characters take the fast path, or it would be no faster.

    (A hash that starts with 16 decimal digits looks like a long number: one in about 2,000.)
    """
    bodies = [record.body for n, record in enumerate(sealed_log(30)) if n % 5 and n % 7]

    fast = [body for body in bodies if _certainly_canonical(body) is not None]

    assert len(fast) >= len(bodies) - 1


def test_msgspec_escapes_every_code_point_as_rfc_8785_does() -> None:
    """The fast check rests on identical string escaping for every character but surrogates."""
    characters = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]

    assert msgspec.json.encode(characters) == rfc8785.dumps(characters)
