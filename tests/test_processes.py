"""What a command leaves behind: a private temporary folder removed in every ending (and by the next command when
its owner was killed), and no process that outlives the grpo-lab process that started it."""

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from grpo_lab.processes import PARENT_ENV, TMP_ENV, host_tag, owner_pid, private_tmp, sweep_stale


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_owner_pid_reads_only_grpo_labs_own_names_made_on_this_host():
    here = host_tag()
    assert owner_pid(f"grpo-lab-123-{here}-abc") == 123 and owner_pid(f"grpo-lab-123-{here}-") == 123
    assert owner_pid(f"grpo-lab-123-{host_tag('elsewhere')}-abc") is None  # another machine's, in a shared /tmp
    assert owner_pid(f"grpo-lab-123-{host_tag('elsewhere')}-abc", "elsewhere") == 123
    for name in ("grpo-lab-123-abc", "grpo-lab-shared-x1", "grpo-lab-12", f"tmp-123-{here}-a", f"grpo-lab-١٢-{here}-x",
                 f"grpo-lab--{here}-x", f"grpo-lab-123{here}-x"):  # fmt: skip
        assert owner_pid(name) is None, name
    assert len(here) == 8 and here == host_tag()


def test_stale_folders_of_dead_commands_go_and_nothing_else(tmp_path):
    dead = dead_pid()
    here = host_tag()
    stale = tmp_path / f"grpo-lab-{dead}-{here}-abcd"
    (stale / "torchelastic_x").mkdir(parents=True)
    (stale / "torchelastic_x" / "error.json").write_text("{}")
    alive = tmp_path / f"grpo-lab-{os.getppid()}-{here}-abcd"  # a live process's folder
    alive.mkdir()
    mine = tmp_path / f"grpo-lab-{os.getpid()}-{here}-abcd"
    elsewhere = tmp_path / f"grpo-lab-{dead}-{host_tag('elsewhere')}-abcd"  # its PID means nothing here
    elsewhere.mkdir()
    mine.mkdir()
    a_file = tmp_path / f"grpo-lab-{dead}-{here}-file"
    a_file.write_text("not a folder")
    other = tmp_path / "keep"
    other.mkdir()
    link = tmp_path / f"grpo-lab-{dead}-{here}-link"
    link.symlink_to(other)
    assert sweep_stale(str(tmp_path)) == [str(stale)]
    assert not stale.exists()
    assert alive.exists() and mine.exists() and a_file.exists() and link.is_symlink() and other.exists()
    assert elsewhere.exists()
    assert sweep_stale(str(tmp_path / "missing")) == []


def test_the_private_folder_holds_the_commands_temporary_files_and_goes(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv(TMP_ENV, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", None)
    with private_tmp() as folder:
        assert os.path.dirname(folder) == str(tmp_path) and owner_pid(os.path.basename(folder)) == os.getpid()
        assert os.environ["TMPDIR"] == os.environ[TMP_ENV] == folder == tempfile.gettempdir()
        left = tempfile.mkdtemp(suffix="wandb-media")  # what a library never removes
        assert left.startswith(folder)
        with private_tmp() as inner:  # a command started by this one (same environment) uses the same folder
            assert inner == folder
        assert os.path.isdir(folder)
    assert not os.path.exists(folder) and list(tmp_path.iterdir()) == []
    assert os.environ["TMPDIR"] == str(tmp_path) and TMP_ENV not in os.environ and tempfile.tempdir is None


def test_a_folder_is_removed_when_the_command_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv(TMP_ENV, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", None)
    with pytest.raises(KeyboardInterrupt), private_tmp():
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


CHILD = textwrap.dedent("""
    import sys, time
    from grpo_lab.processes import follow_parent
    follow_parent()
    print("following", flush=True)
    time.sleep(120)
""")


def test_a_process_whose_starter_is_gone_ends_at_once():
    proc = subprocess.run([sys.executable, "-c", CHILD], env={**os.environ, PARENT_ENV: str(dead_pid())},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 143 and "following" not in proc.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_process_dies_with_the_grpo_lab_process_that_started_it(tmp_path):
    """A starter killed with kill -9 takes the processes it started with it (a launcher's ranks, a sweep's
    workers), instead of leaving them training on as orphans."""
    starter = textwrap.dedent(f"""
        import os, subprocess, sys, time
        env = {{**os.environ, {PARENT_ENV!r}: str(os.getpid())}}
        child = subprocess.Popen([sys.executable, "-c", {CHILD!r}], env=env, stdout=subprocess.PIPE, text=True)
        child.stdout.readline()
        print(child.pid, flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    from grpo_lab.store.sqlite_read import pid_alive

    deadline = time.time() + 10
    while pid_alive(child) and time.time() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child)


def test_how_a_launch_ended_becomes_an_exit_code_and_at_most_one_line():
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    from grpo_lab.errors import Terminated
    from grpo_lab.launch import launch_ending

    def exited_after(exc: BaseException, code: int) -> SystemExit:
        try:
            try:
                raise exc
            except BaseException:
                sys.exit(code)  # as accelerate's launcher does
        except SystemExit as ended:
            return ended

    assert launch_ending(exited_after(SignalException("got SIGINT", signal.SIGINT), 130)) == (130, None)
    assert launch_ending(exited_after(SignalException("got SIGTERM", signal.SIGTERM), 143)) == (143, None)
    assert launch_ending(exited_after(KeyboardInterrupt(), 130)) == (130, "interrupted")  # before any process ran
    assert launch_ending(SystemExit(None)) == (0, None) and launch_ending(SystemExit("no")) == (1, None)
    assert launch_ending(KeyboardInterrupt()) == (130, "interrupted")
    assert launch_ending(Terminated()) == (143, "terminated")
    assert launch_ending(SignalException("got SIGTERM", signal.SIGTERM)) == (143, None)

    def failed(**codes) -> ChildFailedError:
        return ChildFailedError("grpo_lab", {int(r[1:]): ProcessFailure(int(r[1:]), 100 + int(r[1:]), c, "-")
                                             for r, c in codes.items()})  # fmt: skip

    assert launch_ending(failed(r0=2, r1=2)) == (2, None)  # the main process said why in its line
    assert launch_ending(failed(r1=1)) == (1, None)
    code, line = launch_ending(failed(r0=-9))
    assert code == 137 and line == "process 0 (pid 100) was killed by SIGKILL; the launcher stopped the others"
    assert launch_ending(failed(r1=-64))[0] == 192
    assert launch_ending(RuntimeError("port in use")) == (1, "the launcher failed: RuntimeError: port in use")
