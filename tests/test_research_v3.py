"""Replication v3's write-up recomputed from its shipped store with plain sqlite3 and statistics (no grpo-lab code):
research/replication-v3/README.md's regime numbers, and the choice of the cpu-study preset."""

import json
import sqlite3
import statistics
from pathlib import Path

import pytest

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
