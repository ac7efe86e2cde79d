"""`grpo-lab journal render`: the seed's entry format, idempotent, safe for hand-written text."""

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import call
from markdown_it import MarkdownIt

from grpo_lab.criteria import decide, parse
from grpo_lab.metrics import compute
from grpo_lab.store.db import Run, Store

HEADING = re.compile(r"^### (?P<name>.+) - (?P<when>\d{4}-\d{2}-\d{2}_\d{2}:\d{2}) - Run ID: (?P<id>[a-z0-9]{8})$")


def add_run(store, run_id, status, started, error=None, steps=3, hypothesis="h", tags=("t",), criteria=None):
    store.create_run(Run(
        id=run_id, exp_name=f"exp_{status}", status="running", started_at=started, host="h", model_name="tiny-arith",
        hypothesis=hypothesis, command=f"grpo-lab run --seed 1 --hypothesis {hypothesis}", criteria=criteria,
        tags=json.dumps(list(tags)), config=json.dumps({"beta": 0.1, "num_generations": 16}),
    ))  # fmt: skip
    curve = [(i, {"reward": -0.5 + i / 10, "frac_reward_zero_std": 0.7, "kl": 0.02}) for i in range(1, steps + 1)]
    results = [("before", "arith-v1", "overall", "", 60, 200), ("after", "arith-v1", "overall", "", 80, 200),
               ("before", "arith-v1", "operation", "+", 30, 80), ("after", "arith-v1", "operation", "+", 40, 80),
               ("before", "held_out", "overall", "", 70, 200), ("after", "held_out", "overall", "", 90, 200),
               ("before", "train", "overall", "", 30, 100), ("after", "train", "overall", "", 50, 100)]  # fmt: skip
    store.record(run_id, steps=curve, results=results)
    values = compute(curve, results, {"arith-v1": 0})
    verdict = decide(criteria, parse(criteria, {"train": [], "held_out": [], "arith-v1": ["+"]}), values, status)
    store.finish_run(run_id, status, error, metrics=values, verdict=verdict.status, verdict_detail=verdict.detail)


@pytest.fixture
def store(recorded_store, isolated):
    """The module's real finished run, plus a failed and an interrupted run, in a copy of its store."""
    db, run_id = recorded_store
    shutil.copy(db, isolated / "grpo_lab.db")
    s = Store(f"sqlite:///{isolated / 'grpo_lab.db'}")
    add_run(s, "failed01", "failed", "2026-01-02T10:00:00+00:00", error="RuntimeError: boom")
    add_run(s, "interr01", "interrupted", "2026-01-03T11:30:00+00:00", error="interrupted by Ctrl-C", tags=("x",))
    add_run(s, "reject01", "finished", "2026-01-04T09:00:00+00:00", criteria="arith-v1 >= 0.42 and held_out_gain > 0")
    return s, run_id


def test_entries_start_with_the_seeds_four_lines(cli, store, isolated):
    s, real_id = store
    proc = cli("journal", "render")
    assert proc.returncode == 0, proc.stderr
    text = (isolated / "journal" / "research_journal.md").read_text()
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("### ")]
    assert len(starts) == 4
    seen = {}
    for i in starts:
        m = HEADING.match(lines[i])
        assert m, lines[i]
        assert lines[i + 1].startswith("**Hypothesis**: ") and lines[i + 1].endswith("  ")  # a line break in Markdown
        assert lines[i + 2].startswith("**Command**: `grpo-lab run ") and lines[i + 2].endswith("`  ")
        assert lines[i + 3].startswith("**Results**: ")
        seen[m["id"]] = lines[i + 3]
    assert set(seen) == {real_id, "failed01", "interr01", "reject01"}
    assert "status failed (RuntimeError: boom)" in seen["failed01"]
    assert "status interrupted" in seen["interr01"]
    assert (
        "held-out accuracy" in seen[real_id] and "on arith-v1" in seen[real_id] and "status finished" in seen[real_id]
    )
    assert "### exp_failed - 2026-01-02_10:00 - Run ID: failed01" in lines
    # entries are in chronological order, each with its plot beside the journal
    assert [HEADING.match(lines[i])["id"] for i in starts][:2] == ["failed01", "interr01"]
    for rid in seen:
        assert (isolated / "journal" / "assets" / f"{rid}.png").read_bytes().startswith(b"\x89PNG")


def test_the_seeds_four_lines_stay_four_lines_in_a_markdown_viewer(cli, store, isolated):
    """A Markdown viewer joins consecutive lines into one paragraph; the seed's lines end in a hard line break."""
    assert cli("journal", "render").returncode == 0
    html = MarkdownIt("commonmark").render((isolated / "journal" / "research_journal.md").read_text())
    assert html.count("<p><strong>Hypothesis</strong>: ") == 4
    for paragraph in html.split("<p><strong>Hypothesis</strong>: ")[1:]:
        first = paragraph.split("</p>")[0]
        assert first.count("<br />\n") == 2 and "<br />\n<strong>Command</strong>: <code>grpo-lab run" in first
        assert "<br />\n<strong>Results</strong>: " in first


def test_entries_parse_as_markdown(cli, store, isolated):
    assert cli("journal", "render").returncode == 0
    tokens = MarkdownIt("commonmark").enable("table").parse((isolated / "journal" / "research_journal.md").read_text())
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h3"]
    assert len(headings) == 4 and all(HEADING.match("### " + h) for h in headings)
    assert sum(t.type == "table_open" for t in tokens) == 4
    inline = " ".join(t.content for t in tokens if t.type == "inline")
    assert inline.count("**Hypothesis**: ") == 4 and "![" in inline
    images = [c for t in tokens if t.type == "inline" for c in t.children or [] if c.type == "image"]
    ids = ("failed01", "interr01", "reject01", store[1])
    assert {img.attrs["src"] for img in images} == {f"assets/{rid}.png" for rid in ids}


GOLDEN = """\
<!-- grpo-lab:begin failed01 -->
### exp_failed - 2026-01-02_10:00 - Run ID: failed01
**Hypothesis**: h\x20\x20
**Command**: `grpo-lab run --seed 1 --hypothesis h`\x20\x20
**Results**: Achieved 45.0% held-out accuracy (90/200 of its own held-out problems, up from 35.0%), 40.0% on \
arith-v1 (80/200, from 30.0%), train accuracy 50.0% (from 30.0%), final train reward -0.200 (mean of the last 10% \
of steps); per operation on arith-v1: + 50.0%; status failed (RuntimeError: boom); learned that the KL term never \
engaged.

- Expected: more
- Comment: rerun with 2 threads

| accuracy | before | after |
| --- | ---: | ---: |
| held_out overall | 35.0% | 45.0% |
| train overall | 30.0% | 50.0% |
| arith-v1 overall | 30.0% | 40.0% |
| arith-v1 operation + | 37.5% | 50.0% |

Diagnostics:
- ⚠️ frac_reward_zero_std 0.70 > 0.5: most groups have identical rewards; raise temperature or num_generations
- ℹ️ final KL 0.02 outside the seed's 0.5-1.0 range (informational)

![exp_failed failed01: reward, zero-std fraction, KL and accuracy per operation on each suite](assets/failed01.png)
<!-- grpo-lab:end failed01 -->
"""


def test_the_results_line_states_the_computed_verdict(cli, store):
    out = cli("journal", "render", "reject01", "--stdout").stdout
    (results,) = [line for line in out.splitlines() if line.startswith("**Results**")]
    assert results.startswith(
        "**Results**: Hypothesis (arith-v1 >= 42% and held_out rises) rejected: arith-v1 0.4 < "
        "0.42. Achieved 45.0% held-out"
    )  # the criterion in words beside the verdict
    assert "- Success criteria (written before the run): arith-v1 >= 0.42 and held_out_gain > 0 -> rejected" in out


def test_runs_recorded_before_suites_were_held_out_carry_a_footnote(cli, store):
    s, _ = store
    s.update_run("reject01", suites_disjoint=False)
    out = cli("journal", "render", "reject01", "--stdout").stdout
    assert "40.0% on arith-v1† (80/200" in out
    assert "† recorded before grpo-lab held suite problems out of training sets" in out
    assert "(0 of its training problems are in arith-v1)" in out
    assert "†" not in cli("journal", "render", "failed01", "--stdout").stdout


def test_an_entry_renders_exactly(cli, store, isolated):
    s, _ = store
    s.update_run("failed01", expected="more")
    s.add_note("failed01", "the KL term never engaged", "learning")
    s.add_note("failed01", "rerun with 2 threads", "comment")
    assert cli("journal", "render", "failed01").returncode == 0
    text = (isolated / "journal" / "research_journal.md").read_text()
    assert text.split("\n\n", 2)[2] == GOLDEN


def test_rendering_twice_changes_nothing(cli, store, isolated):
    journal = isolated / "journal"
    assert cli("journal", "render").returncode == 0
    before = {p.name: p.read_bytes() for p in journal.rglob("*") if p.is_file()}
    mtimes = {p.name: p.stat().st_mtime_ns for p in journal.rglob("*") if p.is_file()}
    proc = cli("journal", "render")
    assert proc.returncode == 0 and "(0 plots updated)" in proc.stdout
    assert {p.name: p.read_bytes() for p in journal.rglob("*") if p.is_file()} == before
    assert {p.name: p.stat().st_mtime_ns for p in journal.rglob("*") if p.is_file()} == mtimes


def test_rendering_keeps_file_permissions(cli, store, isolated):
    import os
    import stat

    os.umask(0o022)
    assert cli("journal", "render").returncode == 0
    path = isolated / "journal" / "research_journal.md"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(next((isolated / "journal" / "assets").iterdir()).stat().st_mode) == 0o644
    path.chmod(0o664)
    assert cli("note", "failed01", "changes the entry").returncode == 0
    assert cli("journal", "render").returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o664


def test_hand_written_text_survives_rerendering_and_notes(cli, store, isolated):
    path = isolated / "journal" / "research_journal.md"
    assert cli("journal", "render").returncode == 0
    text = path.read_text()
    mine_top = "My notes before everything.\n"
    mine_mid = "\n## Week 1 thoughts\nThe failed run was my fault.\n"
    first_end = text.index("<!-- grpo-lab:end failed01 -->\n") + len("<!-- grpo-lab:end failed01 -->\n")
    path.write_text(mine_top + text[:first_end] + mine_mid + text[first_end:] + "\nClosing words.\n")
    assert cli("note", "interr01", "it was the power cut", "--kind", "learning").returncode == 0
    assert cli("journal", "render").returncode == 0
    after = path.read_text()
    assert after.startswith(mine_top) and mine_mid in after and after.endswith("\nClosing words.\n")
    assert "; learned that it was the power cut." in after
    assert after.count("<!-- grpo-lab:begin interr01 -->") == 1


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("broken.md.j2", "broken.md.j2 line 2: "),
        ("undefined.md.j2", "undefined.md.j2 line 1: 'dict object' has no attribute 'no_such_field'"),
        ("missing.md.j2", "template missing.md.j2 does not exist"),
        ("nonexistent", "no template named 'nonexistent'"),
    ],
)
def test_a_failed_render_leaves_the_journal_byte_identical(cli, store, isolated, template, message):
    (isolated / "broken.md.j2").write_text("### {{ run.id }}\n{% if run.status %}\n")
    (isolated / "undefined.md.j2").write_text("{{ run.no_such_field }}\n")
    assert cli("journal", "render").returncode == 0
    journal = isolated / "journal"
    before = {p: p.read_bytes() for p in journal.rglob("*") if p.is_file()}
    proc = cli("journal", "render", "--template", template)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr
    assert {p: p.read_bytes() for p in journal.rglob("*") if p.is_file()} == before


def test_stdout_since_tag_and_a_template_of_your_own(cli, store, isolated):
    (isolated / "mine.md.j2").write_text("{{ run.id }} {{ run.status }} {{ run.config.beta }}\n")
    out = cli("journal", "render", "--stdout", "--template", "mine.md.j2", "--tag", "x").stdout
    assert out == "interr01 interrupted 0.1\n"
    assert not (isolated / "journal").exists()
    out = cli("journal", "render", "--stdout", "--since", "2026-01-03", "--template", "mine.md.j2").stdout
    assert "failed01" not in out and "interr01" in out
    assert cli("journal", "render", "--since", "yesterday").returncode == 2


def test_the_default_template_ships_at_the_top_of_the_repo():
    from grpo_lab.journal import templates_dir

    assert (templates_dir() / "default.md.j2").is_file()
    assert Path(__file__).resolve().parent.parent.joinpath("templates", "default.md.j2").is_file()


def test_entries_link_to_the_report_beside_the_journal(cli, store, isolated):
    s, real_id = store
    assert cli("journal", "render").returncode == 0
    assert "report.html" not in (isolated / "journal" / "research_journal.md").read_text()
    assert cli("report", "--out", "journal/report.html").returncode == 0
    assert cli("journal", "render").returncode == 0
    text = (isolated / "journal" / "research_journal.md").read_text()
    for rid in (real_id, "failed01", "interr01"):
        assert f"[Curves, samples and accuracy of this run in the report](report.html#run={rid})" in text


def test_the_plot_has_legends_the_kl_and_every_suite(isolated):
    from grpo_lab.journal import plot_figure, plot_png

    s = Store(f"sqlite:///{isolated / 'p.db'}")
    add_run(s, "mixed001", "finished", "2026-01-02T10:00:00+00:00", steps=5)
    s.record("mixed001", steps=[(6, {"reward": 0.1, "frac_reward_zero_std": 0.5, "kl": 0.3})],
             results=[("before", "mixed-v1", "overall", "", 10, 100),
                      ("after", "mixed-v1", "overall", "", 20, 100)])  # fmt: skip
    results = [(r.stage, r.split, r.dimension, r.grp, r.correct, r.total) for r in s.results("mixed001")]
    s.finish_run("mixed001", "finished", metrics=compute(s.steps("mixed001"), results, {"arith-v1": 0, "mixed-v1": 0}))
    view = s.find_run("mixed001")
    fig = plot_figure(s, view)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["training curve", "KL", "arith-v1 accuracy", "mixed-v1 accuracy"]
    legends = {ax.get_title(): [t.get_text() for t in ax.get_legend().get_texts()]
               for ax in fig.axes if ax.get_legend()}  # fmt: skip
    assert legends["training curve"] == ["reward", "frac_reward_zero_std"] and legends["KL"] == ["KL"]
    assert legends["mixed-v1 accuracy"] == ["before", "after"]
    kl = next(ax for ax in fig.axes if ax.get_title() == "KL").get_lines()[0]
    assert list(kl.get_xdata()) == [1, 2, 3, 4, 5, 6] and kl.get_ydata()[-1] == 0.3
    assert plot_png(s, view).startswith(b"\x89PNG")


def test_an_evaluation_only_plot_has_its_accuracy_panels_alone(isolated):
    """No training curve nor KL panel standing empty, and one bar per group, not a 'before' legend with no bars."""
    from grpo_lab.journal import plot_figure

    s = Store(f"sqlite:///{isolated / 'p.db'}")
    s.create_run(Run(id="eval0001", kind="eval", exp_name="eval_tiny-arith", status="running", host="h",
                     started_at="2026-01-02T10:00:00+00:00", model_name="tiny-arith", config="{}"))  # fmt: skip
    results = [("after", "arith-v1", "overall", "", 31, 200), ("after", "arith-v1", "operation", "+", 12, 81),
               ("after", "mixed-v1", "overall", "", 40, 200)]  # fmt: skip
    s.record("eval0001", results=results)
    s.finish_run("eval0001", "finished", metrics=compute([], results, {}))
    fig = plot_figure(s, s.find_run("eval0001"))
    assert [ax.get_title() for ax in fig.axes] == ["arith-v1 accuracy", "mixed-v1 accuracy"]
    assert all(ax.get_legend() is None for ax in fig.axes)
    bars = [round(b.get_height(), 3) for b in fig.axes[0].patches]
    assert bars == [0.155, 0.148]  # overall, then +: one bar each


# --- hostile templates, forged markers, bad --out, interrupted renders -------------------------------------------


@pytest.fixture
def light(isolated):
    """A store of three recorded runs (no training), and a rendered journal."""
    s = Store(f"sqlite:///{isolated / 'grpo_lab.db'}")
    add_run(s, "light001", "finished", "2026-02-01T10:00:00+00:00")
    add_run(s, "light002", "failed", "2026-02-02T10:00:00+00:00", error="RuntimeError: boom")
    add_run(s, "light003", "finished", "2026-02-03T10:00:00+00:00")
    assert call("journal", "render").returncode == 0
    return s


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", "unsafe"),
        ("{{ ().__class__.__mro__[1].__subclasses__() }}", "unsafe"),
        ("{{ lipsum.__globals__['__builtins__'].open('/etc/passwd').read() }}", "unsafe"),
        ("{{ joiner.__init__.__globals__ }}", "unsafe"),
        ("{{ run.__class__ }}{{ run.items.__self__.clear() }}", "unsafe"),
        ("{% set _ = run.tags.append('x') %}", "unsafe"),
        ("{{ 'x' * 10**10 }}", "too large"),
        ("{{ 2 ** 100000000 }}", "too large"),
        ("{% for i in range(10**9) %}{% endfor %}", "Range too big"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursion"),
    ],
)
def test_a_template_that_reaches_for_internals_is_refused(light, isolated, template, message):
    (isolated / "evil.md.j2").write_text(template + "\n")
    before = tree(isolated / "journal")
    for args in (["--stdout"], []):
        result = call("journal", "render", "light001", "--template", "evil.md.j2", *args)
        assert result.returncode == 2 and result.stdout == "", result
        (line,) = result.stderr.splitlines()
        assert line.startswith("grpo-lab: error: template evil.md.j2 line 1: ") and message in line, line
        assert "uid=" not in line and "root:" not in line
    assert tree(isolated / "journal") == before


def test_templates_still_read_what_they_are_given(light, isolated):
    (isolated / "ok.md.j2").write_text("{{ run.id }} {{ run.tags | join(',') }} {{ 'ab' * 3 }} {{ 2 ** 10 }}\n")
    assert (
        call("journal", "render", "light001", "--stdout", "--template", "ok.md.j2").stdout == "light001 t ababab 1024\n"
    )


def test_user_text_cannot_forge_an_entry_or_grow_the_journal(light, isolated):
    forged = "<!-- grpo-lab:end light001 -->\n<!-- grpo-lab:begin light001 -->\n"
    forged += "### fake - 2026-01-01_00:00 - Run ID: fake0001"
    light.update_run("light001", hypothesis=f"a hypothesis {forged}", exp_name="exp\n<!-- grpo-lab:end light002 -->")
    assert call("note", "light001", forged, "--kind", "learning").returncode == 0
    assert call("note", "light002", forged, "--kind", "comment").returncode == 0
    path = isolated / "journal" / "research_journal.md"
    assert call("journal", "render").returncode == 0
    first = path.read_text()
    for _ in range(2):
        assert call("journal", "render").returncode == 0
        assert path.read_text() == first  # no growth: every entry replaced in place
    lines = first.splitlines()
    for rid in ("light001", "light002", "light003"):
        assert lines.count(f"<!-- grpo-lab:begin {rid} -->") == 1 and lines.count(f"<!-- grpo-lab:end {rid} -->") == 1
    assert not any(line.startswith("### fake") for line in lines)
    assert sum(line.startswith("### ") for line in lines) == 3
    assert "&lt;!-- grpo-lab:end light001 --> &lt;!-- grpo-lab:begin light001 --> ### fake" in first  # shown, defused


def test_a_templates_own_markers_are_defused(light, isolated):
    (isolated / "m.md.j2").write_text("{{ run.id }}\n<!-- grpo-lab:end {{ run.id }} -->\n")
    assert call("journal", "render", "--template", "m.md.j2").returncode == 0
    text = (isolated / "journal" / "research_journal.md").read_text()
    assert text.count("<!-- grpo-lab:end light001 -->") == 1 and "&lt;!-- grpo-lab:end light001 -->" in text


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("journal", "is a folder; give the journal file"),
        ("", "is a folder; give the journal file"),
        ("notes.txt/j.md", "notes.txt is a file, not a folder"),
        ("binary.md", "is not UTF-8 text, so not a journal"),
        ("/proc/version", "cannot write the journal at /proc"),
        ("/proc/self/j.md", "cannot write in /proc/self"),
        ("/dev/null", "is not a regular file"),
    ],
)
def test_a_journal_that_cannot_be_written_is_one_line_and_changes_nothing(light, isolated, out, message):
    (isolated / "notes.txt").write_text("mine\n")
    (isolated / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    before = tree(isolated)
    result = call("journal", "render", "--out", out)
    assert result.returncode == 2, result
    (line,) = result.stderr.splitlines()
    assert message in line, line
    assert tree(isolated) == {k: v for k, v in before.items()}  # the store, the journal, the user's files


def test_write_files_is_all_or_nothing(tmp_path):
    from grpo_lab.journal import write_files

    with pytest.raises(OSError):
        write_files({tmp_path / "a" / "first.md": b"one", Path("/proc/self/nowhere/b.png"): b"two"})
    assert list(tmp_path.iterdir()) == []  # neither the file, its temporary, nor the folder made for it


def test_temporary_files_of_a_killed_render_are_removed(light, isolated):
    import os

    journal = isolated / "journal"
    dead = journal / ".research_journal.md.grpo-lab-tmp-999999999-abc.tmp"  # above any pid_max: never alive
    dead_png = journal / "assets" / ".light001.png.grpo-lab-tmp-999999999-x.tmp"
    mine = journal / f".research_journal.md.grpo-lab-tmp-{os.getpid()}-live.tmp"  # a render still writing
    for p in (dead, dead_png, mine):
        p.write_bytes(b"partial")
    assert call("journal", "render").returncode == 0
    assert not dead.exists() and not dead_png.exists() and mine.exists()


def test_an_interrupted_render_leaves_no_temporary_files(light, isolated):
    import signal
    import subprocess
    import sys
    import time

    for i in range(40):  # about ten seconds of plots
        add_run(light, f"many{i:04d}", "finished", f"2026-03-01T10:{i:02d}:00+00:00")
    before = tree(isolated / "journal")
    proc = subprocess.Popen([sys.executable, "-c", "from grpo_lab.cli import main; main()", "journal", "render"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(3)  # imports done, plots being drawn
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err == "grpo-lab: error: terminated\n"
    assert tree(isolated / "journal") == before  # nothing half-written, no temporary file left


def test_an_accuracy_moves_up_down_or_not_as_printed():
    from grpo_lab.journal import moved

    assert moved(0.35, 0.45) == "up from" and moved(0.45, 0.35) == "down from"
    assert moved(0.435, 0.435) == "unchanged from" and moved(0.4350, 0.43504) == "unchanged from"  # 43.5% both
    assert moved(None, 0.4) is None and moved(0.4, None) is None
