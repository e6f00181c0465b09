"""Prices, discounts and totals."""

from shop.money import round_money


def apply_discount(price: float, percent: float) -> float:
    """Reduce `price` by `percent` percent and round the result with `round_money`.

    A percent outside 0..100 raises ValueError.
    """
    raise NotImplementedError


def total(prices: list[float]) -> float:
    """The rounded sum of `prices`."""
    return round_money(sum(prices))


def undocumented(price: float) -> float:
    pass


class Basket:
    """Items a customer is about to buy."""

    def __init__(self) -> None:
        self.prices: list[float] = []

    def add(self, price: float) -> None:
        """Add one item's price to the basket; negative prices raise ValueError."""
        ...

    def size(self) -> int:
        """How many items the basket holds."""
        return len(self.prices)
