"""``order3 witness``: a witness of the audit log, run by someone other than its operator.

``cosign`` fetches the newest checkpoint and the consistency proof from the size the witness
last cosigned, checks both as C2SP ``tlog-witness`` requires, and hands the cosignature back
to the service. Run it on a schedule from a machine the log's operators do not control.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import click

from order3.audit.keyfiles import create_private_key_file, load_private_key_file
from order3.audit.signing import load_public_key
from order3.audit.witness import Witness, WitnessKey, WitnessRefusal, valid_key_name

_TIMEOUT_SECONDS = 30


@click.group()
def witness() -> None:
    """Witness the audit log: cosign a checkpoint only if the log only grew."""


@witness.command("new-key")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="The witness's name, a schema-less URL.")
def new_key(path: Path, name: str) -> None:
    """Write a new witness key to PATH (mode 0600) and print its verifier key.

    The service accepts the witness once its operator adds the printed key to
    ORDER3_AUDIT_WITNESSES.
    """
    if not valid_key_name(name):
        raise click.BadParameter("must be non-empty, with no space and no '+'", param_hint="--name")
    try:
        key = create_private_key_file(path)
    except FileExistsError:
        raise click.ClickException(f"{path} exists; a key file is never overwritten") from None
    click.echo(WitnessKey(name, key.public_key()).vkey)


@witness.command()
@click.option("--url", required=True, help="The service, such as https://approvals.example.")
@click.option("--token", required=True, envvar="ORDER3_WITNESS_TOKEN", help="An API token.")
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--name", required=True, help="The witness's name, as in its verifier key.")
@click.option(
    "--state",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON file of the size and root last cosigned (created on first use).",
)
@click.option(
    "--log-public-key",
    "log_keys",
    required=True,
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="PEM public key the log signs checkpoints with (repeatable, across rotations).",
)
def cosign(
    url: str, token: str, key_path: Path, name: str, state: Path, log_keys: tuple[Path, ...]
) -> None:
    """Cosign the service's newest checkpoint if it extends the last one cosigned."""
    client = _Client(url, token)
    checkpoint = client.get("/v1/audit/checkpoint")
    note, size = str(checkpoint["note"]), int(checkpoint["tree_size"])
    origin = note.partition("\n")[0]
    keys = [load_public_key(path.read_bytes()) for path in log_keys]
    witness = Witness(name, load_private_key_file(key_path), state, {origin: keys})

    seen = witness.latest(origin)
    old_size = seen[0] if seen else 0
    proof: list[bytes] = []
    if 0 < old_size < size:
        answer = client.get("/v1/audit/consistency", {"from": old_size, "to": size})
        proof = [base64.b64decode(node) for node in answer["proof"]]
    try:
        line = witness.add_checkpoint(old_size, proof, note)
    except WitnessRefusal as exc:
        raise click.ClickException(f"refused to cosign size {size} ({exc.status}): {exc}") from None

    client.post_text(f"/v1/audit/checkpoints/{size}/cosignatures", line + "\n")
    click.echo(f"cosigned {origin} at size {size} (after {old_size})")


class _Client:
    def __init__(self, url: str, token: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise click.BadParameter("must be an http:// or https:// URL", param_hint="--url")
        self._url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        query = f"?{urlencode(params)}" if params else ""
        # S310 is silenced here and below: __init__ lets only http and https URLs in.
        request = urllib.request.Request(self._url + path + query, headers=self._headers)  # noqa: S310
        return self._send(request)

    def post_text(self, path: str, text: str) -> dict[str, Any]:
        headers = {**self._headers, "Content-Type": "text/plain; charset=utf-8"}
        request = urllib.request.Request(  # noqa: S310
            self._url + path, data=text.encode(), headers=headers, method="POST"
        )
        return self._send(request)

    def _send(self, request: urllib.request.Request) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS) as response:  # noqa: S310
                body: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = json.loads(exc.read() or b"{}").get("detail", exc.reason)
            raise click.ClickException(f"{request.full_url}: {exc.code} {detail}") from None
        except urllib.error.URLError as exc:
            raise click.ClickException(f"{request.full_url}: {exc.reason}") from None
        return body
