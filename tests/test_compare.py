"""compare's pure parts and its store query: where-parser, diff-only columns, seed grouping, formats."""

import csv
import functools
import io
import json

import pytest

from grpo_lab import compare as cmp
from grpo_lab.errors import GrpoLabError
from grpo_lab.store.db import Run, Store
from grpo_lab.store.sqlite_read import table_rows


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
        ("colour=red", "unknown field 'colour'; valid fields: id, name"),
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


def add(store, run_id, started, seed=1, beta=0.1, held=0.5, status="finished", lr=5e-5, dataset="arithmetic"):
    config = {"dataset_type": dataset, "beta": beta, "seed": seed, "learning_rate": lr, "num_generations": 16,
              "exp_name": "e"}  # fmt: skip
    summary = {"held_out": held, "train_acc": held + 0.1, "reward": held - 0.5, "zero_std": 0.2, "suite": "arith-v1",
               "held_out_ops": {"+": held + 0.2}, "kl_last": 0.7, "steps": 10}  # fmt: skip
    store.create_run(Run(id=run_id, exp_name="e", status=status, started_at=started, host="h", model_name="m",
                         config=json.dumps(config), summary=json.dumps(summary), tags=json.dumps(["t"]),
                         duration_s=60.0))  # fmt: skip


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 's.db'}")
    s.fetch = functools.partial(table_rows, tmp_path / "s.db")
    for i, (seed, beta, held) in enumerate([(1, 0.1, 0.50), (2, 0.1, 0.54), (3, 0.1, 0.52), (1, 0.0, 0.40),
                                            (2, 0.0, 0.44)]):  # fmt: skip
        add(s, f"run{i:05d}", f"2026-01-0{i + 1}T00:00:00+00:00", seed=seed, beta=beta, held=held)
    return s


def test_only_differing_config_columns_are_shown(store):
    table = cmp.compare(store.fetch)
    assert [c for c in table.columns if c in cmp.CONFIG_FIELDS] == ["beta", "seed"]
    assert "learning_rate" in cmp.compare(store.fetch, all_columns=True).columns
    single = cmp.compare(store.fetch, where="beta=0.1 and seed=1")
    assert [r["id"] for r in single.rows] == ["run00000"]
    assert not [c for c in single.columns if c in cmp.CONFIG_FIELDS]


def test_where_filters_in_sql_on_config_results_and_columns(store):
    ids = lambda table: [r["id"] for r in table.rows]  # noqa: E731
    assert ids(cmp.compare(store.fetch, where="beta=0")) == ["run00003", "run00004"]
    assert ids(cmp.compare(store.fetch, where="held_out>=0.52")) == ["run00001", "run00002"]
    assert ids(cmp.compare(store.fetch, where="status!=finished")) == []
    assert ids(cmp.compare(store.fetch, where="name='e' and held_out<0.45")) == ["run00003", "run00004"]
    assert ids(cmp.compare(store.fetch, where="exp_name=\"x' OR '1'='1\"")) == []  # quotes stay data
    assert ids(cmp.compare(store.fetch, last=2)) == ["run00003", "run00004"]
    assert ids(cmp.compare(store.fetch, sort="-held_out", limit=2)) == ["run00001", "run00002"]  # in SQL
    assert ids(cmp.compare(store.fetch, sort="held_out", limit=2)) == ["run00003", "run00004"]
    assert ids(cmp.compare(store.fetch, sort="-held_out")) == ["run00001", "run00002", "run00000", "run00004",
                                                               "run00003"]  # fmt: skip
    assert ids(cmp.compare(store.fetch, sort="-beta", limit=1, where="held_out<0.52")) == ["run00000"]
    assert ids(cmp.compare(store.fetch, where="final_reward<-0.05")) == ["run00003", "run00004"]


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
    assert "50.0%" in lines[2] and "kl-range" not in lines[2]


def test_unknown_sort_column(store):
    with pytest.raises(GrpoLabError, match="--sort: no column 'colour'"):
        cmp.compare(store.fetch, sort="colour")
