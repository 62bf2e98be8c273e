"""Money as integer minor units of an ISO 4217 currency; never a float."""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

# Active ISO 4217 codes (list one, 2026). Funds codes and precious metals are left out on
# purpose: nobody buys stock in XAU.
ISO_4217_CODES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP
    MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR
    RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT
    TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR
    ZMW ZWG
    """.split()  # noqa: SIM905 - a block of codes reads better than one per line
)

# Far above any real purchase, far below 2**63: sums of lines cannot overflow a BIGINT.
MAX_MINOR_UNITS = 10**15

# An enum, so that a code outside the list is refused by msgspec at the field's own path.
Currency = enum.StrEnum("Currency", [(code, code) for code in sorted(ISO_4217_CODES)])  # type: ignore[misc]  # built from the list above
MinorUnits = Annotated[int, msgspec.Meta(ge=0, le=MAX_MINOR_UNITS)]


class Money(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An amount in integer minor units (cents for USD) of one currency."""

    minor_units: MinorUnits
    currency: Currency


# ISO 4217 minor-unit exponents that are not 2 (list one, 2026).
_NO_DECIMALS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_THREE_DECIMALS = "BHD IQD JOD KWD LYD OMR TND"
_EXPONENTS = {
    **dict.fromkeys(_NO_DECIMALS.split(), 0),
    **dict.fromkeys(_THREE_DECIMALS.split(), 3),
}


def display_money(minor_units: int, currency: str) -> str:
    """``minor_units`` of ``currency`` as people read it, with its decimals and thousands
    separators (``12,000.00 USD``, ``1,500 JPY``); an unknown code gets two decimals."""
    exponent = _EXPONENTS.get(currency, 2)
    sign = "-" if minor_units < 0 else ""
    whole, fraction = divmod(abs(minor_units), 10**exponent)
    decimals = f".{fraction:0{exponent}d}" if exponent else ""

    return f"{sign}{whole:,}{decimals} {currency}"
