"""Prices, discounts and taxes."""

from __future__ import annotations

from dataclasses import dataclass

VAT_RATE = 0.2


@dataclass(frozen=True)
class Money:
    """An amount in cents with its currency."""

    cents: int
    currency: str = "EUR"

    def __add__(self, other: "Money") -> "Money":
        if other.currency != self.currency:
            raise ValueError("cannot add different currencies")
        return Money(self.cents + other.cents, self.currency)

    def format(self) -> str:
        """Render as '12.34 EUR'."""
        return f"{self.cents // 100}.{self.cents % 100:02d} {self.currency}"


def apply_discount(price: Money, percent: float) -> Money:
    """Reduce a price by a percentage, rounding down to the cent."""
    if not 0 <= percent <= 100:
        raise ValueError("percent must be between 0 and 100")
    return Money(int(price.cents * (100 - percent) / 100), price.currency)


def add_vat(price: Money, rate: float = VAT_RATE) -> Money:
    """Add value-added tax to a net price."""
    return Money(round(price.cents * (1 + rate)), price.currency)


def parse_price(text: str) -> Money:
    """Parse a price written like '12.34 EUR' or '5 USD' into Money.

    >>> parse_price("12.34 EUR")
    Money(cents=1234, currency='EUR')
    """
    raise NotImplementedError
