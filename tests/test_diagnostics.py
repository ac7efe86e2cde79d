"""Each of the seed's rules, on synthetic curves summarised the way a real run is; each threshold at its edge."""

import pytest

from grpo_lab.diagnostics import diagnose
from grpo_lab.metrics import compute as summarize

GOOD = {"beta": 0.1, "num_generations": 16}


def curve(n=20, **metrics):
    return [(i, {k: (v(i) if callable(v) else v) for k, v in metrics.items()}) for i in range(1, n + 1)]


def results(train=0.6, held=0.5):
    return [("after", "train", "overall", "", round(train * 100), 100),
            ("after", "held_out", "overall", "", round(held * 200), 200)]  # fmt: skip


def codes(config, steps, res=()):
    return [f.code for f in diagnose(config, summarize(steps, list(res)))]


HEALTHY = dict(reward=lambda i: -0.5 + i / 40, frac_reward_zero_std=0.2, grad_norm=3.0, kl=0.7)


def test_a_healthy_run_has_no_findings():
    assert codes(GOOD, curve(**HEALTHY), results()) == []


def test_zero_std_above_half_in_the_last_steps():
    steps = curve(**{**HEALTHY, "frac_reward_zero_std": lambda i: 0.1 if i < 18 else 0.8})
    assert codes(GOOD, steps) == ["zero-std"]
    assert codes(GOOD, curve(**{**HEALTHY, "frac_reward_zero_std": lambda i: 0.9 if i < 18 else 0.2})) == []


def test_reward_stuck_at_minus_one():
    steps = curve(**{**HEALTHY, "reward": -1.0, "frac_reward_zero_std": 0.3})
    assert "reward-stuck" in codes(GOOD, steps)
    assert "reward-stuck" not in codes(GOOD, curve(**{**HEALTHY, "reward": lambda i: -1.0 if i != 5 else -0.9}))


def test_grad_norm_zero_on_most_steps():
    steps = curve(**{**HEALTHY, "grad_norm": lambda i: 0.0 if i % 4 else 1.0})
    assert codes(GOOD, steps) == ["zero-grad"]


def test_config_rules():
    assert "no-kl" in codes({"beta": 0, "num_generations": 16}, curve(**HEALTHY))
    assert "few-generations" in codes({"beta": 0.1, "num_generations": 4}, curve(**HEALTHY))


def test_final_kl_outside_the_seeds_range_is_informational():
    findings = diagnose(GOOD, summarize(curve(**{**HEALTHY, "kl": 0.05}), []))
    assert [(f.code, f.severity) for f in findings] == [("kl-range", "info")]
    assert codes({"beta": 0, "num_generations": 16}, curve(**{**HEALTHY, "kl": 0.05})) == ["no-kl"]


def test_overfitting_gap_above_30_points():
    assert codes(GOOD, curve(**HEALTHY), results(train=0.95, held=0.6)) == ["overfitting"]
    assert codes(GOOD, curve(**HEALTHY), results(train=0.85, held=0.6)) == []
    assert codes(GOOD, curve(**HEALTHY), results(train=0.91, held=0.6)) == ["overfitting"]  # 31 points
    assert codes(GOOD, curve(**HEALTHY), results(train=0.90, held=0.6)) == []  # exactly 30: not above
    assert codes(GOOD, curve(**HEALTHY), results(train=0.2, held=0.15)) == []  # a sum above 0.3 is no gap


def test_overfitting_compares_with_held_out_problems_of_the_same_kind():
    """A mixed run's train set is easier than arith-v1: the gap to the suite is not memorisation."""
    suite = [("after", "train", "overall", "", 76, 100), ("after", "arith-v1", "overall", "", 76, 200)]
    assert codes(GOOD, curve(**HEALTHY), suite + [("after", "held_out", "overall", "", 70, 100)]) == []
    assert codes(GOOD, curve(**HEALTHY), suite + [("after", "held_out", "overall", "", 40, 100)]) == ["overfitting"]


@pytest.mark.parametrize(("value", "fires"), [(0.5, False), (0.51, True), (0.49, False)])
def test_zero_std_threshold_is_above_one_half(value, fires):
    assert ("zero-std" in codes(GOOD, curve(**{**HEALTHY, "frac_reward_zero_std": value}))) is fires


@pytest.mark.parametrize(("kl", "fires"), [(0.5, False), (1.0, False), (0.49, True), (1.01, True)])
def test_kl_range_edges(kl, fires):
    assert ("kl-range" in codes(GOOD, curve(**{**HEALTHY, "kl": kl}))) is fires


@pytest.mark.parametrize(("n", "fires"), [(8, False), (7, True), (16, False)])
def test_few_generations_edge(n, fires):
    assert ("few-generations" in codes({"beta": 0.1, "num_generations": n}, curve(**HEALTHY))) is fires


def test_contaminated_fires_only_when_training_holds_suite_problems():
    res = results() + [("after", "arith-v1", "overall", "", 80, 200)]
    assert codes(GOOD, curve(**HEALTHY), res) == []
    clean = diagnose(GOOD, summarize(curve(**HEALTHY), res, {"arith-v1": 0}))
    assert clean == []
    (finding,) = diagnose(GOOD, summarize(curve(**HEALTHY), res, {"arith-v1": 3, "mine": 0}))
    assert finding.code == "contaminated" and "3 in arith-v1" in finding.message and "mine" not in finding.message


def test_findings_carry_the_seeds_advice():
    (finding,) = diagnose(GOOD, summarize(curve(**{**HEALTHY, "frac_reward_zero_std": 0.9}), []))
    assert "raise temperature or num_generations" in finding.message


def test_non_finite_curve_values_are_left_out_of_the_metrics():
    """A NaN grad norm on the last step (seen in real runs) must not poison the means, nor stop the run finishing."""
    steps = curve(**{**HEALTHY, "grad_norm": lambda i: float("nan") if i == 20 else 3.0, "kl": float("inf")})
    values = summarize(steps, [])
    assert values["grad_norm"] == 3.0 and "kl" not in values and "kl_last" not in values


def messages(config, values):
    return {f.code: (f.severity, f.message) for f in diagnose(config, values)}


def test_every_finding_says_exactly_what_was_seen_and_what_to_do():
    found = messages(
        {"beta": 0, "num_generations": 4},
        {"zero_std": 0.75, "reward_max": -1.0, "steps": 10, "frac_grad_norm_zero": 0.8, "kl_last": 2.0,
         "train_acc": 0.9, "held_out": 0.2, "arith-v1": 0.3, "arith-v1_overlap": 3, "mine": 0.5, "mine_overlap": 2},
    )  # fmt: skip
    assert found == {
        "zero-std": ("warning", "frac_reward_zero_std 0.75 > 0.5: most groups have identical rewards; raise "
                                "temperature or num_generations"),
        "reward-stuck": ("warning", "reward stuck at -1.0: the model never got an answer right; check beta > 0 and a "
                                    "high enough temperature"),
        "zero-grad": ("warning", "grad_norm zero on 80% of steps: all rewards identical, nothing to learn; raise "
                                 "temperature or generations"),
        "no-kl": ("warning", "beta = 0: without a KL penalty arithmetic training collapses; use beta 0.1"),
        "few-generations": ("warning", "num_generations 4 < 8: reward std within a group goes to zero; use 8-16"),
        "overfitting": ("warning", "train accuracy 90% vs 20% on held-out problems of the same kind: a 70-point gap "
                                   "is overfitting; use more unique problems"),
        "contaminated": ("warning", "training problems that are also evaluation problems (3 in arith-v1, 2 in mine): "
                                    "those suite scores are not held-out; evaluate on a suite disjoint from training"),
    }  # fmt: skip
    assert "kl-range" not in found  # without a KL penalty the KL range says nothing
    info = messages({"beta": 0.1}, {"kl_last": 0.25})
    assert info == {"kl-range": ("info", "final KL 0.25 outside the seed's 0.5-1.0 range (informational)")}


@pytest.mark.parametrize(
    ("values", "fires"),
    [({"frac_grad_norm_zero": 0.5}, False), ({"frac_grad_norm_zero": 0.51}, True),
     ({"reward_max": -1.0, "steps": 3}, True), ({"reward_max": -1.0 + 1e-10, "steps": 3}, True),
     ({"reward_max": -1.0 + 1e-9, "steps": 3}, True),
     ({"reward_max": -0.999, "steps": 3}, False), ({"reward_max": -1.0}, False),
     ({"reward_max": -1.0, "steps": 0}, False)],
)  # fmt: skip
def test_grad_and_reward_edges(values, fires):
    code = "zero-grad" if "frac_grad_norm_zero" in values else "reward-stuck"
    assert (code in messages(GOOD, values)) is fires


@pytest.mark.parametrize(
    ("train", "held", "fires"),
    [(0.8, 0.5, False), (0.800000001, 0.5, True), (0.8000000001, 0.5, False), (0.9, 0.5, True), (0.5, 0.9, False)],
)  # fmt: skip
def test_overfitting_is_more_than_thirty_points_to_nine_decimals(train, held, fires):
    assert ("overfitting" in messages(GOOD, {"train_acc": train, "held_out": held})) is fires


def test_values_that_are_not_numbers_are_not_read():
    assert messages({"beta": "0", "num_generations": "4"}, {"zero_std": "0.9", "kl_last": None}) == {}
    assert "few-generations" in messages({"num_generations": 7.0}, {})
    assert messages({"num_generations": 7.0}, {})["few-generations"][1].startswith("num_generations 7 < 8")
