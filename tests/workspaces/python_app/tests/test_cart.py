from shop.cart import Cart
from shop.pricing import Money


def test_subtotal():
    cart = Cart()
    cart.add_item("apple", Money(150), 2)
    assert cart.subtotal() == Money(300)
