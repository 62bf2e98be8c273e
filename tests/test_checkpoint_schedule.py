"""Checkpoints are signed as the log grows, and every stored checkpoint is listed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import msgspec
import pytest
from litestar.testing import TestClient

from conftest import create_workspace
from order3.config import Settings
from order3.http.app import create_app
from support.api import Api


@pytest.fixture
def counting_api(settings: Settings) -> Iterator[Api]:
    """A service that signs after every 5 records and otherwise only once an hour."""
    counting = msgspec.structs.replace(settings, checkpoint_records=5, checkpoint_seconds=3600)
    workspace = asyncio.run(create_workspace(counting))
    with TestClient(create_app(counting)) as client:
        yield Api.with_cast(client, workspace)


def _latest_size(api: Api) -> int:
    response = api.get("viewer", "/v1/audit/checkpoint")
    return int(response.json()["tree_size"]) if response.status_code == 200 else 0


def _wait_for_size(api: Api, size: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while _latest_size(api) < size and time.monotonic() < deadline:
        time.sleep(0.2)
    return _latest_size(api)


def test_a_checkpoint_follows_once_enough_records_are_added(counting_api: Api) -> None:
    api = counting_api
    signed = api.post("admin", "/v1/audit/checkpoints")
    assert signed.status_code == 201, signed.text
    size = signed.json()["tree_size"]

    for _ in range(4):
        api.submitted("bot")  # one record each
    time.sleep(2.5)  # the schedule looks every second
    assert _latest_size(api) == size  # fewer than 5 new records, and the hour is not up

    api.submitted("bot")
    assert _wait_for_size(api, size + 5, 15) == size + 5


def test_checkpoints_are_listed_largest_first_in_pages(api: Api) -> None:
    sizes = []
    for _ in range(3):
        api.submitted("bot")
        signed = api.post("admin", "/v1/audit/checkpoints")
        assert signed.status_code == 201, signed.text
        sizes.append(signed.json()["tree_size"])

    first = api.get("viewer", "/v1/audit/checkpoints", limit=2).json()
    rest = api.get("viewer", "/v1/audit/checkpoints", cursor=first["next_cursor"]).json()

    listed = [c["tree_size"] for c in first["items"] + rest["items"]]
    assert listed == sorted(sizes, reverse=True)
    assert rest["next_cursor"] is None
    assert all(c["note"].startswith(c["origin"] + "\n") for c in first["items"])
