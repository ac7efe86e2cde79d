import random

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


def test_one_registry_names_every_reward_and_the_flag_offers_exactly_those():
    from grpo_lab.config import config_fields
    from grpo_lab.rewards import REWARDS, reward_function

    (choices,) = [meta["choices"] for name, _, _, meta in config_fields() if name == "reward"]
    assert choices == tuple(REWARDS) == ("binary", "partial")
    for name in REWARDS:
        assert reward_function(name).__name__ == f"{name}_reward"  # TRL logs rewards/<name>_reward/mean
