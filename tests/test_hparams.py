"""Random-search draws: in range, repeatable, and independent across methods and hparams."""

from __future__ import annotations

import json

from benchmark.core.hparams import SHARED_SPACE, Choice, LogUniform, Uniform, draw
from benchmark.core.registry import METHODS
from benchmark.sweeps.plan import plan


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


def test_every_method_tunes_the_shared_optimiser_settings_and_never_repeats_a_configuration():
    """Equal budgets need equal search: every method's trials draw lr and weight decay (groupdro its own wider
    weight decay), so ten trials are ten distinct runs even for spaces of a few Choices (jtt: 20 combinations)."""
    assert set(SHARED_SPACE) == {"train.lr", "train.weight_decay"}
    for name in METHODS.names():
        space = METHODS.get(name).search_space()
        assert space["train.lr"] == SHARED_SPACE["train.lr"], name
        expected = LogUniform(-4, 0) if name == "groupdro" else SHARED_SPACE["train.weight_decay"]
        assert space["train.weight_decay"] == expected, name
    for dataset in ("digits-hetero", "waterbirds-style", "celeba-style", "digits-lt"):
        runs = plan(methods=["all"], dataset=dataset, seeds=[0], trials=10)
        for name in METHODS.names():
            configs = {r.spec.config_id for r in runs if r.spec.method == name}
            assert len(configs) == 10, (dataset, name)


def trial_hparams(specs, method: str) -> dict[int, list]:
    """trial -> the hparams (and drawn training settings) of every seed's run of ``method``."""
    out: dict[int, list] = {}
    for run in specs:
        spec = run.spec
        if spec.method == method:
            out.setdefault(run.trial, []).append({**spec.hparams, "lr": spec.train.lr, "wd": spec.train.weight_decay})
    return out


def test_trials_draw_per_name_independent_of_seed_and_of_other_hparams(monkeypatch):
    sweep = dict(methods=["erm", "groupdro"], dataset="digits-hetero", seeds=[0, 3], trials=4)
    specs = plan(**sweep)
    assert len(specs) == 2 * 4 * 2
    for method in ("erm", "groupdro"):
        draws = trial_hparams(specs, method)
        assert all(a == b for a, b in draws.values()), "a trial's draws do not depend on the training seed"
        assert len({json.dumps(d[0], sort_keys=True) for d in draws.values()}) == 4
    groupdro = trial_hparams(specs, "groupdro")
    assert groupdro[0][0]["step_size"] == METHODS.get("groupdro").defaults()["step_size"], "trial 0: defaults"
    assert {s.family_id for s in specs if s.spec.method == "groupdro"} == {specs[2 * 4].spec.config_id}

    cls = METHODS.get("groupdro")
    monkeypatch.setattr(cls, "space", {**cls.space, "adjust_absent": Choice((False, True))})
    widened = plan(**sweep)
    assert trial_hparams(widened, "erm") == trial_hparams(specs, "erm"), "another method's draws are unchanged"
    for trial, runs in trial_hparams(widened, "groupdro").items():
        before = groupdro[trial][0]
        assert {k: v for k, v in runs[0].items() if k != "adjust_absent"} == {
            k: v for k, v in before.items() if k != "adjust_absent"
        }


def test_set_values_are_fixed_in_every_trial():
    specs = plan(methods=["groupdro"], dataset="digits-hetero", seeds=[0], trials=3, sets=["groupdro.step_size=0.05"])
    assert [s.spec.hparams["step_size"] for s in specs] == [0.05, 0.05, 0.05]
    assert len({s.spec.hparams["adjustment"] for s in specs} | {s.spec.train.weight_decay for s in specs}) > 1
