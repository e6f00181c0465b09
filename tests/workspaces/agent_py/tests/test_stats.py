import pytest

from mathx.stats import clamp, mean


def test_mean_of_several_numbers():
    assert mean([1, 2, 3, 4]) == 2.5


def test_mean_of_one_number():
    assert mean([5]) == 5


def test_mean_of_nothing_raises():
    with pytest.raises(ValueError):
        mean([])


def test_clamp():
    assert clamp(5, 0, 3) == 3
    assert clamp(-1, 0, 3) == 0
