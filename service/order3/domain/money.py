"""Money as integer minor units of an ISO 4217 currency; never a float."""

from __future__ import annotations

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

CurrencyCode = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$", description="ISO 4217 code")]
MinorUnits = Annotated[int, msgspec.Meta(ge=0, le=MAX_MINOR_UNITS)]


class Money(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An amount in integer minor units (cents for USD) of one currency."""

    minor_units: MinorUnits
    currency: CurrencyCode

    def __post_init__(self) -> None:
        if self.currency not in ISO_4217_CODES:
            raise ValueError(f"`{self.currency}` is not an ISO 4217 currency code")

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(minor_units=self.minor_units + other.minor_units, currency=self.currency)

    def times(self, quantity: int) -> Money:
        """This amount multiplied by a whole quantity."""
        return Money(minor_units=self.minor_units * abs(quantity), currency=self.currency)
