"""Whether a rerun reproduced its run (reproduce.py, pure): metric by metric, and the code each ran."""

import pytest

from grpo_lab.provenance import Code
from grpo_lab.reproduce import (
    DIFFERS,
    IDENTICAL,
    MISSING,
    NOISE_WORD,
    Line,
    code_line,
    code_of,
    compare_metrics,
    describe,
    reproduced,
    same_code,
    summary,
    verdict,
)


@pytest.mark.parametrize(
    ("a", "b", "word"),
    [(0.455, 0.455, IDENTICAL), (0.0, 0.0, IDENTICAL), (1.0, 1.0 + 5e-6, NOISE_WORD), (1.0, 1.0 + 2e-5, DIFFERS),
     (-2.0, -2.0 - 1.9e-5, NOISE_WORD), (-2.0, -2.0 - 2.1e-5, DIFFERS), (0.0, 1e-13, NOISE_WORD),
     (0.0, 2e-12, DIFFERS), (0.455, 0.46, DIFFERS), (None, 0.4, MISSING), (0.4, None, MISSING),
     (None, None, MISSING), (1e9, 1e9 + 9000, NOISE_WORD), (1e9, 1e9 + 11000, DIFFERS),
     # replication v2's baseline (mwo029jp) rerun: its final KL, a float32 mean, moved by 1.1e-6 relative
     (0.0167878, 0.0167878 + 1.86265e-08, NOISE_WORD)],
)  # fmt: skip
def test_a_metric_reproduces_identically_within_float_noise_or_not(a, b, word):
    assert verdict(a, b) == word
    assert verdict(b, a) == word


def test_a_looser_tolerance_calls_more_noise():
    assert verdict(1.0, 1.001) == DIFFERS and verdict(1.0, 1.001, tolerance=1e-2) == NOISE_WORD


def test_metrics_come_accuracies_first_then_before_and_gain_then_the_curve():
    original = {
        "kl": 0.1,
        "arith-v1_gain": 0.0,
        "held_out": 0.5,
        "arith-v1": 0.2,
        "train_acc[+]": 0.3,
        "train_acc": 0.25,
        "held_out_before": 0.5,
        "steps": 3,
        "arith-v1_overlap": 0.0,
        "held_out[*]": 0.1,
    }
    rerun = {**original, "kl": 0.1 + 1e-9, "held_out": 0.55, "mixed-v1": 0.4}
    del rerun["steps"]
    lines = compare_metrics(original, rerun)
    assert [line.metric for line in lines] == [
        "train_acc", "train_acc[+]", "held_out", "held_out[*]", "arith-v1", "mixed-v1", "held_out_before",
        "arith-v1_gain", "arith-v1_overlap", "kl", "steps"]  # fmt: skip
    by = {line.metric: line for line in lines}
    assert by["held_out"] == Line("held_out", 0.5, 0.55, DIFFERS) and by["held_out"].difference == pytest.approx(0.05)
    assert by["kl"].verdict == NOISE_WORD  # 1e-9 on 0.1: a relative 1e-8
    assert by["mixed-v1"].verdict == MISSING and by["mixed-v1"].difference is None
    assert by["steps"] == Line("steps", 3, None, MISSING)
    assert by["train_acc"].verdict == IDENTICAL and by["train_acc"].difference == 0


def test_summaries():
    same = [Line("a", 1, 1, IDENTICAL), Line("b", 2, 2, IDENTICAL)]
    assert summary(same) == "reproduced exactly: 2 of 2 metrics identical" and reproduced(same)
    noisy = [*same, Line("c", 1, 1 + 1e-9, NOISE_WORD)]
    assert summary(noisy) == "reproduced within float noise: 2 of 3 metrics identical, 1 within float noise"
    assert reproduced(noisy)
    bad = [*noisy, *(Line(f"d{i}", 1, 2, DIFFERS) for i in range(8)), Line("e", 1, None, MISSING)]
    assert not reproduced(bad)
    assert summary(bad) == ("not reproduced: 2 of 12 identical; 1 within float noise; 8 differ (d0, d1, d2, d3, d4, "
                            "d5 and 2 more); 1 missing (e)")  # fmt: skip
    assert summary([]) == "nothing to compare: neither run recorded a metric" and not reproduced([])


COMMIT, OTHER = "5a681becdbd9c79a2707887004e04d2e5836e01f", "33805cb" + "0" * 33


def test_describe_says_what_a_run_ran_and_whether_its_changes_were_kept():
    assert describe(Code()) == "no git commit (outside a git work tree)"
    assert describe(Code(COMMIT, False)) == "commit 5a681becdbd9"
    assert describe(Code(COMMIT, True, "diff --git ä\n", 14)) == (
        "commit 5a681becdbd9 and uncommitted changes (their diff kept, 14 bytes)")  # fmt: skip
    assert describe(Code(COMMIT, True, None, 2_000_000)) == (
        "commit 5a681becdbd9 and uncommitted changes (their diff of 2,000,000 bytes was not kept)")  # fmt: skip
    assert describe(Code(COMMIT, True)) == (
        "commit 5a681becdbd9 and uncommitted changes (not kept: recorded before grpo-lab kept them)")  # fmt: skip


@pytest.mark.parametrize(
    ("recorded", "now", "same"),
    [(Code(COMMIT, False), Code(COMMIT, False), True), (Code(COMMIT, False), Code(OTHER, False), False),
     (Code(COMMIT, True, "d"), Code(COMMIT, True, "d"), True),
     (Code(COMMIT, True, "d"), Code(COMMIT, True, "e"), False),
     (Code(COMMIT, True, "d"), Code(COMMIT, False), False), (Code(COMMIT, False), Code(COMMIT, True, "d"), False),
     (Code(COMMIT, True), Code(COMMIT, True, "d"), None), (Code(COMMIT, True), Code(COMMIT, False), None),
     (Code(), Code(COMMIT, False), None), (Code(COMMIT, False), Code(), None),
     (Code(COMMIT, True, None, 9), Code(OTHER), False)],
)  # fmt: skip
def test_whether_the_code_here_is_the_code_the_run_ran(recorded, now, same):
    assert same_code(recorded, now) is same


def test_the_reports_line_about_the_code():
    assert code_line(Code(COMMIT, False), Code(COMMIT, False)) == "the same: commit 5a681becdbd9"
    assert code_line(Code(COMMIT, True), Code(OTHER, False)) == (
        "differs: commit 5a681becdbd9 and uncommitted changes (not kept: recorded before grpo-lab kept them) then, "
        "commit 33805cb00000 now")  # fmt: skip
    assert code_line(Code(COMMIT, True), Code(COMMIT, False)) == (
        "commit 5a681becdbd9 and uncommitted changes (not kept: recorded before grpo-lab kept them) then; commit "
        "5a681becdbd9 now: whether the changes are the same is unknown")  # fmt: skip
    assert code_line(Code(), Code()) == "unknown: neither run ran in a git work tree"
    assert code_line(Code(), Code(COMMIT, False)) == (
        "unknown: no git commit (outside a git work tree) then, commit 5a681becdbd9 now")  # fmt: skip


def test_code_of_a_row_recorded_before_diffs_were_kept():
    class Old:
        git_commit, git_dirty = COMMIT, True

    assert code_of(Old()) == Code(COMMIT, True, None, None)
