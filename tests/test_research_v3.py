"""Replication v3's write-up recomputed from its shipped store with plain sqlite3 and statistics (no grpo-lab code):
research/replication-v3/README.md's regime numbers, and the choice of the cpu-study preset."""

import json
import sqlite3
import statistics
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HERE = Path(__file__).resolve().parents[1] / "research" / "replication-v3"


def _runs() -> dict[tuple[float, int], list[tuple[int, float, float]]]:
    """(learning rate, steps) -> [(seed, arith-v2 gain, final KL)] of the finished runs, read-only."""
    conn = sqlite3.connect(f"file:{HERE / 'regime.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT r.config, g.value, k.value, r.git_dirty, r.git_commit FROM run r "
            "JOIN metric g ON g.run_id = r.id AND g.name = 'arith-v2_gain' "
            "JOIN metric k ON k.run_id = r.id AND k.name = 'kl_last' WHERE r.status = 'finished'"
        ).fetchall()
    finally:
        conn.close()
    arms: dict[tuple[float, int], list[tuple[int, float, float]]] = {}
    for raw, gain, kl, dirty, commit in rows:
        assert not dirty and commit.startswith("587dc86")  # every run from the committed sweep file, clean
        config = json.loads(raw)
        arms.setdefault((config["learning_rate"], config["max_steps"]), []).append((config["seed"], gain, kl))
    return arms


def test_the_regime_searchs_numbers_and_choice_recomputed_from_its_store():
    arms = _runs()
    assert len(arms) == 6 and all(sorted(s for s, *_ in runs) == [1, 2, 3] for runs in arms.values())
    gains = {arm: [100 * g for _, g, _ in runs] for arm, runs in arms.items()}
    # every arm's gain is at least 3x its seed-to-seed sd; the smallest ratio is lr 2e-4 at 120 steps
    ratios = {arm: statistics.mean(g) / statistics.stdev(g) for arm, g in gains.items()}
    assert min(ratios.values()) >= 3 and min(ratios, key=ratios.get) == (2e-4, 120)
    assert (
        round(statistics.mean(gains[(2e-4, 120)]), 1) == 7.3 and round(statistics.stdev(gains[(2e-4, 120)]), 1) == 1.0
    )
    # KL above 0.1 on every seed: the three 240-step arms and lr 2e-4 at 120 steps; never in the seed's 0.5-1.0
    above = {arm for arm, runs in arms.items() if all(kl > 0.1 for *_, kl in runs)}
    assert above == {(5e-5, 240), (1e-4, 240), (2e-4, 240), (2e-4, 120)}
    assert max(kl for runs in arms.values() for *_, kl in runs) == pytest.approx(0.327, abs=5e-4)
    # the choice: the largest mean gain among those, +14.6 +- 1.6 points (9x its sd), final KL 0.16-0.24
    chosen = max(above, key=lambda arm: statistics.mean(gains[arm]))
    assert chosen == (2e-4, 240)
    assert round(statistics.mean(gains[chosen]), 1) == 14.6 and round(statistics.stdev(gains[chosen]), 1) == 1.6
    assert int(ratios[chosen]) == 9
    kls = [kl for *_, kl in arms[chosen]]
    assert (round(min(kls), 2), round(max(kls), 2)) == (0.16, 0.24)
    # the study's pilot sd: that sd times sqrt(2), 2.24 points (study.toml, --pilot-sd 0.0224)
    assert round(statistics.stdev(gains[chosen]) * 2**0.5, 2) == 2.24


def test_the_cpu_study_preset_is_the_chosen_regime():
    from grpo_lab.config import resolve

    config = resolve({}, "cpu-study")
    assert (config.learning_rate, config.max_steps, config.model_name) == (2e-4, 240, "tiny-arith-2")


# --- the study (study.toml, its runs in study.db): recomputed without grpo-lab's code -------------------------------

T_975_11 = 2.200985160082949  # Student's t, 97.5% quantile, 11 degrees of freedom (12 seeds), from tables
SWEEP_COMMIT = "a0be0f3a12fa7c4a91a73a22382fefcdb1c114d9"  # the clean worktree the study ran from


def _study() -> tuple[dict[str, dict[int, dict[str, float]]], list[tuple], dict[str, dict[str, float]], str]:
    """arm -> seed -> metrics of the finished runs; every run's (id, arm, status, criteria, verdict); every run's
    metrics; the sweep's spec. Read-only, plain sqlite3."""
    conn = sqlite3.connect(f"file:{HERE / 'study.db'}?mode=ro", uri=True)
    try:
        (spec,) = conn.execute("SELECT spec FROM sweep").fetchone()
        runs = conn.execute(
            "SELECT id, arm, status, config, criteria, verdict, git_commit, git_dirty FROM run"
        ).fetchall()
        metrics = conn.execute("SELECT run_id, name, value FROM metric").fetchall()
    finally:
        conn.close()
    by_run: dict[str, dict[str, float]] = {}
    for run_id, name, value in metrics:
        by_run.setdefault(run_id, {})[name] = value
    arms: dict[str, dict[int, dict[str, float]]] = {}
    for run_id, arm, status, config, _criteria, _verdict, commit, dirty in runs:
        if status == "finished":
            assert commit == SWEEP_COMMIT and not dirty  # every result from the committed code, clean
            seed = json.loads(config)["seed"]
            assert seed not in arms.setdefault(arm, {})  # one finished run per arm and seed
            arms[arm][seed] = by_run[run_id]
    return arms, [(i, arm, status, crit, verdict) for i, arm, status, _, crit, verdict, _, _ in runs], by_run, spec


def _sign_flip_p(diffs: list[float]) -> float:
    """Exact two-sided: the share of the 2**n sign patterns whose |sum| reaches the observed |sum|."""
    observed = abs(sum(diffs))
    hits = 0
    for mask in range(2 ** len(diffs)):
        total = sum(-d if mask >> i & 1 else d for i, d in enumerate(diffs))
        hits += abs(total) >= observed - 1e-12
    return hits / 2 ** len(diffs)


def _holm(ps: dict[str, float]) -> dict[str, float]:
    out, running = {}, 0.0
    for rank, (arm, p) in enumerate(sorted(ps.items(), key=lambda item: item[1])):
        running = max(running, min(1.0, (len(ps) - rank) * p))
        out[arm] = running
    return out


def _matches(printed: str, value: float) -> bool:
    """Whether ``printed`` (as the README has it: '-13.3', '+0.7') is ``value`` to the decimals it shows."""
    text = printed.strip().lstrip("+")
    decimals = len(text.split(".")[1]) if "." in text else 0
    return abs(float(text) - value) <= 0.5 * 10**-decimals + 1e-9


def _readme_paired_rows() -> dict[str, list[str]]:
    """The README's copy of compare's paired table: arm -> its cells."""
    lines = (HERE / "README.md").read_text().splitlines()
    caption = next(i for i, line in enumerate(lines) if line.startswith("**Paired by seed: arith-v2 minus baseline"))
    assert "every row: n 12; seeds 1,2,3,4,5,6,7,8,9,10,11,12;" in lines[caption]  # every arm paired on all 12
    start = next(i for i in range(caption, len(lines)) if lines[i].startswith("| name | id |"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("| "):
            break
        cells = dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
        rows[cells["name"].removeprefix("replication-v3_")] = cells
    return rows


def test_the_studys_runs_are_all_there_from_one_clean_commit():
    arms, runs, _, spec = _study()
    assert sorted(arms) == sorted(arm["name"] for arm in json.loads(spec)["arms"]) and len(arms) == 10
    assert all(sorted(seeds) == list(range(1, 13)) for seeds in arms.values())  # the 12 planned seeds, no more
    # the runs cut off when a session ended stay in the store as crashed; each seed ran again to the end
    assert {status for _, _, status, *_ in runs} <= {"finished", "crashed"}


def test_each_runs_own_criterion_recomputed_from_its_metrics():
    _, runs, metrics, _ = _study()
    checked = 0
    for run_id, _arm, status, criteria, verdict in runs:
        if status != "finished":
            continue
        if not criteria:
            assert verdict == "unchecked"
            continue
        name, op, bound = criteria.split()  # every criterion in study.toml is one comparison
        value = metrics[run_id][name]
        held = value > float(bound) if op == ">" else value < float(bound)
        assert verdict == ("confirmed" if held else "rejected"), (run_id, criteria, value)
        checked += 1
    assert checked == 4 * 12  # baseline, beta0, gen4 and mixed carry a per-run criterion


def test_the_write_ups_paired_answer_recomputed_from_the_store():
    """Each arm minus the baseline on arith-v2, paired by seed: mean, 95% t interval, exact sign-flip p, Holm over
    the nine arms, and the verdict its pre-registered criterion gives; against the README's table."""
    arms, _, _, spec = _study()
    written = tomllib.loads((HERE / "study.toml").read_text())["arms"]  # the criteria, as written before the runs
    compare = {arm: body["compare"] for arm, body in written.items() if arm != "baseline"}
    assert compare == {arm["name"]: arm.get("compare") for arm in json.loads(spec)["arms"] if arm["name"] != "baseline"}
    stats, ps = {}, {}
    for arm in compare:
        diffs = [arms[arm][s]["arith-v2"] - arms["baseline"][s]["arith-v2"] for s in range(1, 13)]
        mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
        half = T_975_11 * sd / 12**0.5
        stats[arm] = {"diff": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half}
        ps[arm] = _sign_flip_p(diffs)
    holm = _holm(ps)
    readme = _readme_paired_rows()
    assert sorted(readme) == sorted(compare)
    for arm, s in stats.items():
        row = readme[arm]
        held = eval(compare[arm], {}, {**s, "p": ps[arm], "p_holm": holm[arm]})  # the criterion, as Python
        diff, spread = row["diff"].split(" pt ± ")
        low, high = row["ci95"].strip("[]").split(", ")
        assert _matches(diff, 100 * s["diff"]) and _matches(spread, 100 * s["sd"]), (arm, row["diff"], s)
        assert _matches(low, 100 * s["ci_low"]) and _matches(high, 100 * s["ci_high"]), (arm, row["ci95"], s)
        assert (row["p"], row["p_holm"]) == (f"{ps[arm]:.3g}", f"{holm[arm]:.3g}"), (arm, ps[arm], holm[arm])
        assert row["verdict"] == ("confirmed" if held else "rejected"), (arm, row["verdict"], compare[arm])
