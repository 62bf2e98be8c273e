"""Properties of money and of the per-kind draft payloads a client submits."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from order3.domain.drafts import DraftKind, parse_payload
from order3.domain.errors import InvalidInput
from order3.domain.money import ISO_4217_CODES, MAX_MINOR_UNITS, Money

CODES = sorted(ISO_4217_CODES)
IDENTIFIER_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"

currencies = st.sampled_from(CODES)
identifiers = st.text(IDENTIFIER_CHARS, min_size=1, max_size=100)
quantities = st.integers(1, 1_000_000)
deltas = st.integers(-1_000_000, 1_000_000)
iso_dates = st.dates().map(lambda d: d.isoformat())
notes = st.text(min_size=1, max_size=200)
# Small enough that a handful of lines never sum above MAX_MINOR_UNITS.
unit_minor_units = st.integers(0, 10**8)


@st.composite
def miscased_codes(draw: st.DrawFn) -> str:
    """A real ISO 4217 code with at least one of its letters in lower case."""
    code = draw(currencies)
    lower = draw(st.lists(st.booleans(), min_size=3, max_size=3).filter(any))
    return "".join(ch.lower() if low else ch for ch, low in zip(code, lower, strict=True))


def money(currency: st.SearchStrategy[str] = currencies) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"minor_units": unit_minor_units, "currency": currency})


def purchase_orders(currency: str) -> st.SearchStrategy[dict[str, Any]]:
    line = st.fixed_dictionaries(
        {"sku": identifiers, "quantity": quantities, "unit_cost": money(st.just(currency))}
    )
    return st.fixed_dictionaries(
        {
            "supplier_id": identifiers,
            "location_id": identifiers,
            "currency": st.just(currency),
            "lines": st.lists(line, min_size=1, max_size=6),
        },
        optional={"expected_date": iso_dates},
    )


def reconciliations(currency: str) -> st.SearchStrategy[dict[str, Any]]:
    correction = st.fixed_dictionaries(
        {
            "sku": identifiers,
            "location_id": identifiers,
            "quantity_delta": deltas,
            "unit_cost": money(st.just(currency)),
        },
        optional={"note": notes},
    )
    return st.fixed_dictionaries(
        {"currency": st.just(currency), "corrections": st.lists(correction, min_size=1, max_size=6)}
    )


PAYLOADS: dict[DraftKind, st.SearchStrategy[dict[str, Any]]] = {
    DraftKind.PURCHASE_ORDER: currencies.flatmap(purchase_orders),
    DraftKind.TRANSFER: st.fixed_dictionaries(
        {
            "sku": identifiers,
            "quantity": quantities,
            "from_location_id": identifiers,
            "to_location_id": identifiers,
        },
        optional={"from_bin": identifiers, "to_bin": identifiers, "unit_cost": money()},
    ),
    DraftKind.ADJUSTMENT: st.fixed_dictionaries(
        {
            "sku": identifiers,
            "location_id": identifiers,
            "quantity_delta": deltas,
            "reason_code": identifiers,
            "unit_cost": money(),
        }
    ),
    DraftKind.COUNT_TASK: st.fixed_dictionaries(
        {"location_id": identifiers, "skus": st.lists(identifiers, min_size=1, max_size=8)},
        optional={"due_date": iso_dates},
    ),
    DraftKind.SUPPLIER_NOTE: st.fixed_dictionaries({"supplier_id": identifiers, "note": notes}),
    DraftKind.RECONCILIATION: currencies.flatmap(reconciliations),
}

# The keys each kind of object must carry; every other key a valid payload has is optional.
REQUIRED_KEYS: dict[DraftKind, frozenset[str]] = {
    DraftKind.PURCHASE_ORDER: frozenset({"supplier_id", "location_id", "currency", "lines"}),
    DraftKind.TRANSFER: frozenset({"sku", "quantity", "from_location_id", "to_location_id"}),
    DraftKind.ADJUSTMENT: frozenset(
        {"sku", "location_id", "quantity_delta", "reason_code", "unit_cost"}
    ),
    DraftKind.COUNT_TASK: frozenset({"location_id", "skus"}),
    DraftKind.SUPPLIER_NOTE: frozenset({"supplier_id", "note"}),
    DraftKind.RECONCILIATION: frozenset({"currency", "corrections"}),
}
LINE_KEYS = frozenset({"sku", "quantity", "unit_cost"})
CORRECTION_KEYS = frozenset({"sku", "location_id", "quantity_delta", "unit_cost"})
MONEY_KEYS = frozenset({"minor_units", "currency"})
KNOWN_KEYS = frozenset().union(*REQUIRED_KEYS.values()) | {
    "expected_date",
    "from_bin",
    "to_bin",
    "due_date",
    "note",
    "minor_units",
}
IDENTIFIER_KEYS = frozenset(
    {"sku", "supplier_id", "location_id", "from_location_id", "to_location_id", "from_bin"}
    | {"to_bin", "reason_code"}
)


def expected_amount(kind: DraftKind, raw: dict[str, Any]) -> Money | None:
    """The money a payload commits, worked out from the raw document alone."""

    def cost(unit_cost: dict[str, Any], quantity: int) -> int:
        return int(unit_cost["minor_units"]) * abs(quantity)

    if kind is DraftKind.PURCHASE_ORDER:
        total = sum(cost(line["unit_cost"], line["quantity"]) for line in raw["lines"])
        return Money(minor_units=total, currency=raw["currency"])
    if kind is DraftKind.RECONCILIATION:
        total = sum(cost(c["unit_cost"], c["quantity_delta"]) for c in raw["corrections"])
        return Money(minor_units=total, currency=raw["currency"])
    if kind is DraftKind.ADJUSTMENT:
        unit_cost = raw["unit_cost"]
        minor_units = cost(unit_cost, raw["quantity_delta"])
        return Money(minor_units=minor_units, currency=unit_cost["currency"])
    if kind is DraftKind.TRANSFER and "unit_cost" in raw:
        unit_cost = raw["unit_cost"]
        return Money(minor_units=cost(unit_cost, raw["quantity"]), currency=unit_cost["currency"])
    return None


def submitted(kind: DraftKind, raw: Any) -> Money | None:
    """What submitting a draft does with its payload: validate it, then work out its amount."""
    return parse_payload(kind, raw).amount()


Path = tuple[str | int, ...]


def json_path(path: Path) -> str:
    """``$.payload`` followed by the steps of ``path``, as msgspec and the API spell it."""
    return "$.payload" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path)


def objects(
    kind: DraftKind, raw: dict[str, Any]
) -> Iterator[tuple[Path, dict[str, Any], frozenset]]:
    """Every JSON object in a payload, with its path and the keys it must carry."""
    yield (), raw, REQUIRED_KEYS[kind]
    for key, nested_keys in (("lines", LINE_KEYS), ("corrections", CORRECTION_KEYS)):
        for i, item in enumerate(raw.get(key, [])):
            yield (key, i), item, nested_keys
            yield (key, i, "unit_cost"), item["unit_cost"], MONEY_KEYS
    if "unit_cost" in raw:
        yield ("unit_cost",), raw["unit_cost"], MONEY_KEYS


def values(node: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every value below the payload root, containers included, with its path."""
    children = node.items() if isinstance(node, dict) else enumerate(node)
    for step, child in children:
        yield (*path, step), child
        if isinstance(child, dict | list):
            yield from values(child, (*path, step))


def get_at(document: Any, path: Path) -> Any:
    for step in path:
        document = document[step]
    return document


def set_at(document: Any, path: Path, value: Any) -> None:
    get_at(document, path[:-1])[path[-1]] = value


def wrong_type_for(value: Any) -> st.SearchStrategy[Any]:
    """Values of a JSON type other than ``value``'s (never null: optional fields take null)."""
    ints = st.integers(-(2**40), 2**40)
    floats = st.floats(allow_nan=False, allow_infinity=False)
    options: dict[type, st.SearchStrategy[Any]] = {
        str: st.one_of(ints, floats, st.booleans(), st.just([]), st.just({})),
        int: st.one_of(st.text(max_size=5), floats, st.booleans(), st.just([]), st.just({})),
        dict: st.one_of(st.text(max_size=5), ints, st.booleans(), st.lists(ints, max_size=2)),
        list: st.one_of(st.text(max_size=5), ints, st.booleans(), st.just({})),
    }
    return options[type(value)]


def valid_payloads() -> st.SearchStrategy[tuple[DraftKind, dict[str, Any]]]:
    return st.sampled_from(list(DraftKind)).flatmap(
        lambda kind: st.tuples(st.just(kind), PAYLOADS[kind])
    )


def raises_invalid(call: Callable[[], object]) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        call()
    return caught.value


# ---- money --------------------------------------------------------------------------------


@settings(max_examples=200)
@given(minor_units=st.integers(0, MAX_MINOR_UNITS), currency=currencies)
def test_valid_money_round_trips_through_json(minor_units: int, currency: str) -> None:
    """Any amount from 0 to MAX_MINOR_UNITS in any ISO 4217 currency survives JSON unchanged."""
    original = Money(minor_units=minor_units, currency=currency)

    decoded = msgspec.json.decode(msgspec.json.encode(original), type=Money, strict=True)

    assert decoded == original
    assert msgspec.to_builtins(decoded) == {"minor_units": minor_units, "currency": currency}


@settings(max_examples=100)
@given(
    amount=st.floats(0, MAX_MINOR_UNITS, allow_nan=False)
    | st.integers(0, 10**6).map(float)
    | st.just(1.5),
    currency=currencies,
)
def test_money_never_accepts_a_float(amount: float, currency: str) -> None:
    """A float amount is refused, even a whole one like 2.0, and the error names minor_units."""
    document = msgspec.json.encode({"minor_units": amount, "currency": currency})

    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(document, type=Money, strict=True)

    assert "$.minor_units" in str(caught.value)


@settings(max_examples=100)
@given(
    minor_units=st.integers(max_value=-1) | st.integers(min_value=MAX_MINOR_UNITS + 1),
    currency=currencies,
)
def test_money_outside_its_range_is_refused(minor_units: int, currency: str) -> None:
    """A negative amount or one above MAX_MINOR_UNITS is refused at minor_units."""
    document = msgspec.json.encode({"minor_units": minor_units, "currency": currency})

    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(document, type=Money, strict=True)

    assert "$.minor_units" in str(caught.value)


@settings(max_examples=100)
@given(
    code=miscased_codes() | st.text(max_size=6).filter(lambda s: s not in ISO_4217_CODES),
    minor_units=st.integers(0, MAX_MINOR_UNITS),
)
def test_money_with_a_malformed_currency_is_refused(code: str, minor_units: int) -> None:
    """A currency that is not an ISO 4217 code (miscased, any other text) is refused at currency."""
    document = msgspec.json.encode({"minor_units": minor_units, "currency": code})

    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(document, type=Money, strict=True)

    assert "$.currency" in str(caught.value)


@settings(max_examples=20)
@given(
    code=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3).filter(
        lambda c: c not in ISO_4217_CODES
    )
)
def test_money_with_an_unknown_currency_names_the_currency_field(code: str) -> None:
    """Three capital letters that are no ISO 4217 code are refused at the currency field."""
    document = msgspec.json.encode({"minor_units": 1, "currency": code})
    payload = {
        "sku": "SKU-1",
        "quantity": 1,
        "from_location_id": "a",
        "to_location_id": "b",
        "unit_cost": {"minor_units": 1, "currency": code},
    }

    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(document, type=Money, strict=True)
    error = raises_invalid(lambda: parse_payload(DraftKind.TRANSFER, payload))

    assert "$.currency" in str(caught.value)
    assert error.field == "$.payload.unit_cost.currency"


# ---- valid payloads -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(DraftKind))
@settings(max_examples=60)
@given(data=st.data())
def test_valid_payloads_parse_and_round_trip(kind: DraftKind, data: st.DataObject) -> None:
    """A valid payload of every kind parses, and turns back into exactly the client's document."""
    raw = data.draw(PAYLOADS[kind], label="payload")
    sent = copy.deepcopy(raw)

    parsed = parse_payload(kind, raw)

    assert msgspec.to_builtins(parsed) == sent


@pytest.mark.parametrize("kind", list(DraftKind))
@settings(max_examples=60)
@given(data=st.data())
def test_payload_amount_is_the_money_it_commits(kind: DraftKind, data: st.DataObject) -> None:
    """amount() is the sum of quantity (or |delta|) times unit cost, or None without costs."""
    raw = data.draw(PAYLOADS[kind], label="payload")

    amount = submitted(kind, raw)

    assert amount == expected_amount(kind, raw)


def purchase_order(currency: str, lines: list[tuple[int, int]]) -> dict[str, Any]:
    """A purchase order with one line per (unit cost, quantity)."""
    return {
        "supplier_id": "sup",
        "location_id": "loc",
        "currency": currency,
        "lines": [
            {
                "sku": f"SKU-{i}",
                "quantity": q,
                "unit_cost": {"minor_units": c, "currency": currency},
            }
            for i, (c, q) in enumerate(lines)
        ],
    }


@settings(max_examples=60)
@given(
    currency=currencies,
    total=st.integers(0, MAX_MINOR_UNITS) | st.integers(MAX_MINOR_UNITS - 3, MAX_MINOR_UNITS),
    cuts=st.lists(st.floats(0, 1), max_size=3),
)
def test_purchase_order_up_to_the_cap_is_accepted(
    currency: str, total: int, cuts: list[float]
) -> None:
    """A purchase order totalling at most MAX_MINOR_UNITS is accepted at exactly that total."""
    bounds = [0, *sorted(int(total * c) for c in cuts), total]
    costs = [high - low for low, high in itertools.pairwise(bounds)]
    raw = purchase_order(currency, [(c, 1) for c in costs])

    amount = submitted(DraftKind.PURCHASE_ORDER, raw)

    assert amount == Money(minor_units=total, currency=currency)


@settings(max_examples=60)
@given(
    currency=currencies,
    costs=st.lists(st.integers(MAX_MINOR_UNITS // 2 + 1, MAX_MINOR_UNITS), min_size=2, max_size=4),
    quantities=st.lists(quantities, min_size=4, max_size=4),
)
def test_purchase_order_above_the_cap_is_refused(
    currency: str, costs: list[int], quantities: list[int]
) -> None:
    """A purchase order totalling more than MAX_MINOR_UNITS is refused at `$.payload`."""
    raw = purchase_order(currency, list(zip(costs, quantities, strict=False)))

    error = raises_invalid(lambda: submitted(DraftKind.PURCHASE_ORDER, raw))

    assert error.field == "$.payload"


@settings(max_examples=20)
@given(
    kind=st.sampled_from([DraftKind.TRANSFER, DraftKind.ADJUSTMENT]),
    cost=st.integers(10**9 + 1, MAX_MINOR_UNITS),
    quantity=st.integers(10**6 // 2, 10**6),
    sign=st.sampled_from([1, -1]),
)
def test_single_cost_payloads_never_commit_more_than_the_cap(
    kind: DraftKind, cost: int, quantity: int, sign: int
) -> None:
    """A transfer or adjustment worth more than MAX_MINOR_UNITS is refused at $.payload."""
    assume(cost * quantity > MAX_MINOR_UNITS)
    unit_cost = {"minor_units": cost, "currency": "USD"}
    raw: dict[str, Any] = {"sku": "SKU-1", "unit_cost": unit_cost}
    if kind is DraftKind.TRANSFER:
        raw |= {"quantity": quantity, "from_location_id": "a", "to_location_id": "b"}
    else:
        raw |= {"quantity_delta": sign * quantity, "location_id": "a", "reason_code": "shrink"}

    error = raises_invalid(lambda: submitted(kind, raw))

    assert error.field == "$.payload"


# ---- invalid payloads ---------------------------------------------------------------------


@settings(max_examples=150)
@given(case=valid_payloads(), data=st.data())
def test_a_value_of_the_wrong_type_is_reported_at_its_path(
    case: tuple[DraftKind, dict[str, Any]], data: st.DataObject
) -> None:
    """Replacing any value with one of another JSON type is refused at that value's path."""
    kind, raw = case
    path, old = data.draw(st.sampled_from(list(values(raw))), label="path")
    set_at(raw, path, data.draw(wrong_type_for(old), label="replacement"))

    error = raises_invalid(lambda: submitted(kind, raw))

    assert error.field == json_path(path)


@settings(max_examples=150)
@given(case=valid_payloads(), data=st.data())
def test_a_missing_required_field_is_reported_at_its_object(
    case: tuple[DraftKind, dict[str, Any]], data: st.DataObject
) -> None:
    """Removing a required field is refused at the containing object, naming the field."""
    kind, raw = case
    path, obj, required = data.draw(st.sampled_from(list(objects(kind, raw))), label="object")
    key = data.draw(st.sampled_from(sorted(required)), label="key")
    del obj[key]

    error = raises_invalid(lambda: submitted(kind, raw))

    assert error.field == json_path(path)
    assert f"`{key}`" in error.detail


@settings(max_examples=150)
@given(
    case=valid_payloads(),
    data=st.data(),
    key=st.text(max_size=20).filter(lambda k: k not in KNOWN_KEYS and "`" not in k),
)
def test_an_unknown_field_is_reported_at_its_object(
    case: tuple[DraftKind, dict[str, Any]], data: st.DataObject, key: str
) -> None:
    """Adding a field the schema does not have is refused at that object, naming the field."""
    kind, raw = case
    path, obj, _ = data.draw(st.sampled_from(list(objects(kind, raw))), label="object")
    obj[key] = data.draw(st.none() | st.integers() | st.text(max_size=5), label="value")

    error = raises_invalid(lambda: submitted(kind, raw))

    assert error.field == json_path(path)
    assert f"`{key}`" in error.detail


@settings(max_examples=100)
@given(
    case=valid_payloads(),
    data=st.data(),
    key=st.tuples(st.text(max_size=8), st.text(max_size=8)).map(
        lambda parts: f"{parts[0]}` - at `$.{parts[1]}"
    ),
)
def test_an_unknown_field_name_cannot_spoof_the_reported_path(
    case: tuple[DraftKind, dict[str, Any]], data: st.DataObject, key: str
) -> None:
    """An unknown key that imitates msgspec's ``- at `$.path``` is still reported at its object."""
    kind, raw = case
    path, obj, _ = data.draw(st.sampled_from(list(objects(kind, raw))), label="object")
    obj[key] = 1

    error = raises_invalid(lambda: submitted(kind, raw))

    assert error.field == json_path(path)


def out_of_range(key: str) -> st.SearchStrategy[int]:
    if key == "quantity":
        return st.integers(max_value=0) | st.integers(min_value=1_000_001)
    if key == "quantity_delta":
        return st.integers(max_value=-1_000_001) | st.integers(min_value=1_000_001)
    return st.integers(max_value=-1) | st.integers(min_value=MAX_MINOR_UNITS + 1)


@settings(max_examples=150)
@given(case=valid_payloads(), data=st.data())
def test_a_number_out_of_range_is_reported_at_its_path(
    case: tuple[DraftKind, dict[str, Any]], data: st.DataObject
) -> None:
    """A quantity of zero or out of range, or a negative or huge cost, is refused at its path."""
    kind, raw = case
    numbers = [(p, v) for p, v in values(raw) if type(v) is int]
    assume(numbers)
    path, _ = data.draw(st.sampled_from(numbers), label="path")
    zero_or_other = st.just(0) if path[-1] == "quantity" else st.nothing()
    set_at(raw, path, data.draw(zero_or_other | out_of_range(str(path[-1])), label="value"))

    error = raises_invalid(lambda: submitted(kind, raw))

    assert error.field == json_path(path)


@settings(max_examples=100)
@given(case=valid_payloads(), data=st.data(), bad=st.sampled_from([" ", "/", "#", "é", "\t", ""]))
def test_an_identifier_with_a_forbidden_character_is_reported_at_its_path(
    case: tuple[DraftKind, dict[str, Any]], data: st.DataObject, bad: str
) -> None:
    """An identifier that is empty or holds a character outside [A-Za-z0-9_.:-] is refused."""
    kind, raw = case
    ids = [
        (p, v)
        for p, v in values(raw)
        if isinstance(v, str) and (p[-1] in IDENTIFIER_KEYS or p[0] == "skus")
    ]
    path, old = data.draw(st.sampled_from(ids), label="path")
    cut = data.draw(st.integers(0, len(old)), label="at")
    set_at(raw, path, old[:cut] + bad + old[cut:] if bad else "")

    error = raises_invalid(lambda: submitted(kind, raw))

    assert error.field == json_path(path)


@settings(max_examples=20)
@given(identifier=identifiers)
def test_an_identifier_with_a_trailing_newline_is_refused(identifier: str) -> None:
    """An identifier ending in a newline is refused like any other forbidden character."""
    raw = {"supplier_id": identifier + "\n", "note": "n"}

    error = raises_invalid(lambda: parse_payload(DraftKind.SUPPLIER_NOTE, raw))

    assert error.field == "$.payload.supplier_id"


@settings(max_examples=100)
@given(
    kind=st.sampled_from([DraftKind.PURCHASE_ORDER, DraftKind.RECONCILIATION]),
    data=st.data(),
)
def test_a_line_in_another_currency_is_reported_at_its_currency(
    kind: DraftKind, data: st.DataObject
) -> None:
    """A line or correction costed in another currency than its draft is refused at that cost."""
    raw = data.draw(PAYLOADS[kind], label="payload")
    items = "lines" if kind is DraftKind.PURCHASE_ORDER else "corrections"
    i = data.draw(st.integers(0, len(raw[items]) - 1), label="index")
    other = data.draw(currencies.filter(lambda c: c != raw["currency"]), label="currency")
    raw[items][i]["unit_cost"]["currency"] = other

    error = raises_invalid(lambda: submitted(kind, raw))

    assert error.field == f"$.payload.{items}[{i}].unit_cost.currency"


@settings(max_examples=20)
@given(
    kind=st.sampled_from([DraftKind.PURCHASE_ORDER, DraftKind.RECONCILIATION]),
    data=st.data(),
    bad=st.sampled_from(["usd", "", "XXX", "US DOLLAR", "EUR\n"]),
)
def test_a_draft_currency_that_is_no_iso_code_is_reported_at_its_path(
    kind: DraftKind, data: st.DataObject, bad: str
) -> None:
    """A draft currency that is not an ISO 4217 code is refused at `$.payload.currency`."""
    raw = data.draw(PAYLOADS[kind], label="payload")
    raw["currency"] = bad

    error = raises_invalid(lambda: submitted(kind, raw))

    assert error.field == "$.payload.currency"
