"""`grpo-lab report`: one self-contained HTML page, opened in a real headless Chromium.

Playwright drives the system's Chromium (Debian's package, or $CHROMIUM); nothing stands in for the browser.
"""

import hashlib
import json
import math
import shutil
import sqlite3

import pytest

from grpo_lab import report as rp
from grpo_lab.compare import cell, compare
from grpo_lab.metrics import compute
from grpo_lab.rewards import extract_answer
from grpo_lab.store import bulk
from grpo_lab.store.db import Run, Store
from grpo_lab.store.sqlite_read import table_rows
from grpo_lab.tasks import task_type_of

HOSTILE = "</script><script>window.__pwned = 1</script><!-- <b>\"quoted\"</b> & 'more' \u2028"
HOSTILE_NAME = '<img src=x onerror="window.__pwned = 2">'
COMPARISON = "Is 5 greater than 2? Answer yes or no: "


def add(store, rid, started, *, beta=0.1, seed=1, held=0.5, status="finished", steps=12, name="exp",
        hypothesis="h", dataset="arithmetic", kind="train", completion=" 7 apples", error=None, metrics=None,
        evaluated=True, verdict=None):  # fmt: skip
    config = {"dataset_type": dataset, "beta": beta, "seed": seed, "learning_rate": 5e-5, "num_generations": 16,
              "exp_name": name}  # fmt: skip
    curve = [(s, {"reward": -0.5 + held * s / steps + 0.05 * (s % 2), "reward_std": 0.8, "frac_reward_zero_std": 0.2,
                  "kl": 0.01 * s, "loss": 0.001 * s, "grad_norm": 1.5, "learning_rate": 5e-5, "entropy": 0.4,
                  **(metrics or {}).get(s, {})})
             for s in range(1, steps + 1)]  # fmt: skip
    results = [(stage, split, dim, grp, round(acc * 200), 200)
               for stage, acc in (("before", held - 0.1), ("after", held))
               for split in ("arith-v1", "held_out", "train")
               for dim, grp in (("overall", ""), ("operation", "+"), ("operation", "*")) if evaluated]  # fmt: skip
    samples = [(s, i, f"Calculate: {s} + {i} = ", f"{s + i}{completion}" if i else completion, 1.0 - i, 0.5 - i)
               for s in range(1, steps + 1) for i in range(2)]  # fmt: skip
    store.create_run(Run(id=rid, kind=kind, exp_name=name, status="running", started_at=started, host="h",
                         model_name="tiny-arith", hypothesis=hypothesis, command=f"grpo-lab run --seed {seed}",
                         resolved_command=f"grpo-lab run --seed {seed} --beta {beta}", config=json.dumps(config),
                         tags=json.dumps(["t"])))  # fmt: skip
    store.record(rid, steps=curve, samples=samples, results=results)
    values = compute(curve, results, {"arith-v1": 0} if evaluated else {})
    store.finish_run(rid, status, error, metrics=values, duration_s=60.0, verdict=verdict and verdict[0],
                     verdict_detail=verdict and verdict[1])  # fmt: skip


@pytest.fixture
def store(isolated):
    """Eight runs in the test's own default store: a beta x seed grid, a mixed run with a comparison sample,
    one whose texts are hostile, one with NaN and Infinity in its curve, a failed run without steps and an
    evaluation-only entry."""
    s = Store(f"sqlite:///{isolated / 'grpo_lab.db'}")
    for k, (beta, seed, held) in enumerate([(0.1, 1, 0.50), (0.1, 2, 0.56), (0.0, 1, 0.40), (0.0, 2, 0.44)]):
        add(s, f"grid{k:04d}", f"2026-01-0{k + 1}T00:00:00+00:00", beta=beta, seed=seed, held=held, name="grid",
            verdict=("confirmed", "arith-v1 0.56 >= 0.5") if k == 1 else None)  # fmt: skip
    add(s, "mixed001", "2026-01-05T00:00:00+00:00", dataset="mixed", name="mixed_run", held=0.6)
    s.record("mixed001", samples=[(99, 0, COMPARISON, " I think yes.", 1.0, 0.123456789)])
    add(s, "hostile1", "2026-01-06T00:00:00+00:00", name=HOSTILE_NAME, hypothesis=HOSTILE, completion=HOSTILE)
    s.add_note("hostile1", HOSTILE, "learning")
    add(s, "nanrun01", "2026-01-07T00:00:00+00:00", name="nan_run",
        metrics={3: {"grad_norm": float("nan"), "loss": float("inf")}})  # fmt: skip
    add(s, "failed01", "2026-01-08T00:00:00+00:00", status="failed", steps=0, name="broken",
        error="RuntimeError: <boom>", evaluated=False)  # fmt: skip
    add(s, "eval0001", "2026-01-09T00:00:00+00:00", kind="eval", steps=0, name="eval_tiny")
    return isolated / "grpo_lab.db"


RUN_IDS = ["grid0000", "grid0001", "grid0002", "grid0003", "mixed001", "hostile1", "nanrun01", "failed01", "eval0001"]


# --- the data: compare's table, the store's records -----------------------------------------------------------


def test_the_table_is_compares_own(store):
    data = rp.collect(store, rp.Selection()).data
    table = compare(lambda *a: table_rows(store, *a))
    assert data["columns"] == table.columns and [r["id"] for r in data["rows"]] == [r["id"] for r in table.rows]
    for row, raw in zip(data["rows"], table.rows, strict=True):
        assert row["cells"] == [cell(table, raw, c) for c in table.columns]
    assert {"beta", "seed", "dataset_type"} <= set(data["columns"])  # diff-only: learning_rate is the same everywhere
    assert "learning_rate" not in data["columns"]
    assert "learning_rate" in rp.collect(store, rp.Selection(all_columns=True)).data["columns"]
    narrowed = rp.collect(store, rp.Selection(where="beta=0 and held_out>=0.42")).data
    assert [r["id"] for r in narrowed["rows"]] == ["grid0003"] and set(narrowed["runs"]) == {"grid0003"}


def test_curves_keep_nan_and_infinity_as_gaps(store):
    curves = bulk.curves_json(store, ["nanrun01", "grid0000", "failed01"], ["grad_norm", "loss", "kl"])
    assert set(curves) == {"nanrun01", "grid0000"}  # a run without steps has no curve
    nan = dict(json.loads(curves["nanrun01"]))
    assert sorted(nan) == list(range(1, 13)) and nan[3] == [None, None, 0.03] and nan[4] == [1.5, 0.004, 0.04]
    plain = dict(json.loads(curves["grid0000"]))
    assert plain[12] == [1.5, 0.012, 0.12]
    assert json.loads(bulk.curves_json(store, ["grid0000"], ["kl"])["grid0000"])[0][1] == [0.01]


def test_samples_carry_the_answer_their_task_type_gives(store):
    samples = json.loads(bulk.samples_json(store, ["mixed001"])["mixed001"])
    by_key = {(s[0], s[1]): s for s in samples}
    assert len(samples) == 25
    assert by_key[(99, 0)][2:] == [COMPARISON, " I think yes.", 1.0, 0.1235]
    assert by_key[(3, 1)][2:] == ["Calculate: 3 + 1 = ", "4 7 apples", 0.0, -0.5]
    prompts, completions = bulk.texts(store, ["mixed001"])
    assert len(prompts) == len(set(prompts)) == len({s[2] for s in samples})
    assert sorted(completions) == sorted({s[3] for s in samples})
    tables = rp.answer_tables(prompts, completions)
    kinds, task = tables["kinds"], dict(tables["tasks"])
    answers = {c: dict(zip(kinds, rest, strict=True)) for c, *rest in tables["answers"]}

    def answer(prompt, completion):  # what the page does with the tables
        return answers[completion][kinds[task[prompt]]]

    assert answer(COMPARISON, " I think yes.") == "yes"  # as a number it would be "I"
    assert answer("Calculate: 3 + 1 = ", "4 7 apples") == "4"
    for step, _, prompt, completion, *_ in samples:  # every sample: the one definition, by its prompt's task type
        assert answer(prompt, completion) == extract_answer(completion, task_type_of(prompt)), step


def test_script_json_cannot_close_its_script_element():
    for text in (HOSTILE, "a<b>&c", "</SCRIPT >", "<!--<script>"):
        out = rp.script_json(json.dumps({"k": text, "l": [text]}, ensure_ascii=False))
        assert not {"<", ">", "&"} & set(out)
        assert json.loads(out) == {"k": text, "l": [text]}


def test_the_vendored_plotly_is_the_recorded_package():
    path = rp.Path(rp.__file__).parent / "vendor" / rp.PLOTLY_JS["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == rp.PLOTLY_JS["sha256"]
    assert f"plotly.js (basic - minified) v{rp.PLOTLY_JS['version']}" in path.read_text()[:200]
    assert "</script" not in rp.plotly_js().lower()


# --- the command ------------------------------------------------------------------------------------------------


def test_report_command_writes_one_self_contained_file(cli, store, isolated):
    proc = cli("report", "--tag", "t", "--last", "5")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("wrote report.html: 5 runs, ")
    html = (isolated / "report.html").read_text()
    assert "<script src" not in html and '<link rel="stylesheet"' not in html and "https://" not in html[:20000]
    assert HOSTILE not in html and "<script>window" not in html  # only as \u003c-escaped JSON
    assert html.count("<script") - rp.plotly_js().count("<script") == 3 + 3  # data, plotly, app; 3 runs' blobs
    data = json.loads(html.split('id="report-data">', 1)[1].split("</script>", 1)[0])
    assert [r["id"] for r in data["rows"]] == RUN_IDS[-5:][::-1]  # newest first, as compare


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--where", "colour=red"], "unknown field 'colour'"),
        (["--where", "beta=0.1; DROP TABLE run"], "expected 'and' between conditions"),
        (["--db", "postgresql://nowhere/x"], "report works on SQLite stores"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(cli, store, isolated, args, message):
    proc = cli("report", *args)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (isolated / "report.html").exists()


def test_report_does_not_import_the_training_stack(store):
    import subprocess
    import sys

    code = (
        "import sys; from grpo_lab.cli import main; sys.argv=['grpo-lab','report','--out','r.html'];\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print('HEAVY', [m for m in ('torch','transformers','trl','datasets','sqlalchemy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "HEAVY []" in out


# --- in the browser ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    from grpo_lab.browser import find_chromium, flags
    from grpo_lab.errors import GrpoLabError

    try:
        executable = find_chromium()
    except GrpoLabError as exc:
        pytest.skip(f"no browser to test the report in: {exc}")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=flags())
        yield browser
        browser.close()


class Page:
    """A report opened from disk, with every console error, page error and request it made."""

    def __init__(self, browser, path, fragment=""):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.errors, self.requests = [], []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.as_uri() + fragment, wait_until="load")

    def visible_ids(self):
        return self.page.eval_on_selector_all("#runs tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.id)")

    def traces(self, metric):
        return self.page.evaluate(
            "m => document.querySelector(`#charts [data-metric='${m}']`).data.map(t => "
            "({run: t.meta, x: t.x, y: t.y, raw: t.customdata}))",
            metric,
        )


def test_the_page_in_headless_chromium(cli, store, isolated, chromium):
    assert cli("report").returncode == 0
    view = Page(chromium, isolated / "report.html")
    page = view.page
    assert view.errors == []
    assert all(u.startswith(("file:", "data:")) for u in view.requests), view.requests  # nothing from a network
    assert page.evaluate("window.__pwned") is None

    # every run is a row
    assert sorted(view.visible_ids()) == sorted(RUN_IDS)
    assert page.locator("#count").text_content() == f"{len(RUN_IDS)} runs"
    assert view.visible_ids() == RUN_IDS[::-1]  # newest first
    assert page.locator("#runs tr[data-id=hostile1] td a").nth(1).text_content() == HOSTILE_NAME
    assert page.locator("img").count() == 0

    # sorting by a result, both ways, missing values last either way
    table = compare(lambda *a: table_rows(store, *a))
    held = {r["id"]: r["held_out"] for r in table.rows}
    heading = page.locator(f"#runs th[data-col='{table.columns.index('held_out')}']")
    assert heading.text_content() == "held_out"
    heading.click()
    ascending = view.visible_ids()
    assert [held[i] for i in ascending if held[i] is not None] == sorted(v for v in held.values() if v is not None)
    assert ascending[-1] == "failed01" and held["failed01"] is None
    heading.click()
    descending = view.visible_ids()
    assert descending[0] == "mixed001" and descending[-1] == "failed01"

    # filtering by words and by status
    page.fill("#filter", "grid")
    assert view.visible_ids() == ["grid0001", "grid0000", "grid0003", "grid0002"]  # still sorted by held_out
    page.fill("#filter", "GRID 56.0%")
    assert view.visible_ids() == ["grid0001"]
    page.fill("#filter", "")
    page.select_option("#status", "failed")
    assert view.visible_ids() == ["failed01"]
    page.select_option("#status", "")
    assert len(view.visible_ids()) == len(RUN_IDS)

    # charts: the newest runs with steps are overlaid, drawn from the stored curves
    reward = view.traces("reward")
    plotted = {t["run"] for t in reward}
    assert plotted == {"grid0000", "grid0001", "grid0002", "grid0003", "mixed001", "hostile1", "nanrun01"}
    grid0 = next(t for t in reward if t["run"] == "grid0000" and t["raw"])
    assert grid0["x"] == list(range(1, 13))
    assert grid0["raw"] == pytest.approx([-0.5 + 0.5 * s / 12 + 0.05 * (s % 2) for s in range(1, 13)])
    assert page.locator("#charts [data-metric=reward] path.js-line").count() == 2 * len(plotted)
    drawn = page.locator("#charts [data-metric=reward] path.js-line").first.get_attribute("d")
    assert drawn.startswith("M") and drawn.count("L") == 11  # a vertex per step: the SVG holds the data
    assert {y for t in view.traces("reward_std") for y in t["y"]} == {0.8}  # smoothing a flat curve keeps it flat
    nan = next(t for t in view.traces("grad_norm") if t["run"] == "nanrun01" and t["raw"])
    assert nan["raw"][2] is None and nan["raw"][3] == 1.5  # NaN is a gap, not an error
    hover_layer = page.locator("#charts [data-metric=reward] .hoverlayer")  # hover: each run's value at a step
    for k in range(10):  # a real pointer, moved over the plot until plotly shows its label
        page.locator("#charts [data-metric=reward] .nsewdrag").first.hover(position={"x": 150 + 17 * k, "y": 90})
        if hover_layer.text_content():
            break
        page.wait_for_timeout(200)
    hover = page.locator("#charts [data-metric=reward] .hoverlayer").text_content()
    assert hover.count("(raw ") == len(plotted) and f"{HOSTILE_NAME} (hostile1)" in hover
    assert page.locator("img").count() == 0 and page.evaluate("window.__pwned") is None
    page.locator("#runs tr[data-id=grid0002] input").uncheck()
    assert {t["run"] for t in view.traces("kl")} == plotted - {"grid0002"} and len(view.traces("kl")) == 12
    assert view.errors == []


def test_a_run_its_intent_accuracy_and_samples(cli, store, isolated, chromium):
    assert cli("report").returncode == 0
    view = Page(chromium, isolated / "report.html", "#run=hostile1")
    page, detail = view.page, view.page.locator("#detail")
    assert page.evaluate("window.__pwned") is None and page.locator("img").count() == 0
    assert detail.locator("dd").first.text_content() == HOSTILE  # the hypothesis, as written
    assert HOSTILE in detail.locator("li").last.text_content()  # the learning note
    assert detail.locator("pre").nth(1).text_content() == "grpo-lab run --seed 1 --beta 0.1"
    assert page.locator("#sample-step").input_value() == "12"
    cells = detail.locator("table.samples tbody tr").first.locator("td").all_text_contents()
    assert cells == ["12", "Calculate: 12 + 0 = ", HOSTILE, extract_answer(HOSTILE), "+1.00", "0.500"]

    page.locator("#runs tr[data-id=mixed001] a").first.click()
    assert "mixed_run" in detail.locator("h2").text_content()
    accuracy = detail.locator("table").first.locator("tbody tr").first.locator("td").all_text_contents()
    assert accuracy == ["overall", "50.0% (100/200)", "60.0% (120/200)", "+10.0 pts"]
    assert detail.locator(".acc-chart.js-plotly-plot").count() == 3  # arith-v1, held_out and train
    assert page.locator("#sample-step").input_value() == "99"
    row = detail.locator("table.samples tbody tr").first.locator("td").all_text_contents()
    assert row[1:4] == [COMPARISON, " I think yes.", "yes"]
    page.locator("button", has_text="previous step").click()
    assert page.locator("#sample-step").input_value() == "12"
    page.select_option("#sample-step", "all")
    assert detail.locator("table.samples tbody tr").count() == 25

    page.locator("#runs tr[data-id=failed01] a").first.click()
    assert detail.locator(".error").text_content() == "RuntimeError: <boom>"
    assert "No sample completions" in detail.text_content()
    page.evaluate("location.hash = '#run=nope'")
    page.wait_for_function("document.querySelector('#detail').textContent.includes('not in this report')")
    assert view.errors == []


def test_a_report_of_no_runs(cli, store, isolated, chromium):
    assert cli("report", "--where", "beta=5").stdout.startswith("wrote report.html: 0 runs")
    view = Page(chromium, isolated / "report.html")
    assert view.errors == [] and view.visible_ids() == []
    assert view.page.locator("#detail").text_content() == "No runs matched."
    view.page.locator("#runs th").nth(2).press("Enter")  # sorting an empty table, from the keyboard
    assert view.page.locator("#runs th").nth(2).get_attribute("aria-sort") == "ascending" and view.errors == []


def test_verdicts_and_the_paired_comparison_against_a_baseline(cli, store, isolated, chromium):
    proc = cli("report", "--where", "name=grid", "--baseline", "grid0002", "--metric", "arith-v1")
    assert proc.returncode == 0, proc.stderr
    view = Page(chromium, isolated / "report.html", "#run=grid0001")
    page = view.page
    verdict_col = page.locator("#runs th", has_text="verdict").get_attribute("data-col")
    verdicts = page.eval_on_selector_all(
        f"#runs tbody tr td:nth-child({int(verdict_col) + 2})", "cells => cells.map(c => c.textContent)"
    )
    assert sorted(verdicts) == ["-", "-", "-", "confirmed"]
    assert "confirmed: arith-v1 0.56 >= 0.5" in page.locator("#detail dl").first.text_content()
    assert page.locator("#paired-section").is_visible()
    assert page.locator("#paired-title").text_content().startswith("Paired by seed: arith-v1 minus baseline grid")
    (row,) = page.locator("#paired tbody tr").all()
    assert "+11.0 pt ± 1.4" in row.locator("td").all_text_contents()  # seeds 1 and 2: +10 and +12 points
    assert view.errors == []
    assert cli("report", "--metric", "arith-v1").returncode == 2


def test_a_sweep_its_runs_and_its_arms_against_the_baseline_arm(cli, store, isolated, chromium):
    from grpo_lab import sweep as sweeps

    s = Store(f"sqlite:///{store}")
    spec = sweeps.build({"name": "kl-sweep", "hypothesis": "the KL penalty <matters>", "preset": "cpu-quick",
                         "seeds": [1, 2], "baseline": "base", "metric": "arith-v1",
                         "arms": {"base": {}, "nokl": {"flags": {"beta": 0}, "compare": "diff < 0"}}})  # fmt: skip
    queued = sweeps.queue(s, spec, "test", ["grpo-lab", "sweep", "kl.toml"])
    for run in s.sweep_runs(queued.sweep.id):
        held = 0.5 if run.arm == "base" else 0.4 + 0.01 * json.loads(run.config)["seed"]  # nokl: -9 and -8 points
        results = [
            ("before", "arith-v1", "overall", "", 60, 200),
            ("after", "arith-v1", "overall", "", round(held * 200), 200),
        ]
        s.record(run.id, steps=[(1, {"reward": held, "kl": 0.1})], results=results)
        s.finish_run(run.id, "finished", metrics=compute([(1, {"reward": held})], results, {"arith-v1": 0}))
    assert cli("report", "--sweep", "kl-sweep").returncode == 0
    view = Page(chromium, isolated / "report.html")
    page = view.page
    assert sorted(view.visible_ids()) == sorted(r.id for r in s.sweep_runs(queued.sweep.id))  # not the others
    assert page.locator("#sweep-hypothesis").text_content() == "the KL penalty <matters>"
    title = page.locator("#paired-title").text_content()
    assert title.startswith("Paired by seed: arith-v1 minus baseline kl-sweep_base")
    (row,) = page.locator("#paired tbody tr").all()
    cells = row.locator("td").all_text_contents()
    assert cells[0] == "kl-sweep_nokl" and "-8.5 pt ± 0.7" in cells and cells[-3:-1] == ["diff < 0", "confirmed"]
    assert view.errors == [] and page.locator("img").count() == 0


def test_screenshot_helper(cli, store, isolated, chromium):
    proc = cli("report", "--out", "r/report.html", "--screenshot", "r/report.png")
    assert proc.returncode == 0, proc.stderr
    png = (isolated / "r" / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 50_000


@pytest.mark.slow
def test_a_real_run_in_the_browser(cli, recorded_store, isolated, chromium):
    """The curve keys and samples the runner actually records (TRL's logs) reach the page."""
    db, run_id = recorded_store
    shutil.copy(db, isolated / "real.db")
    assert cli("report", "--db", str(isolated / "real.db"), "--out", "real.html").returncode == 0
    view = Page(chromium, isolated / "real.html")
    assert view.errors == [] and view.visible_ids() == [run_id]
    logged = set(json.loads(sqlite3.connect(isolated / "real.db").execute("SELECT metrics FROM step").fetchone()[0]))
    for key, _ in rp.CURVES:
        traces = view.traces(key)
        assert (len(traces) > 0) == (key in logged), key
        assert all(y is None or math.isfinite(y) for t in traces for y in t["y"])
    assert view.page.locator("#detail table.samples tbody tr").count() >= 1


def test_a_long_table_shows_a_page_at_a_time(cli, isolated, chromium):
    s = Store(f"sqlite:///{isolated / 'grpo_lab.db'}")
    ids = [f"many{k:04d}" for k in range(130)]
    for k, rid in enumerate(ids):
        add(s, rid, f"2026-02-01T{k // 60:02d}:{k % 60:02d}:00+00:00", seed=k, steps=2, held=k / 200)
    assert cli("report").returncode == 0
    view = Page(chromium, isolated / "report.html")
    page = view.page
    assert page.locator("#count").text_content() == "130 runs"
    assert view.visible_ids() == ids[::-1][:100] and page.locator("#page").text_content() == "rows 1-100"
    page.locator("#page-next").click()
    assert view.visible_ids() == ids[::-1][100:] and page.locator("#page").text_content() == "rows 101-130"
    assert page.locator("#page-next").is_disabled()
    page.select_option("#page-size", "0")
    assert view.visible_ids() == ids[::-1] and page.locator("#page-prev").is_hidden()
    page.select_option("#page-size", "50")
    page.fill("#filter", "many00")  # many0000 ... many0099
    assert page.locator("#count").text_content() == "100 of 130 runs match"
    assert view.visible_ids() == ids[99::-1][:50] and page.locator("#page").text_content() == "rows 1-50"
    assert view.errors == []
