"""Properties of the RFC 8785 canonical encoding that record hashes and content hashes rest on."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from order3.audit.canonical import canonical_json, content_hash

SAFE_INTEGER = 2**53 - 1  # the largest integer RFC 8785 (I-JSON) can carry exactly

leaves = (
    st.none()
    | st.booleans()
    | st.integers(-SAFE_INTEGER, SAFE_INTEGER)
    | st.integers(-10, 10)
    | st.text(max_size=12)
)
json_values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)

Path = tuple[str | int, ...]


def reference_encoding(value: Any) -> str:
    """RFC 8785 for float-free JSON, built from the standard library.

    Strings and integers are what ``json.dumps(..., ensure_ascii=False)`` writes (only ``"``,
    ``\\`` and controls escaped, short forms where JSON has them, lowercase hex otherwise);
    object members are sorted by the UTF-16 code units of their names; no whitespace.
    """
    if isinstance(value, dict):
        names = sorted(value, key=lambda name: name.encode("utf-16-be"))
        members = (
            f"{json.dumps(n, ensure_ascii=False)}:{reference_encoding(value[n])}" for n in names
        )
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(reference_encoding(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def reordered(value: Any, rng: random.Random) -> Any:
    """The same JSON value with the members of every object inserted in a shuffled order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: reordered(item, rng) for key, item in items}
    if isinstance(value, list):
        return [reordered(item, rng) for item in value]
    return value


def leaf_paths(value: Any, path: Path = ()) -> Iterator[Path]:
    """Paths to every scalar and every empty array or object in ``value``."""
    if isinstance(value, dict | list) and value:
        children = value.items() if isinstance(value, dict) else enumerate(value)
        for step, child in children:
            yield from leaf_paths(child, (*path, step))
    else:
        yield path


def replaced(value: Any, path: Path, new: Any) -> Any:
    """A copy of ``value`` with the leaf at ``path`` replaced by ``new``."""
    if not path:
        return new
    step, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: replaced(v, rest, new) if k == step else v for k, v in value.items()}
    return [replaced(v, rest, new) if i == step else v for i, v in enumerate(value)]


def get_at(value: Any, path: Path) -> Any:
    for step in path:
        value = value[step]
    return value


@settings(max_examples=150)
@given(value=json_values)
def test_canonical_json_is_the_rfc_8785_encoding(value: Any) -> None:
    """canonical_json writes sorted-by-UTF-16 members, minimal escapes and no whitespace."""
    expected = reference_encoding(value).encode()

    encoded = canonical_json(value)

    assert encoded == expected


@settings(max_examples=100)
@given(value=json_values)
def test_canonical_json_is_a_fixed_point_of_parsing(value: Any) -> None:
    """Parsing canonical JSON and encoding it again gives the same bytes and the same value."""
    encoded = canonical_json(value)

    parsed = json.loads(encoded)

    assert parsed == value
    assert canonical_json(parsed) == encoded


@settings(max_examples=100)
@given(value=json_values, rng=st.randoms(use_true_random=False))
def test_canonical_json_ignores_member_order(value: Any, rng: random.Random) -> None:
    """The order in which an object's members were inserted never changes its encoding."""
    shuffled = reordered(value, rng)

    encoded, encoded_shuffled = canonical_json(value), canonical_json(shuffled)

    assert encoded_shuffled == encoded
    assert content_hash(shuffled) == content_hash(value)


@settings(max_examples=150)
@given(value=json_values, data=st.data())
def test_content_hash_changes_with_any_leaf(value: Any, data: st.DataObject) -> None:
    """Replacing any one leaf with a different JSON value changes the content hash."""
    path = data.draw(st.sampled_from(list(leaf_paths(value))), label="path")
    old = get_at(value, path)
    new = data.draw(
        json_values.filter(lambda v: json.dumps(v) != json.dumps(old)), label="replacement"
    )
    changed = replaced(value, path, new)

    before, after = content_hash(value), content_hash(changed)

    assert after != before


def test_rfc_8785_member_sorting_example() -> None:
    """Member names sort by UTF-16 code units, as in RFC 8785 section 3.2.3."""
    value = json.loads(
        '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", '
        '"\\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One", '
        '"\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control", '
        '"\\u00f6": "Latin Small Letter O With Diaeresis"}'
    )

    encoded = canonical_json(value)

    assert (
        encoded
        == (
            '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
            '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
            '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
        ).encode()
    )


def test_rfc_8785_string_and_literal_example() -> None:
    """Strings escape only quote, backslash and controls; literals and structure carry no space."""
    value = json.loads(
        '{ "literals" : [ null , true , false ] ,\n'
        '  "string" : "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/" }'
    )

    encoded = canonical_json(value)

    assert (
        encoded
        == '{"literals":[null,true,false],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'.encode()
    )


# Beyond the domain both encoders share: floats, integers past 2**53, keys whose code point
# and UTF-16 orders differ (private use and astral characters), lone surrogates, tuples.
awkward_text = st.text(
    alphabet=st.characters(min_codepoint=0xD7F0, max_codepoint=0x1F700)
    | st.sampled_from(["a", "é", "\u2028", "\x00", "\ud800"]),
    max_size=4,
)
# Names from both sides of the UTF-16 surprise: U+E000 and up sort after U+10000 and up.
order_sensitive_names = st.text(
    alphabet=st.sampled_from(["a", "\ue000", "\uffff", "\U00010000", "\U0001f600"]),
    min_size=1,
    max_size=2,
)
awkward_values = st.recursive(
    leaves
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-(2**64), 2**64)
    | awkward_text,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(
            st.text(max_size=3) | awkward_text | order_sensitive_names, children, max_size=4
        )
    ),
    max_leaves=12,
)


def encoded_or_error(encode: Any, value: Any) -> bytes | str:
    try:
        return bytes(encode(value))
    except Exception as error:
        return type(error).__name__


@settings(max_examples=1500)
@given(awkward_values)
def test_canonical_json_agrees_with_the_rfc_8785_library_everywhere(value: Any) -> None:
    """The fast path never changes a byte: whatever the value, the encoding (or the error)
    is the one the exact RFC 8785 encoder gives."""
    assert encoded_or_error(canonical_json, value) == encoded_or_error(rfc8785.dumps, value)
