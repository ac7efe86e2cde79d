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
