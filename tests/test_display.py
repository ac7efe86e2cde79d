"""Terminal views: progress that reaches a log file while training runs, and tables that fit the terminal."""

import io
import re

from rich.console import Console

from grpo_lab.display import LiveView, progress_line


class Log(io.StringIO):
    """A log file (not a terminal) that counts flushes: a line must reach the file when it is printed."""

    flushes = 0

    def flush(self):
        self.flushes += 1
        super().flush()


def test_without_a_terminal_training_prints_plain_progress_lines_as_it_goes():
    log = Log()
    view = LiveView(Console(file=log, width=80))
    assert not view.out.is_terminal
    view.on_train_begin(40)
    shown = []
    for step in range(1, 41):
        view.on_step(step, {"reward": -0.5 + step / 100, "frac_reward_zero_std": 0.25, "kl": 0.0123})
        shown.append(log.getvalue().count("\n"))
    view.close()
    lines = log.getvalue().splitlines()
    assert lines[0] == "training: 40 steps, a line every 2"
    steps = [int(re.match(r"step (\d+)/40  ", line)[1]) for line in lines[1:]]
    assert steps == list(range(2, 41, 2))  # every 2nd step, the last one included
    assert shown[1] == 2 and shown[2] == 2 and shown[3] == 3  # each line written when its step ends
    assert log.flushes >= len(lines)
    assert re.fullmatch(
        r"step 40/40  reward -0\.100  zero-std 0\.25  kl 0\.0123  elapsed 0:00:\d\d  eta 0:00:00", lines[-1]
    )
    assert "━" not in log.getvalue()  # no bar drawn into the file


def test_a_slow_run_still_prints_at_least_every_so_often():
    log = io.StringIO()
    view = LiveView(Console(file=log, width=80))
    view.QUIET_SECONDS = 0.0  # every step is "a minute later"
    view.on_train_begin(1000)  # a line every 50 steps otherwise
    for step in (1, 2, 3):
        view.on_step(step, {"reward": 0.0})
    assert [line.split("  ")[0] for line in log.getvalue().splitlines()[1:]] == ["step 1/1000", "step 2/1000",
                                                                                 "step 3/1000"]  # fmt: skip


def test_progress_line_estimates_the_time_left():
    assert progress_line(10, 40, "reward +0.100", 30.0) == "step 10/40  reward +0.100  elapsed 0:00:30  eta 0:01:30"
    assert progress_line(0, 40, "x", 0.0).endswith("eta -")
    assert progress_line(3, 3, "x", 3725.4).endswith("elapsed 1:02:05  eta 0:00:00")


def test_on_a_terminal_training_shows_a_live_bar():
    log = io.StringIO()
    view = LiveView(Console(file=log, width=100, force_terminal=True))
    view.on_train_begin(4)
    view.on_step(2, {"reward": 0.5})
    view.close()
    assert "training" in log.getvalue() and "2/4" in log.getvalue() and "step 2/4" not in log.getvalue()


# --- tables that fit --------------------------------------------------------------------------------------------

from grpo_lab.layout import Column, fit, plain, terminal_table  # noqa: E402


def render(table, width: int) -> list[str]:
    buf = io.StringIO()
    Console(file=buf, width=width).print(table)
    return buf.getvalue().splitlines()


def columns():
    return [
        Column("id", "id", ["abcd1234", "efgh5678"], 0),
        Column("name", "name", ["a_rather_long_experiment_name", "short"], 2, flex=True, min_width=10),
        Column("held_out", "held_out", ["45.0%", "50.5%"], 1, right=True),
        Column("learning_rate", "lr", ["5e-05", "0.0001"], 3),
        Column("diagnostics", "diagnostics", ["zero-std kl-range overfitting", "-"], 9),
    ]


def test_a_terminal_table_keeps_what_matters_and_names_what_it_left_out():
    for width in (40, 60, 80, 130):
        lines = render(terminal_table(columns(), width, "2 runs", more=": --all-columns shows them"), width)
        assert all(len(line) <= width for line in lines), (width, lines)
        body = "\n".join(lines)
        assert "abcd1234" in body and "45.0%" in body  # the columns that matter most survive
        if width == 40:  # the flexible column is cut short, with an ellipsis
            assert "a_rather_long_experiment_name" not in body and "a_rather_long_exp…" in body
    narrow = "\n".join(render(terminal_table(columns(), 40, more=": --all-columns shows them"), 40))
    assert "2 more columns (learning_rate, diagnostics): --all-columns shows them" in " ".join(narrow.split())
    wide = "\n".join(render(terminal_table(columns(), 130), 130))
    assert "more column" not in wide and "zero-std kl-range overfitting" in wide


def test_fit_drops_the_lowest_priority_first_and_keeps_the_first_column():
    kept, dropped = fit(columns(), 40)
    assert [c.key for c in dropped] == ["diagnostics", "learning_rate"]
    assert [c.key for c in kept] == ["id", "name", "held_out"]
    kept, _ = fit(columns(), 1)
    assert [c.key for c in kept] == ["id"]


def test_plain_text_keeps_every_column_whole_and_aligned():
    text = plain(columns())
    lines = text.splitlines()
    assert lines[0].split() == ["id", "name", "held_out", "lr", "diagnostics"]
    assert "a_rather_long_experiment_name" in lines[1] and lines[1].endswith("zero-std kl-range overfitting")
    assert lines[1].index("45.0%") == lines[2].index("50.5%")  # right-aligned numbers line up
    assert lines[2].rstrip() == lines[2] and "…" not in text


def test_runs_fit_a_terminal_and_are_whole_in_a_pipe(isolated):
    import json

    from conftest import call

    from grpo_lab import compare as cmp
    from grpo_lab.store import Rows
    from grpo_lab.store.db import Run, Store

    store = Store(f"sqlite:///{isolated / 'grpo_lab.db'}")
    hypothesis = "a long hypothesis that says in many words what this run tests and why it matters " * 2
    for i in range(3):
        store.create_run(Run(id=f"run0000{i}", exp_name=f"an_experiment_with_a_long_name_{i}", status="running",
                             started_at=f"2026-01-0{i + 1}T10:00:00+00:00", host="h", model_name="tiny-arith",
                             hypothesis=hypothesis, config=json.dumps({})))  # fmt: skip
        store.finish_run(f"run0000{i}", "finished", metrics={"held_out": 0.5, "held_out_before": 0.4})
    piped = call("runs").stdout  # not a terminal: plain aligned text, every cell whole
    lines = [line for line in piped.splitlines() if line.startswith("run0000")]
    assert len(lines) == 3 and all(hypothesis.strip() in line for line in lines)
    assert len({line.index(hypothesis.strip()) for line in lines}) == 1  # aligned
    table = cmp.runs_table(Rows(str(isolated / "grpo_lab.db"))(last=20))
    for width in (80, 130):
        out = io.StringIO()
        Console(file=out, width=width, force_terminal=True, color_system=None).print(cmp.to_rich(table, width))
        shown = out.getvalue().splitlines()
        assert all(len(line) <= width for line in shown), shown
        rows = [line for line in shown if "run0000" in line]
        assert len(rows) == 3  # each run on one line: no cell wrapped
        assert width == 80 or all("40.0% -> 50.0%" in row for row in rows)
        assert width == 130 or "more column" in out.getvalue()  # what did not fit is named, not squeezed


def test_sweep_status_fits_the_width_and_leaves_out_statuses_no_arm_has():
    from types import SimpleNamespace

    from grpo_lab.display import sweep_status_table

    statuses = dict.fromkeys(("queued", "running", "finished", "failed", "interrupted", "crashed"), 0)
    rows = [{"arm": "baseline", "seeds": 8, **statuses, "queued": 5, "finished": 3, "verdicts": "confirmed×3"},
            {"arm": "a_long_arm_name_for_beta", "seeds": 8, **statuses, "running": 1, "finished": 7,
             "verdicts": "rejected×7"}]  # fmt: skip
    sweep = SimpleNamespace(id="2tr6hk3n", name="replication-v2", baseline="a_long_arm_name_for_beta")
    for width in (50, 80, 130):
        out = io.StringIO()
        Console(file=out, width=width, color_system=None).print(sweep_status_table(rows, sweep, width))
        text = out.getvalue()
        assert all(len(line) <= width for line in text.splitlines()), text
        assert "failed" not in text and "crashed" not in text and "interrupted" not in text
        assert "5 queued, 1 running, 10 finished of 16 runs" in text
        assert text.splitlines()[0].strip() == "Sweep 2tr6hk3n replication-v2" and "finished" in text.splitlines()[1]
    assert "rejected×7" in text and "a_long_arm_name_for_beta (baseline)" in text  # at 130 nothing is cut


def test_names_cut_short_leave_out_the_prefix_they_share_not_their_ends():
    """Cut at the end, replication-v2_partial and replication-v2_mixed both read "replication-v…": a flexible
    column that must be cut drops the prefix every cell shares (named in a note) before anything else."""
    from grpo_lab.layout import Column, terminal_table

    names = ["replication-v2_partial", "replication-v2_mixed", "replication-v2_baseline"]

    def shown(width):
        columns = [Column("id", "id", ["a1", "b2", "c3"], priority=0),
                   Column("name", "name", names, priority=1, flex=True, min_width=8),
                   Column("value", "value", ["21.5%", "20.4%", "20.1%"], priority=2, right=True)]  # fmt: skip
        out = io.StringIO()
        Console(file=out, width=width, color_system=None).print(terminal_table(columns, width))
        return out.getvalue()

    narrow = shown(30)
    assert "…partial" in narrow and "…mixed" in narrow and "…baseline" in narrow
    assert "name: … = replication-v2_" in " ".join(narrow.split()) and "replication-v…" not in narrow
    wide = shown(80)
    assert all(n in wide for n in names) and "…" not in wide


def test_compare_keeps_the_config_that_differs_before_results_at_80_and_130_columns(isolated):
    """Runs that differ in one flag left unset in one of them (max_steps) and in a few others: at 80 and at 130
    columns every differing config column is shown before any result column that --where or --sort did not name;
    a result they name is kept first. An evaluation-only run's missing batch is no difference."""
    import json

    from grpo_lab import compare as cmp
    from grpo_lab.store import Rows
    from grpo_lab.store.db import Run, Store

    store = Store(f"sqlite:///{isolated / 'grpo_lab.db'}")
    base = {"dataset_type": "arithmetic", "batch_size": 256, "num_generations": 16, "learning_rate": 5e-5,
            "beta": 0.1, "seed": 42, "model_name": "tiny-arith", "eval_suite": "arith-v1"}  # fmt: skip
    runs = [("a", {"max_steps": None}), ("b", {"max_steps": 60}), ("c", {"max_steps": 60, "beta": 0.0}),
            ("d", {"max_steps": 60, "temperature": 1.0, "seed": 7})]  # fmt: skip
    for i, (name, changed) in enumerate(runs):
        store.create_run(Run(id=f"run0000{i}", exp_name=f"cpu_quick_{name}", status="running", host="h",
                             started_at=f"2026-01-0{i + 1}T10:00:00+00:00", model_name="tiny-arith",
                             config=json.dumps({**base, "temperature": 0.7, **changed})))  # fmt: skip
        store.finish_run(f"run0000{i}", "finished", verdict="unchecked", metrics={
            "held_out": 0.5 + i / 100, "held_out_before": 0.4, "train_acc": 0.6, "final_reward": -0.2 + i / 10,
            "arith-v1": 0.2 + i / 100, "arith-v1[+]": 0.3, "zero_std": 0.1 * i, "steps": 60})  # fmt: skip
    store.create_run(Run(id="eval0000", kind="eval", exp_name="eval_tiny-arith", status="running", host="h",
                         started_at="2026-01-09T10:00:00+00:00", model_name="tiny-arith",
                         config=json.dumps({"model_name": "tiny-arith", "suites": ["arith-v1"]})))  # fmt: skip
    store.finish_run("eval0000", "finished", metrics={"arith-v1": 0.15})
    rows = Rows(str(isolated / "grpo_lab.db"))
    differing = {"max_steps", "beta", "temperature"}  # seed differs too, but it never changes the experiment
    results = {"held_out", "arith-v1", "train_acc", "final_reward", "zero_std", "duration", "arith-v1[+]"}

    def shown(width: int, **options) -> list[str]:
        return [c.key for c in fit(cmp.terminal_columns(cmp.compare(rows, ["run000"], **options)), width)[0]]

    for width in (80, 130):
        keys = shown(width)
        assert differing <= set(keys), (width, keys)
        assert width == 80 or results & set(keys), keys  # at 130 there is room for results too
        priority = {c.key: c.priority for c in cmp.terminal_columns(cmp.compare(rows, ["run000"]))}
        assert max(priority[k] for k in differing) < min(priority[k] for k in results)  # results go first
        asked = shown(width, sort="-arith-v1", where="held_out > 0")
        assert {"arith-v1", "held_out"} <= set(asked) and differing <= set(asked), asked
        out = io.StringIO()
        Console(file=out, width=width, force_terminal=True, color_system=None).print(
            cmp.to_rich(cmp.compare(rows, ["run000"]), width))  # fmt: skip
        text = out.getvalue()
        assert all(len(line) <= width for line in text.splitlines()) and "max_steps" in text
        assert sum(line.startswith("run0000") for line in text.splitlines()) == 4
    # an evaluation-only run beside them has no max_steps: that is no difference between the training runs
    everything = cmp.compare(rows, None, where="max_steps = 60")
    assert "eval0000" not in [r["id"] for r in everything.rows]
    with_eval = cmp.compare(rows, ["run00001", "eval0000"])
    priority = {c.key: c.priority for c in cmp.terminal_columns(with_eval)}
    assert priority.get("max_steps", 95) >= 95 and priority.get("batch_size", 95) >= 95
