"""A tiny shop: carts, prices and invoices."""
