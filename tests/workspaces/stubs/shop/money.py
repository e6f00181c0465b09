"""Money helpers shared by the shop."""


def round_money(value: float) -> float:
    """Round an amount to whole cents, halves away from zero."""
    cents = abs(value) * 100 + 0.5
    sign = -1 if value < 0 else 1
    return sign * int(cents) / 100


class Ledger:
    """Amounts booked so far."""

    def __init__(self) -> None:
        self.entries: list[float] = []

    def book(self, amount: float) -> None:
        self.entries.append(round_money(amount))
