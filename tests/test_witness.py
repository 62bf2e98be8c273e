"""Witnesses: cosignatures in the exact C2SP bytes, a witness that never cosigns a rollback
or a fork, and cosignatures the service stores, serves, exports and verifies."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import urllib.request
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar.testing import TestClient

from conftest import create_workspace
from order3.audit.checkpoints import checkpoint_text, sign_checkpoint, split_note
from order3.audit.keyfiles import load_private_key_file
from order3.audit.merkle import consistency_proof, leaf_hash, root_hash
from order3.audit.signing import SigningKey
from order3.audit.witness import (
    InconsistentProof,
    MalformedRequest,
    NotSignedByLog,
    StateConflict,
    UnknownLog,
    Witness,
    WitnessKey,
    add_checkpoint_body,
    cosign,
    parse_add_checkpoint,
    verify_cosignatures,
)
from order3.config import Settings
from order3.http.app import create_app
from order3.runtime import open_services
from support.api import Api, Workspace
from support.servers import ORDER3, order3_services

ORIGIN = "example.test/log"
WITNESS = "witness.example/w1"


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_a_cosignature_is_the_c2sp_bytes_and_round_trips() -> None:
    """The line decodes to key ID, big-endian time and an Ed25519 signature over the
    ``cosignature/v1`` message, and the vkey names the same key."""
    log, witness = SigningKey(Ed25519PrivateKey.generate()), Ed25519PrivateKey.generate()
    note = sign_checkpoint(ORIGIN, 20852163, hashlib.sha256(b"root").digest(), log)
    text = checkpoint_text(ORIGIN, 20852163, hashlib.sha256(b"root").digest())

    line = cosign(WITNESS, witness, text, 1679315147)
    [found] = verify_cosignatures(note + line + "\n", [WitnessKey(WITNESS, witness.public_key())])

    dash, name, encoded = line.split(" ")
    blob = base64.b64decode(encoded, validate=True)
    message = b"cosignature/v1\ntime 1679315147\n" + text.encode()
    assert (dash, name, len(blob)) == ("\u2014", WITNESS, 4 + 8 + 64)
    assert blob[:4] == hashlib.sha256(WITNESS.encode() + b"\n\x04" + raw(witness)).digest()[:4]
    assert int.from_bytes(blob[4:12], "big") == 1679315147
    witness.public_key().verify(blob[12:], message)
    assert (found.witness, found.timestamp, found.signature_line) == (WITNESS, 1679315147, line)
    vkey = WitnessKey(WITNESS, witness.public_key()).vkey
    name, key_id, material = vkey.split("+", 2)
    assert (name, bytes.fromhex(key_id)) == (WITNESS, blob[:4])
    assert base64.b64decode(material) == b"\x04" + raw(witness)
    assert WitnessKey.parse(vkey).vkey == vkey


@pytest.mark.parametrize(
    ("vkey", "complaint"),
    [
        ("witness.example/w1", "not 8 hex digits"),
        ("with space+00000000+AA==", "space"),
        ("w+zzzzzzzz+AA==", "not 8 hex digits"),
        ("w+00000000+not-base64", "not base64"),
    ],
)
def test_a_malformed_vkey_is_refused_naming_the_fault(vkey: str, complaint: str) -> None:
    """A witness key that is not name+keyid+base64(0x04 || key) is refused."""
    with pytest.raises(ValueError, match=complaint):
        WitnessKey.parse(vkey)


def test_a_vkey_of_another_type_or_key_id_is_refused() -> None:
    """The type byte must be 0x04 and the key ID must be the one of the name and key."""
    key = WitnessKey(WITNESS, Ed25519PrivateKey.generate().public_key())
    name, key_id, material = key.vkey.split("+", 2)
    ed25519 = base64.b64encode(b"\x01" + base64.b64decode(material)[1:]).decode()

    with pytest.raises(ValueError, match="type 0x04"):
        WitnessKey.parse(f"{name}+{key_id}+{ed25519}")
    with pytest.raises(ValueError, match="does not match"):
        WitnessKey.parse(f"other.example/w+{key_id}+{material}")


def test_an_add_checkpoint_body_round_trips() -> None:
    """The tlog-witness request: old size line, proof lines, blank line, checkpoint."""
    log = SigningKey(Ed25519PrivateKey.generate())
    note = sign_checkpoint(ORIGIN, 3, b"\x01" * 32, log)
    proof = [b"\x02" * 32, b"\x03" * 32]

    body = add_checkpoint_body(2, proof, note)

    assert body.decode().startswith(f"old 2\n{base64.b64encode(proof[0]).decode()}\n")
    assert parse_add_checkpoint(body) == (2, proof, note)
    with pytest.raises(MalformedRequest):
        parse_add_checkpoint(b"old 02\n\n" + note.encode())


class Log:
    """A log of leaves ``0..n``, signed by ``key``; ``fork`` changes one leaf."""

    def __init__(self, key: SigningKey, fork: int | None = None) -> None:
        self.key = key
        self.fork = fork

    def leaves(self, size: int) -> list[bytes]:
        return [leaf_hash(b"forked" if i == self.fork else str(i).encode()) for i in range(size)]

    def note(self, size: int) -> str:
        return sign_checkpoint(ORIGIN, size, root_hash(self.leaves(size)), self.key)

    def proof(self, old: int, new: int) -> list[bytes]:
        return consistency_proof(old, self.leaves(new))


def test_a_witness_cosigns_growth_and_refuses_rollback_and_forks(tmp_path: Path) -> None:
    """From size 0, then by consistency proofs; a wrong proof, a fork, a stale old size and
    a smaller checkpoint are refused, and none of them moves the witness's state."""
    key = SigningKey(Ed25519PrivateKey.generate())
    log, forked = Log(key), Log(key, fork=2)
    witness_key = Ed25519PrivateKey.generate()
    witness = Witness(WITNESS, witness_key, tmp_path / "state.json", {ORIGIN: [key.public_key]})
    trusted = [WitnessKey(WITNESS, witness_key.public_key())]

    first = witness.add_checkpoint(0, [], log.note(5))
    second = witness.add_checkpoint(5, log.proof(5, 8), log.note(8))
    with pytest.raises(InconsistentProof):
        witness.add_checkpoint(8, log.proof(5, 10), log.note(10))
    with pytest.raises(InconsistentProof):
        witness.add_checkpoint(8, forked.proof(8, 10), forked.note(10))
    with pytest.raises(StateConflict) as stale:
        witness.add_checkpoint(5, log.proof(5, 10), log.note(10))
    with pytest.raises(MalformedRequest):
        witness.add_checkpoint(8, [], log.note(6))
    with pytest.raises(StateConflict):
        witness.add_checkpoint(8, [], forked.note(8))

    assert verify_cosignatures(log.note(5) + first + "\n", trusted)[0].witness == WITNESS
    assert verify_cosignatures(log.note(8) + second + "\n", trusted)
    assert stale.value.size == 8
    assert stale.value.status == 409
    assert witness.latest(ORIGIN) == (8, root_hash(log.leaves(8)))
    reopened = Witness(WITNESS, witness_key, tmp_path / "state.json", {ORIGIN: [key.public_key]})
    assert reopened.latest(ORIGIN) == (8, root_hash(log.leaves(8)))


def test_a_witness_checks_the_log_it_follows_and_its_key(tmp_path: Path) -> None:
    """An unknown origin is 404, a checkpoint not signed by the log's keys 403."""
    key, stranger = (SigningKey(Ed25519PrivateKey.generate()) for _ in range(2))
    witness = Witness(
        WITNESS, Ed25519PrivateKey.generate(), tmp_path / "s.json", {ORIGIN: [key.public_key]}
    )
    elsewhere = sign_checkpoint("other.example/log", 1, b"\x00" * 32, key)

    with pytest.raises(UnknownLog):
        witness.add_checkpoint(0, [], elsewhere)
    with pytest.raises(NotSignedByLog):
        witness.add_checkpoint(0, [], Log(stranger).note(3))
    assert witness.latest(ORIGIN) is None


def test_verify_cosignatures_names_a_missing_or_broken_witness() -> None:
    """Each required witness needs a cosignature that verifies; the error names it."""
    log = Log(SigningKey(Ed25519PrivateKey.generate()))
    one, two = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    text, _ = split_note(log.note(4))
    line = cosign(WITNESS, one, text, 1700000000)
    wanted = [WitnessKey(WITNESS, one.public_key()), WitnessKey("w2.example", two.public_key())]
    tampered = flipped(line)

    with pytest.raises(ValueError, match=r"no cosignature by witness w2\.example"):
        verify_cosignatures(log.note(4) + line + "\n", wanted)
    with pytest.raises(ValueError, match=f"cosignature by witness {WITNESS} does not verify"):
        verify_cosignatures(log.note(4) + tampered + "\n", wanted[:1])


@pytest.fixture
def witness_key(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "witness.pem"
    made = subprocess.run(
        [str(ORDER3), "witness", "new-key", str(path), "--name", WITNESS],
        capture_output=True,
        text=True,
        check=True,
    )
    return path, made.stdout.strip()


def test_the_service_stores_and_serves_cosignatures(
    settings: Settings, workspace: Workspace, witness_key: tuple[Path, str], tmp_path: Path
) -> None:
    """A configured witness's line is stored and served in the note and the list; a line by
    anyone else, or that does not verify, is a 422 naming it."""
    path, vkey = witness_key
    private = load_private_key_file(path)
    settings = msgspec.structs.replace(settings, audit_witnesses=vkey)
    with TestClient(create_app(settings)) as client:
        api = Api.with_cast(client, workspace)
        signed = api.post("admin", "/v1/audit/checkpoints").json()
        text, _ = split_note(signed["note"])
        line = cosign(WITNESS, private, text, 1700000000)
        stranger = cosign("w9.example", Ed25519PrivateKey.generate(), text, 1700000000)
        wrong_text = cosign(WITNESS, private, text.replace("\n", "\n\n", 1), 1700000000)
        size = signed["tree_size"]
        path_ = f"/v1/audit/checkpoints/{size}/cosignatures"

        refused = api.post("admin", path_, raw=(stranger + "\n").encode())
        broken = api.post("admin", path_, raw=wrong_text.encode())
        missing = api.post("admin", "/v1/audit/checkpoints/999999/cosignatures", raw=b"x")
        forbidden = api.post("viewer", path_, raw=line.encode())
        stored = api.post("admin", path_, raw=(line + "\n").encode())
        served = api.get("viewer", "/v1/audit/checkpoint").json()

    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "no accepted witness named w9.example" in refused.json()["detail"]
    assert broken.status_code == 422
    assert f"cosignature by witness {WITNESS} does not verify" in broken.json()["detail"]
    assert missing.status_code == 404
    assert forbidden.status_code == 403
    assert stored.status_code == 201, stored.text
    assert served["note"] == signed["note"] + line + "\n"
    assert served["cosignatures"] == [
        {"witness": WITNESS, "timestamp": 1700000000, "signature_line": line}
    ]


def test_witness_cosign_then_verify_an_export_with_witnesses(
    settings: Settings, witness_key: tuple[Path, str], tmp_path: Path
) -> None:
    """``order3 witness cosign`` against a running service; the export then verifies with
    ``--witness``, and fails naming a witness that did not cosign or whose line was changed."""
    path, vkey = witness_key
    workspace = asyncio.run(create_workspace(settings))
    env = {
        **os.environ,
        "ORDER3_DATA_DIR": str(settings.data_dir),
        "ORDER3_DATABASE_URL": str(settings.database_url),
        "ORDER3_OPA_URL": str(settings.opa_url),
        "ORDER3_AUDIT_WITNESSES": vkey,
        "ORDER3_LOG_LEVEL": "warning",
    }
    log_key, export = tmp_path / "log.pub", tmp_path / "log.jsonl"
    log_key.write_text(run(env, "audit", "public-key").stdout)
    state = tmp_path / "witness-state.json"
    cosign_args = [
        "witness", "cosign", "--token", workspace.admin_token, "--key", str(path),
        "--name", WITNESS, "--state", str(state), "--log-public-key", str(log_key),
    ]  # fmt: skip

    with order3_services(env) as [base]:
        sign(base, workspace.admin_token)
        first = run(env, *cosign_args, "--url", base)
        sign(base, workspace.admin_token)
        second = run(env, *cosign_args, "--url", base)
        served = get(base, workspace.admin_token, "/v1/audit/checkpoint")
        sign(base, workspace.admin_token)  # the log grows past what the witness saw

    fresh = tmp_path / "fresh.jsonl"
    assert run(env, "audit", "export", "-o", str(fresh)).returncode == 0
    size = str(served["tree_size"])
    exported = run(env, "audit", "export", "-o", str(export), "--at-checkpoint", size)
    unknown = run(env, "audit", "export", "-o", str(fresh), "--at-checkpoint", "999999")
    other = WitnessKey("w2.example", Ed25519PrivateKey.generate().public_key()).vkey
    verify = ["audit", "verify", str(export), "--public-key", str(log_key)]
    with_witness = run(env, *verify, "--witness", vkey)
    fresh_with_witness = run(
        env, "audit", "verify", str(fresh), "--public-key", str(log_key), "--witness", vkey
    )
    with_two = run(env, *verify, "--witness", vkey, "--witness", other)
    lines = export.read_text().splitlines()
    checkpoint = json.loads(lines[0])
    cosignature = checkpoint["note"].splitlines()[-1]
    checkpoint["note"] = checkpoint["note"].replace(cosignature, flipped(cosignature))
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join([json.dumps(checkpoint), *lines[1:]]) + "\n")
    verify[2] = str(tampered)
    with_tampered = run(env, *verify, "--witness", vkey)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "cosigned" in second.stdout
    assert [c["witness"] for c in served["cosignatures"]] == [WITNESS]
    assert (
        json.loads(state.read_text())["logs"]["order3-approvals/audit"]["size"]
        == (served["tree_size"])
    )
    assert exported.returncode == 0, exported.stderr
    assert with_witness.returncode == 0, with_witness.stderr
    assert fresh_with_witness.returncode == 1  # signed after the witness last looked
    assert unknown.returncode != 0
    assert "no checkpoint of tree size 999999" in unknown.stderr
    assert with_two.returncode == 1
    assert "no cosignature by witness w2.example" in with_two.stderr
    assert with_tampered.returncode == 1
    assert f"cosignature by witness {WITNESS} does not verify" in with_tampered.stderr


def flipped(line: str) -> str:
    """``line`` with one base64 digit of its signature changed (not a padding digit)."""
    return line[:-5] + ("A" if line[-5] != "A" else "B") + line[-4:]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ORDER3), *args], env=env, capture_output=True, text=True)


def get(base: str, token: str, path: str) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(base + path, headers=headers)  # noqa: S310 (a test server)
    with urllib.request.urlopen(request) as response:  # noqa: S310 (a local test server)
        answer: dict[str, object] = json.loads(response.read())
    return answer


def sign(base: str, token: str) -> None:
    """Have the service sign a checkpoint, after one more record in the log."""
    request = urllib.request.Request(  # noqa: S310 (a local test server)
        base + "/v1/principals",
        data=json.dumps({"type": "user", "name": "w", "roles": ["viewer"]}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request).close()  # noqa: S310 (a local test server)
    request = urllib.request.Request(  # noqa: S310 (a local test server)
        base + "/v1/audit/checkpoints", headers={"Authorization": f"Bearer {token}"}, method="POST"
    )
    urllib.request.urlopen(request).close()  # noqa: S310 (a local test server)


def test_a_malformed_witness_setting_stops_the_service_at_start(settings: Settings) -> None:
    """A typo in ORDER3_AUDIT_WITNESSES is named when the service starts, not when a
    witness first posts."""
    broken = msgspec.structs.replace(settings, audit_witnesses="not-a-verifier-key")

    async def start() -> None:
        async with open_services(broken):
            pass

    with pytest.raises(ValueError, match="ORDER3_AUDIT_WITNESSES"):
        asyncio.run(start())
