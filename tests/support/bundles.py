"""A small policy set of the tests' own, and a plain HTTP server that serves bundle bytes.

The policy set decides on one number in its data (``data.settings.limit``), so a test can
change the data and see the decision change without depending on the real policies.
"""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

DECISION = """# METADATA
# title: Limit check
# description: Allows a draft whose amount is within the limit in the policy data.
package order3

# METADATA
# title: Within the limit
# description: The amount is at most data.settings.limit minor units.
# custom:
#   id: limit.within
decision := object.union(_allowed, _expiry) if {
	input.draft.amount.minor_units <= data.settings.limit
}

# METADATA
# title: Over the limit
# description: The amount is above data.settings.limit minor units.
# custom:
#   id: limit.over
decision := {
	"allow": false,
	"outcome": "denied",
	"reasons": [{"rule": "limit.over", "message": "over the limit"}],
	"required": [],
} if {
	input.draft.amount.minor_units > data.settings.limit
}

_allowed := {
	"allow": true,
	"outcome": "allowed",
	"reasons": [{"rule": "limit.within", "message": "within the limit"}],
	"required": [],
}

# An allowed submit or patch says when the draft expires: two weeks after the decision.
_expiry := {"expires_at": time.format(_two_weeks)} if _sets_expiry

_expiry := {} if not _sets_expiry

_sets_expiry if input.action in {"submit", "patch"}

_two_weeks := time.add_date(time.parse_rfc3339_ns(input.context.now), 0, 0, 14)
"""

TEST_MODULE = """package order3_test

test_nothing if true
"""

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["limit"],
    "properties": {"limit": {"type": "integer", "minimum": 0}},
}


def write_policy_set(root: Path, limit: int = 200_000) -> Path:
    """A policy directory laid out like ``policies/``; return it."""
    (root / "order3").mkdir(parents=True)
    (root / "settings").mkdir()
    (root / "order3" / "decision.rego").write_text(DECISION)
    (root / "order3" / "decision_test.rego").write_text(TEST_MODULE)
    (root / "settings" / "data.json").write_text(json.dumps({"limit": limit}))
    (root / "settings" / "schema.json").write_text(json.dumps(SCHEMA))
    return root


class BundleHttpServer:
    """Serves whatever bytes ``archive`` holds at every path, with no checks at all."""

    def __init__(self, archive: bytes) -> None:
        self.archive = archive
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                self.send_header("Content-Length", str(len(server.archive)))
                self.end_headers()
                self.wfile.write(server.archive)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
