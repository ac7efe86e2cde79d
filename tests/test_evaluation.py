from grpo_lab import evaluation, models, tasks
from grpo_lab.evaluation import EvalResult, score
from grpo_lab.tasks import arithmetic_problem, comparison_problem, counting_problem


def test_per_group_counts_on_a_hand_built_fixture():
    problems = [
        arithmetic_problem(1, "+", 1, "easy"),  # answer 2
        arithmetic_problem(2, "+", 2, "easy"),  # 4
        arithmetic_problem(3, "*", 3, "hard"),  # 9
        counting_problem("cat", 3, "easy"),  # 3
        comparison_problem(5, 2, "easy"),  # yes
    ]
    completions = ["2", "5", " 9 and more", "3", "no"]
    result = score(problems, completions, "fixture")
    assert (result.overall.correct, result.overall.total) == (3, 5)
    groups = result.groups()
    assert {g: (c.correct, c.total) for g, c in groups["operation"].items()} == {
        "+": (1, 2),
        "*": (1, 1),
        "count": (1, 1),
        "compare": (0, 1),
    }
    assert {g: (c.correct, c.total) for g, c in groups["task_type"].items()} == {
        "arithmetic": (2, 3),
        "counting": (1, 1),
        "comparison": (0, 1),
    }
    assert {g: (c.correct, c.total) for g, c in groups["difficulty"].items()} == {"easy": (2, 4), "hard": (1, 1)}
    assert result.predictions[2].extracted == "9"
    d = result.to_dict()
    assert d["accuracy"] == 0.6 and d["groups"]["operation"]["+"] == {"correct": 1, "total": 2}


def test_empty_result():
    assert EvalResult("x", []).accuracy == 0.0


def _tiny():
    path = models.resolve("tiny-arith").path
    return models.load_model(path), models.load_tokenizer(path)


def test_the_same_model_twice_gives_identical_outputs():
    model, tok = _tiny()
    problems = tasks.generate_problems("mixed", 120, seed=2)
    a = evaluation.evaluate(model, tok, problems, "x", batch_size=64)
    b = evaluation.evaluate(model, tok, problems, "x", batch_size=64)
    assert [p.completion for p in a.predictions] == [p.completion for p in b.predictions]
    assert 0.2 < a.accuracy < 0.9  # the tiny model is partially competent


def test_stopping_at_the_answer_changes_no_extracted_answer():
    model, tok = _tiny()
    problems = tasks.generate_problems("mixed", 200, seed=4)
    prompts, kinds = [p.prompt for p in problems], [p.task_type for p in problems]
    stopped = evaluation.generate_greedy(model, tok, prompts, kinds, stop_at_answer=True)
    full = evaluation.generate_greedy(model, tok, prompts, kinds, stop_at_answer=False)
    assert [s.extracted for s in score(problems, stopped, "x").predictions] == [
        f.extracted for f in score(problems, full, "x").predictions
    ]


def test_stopping_at_the_answer_is_exact_on_the_full_standard_suites():
    """The early stop never changes an extracted answer: every suite prompt, stopped vs run to max_new_tokens."""
    from grpo_lab.suites import load_suite

    model, tok = _tiny()
    for name in ("arith-v1", "mixed-v1"):
        problems = load_suite(name)
        prompts, kinds = [p.prompt for p in problems], [p.task_type for p in problems]
        stopped = score(problems, evaluation.generate_greedy(model, tok, prompts, kinds, stop_at_answer=True), name)
        full = score(problems, evaluation.generate_greedy(model, tok, prompts, kinds, stop_at_answer=False), name)
        assert [p.extracted for p in stopped.predictions] == [p.extracted for p in full.predictions]
        assert stopped.accuracy == full.accuracy


def test_batch_size_does_not_change_results():
    from grpo_lab.suites import load_suite

    model, tok = _tiny()
    problems = load_suite("arith-v1")
    whole = evaluation.evaluate(model, tok, problems, "s", batch_size=200)
    chunks = evaluation.evaluate(model, tok, problems, "s", batch_size=7)
    assert [p.extracted for p in whole.predictions] == [p.extracted for p in chunks.predictions]
