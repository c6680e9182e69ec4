import time

import pytest

from twister_plugin.utils.timing import Stopwatch


def test_names_add_up_and_keep_their_order():
    clock = Stopwatch()
    for _ in range(2):
        with clock("a"):
            time.sleep(0.02)
    with clock("b"):
        pass
    got = clock.seconds(3)
    assert list(got) == ["a", "b"]
    assert 0.04 <= got["a"] < 1.0 and 0 <= got["b"] < got["a"]


def test_time_before_an_error_is_counted():
    clock = Stopwatch()
    with pytest.raises(ValueError), clock("failing"):
        time.sleep(0.01)
        raise ValueError("boom")
    assert clock.seconds(3)["failing"] >= 0.01
