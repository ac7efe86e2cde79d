import json
import re
from collections import Counter

import pytest

from grpo_lab import suites, tasks
from grpo_lab.errors import ConfigError, GrpoLabError
from grpo_lab.tasks import arithmetic


def test_arithmetic_prompts_are_exactly_the_seeds():
    p = tasks.arithmetic_problem(3, "*", 4)
    assert p.prompt == "Calculate: 3 * 4 = "
    assert p.answer == "12"
    assert tasks.arithmetic_problem(2, "-", 9).answer == "-7"


def test_mixed_prompts():
    assert tasks.count_prompt("cat", 3) == "Count the words: cat cat cat. Answer: "
    assert tasks.compare_prompt(5, 2) == "Is 5 greater than 2? Answer yes or no: "
    assert tasks.comparison_problem(2, 2).answer == "no"


@pytest.mark.parametrize("dataset_type", tasks.DATASET_TYPES)
def test_task_type_of_a_prompt_inverts_every_builder(dataset_type):
    from grpo_lab.suites import load_suite, suite_names

    problems = tasks.generate_problems(dataset_type, 200, seed=3)
    problems += [p for name in suite_names() for p in load_suite(name)]
    kinds = {"arithmetic", "counting", "comparison"} if dataset_type == "mixed" else {"arithmetic"}
    assert {p.task_type for p in problems} >= kinds
    for p in problems:
        assert tasks.task_type_of(p.prompt) == p.task_type, p.prompt
    assert tasks.task_type_of("Is it raining? Answer: ") == "arithmetic"


def test_arithmetic_dataset_is_unique_within_range_and_uses_all_ops():
    problems = tasks.generate_problems("arithmetic", 500, 0, 20, seed=1)
    assert len({p.prompt for p in problems}) == 500
    pattern = re.compile(r"Calculate: (\d+) ([+*-]) (\d+) = ")
    for p in problems:
        a, op, b = pattern.fullmatch(p.prompt).groups()
        assert 0 <= int(a) <= 20 and 0 <= int(b) <= 20
        assert p.answer == str(tasks.compute(int(a), op, int(b)))
        assert p.operation == op and p.task_type == "arithmetic"
    assert set(Counter(p.operation for p in problems)) == {"+", "-", "*"}


def test_min_and_max_num_set_the_operand_range():
    problems = tasks.generate_problems("arithmetic", 50, 30, 40, seed=0)
    numbers = [int(n) for p in problems for n in re.findall(r"\d+", p.prompt)]
    assert min(numbers) >= 30 and max(numbers) <= 40


def test_small_numbers_is_arithmetic_on_0_to_10():
    problems = tasks.generate_problems("small_numbers", 200, seed=0)
    numbers = [int(n) for p in problems for n in re.findall(r"\d+", p.prompt)]
    assert max(numbers) <= 10
    with pytest.raises(ConfigError, match="small_numbers uses the range 0-10"):
        tasks.generate_problems("small_numbers", 10, 0, 20)


def test_mixed_is_half_arithmetic_and_deduplicated():
    problems = tasks.generate_problems("mixed", 200, seed=3)
    counts = Counter(p.task_type for p in problems)
    assert counts == {"arithmetic": 100, "counting": 50, "comparison": 50}
    assert len({p.prompt for p in problems}) == 200


def test_n_samples_beyond_the_distinct_problems_fails_with_the_maximum():
    # 0-2 allows 3 ops * 3 * 3 = 27 distinct problems, 10 of which are arith-v1's (very_easy and easy tiers)
    in_suites = [p for p in suites.reserved_prompts() if re.fullmatch(r"Calculate: [0-2] [-+*] [0-2] = ", p)]
    assert len(in_suites) == 10
    with pytest.raises(ConfigError, match=r"exceeds the 17 distinct arithmetic problems .* outside the evaluation"):
        tasks.generate_problems("arithmetic", 18, 0, 2)
    assert len(tasks.generate_problems("arithmetic", 17, 0, 2)) == 17
    top = tasks.max_samples("mixed", 0, 20)
    assert len(tasks.generate_problems("mixed", top)) == top
    with pytest.raises(ConfigError, match=f"exceeds the {top} distinct mixed problems"):
        tasks.generate_problems("mixed", top + 1)


def test_same_seed_same_rows_in_the_same_order():
    a = tasks.generate_problems("mixed", 100, seed=7)
    assert a == tasks.generate_problems("mixed", 100, seed=7)
    assert a != tasks.generate_problems("mixed", 100, seed=8)


def test_held_out_problems_are_not_in_training():
    train = tasks.generate_problems("arithmetic", 300, seed=0)
    held = tasks.held_out_problems("arithmetic", 200, train, seed=0)
    assert len(held) == 200
    assert not {p.prompt for p in held} & {p.prompt for p in train}
    assert held == tasks.held_out_problems("arithmetic", 200, train, seed=0)


def test_held_out_is_smaller_when_the_space_runs_out():
    train = tasks.generate_problems("arithmetic", 10, 0, 2)
    assert len(tasks.held_out_problems("arithmetic", 100, train, 0, 2)) == 7  # 27 - 10 in suites - 10 trained


def test_to_dataset_has_the_reward_columns():
    ds = tasks.to_dataset(tasks.generate_problems("mixed", 8))
    assert {"prompt", "answer", "task_type", "operation"} <= set(ds.column_names)
    assert len(ds) == 8


@pytest.mark.parametrize("reserve", [None, suites.V2_SUITES], ids=["v1", "v2"])
@pytest.mark.parametrize("dataset_type", tasks.DATASET_TYPES)
@pytest.mark.parametrize("operands", [(None, None), (0, 5), (0, 10), (3, 30), (10, 50), (20, 100)])
def test_no_suite_problem_in_any_training_set_or_own_held_out_split(dataset_type, operands, reserve):
    """At the largest n_samples, where a leak is most likely, over several seeds: zero problems of the reserved
    suites (the v1 ones by default; arith-v2 and mixed-v2 with --reserve arith-v2,mixed-v2), through the config a
    run resolves as well as the task functions."""
    if dataset_type == "small_numbers" and operands != (None, None):
        pytest.skip("small_numbers fixes its range")
    lo, hi = tasks.resolve_range(dataset_type, *operands)
    top = tasks.max_samples(dataset_type, lo, hi, reserve)
    n = min(top, 3000)  # wide ranges allow hundreds of thousands; 3000 still covers every suite tier's range
    reserved = suites.reserved_prompts(reserve or suites.V1_SUITES)
    assert len(reserved) == (300 if reserve is None else 600)
    for seed in (0, 1, 7):
        train = tasks.generate_problems(dataset_type, n, lo, hi, seed, reserve)
        held = tasks.held_out_problems(dataset_type, 500, train, lo, hi, seed, reserve)
        assert not {p.prompt for p in train} & reserved
        assert not {p.prompt for p in held} & reserved
        assert len({p.prompt for p in train}) == n
    if reserve is not None and operands == (None, None):
        from grpo_lab.config import RunConfig

        config = RunConfig(model_name="tiny-arith-2", dataset_type=dataset_type, n_samples=min(n, 600),
                           batch_size=16, num_generations=16, reserve=list(reserve), eval_suite="arith-v2")  # fmt: skip
        train, held = config.problem_sets()
        assert not {p.prompt for p in [*train, *held]} & reserved


def test_the_whole_space_outside_the_suites_is_reachable():
    """At the maximum on a small range every allowed problem is drawn, and the suites' ones never."""
    top = tasks.max_samples("small_numbers", 0, 10)
    train = {p.prompt for p in tasks.generate_problems("small_numbers", top, seed=3)}
    space = {tasks.arithmetic_prompt(a, op, b) for a in range(11) for b in range(11) for op in tasks.OPS}
    assert train == space - suites.reserved_prompts()
    mixed = tasks.generate_problems("mixed", tasks.max_samples("mixed", 0, 20), seed=0)
    counting = {p.prompt for p in mixed if p.task_type == "counting"}
    all_counting = {tasks.count_prompt(w, k) for w in tasks.COUNT_WORDS for k in range(1, 11)}
    assert counting == all_counting - suites.reserved_prompts()  # the last word and count included


def test_overlap_counts_a_user_suite_that_shares_problems_on_purpose(tmp_path):
    train = tasks.generate_problems("arithmetic", 100, seed=2)
    mine = train[:7] + [tasks.arithmetic_problem(40, "+", 41)]
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(p.row()) + "\n" for p in mine))
    loaded = suites.load_suite(str(path))
    assert suites.suite_name(str(path)) == "mine"
    assert tasks.overlap(train, loaded) == 7
    assert tasks.overlap(train, suites.load_suite("arith-v1")) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n", "line 1 is not JSON"),
        ('{"prompt": "a", "solution": "1"}\n', r"has no answer field \(its columns: prompt, solution\)"),
        ('{"prompt": "a", "answer": "1"}\n{"prompt": "a", "answer": "2"}\n', "has two answers"),
        ('{"prompt": "a", "answer": [1]}\n', "row 1: answer is a list, not text"),
        ("", "holds no problems"),
    ],
)
def test_bad_user_suites_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "s.jsonl"
    path.write_text(content)
    with pytest.raises(GrpoLabError, match=message):
        suites.load_suite(str(path))


# --- each part on its own: what mutation testing found the tests above did not pin down ----------------------


@pytest.mark.parametrize(
    ("a", "op", "b", "answer"), [(7, "+", 5, 12), (7, "-", 5, 2), (7, "*", 5, 35), (35, "/", 5, 7), (0, "/", 4, 0),
                                 (-6, "/", 3, -2), (-7, "+", 0, -7)],
)  # fmt: skip
def test_compute(a, op, b, answer):
    result = tasks.compute(a, op, b)
    assert result == answer and type(result) is int


@pytest.mark.parametrize(
    ("a", "op", "b", "message"),
    [(7, "/", 2, "7 / 2 is not an exact integer division"), (7, "/", 0, "7 / 0 is not an exact integer division"),
     (1, "^", 2, "unknown operation '^'")],
)  # fmt: skip
def test_compute_refuses_what_has_no_integer_answer(a, op, b, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        tasks.compute(a, op, b)


def test_each_kind_of_problem_in_full():
    assert tasks.arithmetic_problem(3, "*", 4) == tasks.Problem("Calculate: 3 * 4 = ", "12", "arithmetic", "*", "")
    assert tasks.arithmetic_problem(8, "/", 2, "hard").difficulty == "hard"
    assert tasks.counting_problem("cat", 3) == tasks.Problem(
        "Count the words: cat cat cat. Answer: ", "3", "counting", "count", ""
    )
    assert tasks.counting_problem("cat", 2, "easy").difficulty == "easy"
    assert tasks.comparison_problem(5, 3) == tasks.Problem(
        "Is 5 greater than 3? Answer yes or no: ", "yes", "comparison", "compare", ""
    )
    assert tasks.comparison_problem(3, 3).answer == "no" and tasks.comparison_problem(2, 9, "x").difficulty == "x"
    assert tasks.Problem("p", "1", "arithmetic", "+").row() == {
        "prompt": "p", "answer": "1", "task_type": "arithmetic", "operation": "+", "difficulty": ""}  # fmt: skip


def test_operations_of_each_dataset_type():
    assert tasks.operations("arithmetic") == tasks.operations("small_numbers") == ["*", "+", "-"]
    assert tasks.operations("mixed") == ["*", "+", "-", "compare", "count"]


def test_the_default_range_and_its_edges():
    assert tasks.resolve_range("arithmetic", None, None) == (0, 20)
    assert tasks.resolve_range("mixed", 5, None) == (5, 20) and tasks.resolve_range("mixed", None, 7) == (0, 7)
    assert tasks.resolve_range("arithmetic", 3, 3) == (3, 3)  # one operand value is a range too
    assert tasks.resolve_range("small_numbers", 0, 10) == (0, 10)
    with pytest.raises(ConfigError, match=r"^--min_num \(4\) is larger than --max_num \(3\); swap them$"):
        tasks.resolve_range("arithmetic", 4, 3)
    message = (
        "--dataset_type small_numbers uses the range 0-10; drop --min_num/--max_num or use --dataset_type arithmetic"
    )
    for lo, hi in ((1, None), (None, 9)):
        with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
            tasks.resolve_range("small_numbers", lo, hi)


def test_unknown_dataset_type_and_too_few_samples_are_named():
    with pytest.raises(
        ConfigError, match=r"^unknown --dataset_type 'words'; choose one of arithmetic, mixed, small_numbers$"
    ):
        tasks.generate_problems("words", 5)
    with pytest.raises(ConfigError, match=r"^--n_samples must be at least 1 \(got 0\)$"):
        tasks.check_samples("arithmetic", 0, 0, 20)
    tasks.check_samples("arithmetic", 1, 0, 20)  # one problem is a dataset
    assert len(tasks.generate_problems("arithmetic", 1)) == 1


def brute_force_size(dataset_type, lo, hi):
    """How many distinct problems a dataset may hold, counted the slow way: every part's whole space, minus the
    suites' problems, and a mixed dataset limited by its smallest part (n - 2 * (n // 4) arithmetic, n // 4 of
    the others)."""
    reserved = tasks.reserved()
    arith = {tasks.arithmetic_prompt(a, op, b) for op in tasks.OPS for a in range(lo, hi + 1)
             for b in range(lo, hi + 1)} - reserved  # fmt: skip
    if dataset_type != "mixed":
        return len(arith)
    count = {tasks.count_prompt(w, k) for w in tasks.COUNT_WORDS for k in range(1, 11)} - reserved
    compare = {tasks.compare_prompt(a, b) for a in range(lo, hi + 1) for b in range(lo, hi + 1)} - reserved
    n = len(arith) + len(count) + len(compare)
    while n > 0 and (n - 2 * (n // 4) > len(arith) or n // 4 > len(count) or n // 4 > len(compare)):
        n -= 1
    return n


@pytest.mark.parametrize(("dataset_type", "lo", "hi"), [("arithmetic", 0, 0), ("arithmetic", 0, 3), ("mixed", 0, 2),
                                                         ("mixed", 0, 20), ("small_numbers", 0, 10)])  # fmt: skip
def test_the_largest_dataset_is_exactly_what_the_space_allows(dataset_type, lo, hi):
    top = tasks.max_samples(dataset_type, lo, hi)
    assert top == brute_force_size(dataset_type, lo, hi) > 0
    tasks.check_samples(dataset_type, top, lo, hi)
    with pytest.raises(ConfigError, match=f"exceeds the {top} distinct {dataset_type} problems"):
        tasks.check_samples(dataset_type, top + 1, lo, hi)


def test_defaults_are_the_documented_ones():
    assert tasks.generate_problems("arithmetic", 20) == tasks.generate_problems("arithmetic", 20, 0, 20, 42)
    train = tasks.generate_problems("arithmetic", 20)
    assert tasks.held_out_problems("arithmetic", 10, train) == tasks.held_out_problems(
        "arithmetic", 10, train, 0, 20, 42
    )


def test_held_out_problems_keep_to_the_range_and_the_kind():
    train = tasks.generate_problems("mixed", 40, 5, 9, seed=1)
    held = tasks.held_out_problems("mixed", 40, train, 5, 9, seed=1)
    for p in held:
        numbers = [int(x) for x in re.findall(r"-?\d+", p.prompt)]
        assert p.task_type == "counting" or all(5 <= x <= 9 for x in numbers), p
    assert {p.task_type for p in held} == {"arithmetic", "counting", "comparison"}
    with pytest.raises(ConfigError, match="small_numbers uses the range"):
        tasks.held_out_problems("small_numbers", 5, [], 0, 20)


@pytest.mark.parametrize("space", [arithmetic._comparison_space(3, 6), arithmetic._arithmetic_space(-2, 1),
                                   arithmetic._counting_space()])  # fmt: skip
def test_a_space_numbers_every_problem_once_and_knows_what_is_not_in_it(space):
    prompts = [space.make(i).prompt for i in range(space.size)]
    assert len(set(prompts)) == space.size
    assert [space.index_of(p) for p in prompts] == list(range(space.size))
    for outside in ("Is 2 greater than 4? Answer yes or no: ", "Is 4 greater than 7? Answer yes or no: ",
                    "Calculate: 2 + 0 = ", "Calculate: 0 + -3 = ", "Calculate: 0 / 1 = ",
                    "Count the words: cat cat cat cat cat cat cat cat cat cat cat. Answer: ",
                    "Count the words: cow. Answer: ", "anything else"):  # fmt: skip
        assert space.index_of(outside) is None or space.make(space.index_of(outside)).prompt == outside
