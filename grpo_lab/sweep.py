"""Sweeps: a grid of flags x seeds as one experiment, written down before it runs.

A sweep file (TOML) names a base (a preset and flags), the arms (named sets of flags, or a grid whose
product gives them), the seeds, a baseline arm, and per arm a hypothesis, an expected outcome and two kinds
of criteria, both in the language of ``compare --where``:

- ``criteria``: checked on every run of the arm against its own metrics (``arith-v1_gain > 0``), as
  ``grpo-lab run --criteria`` does;
- ``compare``: checked once for the arm against the baseline arm, paired by seed on the sweep's ``metric``,
  over the fields of ``compare --baseline`` (``diff < 0 and p_holm < 0.05``).

::

    name = "beta-vs-data"
    hypothesis = "..."
    preset = "cpu-quick"
    seeds = "1-5"                    # or [1, 2, 3]
    baseline = "beta=0.1,n_samples=500"
    metric = "arith-v1"
    tags = ["sweep"]

    [base]                           # flags of every run
    max_steps = 60

    [grid]                           # arms are the product; or name them in [arms.NAME] with flags = {...}
    beta = [0, 0.1]
    n_samples = [100, 500]

    [arms."beta=0,n_samples=500"]
    hypothesis = "..."
    compare = "diff < 0"

Everything is resolved and checked before anything is written: every run's configuration, every criterion.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import criteria as run_criteria
from . import filters
from .config import RunConfig, config_fields, default_threads, preset_values, resolve
from .errors import ConfigError, GrpoLabError
from .store.query import FINISHED, STATUSES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PAIRED_FIELDS = ("diff", "ci_low", "ci_high", "p", "p_holm", "n", "value", "baseline")
TOP_KEYS = {"name", "hypothesis", "preset", "seeds", "baseline", "metric", "tags", "base", "grid", "arms", "expected",
            "criteria", "compare"}  # fmt: skip
ARM_KEYS = {"flags", "hypothesis", "expected", "criteria", "compare"}
FLAGS = {name for name, *_ in config_fields()}
NOT_SWEPT = {"seed", "exp_name", "output_dir"}  # the sweep sets these for every run


@dataclass(frozen=True)
class Arm:
    name: str
    flags: dict[str, Any]
    hypothesis: str
    expected: str | None = None
    criteria: str | None = None  # per run, over its metrics
    compare: str | None = None  # per arm, paired against the baseline arm


@dataclass(frozen=True)
class PlannedRun:
    arm: str
    seed: int
    config: RunConfig


@dataclass
class SweepSpec:
    name: str
    hypothesis: str
    arms: list[Arm]
    seeds: list[int]
    preset: str | None = None
    base: dict[str, Any] = field(default_factory=dict)
    baseline: str | None = None
    metric: str | None = None
    tags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def digest(self) -> str:
        """What identifies the experiment: running the same spec again resumes it."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise GrpoLabError(f"sweep {self.name} has no arm {name!r}; arms: {', '.join(a.name for a in self.arms)}")

    def exp_name(self, arm: str) -> str:
        return f"{self.name}_{arm}"

    def plan(self) -> list[PlannedRun]:
        """Every run, seed-major (all arms of seed 1 first), each configuration resolved and checked."""
        runs = []
        for seed, arm in itertools.product(self.seeds, self.arms):
            values = {**self.base, **arm.flags, "seed": seed, "exp_name": self.exp_name(arm.name)}
            if self.tags:
                values["tags"] = list(dict.fromkeys([*self.tags, *values.get("tags", [])]))
            try:
                config = resolve(values, self.preset)
            except GrpoLabError as exc:
                raise ConfigError(f"sweep {self.name}, arm {arm.name}, seed {seed}: {exc}") from None
            runs.append(PlannedRun(arm.name, seed, config))
        return runs


def from_record(spec_json: str) -> SweepSpec:
    """The spec a sweep was recorded with (its JSON in the store), checked again."""
    data = json.loads(spec_json)
    data["arms"] = [Arm(**a) for a in data["arms"]]
    spec = SweepSpec(**data)
    check(spec)
    return spec


def parse_seeds(value: Any) -> list[int]:
    """``"1-8"``, ``"1,3,5"``, ``"1-3,7"`` or a list of integers."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        seeds = list(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*", value):
        seeds = []
        for part in value.split(","):
            lo, _, hi = part.strip().partition("-")
            lo_i, hi_i = int(lo), int(hi or lo)
            if hi_i < lo_i or hi_i - lo_i > 10_000:
                raise ConfigError(f"seeds {value!r}: the range {part.strip()} is empty or too long")
            seeds += range(lo_i, hi_i + 1)
    else:
        raise ConfigError(f"seeds {value!r}: give a range like 1-8, a list like 1,3,5, or a TOML list of integers")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {value!r} repeat a seed")
    return seeds


def parse_grid_option(values: list[str]) -> dict[str, list[Any]]:
    """``--grid beta=0,0.1 --grid n_samples=100,500`` -> {"beta": [0, 0.1], "n_samples": [100, 500]}."""
    grid: dict[str, list[Any]] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not raw.strip():
            raise ConfigError(f"--grid {item!r}: write FLAG=V1,V2 (e.g. --grid beta=0,0.1)")
        grid[key.strip()] = [_scalar(v.strip()) for v in raw.split(",")]
    return grid


def parse_set_option(values: list[str]) -> dict[str, Any]:
    """``--set max_steps=60`` -> {"max_steps": 60}: flags of every run."""
    out = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: write FLAG=VALUE (e.g. --set max_steps=60)")
        out[key.strip()] = _scalar(raw.strip())
    return out


def _scalar(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _flag_text(value: Any) -> str:
    return ("%g" % value) if isinstance(value, float) else str(value)  # noqa: UP031  (0.1 -> "0.1", 1e-05 -> "1e-05")


def _check_flags(flags: dict[str, Any], where: str) -> None:
    unknown = sorted(set(flags) - FLAGS)
    if unknown:
        raise ConfigError(f"{where}: unknown flags {', '.join(unknown)}; `grpo-lab run --help` lists them")
    fixed = sorted(set(flags) & NOT_SWEPT)
    if fixed:
        raise ConfigError(f"{where}: {', '.join(fixed)} are set by the sweep (seeds, arm names); drop them")


def build(data: dict[str, Any], source: str = "the sweep") -> SweepSpec:
    """A checked SweepSpec from a parsed sweep file (or the inline options, in the same shape)."""
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(TOP_KEYS))}")
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        raise ConfigError(f"{source}: name {name!r}: give the sweep a name of letters, digits, '.', '_' and '-'")
    hypothesis = data.get("hypothesis")
    if not isinstance(hypothesis, str) or not hypothesis.strip():
        raise ConfigError(f"{source}: a sweep needs a hypothesis: say what it tests")
    preset = data.get("preset")
    if preset is not None:
        preset_values(preset)  # unknown presets fail here
    base = dict(data.get("base") or {})
    _check_flags(base, f"{source} [base]")
    grid = dict(data.get("grid") or {})
    _check_flags(grid, f"{source} [grid]")
    named = dict(data.get("arms") or {})
    arms_flags: dict[str, dict[str, Any]] = {}
    if grid:
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{source} [grid] {key}: give a list of values")
        for combo in itertools.product(*grid.values()):
            flags = dict(zip(grid, combo, strict=True))
            arms_flags[",".join(f"{k}={_flag_text(v)}" for k, v in flags.items())] = flags
    for arm_name, arm in named.items():
        if not isinstance(arm, dict) or set(arm) - ARM_KEYS:
            raise ConfigError(f"{source} [arms.{arm_name}]: keys are {', '.join(sorted(ARM_KEYS))}")
        flags = dict(arm.get("flags") or {})
        _check_flags(flags, f"{source} [arms.{arm_name}]")
        if grid and arm_name not in arms_flags:
            raise ConfigError(f"{source} [arms.{arm_name}] is not one of the grid's arms: {', '.join(arms_flags)}")
        if grid and flags:
            raise ConfigError(f"{source} [arms.{arm_name}]: a grid arm's flags come from the grid")
        if not grid:
            arms_flags[arm_name] = flags
    if not arms_flags:
        raise ConfigError(f"{source}: no arms; add a [grid] or [arms.NAME] tables")
    for arm_name in arms_flags:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._=,+-]{0,127}", arm_name):
            raise ConfigError(f"{source}: arm name {arm_name!r}: use letters, digits and . _ = , + -")
    arms = []
    for arm_name, flags in arms_flags.items():
        extra = named.get(arm_name, {})
        arms.append(
            Arm(
                arm_name,
                flags,
                extra.get("hypothesis") or hypothesis,
                extra.get("expected", data.get("expected")),
                extra.get("criteria", data.get("criteria")),
                extra.get("compare", data.get("compare")),
            )
        )
    seeds = parse_seeds(data.get("seeds", [42]))
    baseline = data.get("baseline")
    if baseline is not None and baseline not in arms_flags:
        raise ConfigError(f"{source}: baseline {baseline!r} is not an arm; arms: {', '.join(arms_flags)}")
    tags = data.get("tags", [])
    if isinstance(tags, str):
        tags = [tags]
    spec = SweepSpec(name, hypothesis, arms, seeds, preset, base, baseline, data.get("metric"), list(tags))
    planned = check(spec)
    if spec.metric is None:  # the first suite the runs are evaluated on, else their own held-out split
        from .suites import suite_name

        suites = planned[0].config.eval_suites
        spec.metric = suite_name(suites[0]) if suites else "held_out"
    return spec


def check(spec: SweepSpec) -> list[PlannedRun]:
    """Resolve every run and parse every criterion now, so that a bad sweep writes nothing."""
    planned = spec.plan()
    first = {}
    for run in planned:
        first.setdefault(run.arm, run)
    for arm in spec.arms:
        sets = first[arm.name].config.evaluated_sets()
        try:
            run_criteria.parse(arm.criteria, sets)
        except GrpoLabError as exc:
            raise ConfigError(f"sweep {spec.name}, arm {arm.name}: {exc}") from None
        if arm.compare is not None:
            if spec.baseline is None:
                raise ConfigError(f"sweep {spec.name}, arm {arm.name}: a compare criterion needs a baseline arm")
            parse_compare(arm.compare, f"sweep {spec.name}, arm {arm.name}")
    if spec.metric is not None:
        sets = first[spec.arms[0].name].config.evaluated_sets()
        from .metrics import valid_names

        if spec.metric not in valid_names(sets):
            raise ConfigError(f"sweep {spec.name}: metric {spec.metric!r} is not one of this sweep's metrics")
    return planned


def parse_compare(text: str, where: str) -> list[filters.Condition]:
    try:
        conditions = filters.parse(text, PAIRED_FIELDS, "compare")
    except GrpoLabError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    for c in conditions:
        if not isinstance(c.value, float):
            raise ConfigError(f"{where}: compare: {c.field} is compared with {c.value!r}; criteria compare numbers")
    return conditions


def load(path: str | Path) -> SweepSpec:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GrpoLabError(f"no sweep file {path}; give the path to a .toml file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GrpoLabError(f"cannot read sweep file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise GrpoLabError(f"sweep file {path} is not valid TOML: {exc}") from None
    return build(data, str(path))


def arm_verdict(arm: Arm, paired_row: dict[str, Any] | None) -> run_criteria.Verdict:
    """An arm's verdict from its paired comparison with the baseline (compare.paired_table's row)."""
    if arm.compare is None:
        return run_criteria.Verdict("unchecked", "no compare criterion was given")
    if paired_row is None:
        return run_criteria.Verdict("unchecked", "this is the baseline arm")
    values = {k: paired_row.get(k) for k in PAIRED_FIELDS}
    conditions = parse_compare(arm.compare, arm.name)
    return run_criteria.decide(arm.compare, conditions, values, "finished")


# --- recording and running a sweep ------------------------------------------------------------------------------

RETRY = ("crashed", "interrupted", "failed")  # run again from scratch, as a new attempt; the old one is kept


@dataclass
class Queued:
    """What `grpo-lab sweep` recorded: the sweep, the runs it will start now, and the finished ones it skips."""

    sweep: Any  # store.db.Sweep
    to_run: list[str]  # run IDs, queued, in order
    finished: int
    running: int
    new: bool


def _queued_row(spec: SweepSpec, sweep_id: str, planned: PlannedRun, argv: list[str], wandb_mode: str):
    import shlex
    import socket

    from .ids import new_run_id
    from .provenance import redact_args
    from .store.db import Run, iso, now

    arm = spec.arm(planned.arm)
    config = planned.config
    return Run(
        id=new_run_id(), kind="train", exp_name=config.exp_name, status="queued", hypothesis=arm.hypothesis,
        expected=arm.expected, criteria=arm.criteria, preset=spec.preset, tags=json.dumps(config.tags),
        command=shlex.join(redact_args(argv)), resolved_command=shlex.join(["grpo-lab", "run", *config.command_args()]),
        config=json.dumps(config.to_dict()), started_at=iso(now()), host=socket.gethostname(),
        model_name=config.model_name, wandb_mode=wandb_mode, sweep_id=sweep_id, arm=arm.name,
    )  # fmt: skip


def plan_with_threads(spec: SweepSpec, parallel: int) -> list[PlannedRun]:
    """The sweep's runs with torch threads split between the runs at once (unless the base sets threads)."""
    if "threads" in spec.base or any("threads" in a.flags for a in spec.arms):
        return spec.plan()
    split = SweepSpec(**{**spec.__dict__, "base": {**spec.base, "threads": default_threads(parallel)}})
    return split.plan()


def queue(store, spec: SweepSpec, source: str, argv: list[str], parallel: int = 1, wandb_mode: str = "disabled"):
    """Record a new sweep with every run queued, or pick up the sweep this spec already is: its finished runs
    stay, its queued ones wait, and crashed, interrupted or failed ones get a new attempt (the old is kept)."""
    import shlex

    from .ids import new_run_id
    from .store.db import Sweep, iso, now

    planned = plan_with_threads(spec, parallel)
    existing = store.find_sweep_by_digest(spec.name, spec.digest())
    if existing is None:
        if any(s.name == spec.name for s in store.sweeps()):
            raise GrpoLabError(
                f"a sweep named {spec.name!r} with other settings is in this store; give this one another name "
                "(changing a sweep after it started would mix two experiments)"
            )
        sweep = Sweep(id=new_run_id(), name=spec.name, hypothesis=spec.hypothesis, baseline=spec.baseline,
                      metric=spec.metric, spec=json.dumps(spec.to_dict()), digest=spec.digest(), source=source,
                      command=shlex.join(argv), created_at=iso(now()))  # fmt: skip
        rows = [_queued_row(spec, sweep.id, p, argv, wandb_mode) for p in planned]
        store.create_sweep(sweep, rows)
        return Queued(sweep, [r.id for r in rows], 0, 0, True)
    current = {(r.arm, json.loads(r.config).get("seed")): r for r in store.sweep_runs(existing.id)}
    to_run, new_rows, replaced, finished, running = [], [], [], 0, 0
    for p in planned:
        row = current.get((p.arm, p.seed))
        if row is not None and row.status == FINISHED:
            finished += 1
        elif row is not None and row.status == "running":
            running += 1
        elif row is not None and row.status == "queued":
            to_run.append(row.id)
        else:
            new = _queued_row(spec, existing.id, p, argv, wandb_mode)
            new_rows.append(new)
            to_run.append(new.id)
            if row is not None:
                replaced.append(row.id)
    store.queue_runs(new_rows, replaced)
    return Queued(existing, to_run, finished, running, False)


def work(db_url: str | None, run_id: str, wandb_mode: str | None = None) -> int:
    """Run one queued run of a sweep in this process (a worker's whole job); returns its exit code."""
    import shlex

    from .config import RunConfig
    from .runner import Intent, quiet_libraries, record_run
    from .store.db import open_store

    store = open_store(db_url)
    row = store.find_run(run_id).run
    if row.status != "queued":
        raise GrpoLabError(f"run {run_id} is {row.status}, not queued; `grpo-lab sweep status` shows the sweep")
    config = RunConfig.from_dict(json.loads(row.config))
    # the command as typed is the sweep's (already redacted); the run's resolved command reproduces it alone
    intent = Intent(row.hypothesis or "", row.expected, row.criteria, row.preset, shlex.split(row.command))
    quiet_libraries()
    recorded = record_run(config, intent, store, wandb_mode or row.wandb_mode or "disabled", queued=row)
    return recorded.exit_code


def _worker_command(db_url: str, run_id: str) -> list[str]:
    return [sys.executable, "-m", "grpo_lab", "sweep", "work", run_id, "--db", db_url]


def run_local(db_url: str, run_ids: list[str], parallel: int, log_dir: Path, on_done=None) -> dict[str, int]:
    """Each queued run in its own `grpo-lab sweep work` process, ``parallel`` at a time (a thread pool waiting on
    subprocesses); output goes to ``log_dir/RUN_ID.log``. Ctrl-C reaches the workers too: they record
    ``interrupted``, and `grpo-lab sweep resume` starts them again."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    log_dir.mkdir(parents=True, exist_ok=True)
    codes: dict[str, int] = {}

    def one(run_id: str) -> int:
        with open(log_dir / f"{run_id}.log", "ab") as log:
            code = subprocess.run(_worker_command(db_url, run_id), stdout=log, stderr=subprocess.STDOUT).returncode
        codes[run_id] = code
        if on_done:
            on_done(run_id)
        return code

    pool = ThreadPoolExecutor(max(1, parallel))
    try:
        list(pool.map(one, run_ids))
    except KeyboardInterrupt:  # start nothing more; the workers (Ctrl-C reached them too) record how they ended
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return codes


def submitit_job(db_url: str, run_id: str) -> int:
    """The function each Slurm (or submitit-local) job runs: one queued run."""
    return work(db_url, run_id)


def run_submitit(db_url: str, run_ids: list[str], folder: Path, cluster: str | None, parallel: int,
                 slurm: dict[str, Any], wait: bool, on_done=None) -> list[Any]:  # fmt: skip
    """One submitit job per run: ``cluster`` None picks Slurm where it is installed; "local" runs the same job
    code as local processes (submitit's LocalExecutor), ``parallel`` at a time. Returns the jobs."""
    import time

    try:
        import submitit
    except ImportError:
        raise GrpoLabError("--executor slurm needs submitit: pip install 'grpo-lab[slurm]'") from None
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    executor.update_parameters(**slurm)
    jobs: dict[str, Any] = {}  # run ID -> job
    reported: set[str] = set()
    pending = list(run_ids)
    while pending or (wait and len(reported) < len(jobs)):
        running = [j for j in jobs.values() if not j.done()]
        while pending and (cluster != "local" or len(running) < max(1, parallel)):
            run_id = pending.pop(0)
            jobs[run_id] = executor.submit(submitit_job, db_url, run_id)
            running.append(jobs[run_id])
        if not wait:
            break
        time.sleep(0.5)
        for run_id, job in jobs.items():
            if job.done() and run_id not in reported:
                reported.add(run_id)
                if on_done:
                    on_done(run_id)
    return list(jobs.values())


# --- where a sweep stands ---------------------------------------------------------------------------------------


def status_rows(store, sweep) -> list[dict[str, Any]]:
    """One row per arm: how many of its seeds are queued, running, finished, failed, interrupted, crashed."""
    spec = json.loads(sweep.spec)
    by_arm = {a["name"]: dict.fromkeys(STATUSES, 0) for a in spec["arms"]}
    verdicts: dict[str, list[str]] = {a["name"]: [] for a in spec["arms"]}
    for run in store.sweep_runs(sweep.id):
        by_arm.setdefault(run.arm, dict.fromkeys(STATUSES, 0))[run.status] += 1
        if run.status == FINISHED and run.verdict:
            verdicts.setdefault(run.arm, []).append(run.verdict)
    out = []
    for arm, counts in by_arm.items():
        vs = verdicts.get(arm, [])
        out.append({"arm": arm, "seeds": len(spec["seeds"]), **counts,
                    "verdicts": " ".join(f"{v}×{vs.count(v)}" for v in sorted(set(vs))) or "-"})  # fmt: skip
    return out


def estimate_seconds(store, spec: SweepSpec, planned: list[PlannedRun]) -> float | None:
    """From finished runs of the same preset in the store: their median seconds per step, times every run's steps."""
    import statistics

    if spec.preset is None:
        return None
    rates = []
    for view in store.runs():
        r = view.run
        if r.kind == "train" and r.status == FINISHED and r.preset == spec.preset and r.duration_s:
            steps = view.metrics.get("steps")
            if steps:
                rates.append(r.duration_s / steps)
    if not rates:
        return None
    return statistics.median(rates) * sum(p.config.total_steps for p in planned)


# --- views ----------------------------------------------------------------------------------------------------


def scoped_fetch(fetch, sweep_id: str):
    """compare's row source limited to a sweep's current attempts (superseded ones are kept, not shown)."""

    def scoped(conditions, *args):
        return fetch([("run", "sweep_id", "=", sweep_id), ("run", "superseded", "=", 0), *conditions], *args)

    scoped.has_metric = getattr(fetch, "has_metric", None)
    return scoped


def paired_with_verdicts(rows: list[dict[str, Any]], record, metric: str | None = None):
    """compare's paired table of a sweep against its baseline arm, with each arm's verdict from its ``compare``
    criterion (unchecked until every seed of both arms has finished)."""
    from .compare import paired_table

    spec = from_record(record["spec"] if isinstance(record, dict) else record.spec)
    if spec.baseline is None:
        raise GrpoLabError(f"sweep {spec.name} has no baseline arm; give compare --baseline NAME")
    table = paired_table(rows, spec.exp_name(spec.baseline), metric or spec.metric)
    if metric and metric != spec.metric:  # the arms' criteria were written for the sweep's metric, not this one
        table.notes.append(f"arm verdicts are checked on {spec.metric}, the sweep's metric; without --metric "
                           "they are shown")  # fmt: skip
        return table
    finished = {}
    for row in rows:
        finished.setdefault(row["arm"], 0)
        finished[row["arm"]] += row["status"] == FINISHED
    for prow in table.rows:
        arm = spec.arm(prow["name"].removeprefix(f"{spec.name}_"))
        complete = finished.get(arm.name, 0) == len(spec.seeds) == finished.get(spec.baseline, 0)
        verdict = arm_verdict(arm, prow) if complete or arm.compare is None else run_criteria.Verdict(
            "unchecked", f"{finished.get(arm.name, 0)} of {len(spec.seeds)} seeds finished")  # fmt: skip
        prow["verdict"], prow["verdict_detail"] = verdict.status, verdict.detail
        prow["criterion"] = arm.compare
    table.columns += ["criterion", "verdict", "verdict_detail"]
    return table


def compare_rows(store, runs) -> list[dict[str, Any]]:
    """A sweep's runs as compare's rows (what compare's SQLite reader returns), from any store."""
    out = []
    for run in runs:
        out.append({"id": run.id, "kind": run.kind, "exp_name": run.exp_name, "status": run.status,
                    "model_name": run.model_name, "started_at": run.started_at, "duration_s": run.duration_s,
                    "config": json.loads(run.config), "hypothesis": run.hypothesis, "verdict": run.verdict,
                    "verdict_detail": run.verdict_detail, "suites_disjoint": run.suites_disjoint,
                    "sweep_id": run.sweep_id, "arm": run.arm, "superseded": run.superseded,
                    "metrics": store.metrics(run.id)})  # fmt: skip
    return out
