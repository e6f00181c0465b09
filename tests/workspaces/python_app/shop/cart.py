"""Shopping cart holding line items."""

from __future__ import annotations

from shop.pricing import Money, add_vat, apply_discount


class Cart:
    """A cart of (sku, unit price, quantity) lines."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, Money, int]] = []

    def add_item(self, sku: str, price: Money, quantity: int = 1) -> None:
        """Add a line item to the cart."""
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self.lines.append((sku, price, quantity))

    def subtotal(self) -> Money:
        """Sum of unit price times quantity over all lines."""
        total = Money(0)
        for _sku, price, quantity in self.lines:
            total = total + Money(price.cents * quantity, price.currency)
        return total

    def total_with_discount(self, percent: float) -> Money:
        """Subtotal with a discount applied, then VAT added."""
        return add_vat(apply_discount(self.subtotal(), percent))
