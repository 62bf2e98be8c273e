"""The decision corpus: hand-written decision inputs with the outcome and rules they must get.

A corpus is a folder of ``.jsonl`` files (``policies/corpus/`` ships one). Each line is one
case::

    {"name": "...", "input": {...decision input...},
     "expected": {"outcome": "allowed" | "denied", "rules": ["rule.id", ...]},
     "settings": {...}}

``settings`` is optional: each of its keys replaces that key of ``data.settings`` for that
case alone. It lets a case reach a rule that fires only under settings
other than the shipped ones, such as a currency whose tiers do not start at zero.

A case is named in reports as ``FILE:LINE name``, so a policy change that alters an expected
decision points at the line to read. The cases replay like recorded decisions
(`order3.policy.replay.replay`), and the test suite runs them through a real OPA.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from order3.policy.replay import Expectation, ReplayCase


class CorpusInvalid(ValueError):
    """A corpus line is not a case; the message names the file and line."""


class _Line(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    input: dict[str, Any]
    expected: Expectation
    settings: dict[str, Any] | None = None


def corpus_files(folder: Path) -> list[Path]:
    """The ``.jsonl`` files of the corpus in ``folder``, in name order.

    Raises:
        CorpusInvalid: ``folder`` holds no ``.jsonl`` file.
    """
    files = sorted(folder.rglob("*.jsonl"))
    if not files:
        raise CorpusInvalid(f"{folder} holds no .jsonl corpus file")

    return files


def corpus_cases(folder: Path) -> Iterator[ReplayCase]:
    """Every case in the corpus in ``folder``, file by file, line by line.

    Raises:
        CorpusInvalid: a line is not a case; blank lines are skipped.
    """
    for path in corpus_files(folder):
        yield from file_cases(path, label=path.relative_to(folder).as_posix())


def file_cases(path: Path, *, label: str | None = None) -> Iterator[ReplayCase]:
    """The cases of one corpus file, named ``LABEL:LINE name`` (``label`` defaults to the
    file's name).

    Raises:
        CorpusInvalid: a line is not a case.
    """
    label = label or path.name
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                case = msgspec.json.decode(line, type=_Line)
            except msgspec.ValidationError as exc:
                raise CorpusInvalid(f"{label}:{number}: {exc}") from None
            except msgspec.DecodeError as exc:
                raise CorpusInvalid(f"{label}:{number}: not JSON ({exc})") from None
            yield ReplayCase(
                name=f"{label}:{number} {case.name}",
                input=case.input,
                expected=case.expected,
                settings=case.settings,
            )
