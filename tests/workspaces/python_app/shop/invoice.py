"""Invoices rendered from carts."""

from shop.cart import Cart


def render_invoice(cart: Cart, customer: str) -> str:
    """Render a plain-text invoice for a customer's cart."""
    lines = [f"Invoice for {customer}"]
    for sku, price, quantity in cart.lines:
        lines.append(f"{sku:<10} {quantity:>3} x {price.format()}")
    lines.append(f"Subtotal: {cart.subtotal().format()}")
    return "\n".join(lines)


def sendInvoiceEmail(address: str, body: str) -> bool:
    """Send the invoice by email (camelCase on purpose: identifier splitting is tested on it)."""
    return bool(address and body)
