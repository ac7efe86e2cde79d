"""Evaluation sets as researchers keep them (issue 24): a `datasets` folder, .jsonl, .json, .csv, .parquet, a hub id;
fields found the obvious way or named with --suite_fields; repeated prompts kept and counted as rows; suites frozen
by `grpo-lab suites import`; every run's record keeps each suite's checksum, rows and distinct problems."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import sqlite3
from pathlib import Path

import pytest
from conftest import call

from grpo_lab import suites, tasks
from grpo_lab.errors import GrpoLabError
from grpo_lab.suites import open_suite, suite_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "orig_eval_set.py"


def example():
    spec = importlib.util.spec_from_file_location("orig_eval_set", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def orig(tmp_path_factory):
    """The original project's evaluation set in its shape (200 rows, prompt/answer/difficulty/metadata.operation,
    15 repeated prompts), as a `datasets` folder, a CSV (the nested column spelled metadata.operation), a Parquet
    file (kept nested), JSON lines and a JSON list: what the example script writes, and the rows it wrote."""
    import datasets

    folder = tmp_path_factory.mktemp("orig")
    module = example()
    rows = module.rows()
    datasets.disable_progress_bars()
    data = datasets.Dataset.from_list(rows)
    data.save_to_disk(str(folder / "orig-eval"))
    module.write_csv(rows, str(folder / "orig-eval.csv"))
    data.to_parquet(str(folder / "orig-eval.parquet"))
    (folder / "orig-eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "orig-eval.json").write_text(json.dumps({"data": rows}))
    return folder, rows


FORMATS = ("orig-eval", "orig-eval.csv", "orig-eval.parquet", "orig-eval.jsonl", "orig-eval.json")


def test_the_example_set_has_the_original_projects_shape(orig):
    _, rows = orig
    assert len(rows) == 200 and len({r["prompt"] for r in rows}) == 185
    assert all(set(r) == {"prompt", "answer", "difficulty", "metadata"} and set(r["metadata"]) == {"operation"}
               for r in rows)  # fmt: skip


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_gives_the_same_problems_repeats_and_checksum(orig, name):
    folder, rows = orig
    suite = open_suite(str(folder / name))
    reference = open_suite(str(folder / "orig-eval"))
    assert suite.problems == reference.problems and suite.sha256 == reference.sha256
    assert (suite.name, suite.rows, suite.distinct) == ("orig-eval", 200, 185)
    assert [p.prompt for p in suite.problems] == [r["prompt"] for r in rows]  # the source's order, repeats kept
    assert [p.operation for p in suite.problems] == [r["metadata"]["operation"] for r in rows]
    assert {p.task_type for p in suite.problems} == {"arithmetic"}  # from the operation
    assert suite.fields["operation"] == "metadata.operation" and suite.fields["task_type"] == "(inferred)"
    assert suite.sha256 == hashlib.sha256(suite_text(suite.problems).encode()).hexdigest()
    assert suite.notice() == ("suite orig-eval: 200 rows, 185 distinct problems; 15 rows repeat an earlier row's "
                              "prompt and each counts in its accuracy, as the source counts it")  # fmt: skip


def test_a_built_in_suite_records_its_pinned_checksum():
    suite = open_suite("arith-v1")
    assert suite.sha256 == suites.SUITES["arith-v1"].sha256
    assert suite.sha256 == hashlib.sha256(suite_text(suite.problems).encode()).hexdigest()  # the same rule
    assert suite.record() == {"name": "arith-v1", "source": "arith-v1", "kind": "built-in", "sha256": suite.sha256,
                              "rows": 200, "distinct": 200}  # fmt: skip
    assert suite.notice() is None


def test_fields_are_found_by_their_usual_names_and_mapped_by_suite_fields(tmp_path):
    (tmp_path / "qa.jsonl").write_text(
        '{"Question": "Is 3 > 2? Answer: ", "Target": "yes", "meta": {"info": {"task_type": "comparison"}}}\n'
    )
    suite = open_suite(str(tmp_path / "qa.jsonl"))
    assert suite.problems[0] == tasks.Problem("Is 3 > 2? Answer: ", "yes", "comparison", "", "")
    assert suite.fields == {"prompt": "Question", "answer": "Target", "task_type": "meta.info.task_type"}
    (tmp_path / "odd.csv").write_text("q,sol,kind,level\nCalculate: 2 * 3 = ,6,*,easy\n")
    with pytest.raises(GrpoLabError, match=r"has no prompt field \(its columns: q, sol, kind, level\)"):
        open_suite(str(tmp_path / "odd.csv"), "answer=sol")
    suite = open_suite(str(tmp_path / "odd.csv"), "prompt=q,answer=sol,operation=kind,difficulty=level")
    assert suite.problems[0] == tasks.Problem("Calculate: 2 * 3 = ", "6", "arithmetic", "*", "easy")
    # numbers in typed formats are text the way a completion gives them
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"input": ["Calculate: 2 + 2 = ", "Calculate: 1 / 4 = "], "output": [4.0, 0.25]}),
                   tmp_path / "typed.parquet")  # fmt: skip
    assert [p.answer for p in open_suite(str(tmp_path / "typed.parquet")).problems] == ["4", "0.25"]


def test_a_datasets_folder_of_several_splits_is_named_with_its_split(tmp_path):
    import datasets

    datasets.disable_progress_bars()
    rows = [{"prompt": f"Calculate: {i} + 1 = ", "answer": str(i + 1)} for i in range(3)]
    both = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(rows[:2])}
    )
    both.save_to_disk(str(tmp_path / "both"))
    with pytest.raises(GrpoLabError, match=r"holds several splits \(train, test\); name one: .*both:train"):
        open_suite(str(tmp_path / "both"))
    suite = open_suite(f"{tmp_path / 'both'}:test")
    assert (suite.name, suite.rows, suite.source) == ("both-test", 2, f"{tmp_path / 'both'}:test")
    datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "one"))
    assert open_suite(str(tmp_path / "one")).rows == 3  # its only split


def test_overlap_with_training_counts_distinct_problems():
    train = tasks.generate_problems("arithmetic", 50, seed=1)
    suite = [train[0], train[0], train[0], train[1], tasks.arithmetic_problem(40, "+", 41)]
    assert tasks.overlap(train, suite) == 2  # three rows of one problem are one problem trained on


def test_import_freezes_a_set_that_runs_then_name(orig, tmp_path, monkeypatch):
    folder, _ = orig
    home = tmp_path / "mine"
    monkeypatch.setenv("GRPO_LAB_SUITES", str(home))
    result = call("suites", "import", str(folder / "orig-eval"), "--name", "orig-eval-v1")
    assert result.returncode == 0, result.stderr
    source = open_suite(str(folder / "orig-eval"))
    assert (home / "orig-eval-v1.jsonl").read_text() == suite_text(source.problems)  # the built-in format
    manifest = json.loads((home / "orig-eval-v1.json").read_text())
    assert manifest["sha256"] == source.sha256 and manifest["source"] == str(folder / "orig-eval")
    assert (manifest["kind"], manifest["rows"], manifest["distinct"]) == ("datasets folder", 200, 185)
    assert "15 rows repeat" in result.stderr and "imported suite orig-eval-v1: 200 rows" in result.stdout
    frozen = open_suite("orig-eval-v1")
    assert frozen.problems == source.problems and frozen.sha256 == source.sha256
    assert frozen.record()["imported_from"]["source"] == str(folder / "orig-eval")
    listed = call("suites")
    assert "orig-eval-v1" in listed.stdout and "200 (185" in listed.stdout and "0589e37a1173" in listed.stdout
    # the same problems from another format: nothing changes; other problems under the name: refused
    stamp = (home / "orig-eval-v1.json").stat().st_mtime_ns
    again = call("suites", "import", str(folder / "orig-eval.parquet"), "--name", "orig-eval-v1")
    assert again.returncode == 0 and "nothing changed: these problems are already the suite" in again.stdout
    assert (home / "orig-eval-v1.json").stat().st_mtime_ns == stamp
    changed = tmp_path / "changed.csv"
    lines = (folder / "orig-eval.csv").read_text().splitlines(keepends=True)
    row = next(csv.reader([lines[1]]))
    row[1] = str(int(row[1]) + 1)
    changed.write_text(lines[0] + ",".join(row) + "\n" + "".join(lines[2:]))
    before = {p.name: p.read_bytes() for p in home.iterdir()}
    refused = call("suites", "import", str(changed), "--name", "orig-eval-v1")
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1
    assert "a changed set is a new suite, import it under a new name (e.g. orig-eval-v2)" in refused.stderr
    assert {p.name: p.read_bytes() for p in home.iterdir()} == before
    # a frozen file edited by hand is refused, not evaluated
    (home / "orig-eval-v1.jsonl").write_text(suite_text(source.problems[:-1]))
    with pytest.raises(GrpoLabError, match="the imported suite orig-eval-v1 has changed on disk"):
        open_suite("orig-eval-v1")


def test_a_resumed_run_is_held_to_the_suites_it_started_with(orig):
    folder, _ = orig
    suite = open_suite(str(folder / "orig-eval.csv"))
    recorded = suites.suite_records([suite])
    suites.check_unchanged(recorded, [suite])
    suites.check_unchanged(None, [suite])  # a run recorded before m009 is held to nothing
    other = open_suite("arith-v1")
    suites.check_unchanged(recorded, [other])
    moved = suites.LoadedSuite(suite.name, suite.source, suite.kind, suite.problems[1:], "0" * 64)
    with pytest.raises(GrpoLabError, match="suite orig-eval .* has changed since the run started"):
        suites.check_unchanged(recorded, [moved])


def _records(db: Path) -> list[dict]:
    conn = sqlite3.connect(db)
    try:
        out = []
        # in the order recorded: three evaluations of the tiny model can start within one second (started_at's unit)
        for run_id, kind, raw in conn.execute("SELECT id, kind, suites FROM run ORDER BY rowid"):
            results = {(stage, split): (correct, total) for stage, split, correct, total in conn.execute(
                "SELECT stage, split, correct, total FROM result WHERE run_id = ? AND dimension = 'overall'",
                (run_id,))}  # fmt: skip
            metrics = dict(conn.execute("SELECT name, value FROM metric WHERE run_id = ?", (run_id,)))
            train = {r[0] for r in conn.execute("SELECT prompt FROM prediction WHERE run_id = ? AND split = 'train'",
                                                (run_id,))}  # fmt: skip
            suite = [r[0] for r in conn.execute("SELECT prompt FROM prediction WHERE run_id = ? AND split = "
                                                "'orig-eval' AND stage = 'after' ORDER BY idx", (run_id,))]  # fmt: skip
            out.append({"id": run_id, "kind": kind, "suites": json.loads(raw), "results": results,
                        "metrics": metrics, "train": train, "suite": suite})  # fmt: skip
        return out
    finally:
        conn.close()


@pytest.mark.slow
def test_eval_and_a_short_run_on_the_folder_the_csv_and_the_parquet_file_agree(orig, isolated):
    """The issue's "done when": each format evaluated with `grpo-lab eval` and used by a short `grpo-lab run`:
    the same accuracy on each, repeats counted as rows, distinct problems and the overlap recorded."""
    folder, rows = orig
    sources = [str(folder / name) for name in ("orig-eval", "orig-eval.csv", "orig-eval.parquet")]
    for source in sources:
        result = call("eval", "--model_name", "tiny-arith", "--suite", source, "--threads", "1")
        assert result.returncode == 0, result.stderr
        assert "suite orig-eval: 200 rows, 185 distinct problems; 15 rows repeat" in result.stderr
    run = ["--model_name", "tiny-arith", "--n_samples", "64", "--batch_size", "16", "--num_generations", "4",
           "--eval_samples", "10", "--max_steps", "1", "--threads", "1", "--wandb", "disabled"]  # fmt: skip
    for source in sources:
        result = call("run", *run, "--eval_suite", source, "--hypothesis", "the door takes the set as it is")
        assert result.returncode == 0, result.stderr
    records = _records(isolated / "grpo_lab.db")
    evals, runs = records[:3], records[3:]
    assert [r["kind"] for r in records] == ["eval"] * 3 + ["train"] * 3
    checksum = open_suite(sources[0]).sha256
    for record, source in zip(evals + runs, sources + sources, strict=True):
        (suite,) = record["suites"]
        assert (suite["name"], suite["rows"], suite["distinct"], suite["sha256"]) == ("orig-eval", 200, 185, checksum)
        assert suite["source"] == source and suite["fields"]["operation"] == "metadata.operation"
        assert record["suite"] == [r["prompt"] for r in rows]  # every row evaluated, in order, repeats included
    # the same accuracy on each format, counted over the 200 rows
    scores = {r["results"][("after", "orig-eval")] for r in evals}
    assert len(scores) == 1 and next(iter(scores))[1] == 200
    assert {r["results"][("before", "orig-eval")] for r in runs} == scores  # the base model, before training
    assert len({r["results"][("after", "orig-eval")] for r in runs}) == 1
    # the overlap counts distinct problems of the set that the run trained on (an independent count)
    distinct = {r["prompt"] for r in rows}
    for record in runs:
        assert record["metrics"]["orig-eval_overlap"] == len(record["train"] & distinct) > 0
    shown = call("show", runs[0]["id"])
    assert "orig-eval (datasets folder" in shown.stdout.replace("\n", " ")
    assert (
        f"contaminated: training problems that are also evaluation problems ({len(runs[0]['train'] & distinct)} "
        "in orig-eval)" in " ".join(shown.stdout.split())
    )


@pytest.mark.slow
def test_a_run_names_an_imported_suite_and_records_its_checksum(orig, isolated):
    folder, _ = orig
    assert call("suites", "import", str(folder / "orig-eval.parquet"), "--name", "orig-eval-v1").returncode == 0
    result = call("eval", "--model_name", "tiny-arith", "--suite", "orig-eval-v1", "--suite", "mixed-v1",
                  "--threads", "1")  # fmt: skip
    assert result.returncode == 0, result.stderr
    (record,) = _records(isolated / "grpo_lab.db")
    frozen, mixed = record["suites"]
    assert (frozen["name"], frozen["kind"], frozen["source"], frozen["rows"], frozen["distinct"]) == (
        "orig-eval-v1", "imported", "orig-eval-v1", 200, 185)  # fmt: skip
    assert frozen["sha256"] == open_suite(str(folder / "orig-eval")).sha256
    assert frozen["imported_from"]["source"] == str(folder / "orig-eval.parquet")
    assert mixed["sha256"] == suites.SUITES["mixed-v1"].sha256
    config = json.loads(sqlite3.connect(isolated / "grpo_lab.db").execute("SELECT config FROM run").fetchone()[0])
    assert config["suites"] == ["orig-eval-v1", "mixed-v1"]  # its command names it by its name


def test_the_suites_folder_misplaced_or_damaged_is_said_in_one_line(orig, tmp_path, monkeypatch):
    folder, _ = orig
    (tmp_path / "a-file").write_text("mine\n")
    monkeypatch.setenv("GRPO_LAB_SUITES", str(tmp_path / "a-file"))
    result = call("suites", "import", str(folder / "orig-eval.csv"), "--name", "x-v1")
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert "the suites folder" in result.stderr and "is not a folder" in result.stderr
    assert (tmp_path / "a-file").read_text() == "mine\n"
    home = tmp_path / "home"
    monkeypatch.setenv("GRPO_LAB_SUITES", str(home))
    assert call("suites", "import", str(folder / "orig-eval.csv"), "--name", "good-v1").returncode == 0
    (home / "broken-v1.json").write_text("{not json")
    listed = call("suites")
    assert listed.returncode == 0 and "good-v1" in listed.stdout
    assert "cannot be used" in " ".join(listed.stdout.split())  # listed with why, not hidden
    refused = call("eval", "--model_name", "tiny-arith", "--suite", "broken-v1")
    assert refused.returncode == 2 and "the imported suite broken-v1 " in refused.stderr
    assert "is damaged: its manifest is not JSON" in refused.stderr
