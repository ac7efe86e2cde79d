"""The one lifecycle of a recorded command, on a real store: every ending, the heartbeat, signals, ranks."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from grpo_lab.lifecycle import Lifecycle, Ranks
from grpo_lab.store.db import Run, Store, iso, now
from grpo_lab.training import group_advantages, pick_samples


@pytest.fixture
def store(isolated):
    return Store(f"sqlite:///{isolated / 'life.db'}")


def row(run_id="life0001"):
    return Run(id=run_id, exp_name="x", started_at=iso(now()), heartbeat_at=iso(now()), host=socket.gethostname(),
               pid=os.getpid(), model_name="m")  # fmt: skip


def ended(store, life):
    with life.finishing():
        life.finish(summary="{}")
    return store.find_run(life.run_id).run


def test_a_finished_command(store):
    life = Lifecycle(store, row())
    with life:
        assert store.find_run("life0001").run.status == "running"
    run = ended(store, life)
    assert (run.status, run.error, life.exit_code) == ("finished", None, 0) and run.finished_at


@pytest.mark.parametrize(
    ("raised", "status", "error", "code"),
    [
        (KeyboardInterrupt(), "interrupted", "interrupted by Ctrl-C", 130),
        (ValueError("bad weights"), "failed", "ValueError: bad weights", 1),
    ],
)
def test_every_ending_is_recorded_and_not_raised(store, raised, status, error, code):
    life = Lifecycle(store, row())
    with life:
        raise raised
    run = ended(store, life)
    assert (run.status, run.error, life.exit_code) == (status, error, code)


def test_sigterm_is_an_interruption_and_the_handler_is_restored(store):
    before = signal.getsignal(signal.SIGTERM)
    life = Lifecycle(store, row())
    with life:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises long before this ends
    run = ended(store, life)
    assert (run.status, run.error, life.exit_code) == ("interrupted", "terminated by SIGTERM", 143)
    assert signal.getsignal(signal.SIGTERM) is before


def test_signals_wait_while_the_ending_is_written(store):
    life = Lifecycle(store, row())
    with life:
        pass
    with life.finishing():
        os.kill(os.getpid(), signal.SIGTERM)  # ignored: the row must not be left running
        os.kill(os.getpid(), signal.SIGINT)
        life.finish()
    assert store.find_run("life0001").run.status == "finished"


@pytest.mark.parametrize("beats", [True, False])
def test_the_heartbeat_keeps_a_long_command_from_being_reaped(store, monkeypatch, beats):
    """Another host cannot see the pid, only the heartbeat: with it the run stays running; without it
    (a heartbeat interval longer than the command) the same wait gets it marked crashed."""
    monkeypatch.setenv("GRPO_LAB_STALE_SECONDS", "1.5")
    life = Lifecycle(store, row(), heartbeat=0.2 if beats else 1000)
    reaped = []
    with life:
        for _ in range(8):
            time.sleep(0.5)
            reaped += store.reap(host="another-host")
    assert (reaped == []) is beats
    if beats:
        assert ended(store, life).status == "finished"


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_ranks_name_a_dead_peer():
    here = socket.gethostname()
    assert Ranks(0, (os.getpid(), os.getppid()), (here, here)).dead_peer() is None
    gone = dead_pid()
    assert Ranks(0, (os.getpid(), gone), (here, here)).dead_peer() == f"rank 1 (pid {gone}) died"
    assert Ranks(0, (os.getpid(), gone), (here, "elsewhere")).dead_peer() is None  # not ours to judge


def test_sigterm_while_a_rank_is_dead_is_a_failure(store):
    """torchrun stops the other processes with SIGTERM when one dies: that run failed, it was not interrupted."""
    here = socket.gethostname()
    gone = dead_pid()
    life = Lifecycle(store, row(), Ranks(0, (os.getpid(), gone), (here, here)))
    with life:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    run = ended(store, life)
    assert run.status == "failed" and run.error.startswith(f"rank 1 (pid {gone}) died") and life.exit_code == 1


def test_other_ranks_record_nothing_and_ignore_sigterm(store):
    here = socket.gethostname()
    life = Lifecycle(ranks=Ranks(1, (os.getppid(), os.getpid()), (here, here)))
    with life:
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # the main process decides how the run ended
    with life.finishing():
        life.finish()
    assert store.runs() == [] and life.status == "finished"


def test_group_advantages_are_trls():
    from trl.trainer.utils import nanstd

    rewards = [1.0, -1.0, -1.0, 1.0, 1.0, -1.0, 0.5, 0.25]
    t = torch.tensor(rewards)
    expected = ((t - t.mean()) / (nanstd(t) + 1e-4)).tolist()
    assert group_advantages(rewards) == pytest.approx(expected)
    assert group_advantages([1.0, 1.0, 1.0, 1.0]) == [0.0] * 4


def test_samples_come_from_whole_groups_one_per_prompt():
    prompts = ["a"] * 2 + ["b"] * 4 + ["c"] * 4 + ["d"] * 3  # a process's share may cut the first and last group
    completions = [f"{p}{i}" for i, p in enumerate(prompts)]
    rewards = [1.0, -1.0, 1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 1.0]
    samples = pick_samples(7, prompts, completions, rewards, group_size=4, count=4)
    assert [(s.step, s.prompt, s.completion) for s in samples] == [(7, "b", "b2"), (7, "c", "c6")]
    assert samples[0].advantage == pytest.approx(group_advantages([1.0, -1.0, -1.0, -1.0])[0])
    assert samples[1].reward == 1.0 and samples[1].advantage == 0.0
