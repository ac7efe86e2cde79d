"""Pre-registered criteria: parsed and checked against the run's metrics, decided from its values."""

import pytest

from grpo_lab import criteria
from grpo_lab.errors import GrpoLabError

SETS = {"train": ["*", "+", "-"], "held_out": ["*", "+", "-"], "arith-v1": ["*", "+", "-", "/"]}


def decide(text, values, status="finished"):
    return criteria.decide(text, criteria.parse(text, SETS), values, status)


def test_confirmed_with_the_values_that_decided_it():
    v = decide("arith-v1 >= 0.42 and kl_last < 1", {"arith-v1": 0.455, "kl_last": 0.8})
    assert (v.status, v.detail) == ("confirmed", "arith-v1 0.455 >= 0.42, kl_last 0.8 < 1")


def test_rejected_names_the_failing_condition_as_it_is():
    v = decide("arith-v1 >= 0.42 and kl_last < 1", {"arith-v1": 0.395, "kl_last": 0.8})
    assert (v.status, v.detail) == ("rejected", "arith-v1 0.395 < 0.42")
    assert v.sentence() == "Hypothesis rejected: arith-v1 0.395 < 0.42"


@pytest.mark.parametrize(
    ("text", "values", "status"),
    [
        ("arith-v1_gain > 0", {"arith-v1_gain": 0.005}, "confirmed"),
        ("arith-v1_gain > 0", {"arith-v1_gain": 0.0}, "rejected"),  # the boundary itself is not a gain
        ("arith-v1_gain >= 0", {"arith-v1_gain": 0.0}, "confirmed"),
        ("arith-v1[*] != 0", {"arith-v1[*]": 0.0}, "rejected"),
        ("held_out = 0.5", {"held_out": 0.5}, "confirmed"),
        ("held_out <= 0.5", {"held_out": 0.51}, "rejected"),
        ("train_acc_before < 0.5 and steps >= 3", {"train_acc_before": 0.4, "steps": 3}, "confirmed"),
    ],
)
def test_every_operator(text, values, status):
    assert decide(text, values).status == status


def test_unchecked_cases():
    assert decide(None, {}).status == "unchecked"
    free = decide("better than the baseline by more than the seeds' sd", {"arith-v1": 0.5})
    assert free.status == "unchecked" and "free text" in free.detail
    interrupted = decide("arith-v1 > 0.4", {"arith-v1": 0.5}, status="interrupted")
    assert interrupted.status == "unchecked" and "interrupted" in interrupted.detail
    missing = decide("arith-v1[/] > 0.1", {"arith-v1": 0.5})
    assert missing.status == "unchecked" and "arith-v1[/]" in missing.detail


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accuracy >= 0.4", "unknown field 'accuracy'"),
        ("mixed-v1 >= 0.4", "unknown field 'mixed-v1'"),  # not evaluated by this run
        ("arith-v1[^] > 0", "unknown field"),
        ("arith-v1 => 0.4", "expected FIELD OP VALUE"),
        ("arith-v1 >= high", "criteria compare numbers"),
        ("arith-v1 >= 0.4 or kl < 1", "expected 'and'"),
        ("arith-v1 >=", "expected FIELD OP VALUE"),
        ("beta = 0.1", "unknown field 'beta'"),  # the configuration is not a result
    ],
)
def test_malformed_criteria_are_refused(text, message):
    with pytest.raises(GrpoLabError, match=message.replace("[", r"\[").replace("(", r"\(")):
        criteria.parse(text, SETS)


def test_every_verdict_says_exactly_why():
    assert criteria.decide(None, None, {}, "finished") == criteria.Verdict("unchecked", "no criteria were given")
    assert criteria.decide("", None, {}, "finished").detail == "no criteria were given"
    free = criteria.decide("better", None, {}, "finished")
    assert free.detail == "the criteria are free text; write FIELD OP VALUE to have them checked"
    assert free.sentence() == "Verdict unchecked: the criteria are free text; write FIELD OP VALUE to have them checked"
    missing = decide("arith-v1[/] > 0.1 and held_out > 0 and kl_last < 1", {"held_out": 0.5})
    assert missing.detail == "not measured: arith-v1[/], kl_last"
    two = decide("arith-v1 >= 0.42 and kl_last < 1", {"arith-v1": 0.3, "kl_last": 1.5})
    assert two.detail == "arith-v1 0.3 < 0.42, kl_last 1.5 >= 1"
    assert decide("held_out > 0.123456", {"held_out": 0.2}).detail == "held_out 0.2 > 0.1235"
    assert criteria.Verdict("confirmed", "x 1 > 0").sentence() == "Hypothesis confirmed: x 1 > 0"


def test_criteria_errors_name_the_criteria_option():
    for text in ("accuracy >= 0.4", "arith-v1 =>", "arith-v1 >= 0.4 or kl < 1", "arith-v1 = 'open"):
        with pytest.raises(GrpoLabError, match=r"^--criteria: "):
            criteria.parse(text, SETS)
    with pytest.raises(GrpoLabError, match=r"^--criteria: arith-v1 is compared with 'high'; criteria compare numbers$"):
        criteria.parse("arith-v1 >= high", SETS)
    assert criteria.parse("no comparison here", SETS) is None and criteria.parse("", SETS) is None
