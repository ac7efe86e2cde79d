"""compare's pure parts and its store query: where-parser, diff-only columns, seed grouping, formats."""

import csv
import io
import json

import pytest

from grpo_lab import compare as cmp
from grpo_lab.errors import GrpoLabError
from grpo_lab.store import Rows
from grpo_lab.store.db import Run, Store


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("beta=0.1", [("beta", "=", 0.1)]),
        ("held_out>=0.5 and dataset_type=mixed", [("held_out", ">=", 0.5), ("dataset_type", "=", "mixed")]),
        ("status!=failed", [("status", "!=", "failed")]),
        ("name == 'rep baseline'", [("name", "=", "rep baseline")]),
        ('exp_name="x;y"', [("exp_name", "=", "x;y")]),
        ("  final_reward < -0.5 ", [("final_reward", "<", -0.5)]),
        ("reward=partial", [("reward", "=", "partial")]),
    ],
)
def test_where_parser(expr, expected):
    assert [(c.field, c.op, c.value) for c in cmp.parse_where(expr)] == expected


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("beta=0.1; DROP TABLE run", "expected 'and' between conditions"),
        ("beta ~ 0.1", "expected FIELD OP VALUE"),
        ("beta => 0.1", "expected FIELD OP VALUE"),
        ("colour=red", "unknown field 'colour'; a field is a flag"),
        ("learningrate=1", "unknown field 'learningrate'; did you mean learning_rate?"),
        ("beta=", "expected FIELD OP VALUE"),
        ("beta=0.1 or beta=0", "expected 'and' between conditions, got 'or'"),
        ("'beta'=1", "expected FIELD OP VALUE"),
        ("beta=0.1 and", "expected FIELD OP VALUE"),
        ("name='unterminated", "cannot read"),
    ],
)
def test_where_parser_rejects_bad_and_hostile_input(expr, message):
    with pytest.raises(GrpoLabError, match=message.replace("(", r"\(")):
        cmp.parse_where(expr)


def add(store, run_id, started, seed=1, beta=0.1, held=0.5, status="finished", lr=5e-5, dataset="arithmetic",
        name="e", suite=None, generations=16, **extra):  # fmt: skip
    config = {"dataset_type": dataset, "beta": beta, "seed": seed, "learning_rate": lr, "num_generations": generations,
              "exp_name": name}  # fmt: skip
    values = {"held_out": held, "train_acc": held + 0.1, "final_reward": held - 0.5, "zero_std": 0.2,
              "arith-v1": held - 0.1 if suite is None else suite, "arith-v1[+]": held + 0.2, "kl_last": 0.7,
              "steps": 10, "arith-v1_overlap": 0, **extra}  # fmt: skip
    store.create_run(Run(id=run_id, exp_name=name, status="running", started_at=started, host="h", model_name="m",
                         config=json.dumps(config), tags=json.dumps(["t"])))  # fmt: skip
    store.finish_run(run_id, status, metrics=values, duration_s=60.0)


@pytest.fixture
def store(backend):
    """Five runs on SQLite and on PostgreSQL; ``fetch`` reads them as compare does (the stdlib reader on SQLite,
    the server's own filtering on PostgreSQL)."""
    s = Store(backend.db)
    s.fetch = Rows(backend.db)
    for i, (seed, beta, held) in enumerate([(1, 0.1, 0.50), (2, 0.1, 0.54), (3, 0.1, 0.52), (1, 0.0, 0.40),
                                            (2, 0.0, 0.44)]):  # fmt: skip
        add(s, f"run{i:05d}", f"2026-01-0{i + 1}T00:00:00+00:00", seed=seed, beta=beta, held=held)
    yield s
    s.close()


def test_only_differing_config_columns_are_shown(store):
    table = cmp.compare(store.fetch)
    assert [c for c in table.columns if c in cmp.CONFIG_FIELDS] == ["beta", "seed"]
    assert "learning_rate" in cmp.compare(store.fetch, all_columns=True).columns
    single = cmp.compare(store.fetch, where="beta=0.1 and seed=1")
    assert [r["id"] for r in single.rows] == ["run00000"]
    assert not [c for c in single.columns if c in cmp.CONFIG_FIELDS]


def test_where_filters_in_sql_on_config_results_and_columns(store):
    ids = lambda table: [r["id"] for r in table.rows]  # noqa: E731
    assert ids(cmp.compare(store.fetch)) == ["run00004", "run00003", "run00002", "run00001", "run00000"]  # newest 1st
    assert ids(cmp.compare(store.fetch, where="beta=0")) == ["run00004", "run00003"]
    assert ids(cmp.compare(store.fetch, where="held_out>=0.52")) == ["run00002", "run00001"]
    assert ids(cmp.compare(store.fetch, where="status!=finished")) == []
    assert ids(cmp.compare(store.fetch, where="name='e' and held_out<0.45")) == ["run00004", "run00003"]
    assert ids(cmp.compare(store.fetch, where="exp_name=\"x' OR '1'='1\"")) == []  # quotes stay data
    assert ids(cmp.compare(store.fetch, where="dataset_type=arithmetic and seed<=2")) == [
        "run00004",
        "run00003",
        "run00001",
        "run00000",
    ]
    assert ids(cmp.compare(store.fetch, where="dataset_type>0.5")) == []  # a word is never a number
    assert ids(cmp.compare(store.fetch, last=2)) == ["run00004", "run00003"]
    assert ids(cmp.compare(store.fetch, sort="-held_out", limit=2)) == ["run00001", "run00002"]  # in SQL
    assert ids(cmp.compare(store.fetch, sort="held_out", limit=2)) == ["run00003", "run00004"]
    assert ids(cmp.compare(store.fetch, sort="-held_out")) == ["run00001", "run00002", "run00000", "run00004",
                                                               "run00003"]  # fmt: skip
    assert ids(cmp.compare(store.fetch, sort="-beta", limit=1, where="held_out<0.52")) == ["run00000"]
    assert ids(cmp.compare(store.fetch, where="final_reward<-0.05")) == ["run00004", "run00003"]
    assert ids(cmp.compare(store.fetch, sort="-seed", limit=2, where="beta=0.1")) == ["run00002", "run00001"]
    assert ids(cmp.compare(store.fetch, sort="name", limit=1, where="beta=0")) == ["run00004"]  # ties: newest


def test_hostile_where_leaves_the_store_intact(store):
    with pytest.raises(GrpoLabError):
        cmp.compare(store.fetch, where="beta=0.1; DROP TABLE run")
    assert len(cmp.compare(store.fetch).rows) == 5


def test_group_by_seed_gives_mean_sd_and_n(store):
    table = cmp.compare(store.fetch, group_by_seed=True)
    assert "seed" not in table.columns and {"n", "seeds"} <= set(table.columns)
    rows = {r["beta"]: r for r in table.rows}
    assert rows[0.1]["n"] == 3 and rows[0.1]["seeds"] == "1,2,3"
    assert rows[0.1]["held_out"] == pytest.approx(0.52) and rows[0.1]["held_out_sd"] == pytest.approx(0.02)
    assert rows[0.0]["n"] == 2 and rows[0.0]["held_out"] == pytest.approx(0.42)
    assert "52.0% ± 2.0" in cmp.to_markdown(table)
    assert "| run00000 +2 |" in cmp.to_markdown(table) and rows[0.1]["id"] == "run00000,run00001,run00002"


def test_csv_and_json_parse_back_to_the_same_values(store):
    table = cmp.compare(store.fetch, group_by_seed=True)
    parsed_json = json.loads(cmp.to_json(table))
    parsed_csv = list(csv.DictReader(io.StringIO(cmp.to_csv(table))))
    assert len(parsed_json) == len(parsed_csv) == 2
    for row, j, c in zip(table.rows, parsed_json, parsed_csv, strict=True):
        for col in cmp._raw_columns(table):
            value = row.get(col)
            assert j[col] == value
            if value is None:
                assert c[col] == ""
            elif isinstance(value, float):
                assert float(c[col]) == value
            else:
                assert c[col] == str(value)


def test_markdown_has_one_line_per_run(store):
    md = cmp.to_markdown(cmp.compare(store.fetch))
    lines = md.strip().splitlines()
    assert len(lines) == 2 + 5 and lines[0].startswith("| id | name | status")
    assert "50.0%" in lines[-1] and "kl-range" not in lines[-1]  # run00000, the oldest, comes last


def test_unknown_sort_column(store):
    with pytest.raises(GrpoLabError, match="--sort: no column 'colour'"):
        cmp.compare(store.fetch, sort="colour")


@pytest.fixture
def seeded(backend):
    """Three arms on seeds 1-6 (the 'ood' arm lacks seed 6, the baseline lacks seed 7), known arith-v1 values."""
    s = Store(backend.db)
    s.fetch = Rows(backend.db)
    base = {1: 0.40, 2: 0.42, 3: 0.38, 4: 0.41, 5: 0.39, 6: 0.40}
    arms = {"base": (0.1, base),
            "up": (0.2, {k: v + d for (k, v), d in zip(base.items(), [0.02, 0.04, 0.01, 0.03, 0.02, 0.05],
                                                      strict=True)}),
            "ood": (0.3, {1: 0.41, 2: 0.40, 3: 0.40, 4: 0.41, 5: 0.38, 7: 0.5})}  # fmt: skip
    i = 0
    for name, (beta, values) in arms.items():
        for seed, value in values.items():
            add(s, f"r{i:04d}", f"2026-02-01T00:{i:02d}:00+00:00", seed=seed, beta=beta, name=name, suite=value)
            i += 1
    yield s
    s.close()


def test_baseline_gives_hand_computed_paired_differences(seeded):
    rows = cmp.fetch_rows(seeded.fetch)
    table = cmp.paired_table(rows, "base", "arith-v1")
    assert [r["name"] for r in table.rows] == ["ood", "up"]  # groups newest first
    ood, up = table.rows
    assert up["name"] == "up" and up["n"] == 6 and up["seeds"] == "1,2,3,4,5,6" and up["unpaired"] is None
    assert up["per_seed"] == pytest.approx([0.02, 0.04, 0.01, 0.03, 0.02, 0.05])
    assert up["diff"] == pytest.approx(0.0283333, abs=1e-6)
    sd = 0.0147196  # sample sd of the six differences
    assert up["diff_sd"] == pytest.approx(sd, abs=1e-6)
    assert up["ci_low"] == pytest.approx(0.0283333 - 2.570582 * sd / 6**0.5, abs=1e-6)  # t(0.975, 5)
    assert up["p"] == pytest.approx(2 / 64) and "too small" not in up["note"]
    # ood vs base on seeds 1-5: +0.01, -0.02, +0.02, 0, -0.01 -> sum 0, every pattern is as extreme
    assert ood["n"] == 5 and ood["unpaired"] == "6,7" and ood["diff"] == pytest.approx(0, abs=1e-12)
    assert ood["p"] == pytest.approx(1.0)
    assert ood["note"] == "n=5 too small: p cannot go below 0.0625"
    assert up["p_holm"] == pytest.approx(min(1, 2 * 2 / 64)) and ood["p_holm"] == pytest.approx(1.0)


def test_paired_table_in_every_format(seeded):
    table = cmp.paired_table(cmp.fetch_rows(seeded.fetch), "r0003", "arith-v1")  # a run ID in the baseline group
    md = cmp.to_markdown(table)
    assert "n=5 too small: p cannot go below 0.0625" in md and "| up |" in md and "+2.8 pt ± 1.5" in md
    assert "exact two-sided sign-flip" in md and "95% interval: t" in md
    (j_ood, j_up) = json.loads(cmp.to_json(table))
    assert j_up["p"] == pytest.approx(2 / 64) and j_ood["unpaired"] == "6,7" and len(j_up["per_seed"]) == 6
    parsed = list(csv.DictReader(io.StringIO(cmp.to_csv(table))))
    assert float(parsed[1]["ci_low"]) == pytest.approx(j_up["ci_low"]) and parsed[0]["note"].startswith("n=5")
    rich = cmp.to_rich(table)
    (note,) = [c for c in rich.columns if str(c.header) == "note"]
    assert "too small" in "".join(str(c) for c in note._cells)
    assert "n=5 too small: p cannot go below 0.0625" in cmp.to_plain(table)


def test_baseline_errors(seeded):
    rows = cmp.fetch_rows(seeded.fetch)
    with pytest.raises(GrpoLabError, match="names no run or group"):
        cmp.paired_table(rows, "nope")
    with pytest.raises(GrpoLabError, match="no run here has it"):
        cmp.paired_table(rows, "base", "mixed-v1")


def test_verdict_is_a_column_and_a_filter(seeded):
    seeded.update_run("r0000", verdict="rejected", verdict_detail="arith-v1 0.4 < 0.5")
    table = cmp.compare(seeded.fetch, where="verdict=rejected")
    assert [r["id"] for r in table.rows] == ["r0000"] and "verdict" in table.columns
    assert table.rows[0]["verdict"] == "rejected"


def test_suite_columns_are_named_by_suite_and_held_out_is_the_own_split(store):
    table = cmp.compare(store.fetch)
    assert {"held_out", "arith-v1", "arith-v1[+]"} <= set(table.columns)
    row = table.rows[-1]  # run00000
    assert row["held_out"] == pytest.approx(0.5) and row["arith-v1"] == pytest.approx(0.4)
    assert [r["id"] for r in cmp.compare(store.fetch, where="arith-v1>0.41").rows] == ["run00002", "run00001"]
    with pytest.raises(GrpoLabError, match="unknown field 'held_ot'"):
        cmp.compare(store.fetch, where="held_ot>0.5")


def test_large_selections_fetch_their_metrics_through_the_runs_query(store, monkeypatch):
    from grpo_lab.store import query

    by_id = cmp.compare(store.fetch, where="beta=0.1", sort="-held_out", limit=2)
    monkeypatch.setattr(query, "IDS_AT_ONCE", 0)
    assert cmp.compare(store.fetch, where="beta=0.1", sort="-held_out", limit=2).rows == by_id.rows
    assert [r["held_out"] for r in by_id.rows] == [0.54, 0.52]


def test_only_the_metrics_a_table_needs_are_fetched_and_nothing_shown_changes(store):
    """compare fetches the metrics it shows or diagnoses; every rule gives the same finding on those alone."""
    from grpo_lab.diagnostics import RULES, diagnose

    add(store, "diag0001", "2026-03-01T00:00:00+00:00", beta=0.0, held=0.2, zero_std=0.9, reward_max=-1.0,
        frac_grad_norm_zero=0.9, kl_last=3.0, train_acc=0.9, **{"arith-v1_overlap": 5, "entropy": 0.5})  # fmt: skip
    add(store, "diag0002", "2026-03-02T00:00:00+00:00", kl_last=3.0, generations=4)
    everything = cmp.fetch_rows(store.fetch)
    needed = cmp._needed(store.fetch, all_columns=False, sort=None)
    assert "entropy" not in needed and "arith-v1[+]" in needed and "arith-v1_overlap" in needed
    fetched = cmp.fetch_rows(store.fetch, names=needed)
    assert [r["id"] for r in fetched] == [r["id"] for r in everything]
    for full, part in zip(everything, fetched, strict=True):
        assert set(part["metrics"]) == set(full["metrics"]) & set(needed)
        assert diagnose(full["config"], full["metrics"]) == diagnose(part["config"], part["metrics"])
    found = {f.code for row in fetched[:2] for f in diagnose(row["config"], row["metrics"])}
    assert found == {r.code for r in RULES}  # every rule fired on the two runs added here
    for all_columns in (False, True):
        shown = cmp.compare(store.fetch, all_columns=all_columns)
        assert shown.rows == cmp.build_table(everything, all_columns).rows


def test_one_percent_formatter_everywhere():
    from grpo_lab.metrics import pct

    assert (pct(0.455), pct(0), pct(1), pct(None), pct(0.0004)) == ("45.5%", "0.0%", "100.0%", "-", "0.0%")


def test_a_sweep_in_progress_groups_by_arm_and_counts_only_runs_with_results():
    """A queued run's recorded config lacks what is resolved when it starts (num_processes), and only a finished
    run has results: seed groups of a sweep are its arms, n counts finished runs, and a note counts the rest."""

    def row(run_id, arm, seed, status, value=None, processes=1):
        config = {"beta": 0.0 if arm == "b" else 0.1, "seed": seed, "num_processes": processes, "exp_name": f"s_{arm}"}
        return {"id": run_id, "kind": "train", "exp_name": f"s_{arm}", "status": status, "model_name": "m",
                "started_at": f"2026-01-01T00:0{len(run_id)}:00", "duration_s": 1.0, "config": config,
                "hypothesis": "h", "verdict": None, "verdict_detail": None, "suites_disjoint": True,
                "sweep_id": "sw", "arm": arm, "superseded": False,
                "metrics": {} if value is None else {"arith-v1": value}}  # fmt: skip

    rows = [row("a1", "a", 1, "finished", 0.20), row("a2", "a", 2, "finished", 0.22),
            row("a3", "a", 3, "queued", processes=None), row("a4", "a", 4, "running"),
            row("b1", "b", 1, "finished", 0.19), row("b2", "b", 2, "finished", 0.20),
            row("b3", "b", 3, "queued", processes=None)]  # fmt: skip
    table = cmp.build_table(rows, group_by_seed=True)
    by_name = {r["name"]: r for r in table.rows}
    assert set(by_name) == {"s_a", "s_b"} and "num_processes" not in table.columns
    assert (by_name["s_a"]["n"], by_name["s_a"]["seeds"]) == (2, "1,2")
    assert by_name["s_a"]["arith-v1"] == pytest.approx(0.21)
    (paired,) = cmp.paired_table(rows, "s_a", "arith-v1").rows
    assert paired["n"] == 2 and paired["diff"] == pytest.approx(-0.015)
    assert cmp.to_plain(table).startswith("2 seed groups of 4 runs\n")
    assert table.notes == ["not in the groups (no results to average): 2 queued, 1 running"]
    rows[1]["status"] = "crashed"  # a crash leaves no results: the group shrinks and the note says why
    table = cmp.build_table(rows, group_by_seed=True)
    assert {r["name"]: r["n"] for r in table.rows} == {"s_a": 1, "s_b": 2}
    assert table.notes == ["not in the groups (no results to average): 1 crashed, 2 queued, 1 running"]
