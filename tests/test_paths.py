"""The path checks (paths.py, pure): looking at a path never fails, and a file a command is about to write is never
the store, another output, a folder, a special file, or a name the file system cannot hold."""

import os
from pathlib import Path

import pytest

from grpo_lab import paths
from grpo_lab.errors import GrpoLabError


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "file.txt")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    os.mkfifo(tmp_path / "fifo")
    return tmp_path


def test_looking_never_fails(tree):
    assert paths.exists(tree / "file.txt") and paths.exists(str(tree / "folder")) and paths.exists(tree / "fifo")
    assert not paths.exists(tree / "missing") and not paths.exists(tree / "loop")  # a loop of links: not there
    assert not paths.exists(tree / ("a" * 300)) and not paths.exists("a\0b")  # ENAMETOOLONG, a NUL byte
    assert not paths.exists(tree / "file.txt" / "below")  # under a file
    assert paths.is_dir(tree / "folder") and not paths.is_dir(tree / "file.txt") and not paths.is_dir(tree / "nope")
    assert paths.is_file(tree / "file.txt") and paths.is_file(tree / "link")  # a link to a file is one
    assert not paths.is_file(tree / "folder") and not paths.is_file(tree / "fifo") and not paths.is_file(tree / "x")
    assert not paths.is_file("/dev/null")
    home = Path("~").expanduser()
    assert paths.is_dir("~") == home.is_dir()  # a person's ~ is expanded


def test_same_file_sees_links_and_spellings(tree):
    f = tree / "file.txt"
    assert paths.same_file(f, tree / "link") and paths.same_file(f, tree / "folder" / ".." / "file.txt")
    assert not paths.same_file(f, tree / "folder")
    assert paths.same_file(tree / "new.txt", tree / "folder" / ".." / "new.txt")  # neither there yet: the place
    assert not paths.same_file(tree / "new.txt", tree / "other.txt")
    assert not paths.same_file(f, tree / "new.txt")  # one there, one not
    assert not paths.same_file(tree / "loop" / "x", tree / "y")  # cannot be resolved: not the same
    assert not paths.same_file("a\0b", "a\0b")  # a name no file can have is no file


def test_same_file_is_false_when_the_files_cannot_be_compared(tree, monkeypatch):
    """Both there, but comparing them fails (one removed in between, a permission): not known to be one file."""

    def vanished(a, b):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(paths.os.path, "samefile", vanished)
    assert not paths.same_file(tree / "file.txt", tree / "link")


def check(path, suffixes=(".html", ".htm"), store=None, others=None, option="--out"):
    paths.check_target(option, Path(path), "an HTML file, e.g. --out report.html", suffixes, store, others)


def refused(message: str, *args, **kwargs) -> None:
    with pytest.raises(GrpoLabError) as caught:
        check(*args, **kwargs)
    assert str(caught.value) == message


def test_a_new_or_regular_file_with_the_right_suffix_is_fine(tree):
    check(tree / "report.html")
    check(tree / "r.HTM")  # the suffix in any case
    (tree / "old.html").write_text("an older report")
    check(tree / "old.html")  # replacing one's own output is what --out does
    check(tree / "new" / "deeper" / "r.html")  # folders made as needed
    check(tree / "anything", suffixes=())  # no suffix asked for
    check(tree / f"{'a' * 250}.html")  # 255 bytes: the longest name there is


def test_refusals_say_what_to_give(tree):
    want = "give an HTML file, e.g. --out report.html"
    refused(f"--out {tree / 'notes.md'} does not end in .html or .htm; {want}", tree / "notes.md")
    (tree / "dir.html").mkdir()
    refused(f"--out {tree / 'dir.html'} is a folder; {want}", tree / "dir.html")
    os.mkfifo(tree / "pipe.html")
    refused(f"--out {tree / 'pipe.html'} is not a regular file; {want}", tree / "pipe.html")
    refused(f"--out {tree / 'file.txt' / 'r.html'}: {tree / 'file.txt'} is a file, not a folder; choose another --out",
            tree / "file.txt" / "r.html")  # fmt: skip
    name = "a" * 252 + ".html"
    refused(f"--out: the name {name[:40]}... is longer than a file name may be; {want}", tree / name)
    refused("--out /proc/sys/r.html: cannot write in /proc/sys; choose a folder you can write to", "/proc/sys/r.html")
    refused(f"--screenshot {tree / 'x.png'} does not end in .html or .htm; {want}", tree / "x.png",
            option="--screenshot")  # fmt: skip


@pytest.mark.parametrize("side", ["", "-wal", "-shm", "-journal"])
def test_never_the_store_nor_a_link_to_it(tree, side):
    store = tree / "grpo_lab.db"
    store.write_bytes(b"SQLite format 3\0")
    (tree / f"grpo_lab.db{side}").write_bytes(b"x")
    (tree / "store.html").symlink_to(tree / f"grpo_lab.db{side}")
    refused(f"--out {tree / 'store.html'} is the store ({store}); give an HTML file, e.g. --out report.html",
            tree / "store.html", store=store)  # fmt: skip
    refused(f"--out {tree / f'grpo_lab.db{side}'} is the store ({store}); give an HTML file, e.g. --out report.html",
            tree / f"grpo_lab.db{side}", suffixes=(), store=store)  # fmt: skip
    check(tree / "report.html", store=store)
    check(tree / "report.html", store=tree / "missing.db")


def test_never_another_output_of_the_command(tree):
    message = "--out {} is the file --screenshot writes; give each output its own file"
    refused(message.format(tree / "r.html"), tree / "r.html", others={"--screenshot": tree / "r.html"})
    (tree / "r.html").write_text("x")
    (tree / "r-link.html").symlink_to(tree / "r.html")
    refused(message.format(tree / "r-link.html"), tree / "r-link.html", others={"--screenshot": tree / "r.html"})
    check(tree / "r.html", others={"--screenshot": None, "--other": tree / "s.png"})
