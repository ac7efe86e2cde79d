"""`grpo-lab report`: one self-contained HTML page, opened in a real headless Chromium.

Playwright drives the system's Chromium (Debian's package, or $CHROMIUM); nothing stands in for the browser.
"""

import hashlib
import json
import math
import shutil
import sqlite3
import statistics

import pytest

from grpo_lab import report as rp
from grpo_lab import stats
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


def step_time(s):
    return 2.0 + 0.5 * (s % 3)


def add(store, rid, started, *, beta=0.1, seed=1, held=0.5, status="finished", steps=12, name="exp",
        hypothesis="h", dataset="arithmetic", kind="train", completion=" 7 apples", error=None, metrics=None,
        evaluated=True, verdict=None):  # fmt: skip
    config = {"dataset_type": dataset, "beta": beta, "seed": seed, "learning_rate": 5e-5, "num_generations": 16,
              "exp_name": name}  # fmt: skip
    curve = [(s, {"reward": -0.5 + held * s / steps + 0.05 * (s % 2), "reward_std": 0.8, "frac_reward_zero_std": 0.2,
                  "kl": 0.01 * s, "loss": 0.001 * s, "grad_norm": 1.5, "learning_rate": 5e-5, "entropy": 0.4,
                  "step_time": step_time(s), **(metrics or {}).get(s, {})})
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


def populate(s):
    """Eight runs: a beta x seed grid, a mixed run with a comparison sample, one whose texts are hostile, one with
    NaN and Infinity in its curve, a failed run without steps and an evaluation-only entry."""
    for k, (beta, seed, held) in enumerate([(0.1, 1, 0.50), (0.1, 2, 0.56), (0.0, 1, 0.40), (0.0, 2, 0.44)]):
        add(s, f"grid{k:04d}", f"2026-01-0{k + 1}T00:00:00+00:00", beta=beta, seed=seed, held=held, name="grid",
            verdict=("confirmed", "arith-v1 0.56 >= 0.5") if k == 1 else None)  # fmt: skip
    add(s, "mixed001", "2026-01-05T00:00:00+00:00", dataset="mixed", name="mixed_run", held=0.6)
    s.record(
        "mixed001",
        samples=[
            (99, 0, COMPARISON, " I think yes.", 1.0, 0.123456789),
            (98, 0, "Calculate: 2 + 2 = ", "four", 1.0, 0.5, "4"),
        ],
    )  # its task's own reading
    # fmt: skip
    add(s, "hostile1", "2026-01-06T00:00:00+00:00", name=HOSTILE_NAME, hypothesis=HOSTILE, completion=HOSTILE)
    s.add_note("hostile1", HOSTILE, "learning")
    add(s, "nanrun01", "2026-01-07T00:00:00+00:00", name="nan_run",
        metrics={3: {"grad_norm": float("nan"), "loss": float("inf")}})  # fmt: skip
    add(s, "failed01", "2026-01-08T00:00:00+00:00", status="failed", steps=0, name="broken",
        error="RuntimeError: <boom>", evaluated=False)  # fmt: skip
    add(s, "eval0001", "2026-01-09T00:00:00+00:00", kind="eval", steps=0, name="eval_tiny")


@pytest.fixture
def store(isolated):
    """populate()'s runs in the test's own default store."""
    populate(Store(f"sqlite:///{isolated / 'grpo_lab.db'}"))
    return isolated / "grpo_lab.db"


RUN_IDS = ["grid0000", "grid0001", "grid0002", "grid0003", "mixed001", "hostile1", "nanrun01", "failed01", "eval0001"]


# --- the data: compare's table, the store's records -----------------------------------------------------------


def test_the_table_is_compares_own(store):
    data = rp.collect(store, rp.Selection()).data
    table = compare(lambda *a: table_rows(store, *a))
    assert [r["id"] for r in data["rows"]] == [r["id"] for r in table.rows]
    said_once = dict(data["constant"])
    assert data["columns"] == [c for c in rp.ordered_columns(table.columns) if c not in said_once]
    for col, text in said_once.items():  # the same on every row: said once above the table
        assert {cell(table, raw, col) for raw in table.rows} == {text}
    for row, raw in zip(data["rows"], table.rows, strict=True):
        assert row["cells"] == [cell(table, raw, c) for c in data["columns"]]
    # results first: id and name, then every metric column, then status and start, then the config
    columns = data["columns"]
    assert columns[:3] == ["id", "name", "final_reward"]
    assert max(columns.index(c) for c in ("held_out", "arith-v1", "verdict")) < columns.index("status")
    assert columns.index("status") < min(columns.index(c) for c in ("beta", "seed", "dataset_type"))
    assert {"beta", "seed", "dataset_type"} <= set(columns) and data["config_columns"] == [
        "dataset_type",
        "beta",
        "seed",
    ]
    assert "learning_rate" not in columns  # diff-only: learning_rate is the same everywhere
    every = rp.collect(store, rp.Selection(all_columns=True)).data
    assert ["learning_rate", "5e-05"] in every["constant"]  # asked for, and the same on every row: said once
    narrowed = rp.collect(store, rp.Selection(where="beta=0 and held_out>=0.42")).data
    assert [r["id"] for r in narrowed["rows"]] == ["grid0003"] and set(narrowed["runs"]) == {"grid0003"}
    assert narrowed["constant"] == []  # one row: every column stays


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
    assert len(samples) == 26
    assert by_key[(99, 0)][2:] == [COMPARISON, " I think yes.", 1.0, 0.1235, None]
    assert by_key[(3, 1)][2:] == ["Calculate: 3 + 1 = ", "4 7 apples", 0.0, -0.5, None]
    assert by_key[(98, 0)][2:] == ["Calculate: 2 + 2 = ", "four", 1.0, 0.5, "4"]  # the answer its run recorded
    # what the report works out itself: the texts of the samples recorded without their answer
    prompts, completions = bulk.texts(store, ["mixed001"])
    samples = [s for s in samples if s[6] is None]
    assert len(prompts) == len(set(prompts)) == len({s[2] for s in samples}) and "Calculate: 2 + 2 = " not in prompts
    assert sorted(completions) == sorted({s[3] for s in samples}) and "four" not in completions
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
        (["--db", "postgresql://lab:secret@nowhere.invalid/x"], "cannot reach the store postgresql"),
        (["--screenshot", "r.png", "--screenshot-width", "10"], "give a width from 320 to 4000 pixels"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(cli, store, isolated, args, message):
    proc = cli("report", *args)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "secret" not in proc.stderr + proc.stdout
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

    def __init__(self, browser, path, fragment="", width=1400):
        self.page = browser.new_page(viewport={"width": width, "height": 1000})
        self.errors, self.requests = [], []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.as_uri() + fragment, wait_until="load")

    def visible_ids(self):
        return self.page.eval_on_selector_all("#runs tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.id)")

    def drawn(self, selector):
        """Scrolls a chart into view (a chart out of view is drawn when it gets there) and waits until it is."""
        self.page.locator(selector).first.scroll_into_view_if_needed()
        self.page.wait_for_function("s => { const d = document.querySelector(s); return d.data && !d.pending; }",
                                    arg=selector)  # fmt: skip

    def draw_every_chart(self):
        for k in range(self.page.locator(".js-plotly-plot, [id^=curve-], #acc-groups, .acc-chart").count()):
            self.page.locator(".js-plotly-plot, [id^=curve-], #acc-groups, .acc-chart").nth(
                k
            ).scroll_into_view_if_needed()
        self.page.wait_for_function("() => [...document.querySelectorAll('[id^=curve-], #acc-groups, .acc-chart')]"
                                    ".every(d => d.offsetParent === null || (d.data && !d.pending))")  # fmt: skip

    def traces(self, metric):
        selector = f"#charts [data-metric='{metric}']"
        self.drawn(selector)
        return self.page.evaluate(
            "s => document.querySelector(s).data.map(t => "
            "({run: t.meta, x: t.x, y: t.y, raw: t.customdata, fill: t.fill || null, name: t.name}))",
            selector,
        )

    def chart(self, selector):
        """A plotly chart's traces and layout, as drawn."""
        self.drawn(selector)
        return self.page.evaluate(
            "s => { const d = document.querySelector(s); return {data: d.data.map(t => ({...t})), "
            "layout: JSON.parse(JSON.stringify(d.layout))}; }",
            selector,
        )

    def overflowing(self):
        """Elements that stick out of the window on the right, other than inside a box that scrolls sideways."""
        return self.page.evaluate(
            """() => [...document.querySelectorAll('body *')].filter((node) => {
                 const box = node.getBoundingClientRect();
                 if (!box.width || box.right <= window.innerWidth + 1) return false;
                 for (let up = node.parentElement; up; up = up.parentElement) {
                   if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(up).overflowX)) return false;
                 }
                 return true;
               }).map((node) => node.tagName + '#' + node.id + '.' + node.className)"""
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
    assert page.locator("#runs tr[data-id=hostile1] td a").first.text_content() == HOSTILE_NAME
    assert page.locator("img").count() == 0

    # sorting by a result, both ways, missing values last either way
    table = compare(lambda *a: table_rows(store, *a))
    held = {r["id"]: r["held_out"] for r in table.rows}
    columns = rp.collect(store, rp.Selection()).data["columns"]
    heading = page.locator(f"#runs th[data-col='{columns.index('held_out')}']")
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

    # charts: the page opens with the newest few runs with steps plotted, one line each, from the stored curves
    first = {t["run"] for t in view.traces("reward")}
    assert first == {"nanrun01", "hostile1", "mixed001", "grid0003", "grid0002"}
    assert page.locator("#group-by").input_value() == "" and page.locator("#chips button").count() == 5
    page.locator("#runs tr[data-id=grid0000] input").check()
    reward = view.traces("reward")
    plotted = {t["run"] for t in reward}
    assert plotted == first | {"grid0000"}
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
    assert {t["run"] for t in view.traces("kl")} == plotted - {"grid0002"} and len(view.traces("kl")) == 10
    page.locator("#chips button", has_text="(grid0003)").click()  # a chip stops plotting its run
    assert {t["run"] for t in view.traces("kl")} == plotted - {"grid0002", "grid0003"}
    assert not page.locator("#runs tr[data-id=grid0003] input").is_checked()

    # a time axis as TensorBoard's relative one: training time so far, TRL's step_time summed
    page.select_option("#x-axis", "time")
    grid0 = next(t for t in view.traces("reward") if t["run"] == "grid0000" and t["raw"])
    assert grid0["x"] == pytest.approx([sum(step_time(s) for s in range(1, k + 1)) for k in range(1, 13)])
    assert view.chart("#charts [data-metric=reward]")["layout"]["xaxis"]["title"]["text"].startswith("relative time")
    page.select_option("#x-axis", "step")
    assert next(t for t in view.traces("reward") if t["run"] == "grid0000")["x"] == list(range(1, 13))

    # grouped by a config column: each beta's mean over its runs, with a 95% t band over them
    for rid in ("grid0002", "grid0003"):
        page.locator(f"#runs tr[data-id={rid}] input").check()
    page.select_option("#group-by", "config:beta")
    page.locator("#smooth").fill("0")
    grouped = view.traces("reward")
    means = {t["name"]: t for t in grouped if not t["name"].endswith(" band")}
    assert sorted(means) == ["beta = 0 (2 seeds)", "beta = 0.1 (4 runs)"]  # 4 runs, all of seed 1
    assert sum(t["fill"] == "tonexty" for t in grouped) == 2  # one band per group
    assert page.locator("#chips button").all_text_contents() == [" beta = 0 (2 seeds)", " beta = 0.1 (4 runs)"]
    beta0 = [[-0.5 + held * s / 12 + 0.05 * (s % 2) for s in range(1, 13)] for held in (0.40, 0.44)]
    mean = [statistics.fmean(v) for v in zip(*beta0, strict=True)]
    half = [stats.t_quantile(0.975, 1) * statistics.stdev(v) / math.sqrt(2) for v in zip(*beta0, strict=True)]
    band = [t for t in grouped if t["name"] == "beta = 0 (2 seeds) band"]
    assert means["beta = 0 (2 seeds)"]["y"] == pytest.approx(mean)
    assert band[0]["y"] == pytest.approx([m + h for m, h in zip(mean, half, strict=True)], rel=1e-6)
    assert band[1]["y"] == pytest.approx([m - h for m, h in zip(mean, half, strict=True)], rel=1e-6)
    page.locator("#chips button", has_text="beta = 0.1").click()  # a group chip hides and shows its group
    assert {t["name"] for t in view.traces("reward")} == {"beta = 0 (2 seeds)", "beta = 0 (2 seeds) band"}
    assert page.locator("#chips button", has_text="beta = 0.1").get_attribute("aria-pressed") == "false"
    page.select_option("#group-by", "")  # one line per run again
    assert {t["run"] for t in view.traces("reward")} == plotted
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
    page.locator("button", has_text="previous step").click()  # a sample recorded with its answer: as its run read it
    assert page.locator("#sample-step").input_value() == "98"
    row = detail.locator("table.samples tbody tr").first.locator("td").all_text_contents()
    assert row[1:4] == ["Calculate: 2 + 2 = ", "four", "4"]
    page.locator("button", has_text="previous step").click()
    assert page.locator("#sample-step").input_value() == "12"
    page.select_option("#sample-step", "all")
    assert detail.locator("table.samples tbody tr").count() == 26

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
    assert page.locator("#answer-section").is_visible()
    assert page.locator("#answer-heading").text_content() == "The answer: each seed group against the baseline"
    assert page.locator("#paired-title").text_content().startswith("Paired by seed: arith-v1 minus baseline grid")
    (row,) = page.locator("#paired tbody tr").all()
    assert "+11.0 pt ± 1.4" in row.locator("td").all_text_contents()  # seeds 1 and 2: +10 and +12 points
    (line,) = page.locator("#headline li").all()  # no criterion: the line says the p-values
    assert line.locator(".diff").text_content() == "+11.0 pt" and "p 0.5, p_holm 0.5" in line.text_content()
    assert page.locator("#group-by").input_value() == "seed_group"  # a pairing opens grouped as it pairs
    chips = page.locator("#chips button").all_text_contents()
    assert chips == [" grid · beta 0 (2 seeds)", " grid · beta 0.1 (2 seeds)"]
    assert view.errors == []
    assert cli("report", "--metric", "arith-v1").returncode == 2


SWEEP_HELD = {
    "base": lambda seed: 0.5,
    "nokl": lambda seed: 0.4 + 0.01 * seed,
    "lowlr": lambda seed: 0.5 + 0.005 * seed,
}


def sweep_reward(arm, seed, step):
    return SWEEP_HELD[arm](seed) + 0.02 * step + 0.01 * seed


@pytest.fixture
def swept(cli, store, isolated):
    """A 3-arm, 2-seed sweep recorded beside the other runs (nokl: -9 and -8 points on arith-v1; lowlr: +0.5 and
    +1.0), each run with 6 steps, samples of the same prompts and accuracy per operation; its report written."""
    from grpo_lab import sweep as sweeps

    s = Store(f"sqlite:///{store}")
    spec = sweeps.build({"name": "kl-sweep", "hypothesis": "the KL penalty <matters>", "preset": "cpu-quick",
                         "seeds": [1, 2], "baseline": "base", "metric": "arith-v1",
                         "arms": {"base": {}, "nokl": {"flags": {"beta": 0}, "compare": "diff < 0"},
                                  "lowlr": {"flags": {"learning_rate": 1e-5},
                                            "compare": "ci_low > -0.02"}}})  # fmt: skip
    queued = sweeps.queue(s, spec, "test", ["grpo-lab", "sweep", "kl.toml"])
    runs = {}
    for run in s.sweep_runs(queued.sweep.id):
        seed = json.loads(run.config)["seed"]
        held = SWEEP_HELD[run.arm](seed)
        results = [("before", "arith-v1", "overall", "", 60, 200),
                   ("after", "arith-v1", "overall", "", round(held * 200), 200),
                   ("after", "arith-v1", "operation", "+", round((held + 0.1) * 100), 100),
                   ("after", "arith-v1", "operation", "*", round((held - 0.1) * 100), 100)]  # fmt: skip
        curve = [(k, {"reward": sweep_reward(run.arm, seed, k), "kl": 0.1, "step_time": 3.0}) for k in range(1, 7)]
        right = run.arm != "nokl"
        samples = [(k, i, f"Calculate: {k} + {i} = ", str(k + i) if right else "0", 1.0 if right else -1.0, 0.0)
                   for k in range(1, 7) for i in range(2)]  # fmt: skip
        s.record(run.id, steps=curve, samples=samples, results=results)
        s.finish_run(run.id, "finished", metrics=compute(curve, results, {"arith-v1": 0}), verdict="unchecked")
        runs[run.id] = (run.arm, seed)
    proc = cli("report", "--sweep", "kl-sweep")
    assert proc.returncode == 0, proc.stderr
    return isolated / "report.html", runs


def test_a_sweep_opens_with_its_answer_and_its_arms_grouped(swept, chromium):
    path, runs = swept
    view = Page(chromium, path)
    page = view.page
    assert sorted(view.visible_ids()) == sorted(runs)  # the sweep's runs, not the others
    assert page.locator("#sweep-hypothesis").text_content() == "the KL penalty <matters>"

    # the answer first: one line per arm with its difference, interval and verdict
    assert page.locator("section").first.get_attribute("id") == "answer-section"
    nokl, lowlr = stats.paired([-0.09, -0.08]), stats.paired([0.005, 0.01])
    lines = page.locator("#headline li").all()
    assert [line.locator(".arm").text_content() for line in lines] == ["nokl", "lowlr"]
    assert [line.locator(".diff").text_content() for line in lines] == ["-8.5 pt", "+0.8 pt"]
    assert lines[0].locator(".interval").text_content() == (
        f"95% interval [{100 * nokl.ci_low:+.1f}, {100 * nokl.ci_high:+.1f} pt]"
    )
    # 2 seeds: p is 0.5 at best, so "worse" is not shown; the interval criterion is met or not by the interval
    assert lines[0].locator(".said").text_content() == "worse than baseline: confirmed"
    assert lines[1].locator(".said").text_content().startswith("no worse than baseline by 2 pt: ")
    forest = view.chart("#forest")
    (trace,) = forest["data"]
    assert trace["x"] == pytest.approx([100 * nokl.mean, 100 * lowlr.mean])
    assert trace["error_x"]["arrayminus"][0] == pytest.approx(100 * (nokl.mean - nokl.ci_low))
    assert trace["error_x"]["array"][1] == pytest.approx(100 * (lowlr.ci_high - lowlr.mean))
    assert forest["layout"]["shapes"][0]["x0"] == forest["layout"]["shapes"][0]["x1"] == 0  # the zero line
    assert [a["text"] for a in forest["layout"]["annotations"]][:2] == ["confirmed", "rejected"]
    assert "threshold -2" in [a["text"] for a in forest["layout"]["annotations"]]  # ci_low > -0.02, drawn
    assert forest["layout"]["xaxis"]["title"]["text"] == "arith-v1 minus baseline (percentage points)"
    # compare's paired table, a column that is the same on every row said once above it
    constant = page.locator("#paired-constant").text_content()
    assert "n 2" in constant and "seeds 1,2" in constant and "baseline 50.0%" in constant
    headings = page.locator("#paired th").all_text_contents()
    assert "n" not in headings and "seeds" not in headings and headings[:3] == ["name", "id", "value"]
    assert headings[-2:] == ["claim", "verdict"]  # the verdict's detail, in fractions, is not beside points
    cells = page.locator("#paired tbody tr").first.locator("td").all_text_contents()
    assert cells[0] == "kl-sweep_nokl" and "-8.5 pt ± 0.7" in cells and "worse than baseline: confirmed" in cells

    # curves grouped by arm: each arm's mean over its seeds and a 95% band, the seed count in the legend
    assert page.locator("#group-by").input_value() == "arm"
    assert page.locator("#chips button").all_text_contents() == [
        " base (2 seeds)",
        " nokl (2 seeds)",
        " lowlr (2 seeds)",
    ]
    reward = view.traces("reward")
    assert sum(t["fill"] == "tonexty" for t in reward) == 3  # one band per arm
    page.locator("#smooth").fill("0")
    reward = {t["name"]: t for t in view.traces("reward")}
    values = [[sweep_reward("nokl", seed, k) for k in range(1, 7)] for seed in (1, 2)]
    assert reward["nokl (2 seeds)"]["y"] == pytest.approx([statistics.fmean(v) for v in zip(*values, strict=True)])
    half = stats.t_quantile(0.975, 1) * statistics.stdev([values[0][0], values[1][0]]) / math.sqrt(2)
    assert [t["y"][0] for t in view.traces("reward") if t["name"] == "nokl (2 seeds) band"] == pytest.approx(
        [reward["nokl (2 seeds)"]["y"][0] + half, reward["nokl (2 seeds)"]["y"][0] - half], rel=1e-6
    )
    page.select_option("#x-axis", "time")
    assert reward["nokl (2 seeds)"]["x"] == list(range(1, 7))
    assert view.traces("reward")[-1]["x"] == pytest.approx([3.0 * k for k in range(1, 7)])
    page.select_option("#x-axis", "step")
    page.select_option("#group-by", "")  # ungrouped: a line per run, one step away
    assert {t["run"] for t in view.traces("reward")} == set(runs)

    # each arm's verdict, not each run's, unless asked
    assert page.locator("#runs th.run-verdict").is_hidden()
    page.locator("#run-verdicts").check()
    assert page.locator("#runs th.run-verdict").is_visible()

    # accuracy by operation across the arms, with 95% intervals over seeds
    page.select_option("#group-by", "arm")
    assert page.locator("#acc-split").input_value() == "arith-v1"
    assert page.locator("#acc-dimension").input_value() == "operation"
    bars = {t["name"]: t for t in view.chart("#acc-groups")["data"]}
    assert list(bars) == ["base (2 seeds)", "nokl (2 seeds)", "lowlr (2 seeds)"]
    plus = bars["nokl (2 seeds)"]["x"].index("+")
    assert bars["nokl (2 seeds)"]["y"][plus] == pytest.approx(51.5)  # 51% and 52%
    assert bars["nokl (2 seeds)"]["error_y"]["array"][plus] == pytest.approx(
        stats.t_quantile(0.975, 1) * statistics.stdev([51, 52]) / math.sqrt(2)
    )
    page.select_option("#acc-stage", "change")
    overall = view.chart("#acc-groups")
    assert overall["layout"]["yaxis"]["title"]["text"] == "change in accuracy (percentage points)"

    # completions side by side: every arm's samples for the same step (seed 1), then for one prompt
    cards = page.locator("#side-by-side .unit-card")
    assert cards.count() == 3 and page.locator("#sbs-step").input_value() == "6"
    assert page.locator("#sbs-seed").input_value() == "1"
    nokl_card = page.locator("#side-by-side .unit-card[data-key=nokl] .sample").all_text_contents()
    assert nokl_card == [
        "Calculate: 6 + 0 =  \u2192 0answer 0 · reward -1.00",
        "Calculate: 6 + 1 =  \u2192 0answer 0 · reward -1.00",
    ]
    page.select_option("#sbs-mode", "prompt")
    page.select_option("#sbs-prompt", "Calculate: 3 + 1 = ")
    base_card = page.locator("#side-by-side .unit-card[data-key=base] .sample").all_text_contents()
    assert base_card == ["4seed 1 · step 3 · answer 4 · reward +1.00", "4seed 2 · step 3 · answer 4 · reward +1.00"]

    # a run of an arm: its arm's verdict is the badge
    nokl_run = next(rid for rid, (arm, _) in runs.items() if arm == "nokl")
    page.locator(f"#runs tr[data-id='{nokl_run}'] a").click()
    assert page.locator("#detail h2 .badge").all_text_contents() == ["finished", "arm: confirmed"]
    assert view.errors == [] and page.locator("img").count() == 0


LEAVING = """() => {
  const out = [];
  const local = (v) => !v || v.startsWith("#") || v.startsWith("data:") || v.startsWith("blob:");
  for (const node of document.querySelectorAll("*")) {
    for (const attr of ["href", "xlink:href", "src", "srcset", "action", "formaction", "ping", "poster", "data",
                        "background", "cite", "codebase", "manifest"]) {
      const value = node.getAttribute(attr);
      if (value !== null && !local(value.trim())) out.push(`${node.tagName} ${attr}=${value}`);
    }
    if (["FORM", "IFRAME", "OBJECT", "EMBED", "BASE", "FRAME"].includes(node.tagName)) out.push(node.tagName);
  }
  for (const button of document.querySelectorAll(".modebar-btn")) {
    const title = button.getAttribute("data-title") || "";
    if (/share|cloud|chart studio|plotly/i.test(title)) out.push("modebar button: " + title);
  }
  return out;
}"""


def test_nothing_on_the_page_links_or_posts_off_it(swept, chromium):
    path, _ = swept
    view = Page(chromium, path)
    page = view.page
    for chart in ("#forest", "#charts [data-metric=reward]", "#acc-groups"):  # the modebar appears on hover
        page.locator(chart).hover()
        assert page.locator(f"{chart} .modebar-btn").count() > 3  # plotly's own tools are there: zoom, pan, PNG
    page.locator("#runs tbody tr a").first.click()  # and a run's panel, with its own charts
    view.draw_every_chart()
    page.locator("#detail .acc-chart").first.hover()
    assert view.errors == [] and page.evaluate(LEAVING) == []
    assert all(u.startswith(("file:", "data:")) for u in view.requests), view.requests
    # the page's policy refuses any connection it could try to make, whatever a script does
    policy = page.locator("meta[http-equiv=Content-Security-Policy]").get_attribute("content")
    assert "default-src 'none'" in policy and "form-action 'none'" in policy
    blocked = page.evaluate("""async () => {
        let violations = 0;
        document.addEventListener("securitypolicyviolation", () => { violations += 1; });
        const sent = await fetch("https://example.com/upload", {method: "POST", body: "x"})
          .then(() => true, () => false);
        await new Promise((done) => setTimeout(done, 100));
        return [sent, violations];
    }""")
    assert blocked == [False, 1]
    assert [u for u in view.requests if u.startswith("http")] == []


def test_the_page_fits_800_pixels(swept, cli, chromium, isolated):
    path, runs = swept
    view = Page(chromium, path, width=800)
    page = view.page
    view.draw_every_chart()
    assert view.overflowing() == [] and page.evaluate("document.documentElement.scrollWidth") <= 800
    # the table scrolls sideways inside its box; the plot box, id and name stay where they are
    box = page.locator("#runs").locator("xpath=..")
    pinned = [page.locator(f"#runs tbody tr:not([hidden]) td:nth-child({k})").first for k in (1, 2, 3)]
    before = [cell.bounding_box()["x"] for cell in pinned]
    heading = page.locator("#runs th", has_text="final_reward")
    heading_x = heading.bounding_box()["x"]
    assert box.evaluate("b => b.scrollWidth > b.clientWidth")  # there is something to scroll
    box.evaluate("b => { b.scrollLeft = 400; }")
    assert [cell.bounding_box()["x"] for cell in pinned] == before
    assert heading.bounding_box()["x"] < heading_x - 100
    # the metric columns come before the config ones, so the results are in view first
    headings = page.locator("#runs th").all_text_contents()
    assert headings.index("arith-v1") < headings.index("beta")
    # a run's panel (its accuracy tables and charts, its samples) fits too, and so does the page of every run
    page.locator("#runs tbody tr a").first.click()
    view.draw_every_chart()
    assert view.overflowing() == [] and view.errors == []
    assert cli("report", "--out", "all.html").returncode == 0
    view = Page(chromium, isolated / "all.html", "#run=hostile1", width=800)
    view.draw_every_chart()
    assert view.overflowing() == [] and view.errors == []


def test_every_control_is_reachable_with_tab(swept, chromium):
    path, _ = swept
    view = Page(chromium, path)
    page = view.page
    view.draw_every_chart()  # every chart's tools (zoom, pan, reset, PNG) are buttons too
    page.evaluate("window.scrollTo(0, 0)")
    controls = page.evaluate("""() => {
        const focusable = 'a[href], button, input, select, textarea, summary, [tabindex]';
        const nodes = [...document.querySelectorAll(focusable)].filter((n) => !n.disabled && n.tabIndex >= 0
          && n.getClientRects().length && getComputedStyle(n).visibility !== "hidden");
        nodes.forEach((n, k) => n.setAttribute("data-control", k));
        return nodes.length;
    }""")
    assert controls > 40  # headings, boxes and names of the runs, and every control above them
    page.locator("body").focus()
    reached = []
    for _ in range(controls + 5):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.getAttribute('data-control')"))
    missed = set(range(controls)) - {int(k) for k in reached if k is not None}
    assert not missed, page.evaluate("k => document.querySelector(`[data-control='${k}']`).outerHTML", min(missed))
    first = [k for k in reached if k is not None][:12]  # (a chart drawn as it scrolled into view adds unmarked tools)
    order = [page.evaluate(f"document.querySelector('[data-control=\"{k}\"]').id") for k in first]
    assert "group-by" in order and "smooth" in order  # the chart controls come first, not after every run
    assert view.errors == []


def test_every_chart_has_axis_titles(swept, chromium):
    path, _ = swept
    view = Page(chromium, path)
    view.page.locator("#runs tbody tr a").first.click()
    view.draw_every_chart()
    titles = view.page.evaluate("""() => [...document.querySelectorAll(".js-plotly-plot")].map((gd) =>
        [gd.id || gd.className, gd.layout.xaxis.title.text || "", gd.layout.yaxis.title.text || ""])""")
    assert len(titles) == len(rp.CURVES) + 2 + 1  # curves, the forest, accuracy by group; the run's arith-v1
    for name, x, y in titles:
        assert x and y, name
    units = {y for _, _, y in titles}
    assert "accuracy after training (%)" in units and "KL to the reference (nats per token)" in units


def test_the_answer_draws_what_the_rows_say(swept, chromium, isolated):
    """Rows that carry a claim and verdict in words, the smallest detectable effect and the pre-registered
    thresholds (compare's paired rows, as the sweep's statistics give them) are drawn and said as they are."""
    from grpo_lab import sweep as sweeps
    from grpo_lab.store.sqlite_read import find_sweep

    db = isolated / "grpo_lab.db"
    record = find_sweep(db, "kl-sweep")
    report = rp.collect(db, rp.Selection(sweep="kl-sweep"))
    table = sweeps.paired_with_verdicts(
        sweeps.scoped_fetch(rp._fetch(db), record["id"])(()), record, None
    )  # the same rows the page was built from
    words = {
        "kl-sweep_nokl": ("worse than baseline", "worse than baseline: confirmed", 0.07, [0.0]),
        "kl-sweep_lowlr": (
            "no worse than baseline by 2 pt",
            "no worse than baseline by 2 pt: not shown, ci_low -2.4 pt",
            0.05,
            [-0.02],
        ),
    }
    for row in table.rows:
        row["claim"], row["verdict_words"], row["mde"], row["thresholds"] = words[row["name"]]
    report.data["answer"] = rp.answer_data(table, sweeps.from_record(record["spec"]))
    report.data["paired"] = rp.paired_view(table)
    (isolated / "words.html").write_text(rp.render(report))
    view = Page(chromium, isolated / "words.html")
    page = view.page
    said = {li.locator(".arm").text_content(): li.text_content() for li in page.locator("#headline li").all()}
    assert "no worse than baseline by 2 pt: not shown, ci_low -2.4 pt" in said["lowlr"]
    assert "could have detected ≥ 5.0 pt" in said["lowlr"] and "could have detected ≥ 7.0 pt" in said["nokl"]
    shapes = view.chart("#forest")["layout"]["shapes"]
    thresholds = sorted(s["x0"] for s in shapes if s["type"] == "line" and s.get("line", {}).get("dash") == "dash")
    assert thresholds == pytest.approx([-2.0, 0.0])  # in points, like the differences
    mde = sorted((s["x0"], s["x1"]) for s in shapes if s["type"] == "rect")  # effects too small to detect
    assert [x for pair in mde for x in pair] == pytest.approx([-7.0, 7.0, -5.0, 5.0])
    headings = page.locator("#paired th").all_text_contents()
    assert headings[-2:] == ["claim", "verdict"] and "verdict_detail" not in headings and "criterion" not in headings
    assert view.errors == []


def test_a_report_of_a_postgresql_store(backend, cli, isolated, chromium):
    """`report --db URL` reads a PostgreSQL store as it reads a SQLite file: the same page data, run by run."""
    populate(Store(backend.db))
    proc = cli("report", "--db", backend.db, "--out", "r.html")
    assert proc.returncode == 0, proc.stderr
    html = (isolated / "r.html").read_text()
    if backend.name == "postgresql":
        password = backend.db.split(":")[2].split("@")[0]
        assert password not in html + proc.stdout + proc.stderr
    data = json.loads(html.split('id="report-data">', 1)[1].split("</script>", 1)[0])
    assert [r["id"] for r in data["rows"]] == RUN_IDS[::-1]
    here = isolated / "same.db"  # the same runs in a SQLite file
    populate(Store(f"sqlite:///{here}"))
    expected = rp.collect(here, rp.Selection())
    for run in [*data["runs"].values(), *expected.data["runs"].values()]:
        run["notes"] = [note[:2] for note in run["notes"]]  # the two stores wrote their notes at different times
    for answers in (data["answers"], expected.data["answers"]):  # the distinct texts come in no set order
        answers["tasks"].sort()
        answers["answers"].sort(key=json.dumps)
    for key in ("columns", "rows", "constant", "runs", "answers", "seed_groups"):
        assert data[key] == json.loads(json.dumps(expected.data[key])), key
    for rid, blob in expected.runs.items():
        shown = json.loads(html.split(f'id="run-{rid}">', 1)[1].split("</script>", 1)[0])
        want = json.loads(blob)
        assert sorted(map(json.dumps, shown["curve"])) == sorted(map(json.dumps, want["curve"])), rid
        assert sorted(map(json.dumps, shown["samples"])) == sorted(map(json.dumps, want["samples"])), rid
    view = Page(chromium, isolated / "r.html")
    assert view.errors == [] and sorted(view.visible_ids()) == sorted(RUN_IDS)


def test_screenshot_helper(cli, store, isolated, chromium):
    proc = cli("report", "--out", "r/report.html", "--screenshot", "r/report.png")
    assert proc.returncode == 0, proc.stderr
    png = (isolated / "r" / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 50_000
    assert int.from_bytes(png[16:20], "big") == 1400  # the PNG's width, from its header
    proc = cli("report", "--out", "r/report.html", "--screenshot", "r/narrow.png", "--screenshot-width", "800")
    assert proc.returncode == 0, proc.stderr
    assert int.from_bytes((isolated / "r" / "narrow.png").read_bytes()[16:20], "big") == 800


@pytest.mark.slow
def test_a_real_run_in_the_browser(cli, recorded_store, isolated, chromium):
    """The curve keys and samples the runner actually records (TRL's logs) reach the page."""
    db, run_id = recorded_store
    shutil.copy(db, isolated / "real.db")
    assert cli("report", "--db", str(isolated / "real.db"), "--out", "real.html").returncode == 0
    view = Page(chromium, isolated / "real.html")
    assert view.errors == [] and view.visible_ids() == [run_id]
    logged = set(json.loads(sqlite3.connect(isolated / "real.db").execute("SELECT metrics FROM step").fetchone()[0]))
    for key, *_ in rp.CURVES:
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
    assert page.locator("#runs input:checked").count() == 5 == len(view.traces("reward")) // 2  # a handful
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
