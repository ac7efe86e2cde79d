import random
import re

import pytest

from grpo_lab.rewards import (
    answer_complete,
    binary_reward,
    binary_score,
    extract_answer,
    partial_reward,
    partial_score,
)


@pytest.mark.parametrize(
    ("completion", "task_type", "expected"),
    [
        ("7", "arithmetic", "7"),
        ("   42 is the answer", "arithmetic", "42"),  # leading spaces
        ("\n-3", "arithmetic", "-3"),
        ("-0", "arithmetic", "0"),  # normalised, so it matches the answer "0"
        ("12abc", "arithmetic", "12"),  # the integer at the start wins
        ("007", "arithmetic", "7"),
        ("abc 12", "arithmetic", "abc"),  # no leading integer: the first token
        ("- 5", "arithmetic", "-"),
        ("", "arithmetic", None),  # empty completion
        ("   ", "arithmetic", None),
        ("yes, no", "comparison", "yes"),  # the first yes/no wins
        ("No.", "comparison", "no"),
        ("nope yes", "comparison", "yes"),  # 'nope' is not 'no'
        ("maybe", "comparison", None),
        ("", "comparison", None),
        (" 3 words", "counting", "3"),
    ],
)
def test_extract_answer(completion, task_type, expected):
    assert extract_answer(completion, task_type) == expected


def test_binary_score_is_the_seeds_plus_minus_one():
    assert binary_score(" 12", "12") == 1.0
    assert binary_score("13", "12") == -1.0
    assert binary_score("", "12") == -1.0
    assert binary_score("-0", "0") == 1.0
    assert binary_score("Yes!", "yes", "comparison") == 1.0


@pytest.mark.parametrize(
    ("completion", "answer", "task_type", "expected"),
    [
        ("12", "12", "arithmetic", 1.0),
        ("13", "12", "arithmetic", 0.5),
        ("11", "12", "arithmetic", 0.5),
        ("14", "12", "arithmetic", 0.25),
        ("17", "12", "arithmetic", 0.25),
        ("18", "12", "arithmetic", -0.5),
        ("-12", "12", "arithmetic", -0.5),
        ("twelve", "12", "arithmetic", -1.0),
        ("", "12", "arithmetic", -1.0),
        ("no", "yes", "comparison", -0.5),
        ("yes", "yes", "comparison", 1.0),
        ("hmm", "yes", "comparison", -1.0),
    ],
)
def test_partial_score(completion, answer, task_type, expected):
    assert partial_score(completion, answer, task_type) == expected


def test_reward_functions_score_each_completion_against_its_own_row():
    completions = ["3", "5", "yes", "9"]
    answers = ["3", "4", "no", "9"]
    types = ["arithmetic", "arithmetic", "comparison", "counting"]
    assert binary_reward(completions, answer=answers, task_type=types, prompts=["p"] * 4) == [1.0, -1.0, -1.0, 1.0]
    assert partial_reward(completions, answer=answers, task_type=types) == [1.0, 0.5, -0.5, 1.0]
    assert binary_reward.__name__ == "binary_reward"


def test_reward_functions_accept_conversational_completions():
    completions = [[{"role": "assistant", "content": "7"}]]
    assert binary_reward(completions, answer=["7"], task_type=["arithmetic"]) == [1.0]


@pytest.mark.parametrize(
    ("text", "task_type", "complete"),
    [
        ("12", "arithmetic", False),  # a digit may still follow
        ("12 ", "arithmetic", True),
        ("12a", "arithmetic", True),
        ("-", "arithmetic", False),
        ("  ", "arithmetic", False),
        ("abc", "arithmetic", False),
        ("abc ", "arithmetic", True),
        ("no", "comparison", False),  # may become 'nope'
        ("no.", "comparison", True),
        ("nope", "comparison", False),
    ],
)
def test_answer_complete(text, task_type, complete):
    assert answer_complete(text, task_type) is complete


def test_answer_complete_never_fires_before_the_answer_is_fixed():
    """Once complete, no continuation changes the extracted answer (random strings over a small alphabet)."""
    rng = random.Random(0)
    alphabet = "0123456789- ayesno.\n"
    for _ in range(20000):
        task_type = rng.choice(["arithmetic", "comparison"])
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        tail = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        for cut in range(len(text) + 1):
            if answer_complete(text[:cut], task_type):
                assert extract_answer(text[:cut], task_type) == extract_answer(text + tail, task_type), (
                    text,
                    cut,
                    tail,
                )
                break


def test_one_registry_names_every_reward_and_the_flag_takes_exactly_those():
    from grpo_lab.config import config_fields
    from grpo_lab.rewards import REWARDS, RewardTerm, parse_spec, reward_function

    (help_text,) = [meta["help"] for name, _, _, meta in config_fields() if name == "reward"]
    assert tuple(REWARDS) == ("binary", "partial") and all(name in help_text for name in REWARDS)
    for name in REWARDS:
        assert reward_function(name).__name__ == f"{name}_reward"  # TRL logs rewards/<name>_reward/mean
        assert parse_spec(name) == [RewardTerm(name, 1.0)]
    assert parse_spec("partial+binary*0.5") == [RewardTerm("partial"), RewardTerm("binary", 0.5)]
    assert parse_spec("task") == [RewardTerm("binary")]  # a built-in task's own reward is the seed's
    assert parse_spec("task", builtin_task=False) == [RewardTerm("task")]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "--reward is empty"),
        ("dense", "is not one of: binary, partial, task"),
        ("binary*x", "the weight 'x' is not a number"),
        ("binary*inf", "is not a finite number"),
        ("binary+binary", "names a reward twice"),
        ("no_such_module:f", "no module no_such_module"),
        ("grpo_lab.rewards:no_such", "the module has no 'no_such'"),
        ("grpo_lab.rewards:REWARDS", "dict is not a function"),
        ("missing.py:f", "no such file"),
        ("*2", "write NAME or NAME*WEIGHT"),
    ],
)
def test_bad_reward_specs_are_one_line(spec, message):
    from grpo_lab.errors import GrpoLabError
    from grpo_lab.rewards import parse_spec

    with pytest.raises(GrpoLabError, match=re.escape(message)):
        parse_spec(spec)


def test_without_task_types_every_row_is_arithmetic():
    # comparison would read "yes" out of the sentence; arithmetic takes its first word
    assert binary_reward(["I think yes"], answer=["yes"]) == [-1.0]
    assert binary_reward(["I think yes"], answer=["yes"], task_type=["comparison"]) == [1.0]
    assert partial_reward(["13"], answer=["12"]) == [0.5]
    assert extract_answer("I think yes") == "I" and answer_complete("12 ") is True


def test_every_completion_needs_its_answer():
    with pytest.raises(ValueError):
        binary_reward(["1", "2"], answer=["1"], task_type=["arithmetic", "arithmetic"])
    with pytest.raises(ValueError):
        partial_reward(["1"], answer=["1", "2"])


def test_an_empty_conversation_is_an_empty_completion():
    assert binary_reward([[]], answer=["0"]) == [-1.0]
    assert partial_reward([[{"role": "assistant", "content": "hello"}, {"role": "assistant", "content": "5"}]],
                          answer=["5"]) == [1.0]  # fmt: skip


@pytest.mark.parametrize(
    ("given", "want", "score"),
    [("12", "12", 1.0), ("11", "12", 0.5), ("13", "12", 0.5), ("10", "12", 0.25), ("14", "12", 0.25),
     ("7", "12", 0.25), ("17", "12", 0.25), ("6", "12", -0.5), ("18", "12", -0.5), ("-12", "-12", 1.0),
     ("-11", "-12", 0.5), ("", "12", -1.0), ("x", "12", -1.0), ("12", "twelve", -1.0)],
)  # fmt: skip
def test_partial_credit_at_every_boundary(given, want, score):
    assert partial_score(given, want) == score


def test_as_int():
    from grpo_lab.rewards import as_int

    assert (as_int("12"), as_int("-3"), as_int("0")) == (12, -3, 0)
    assert as_int(None) is None and as_int("1.5") is None and as_int("12a") is None and as_int("") is None


def test_is_correct_compares_the_extracted_answer():
    from grpo_lab.rewards import is_correct

    assert is_correct(" 7 apples", "7") and not is_correct("17", "7")
    assert is_correct("No!", "no", "comparison") and not is_correct("No!", "no")  # arithmetic: "No!" is the token
    assert binary_score("Yes", "yes", "comparison") == 1.0 and binary_score("Yes", "yes") == -1.0
