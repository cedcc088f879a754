"""Random-search draws: in range, repeatable, and independent across methods and hparams."""

from __future__ import annotations

from benchmark.hparams import Choice, LogUniform, Uniform, draw
from benchmark.registry import METHODS


def test_draws_are_in_range_and_repeatable():
    values = [draw("groupdro", "step_size", t, LogUniform(-3, -1)) for t in range(50)]
    assert all(1e-3 <= v <= 1e-1 for v in values)
    assert values == [draw("groupdro", "step_size", t, LogUniform(-3, -1)) for t in range(50)]
    assert len(set(values)) == 50
    assert {draw("m", "c", t, Choice((0, 1, 2))) for t in range(60)} == {0, 1, 2}
    assert all(2 <= draw("m", "u", t, Uniform(2, 3)) <= 3 for t in range(20))


def test_draws_depend_only_on_method_hparam_and_trial():
    a = [draw("groupdro", "step_size", t, LogUniform(-3, -1)) for t in range(5)]
    b = [draw("groupdro", "adjustment", t, LogUniform(-3, -1)) for t in range(5)]
    c = [draw("erm", "step_size", t, LogUniform(-3, -1)) for t in range(5)]
    assert a != b and a != c


def test_builtin_spaces_name_real_hparams():
    for name in METHODS.names():
        cls = METHODS.get(name)
        for key in cls.space:
            assert key.startswith("train.") or key in cls.defaults(), (name, key)
