from shop.pricing import Basket, apply_discount, total


def test_total_rounds():
    assert total([0.105, 0.2]) == 0.31


def test_apply_discount_half():
    assert apply_discount(10.0, 50) == 5.0


def test_basket_starts_empty():
    assert Basket().size() == 0
