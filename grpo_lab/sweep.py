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

import contextlib
import hashlib
import itertools
import json
import math
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import criteria as run_criteria
from . import filters
from .config import RunConfig, check_text, config_fields, default_threads, preset_values, resolve
from .errors import ConfigError, GrpoLabError
from .store.query import FINISHED, STATUSES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PAIRED_FIELDS = ("diff", "ci_low", "ci_high", "p", "p_holm", "n", "value", "baseline")
TOP_KEYS = {"name", "hypothesis", "preset", "seeds", "baseline", "metric", "tags", "base", "grid", "arms", "expected",
            "criteria", "compare", "effect"}  # fmt: skip
ARM_KEYS = {"flags", "hypothesis", "expected", "criteria", "compare", "effect"}
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
    effect: float | None = None  # the difference (in the metric's units) the arm should be able to detect


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
        data = asdict(self)
        for arm in data["arms"]:  # a sweep written before effect sizes keeps its digest
            if arm.get("effect") is None:
                arm.pop("effect", None)
        return data

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
            values = {**merge_flags(self.base, arm.flags), "seed": seed, "exp_name": self.exp_name(arm.name)}
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
    try:
        data = json.loads(spec_json)
        data["arms"] = [Arm(**a) for a in data["arms"]]
        spec = SweepSpec(**data)
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise GrpoLabError(f"the sweep's recorded spec in the store is damaged ({type(exc).__name__}); it cannot be "
                           "read back: record the sweep again from its file under another name") from None  # fmt: skip
    check(spec)
    return spec


SEEDS = r"\s*\d{1,20}(\s*-\s*\d{1,20})?(\s*,\s*\d{1,20}(\s*-\s*\d{1,20})?)*\s*"
SEED_MAX = 2**32 - 1


def parse_seeds(value: Any) -> list[int]:
    """``"1-8"``, ``"1,3,5"``, ``"1-3,7"`` or a list of integers."""
    if isinstance(value, int) and not isinstance(value, bool):
        seeds = [value]
    elif isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        seeds = list(value)
    elif isinstance(value, str) and len(value) <= 1000 and re.fullmatch(SEEDS, value):
        seeds = []
        for part in value.split(","):
            lo, _, hi = part.strip().partition("-")
            lo_i, hi_i = int(lo), int(hi or lo)
            if hi_i < lo_i or hi_i - lo_i > 10_000:
                raise ConfigError(f"seeds {_shown(value)}: the range {part.strip()} is empty or too long")
            seeds += range(lo_i, hi_i + 1)
    else:
        raise ConfigError(f"seeds {_shown(value)}: give a range like 1-8, a list like 1,3,5, or a TOML list of "
                          "integers")  # fmt: skip
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {_shown(value)} repeat a seed")
    if any(not 0 <= s <= SEED_MAX for s in seeds):
        raise ConfigError(f"seeds {_shown(value)}: a seed is a whole number from 0 to {SEED_MAX}")
    return seeds


def _shown(value: Any, width: int = 60) -> str:
    """A value as a message quotes it, cut to ``width`` (a number of thousands of digits cannot even be printed)."""
    try:
        text = repr(value)
    except ValueError:
        text = f"<a {type(value).__name__} too long to print>"
    return text if len(text) <= width else text[: width - 3] + "..."


def parse_grid_option(values: list[str]) -> dict[str, list[Any]]:
    """``--grid beta=0,0.1 --grid n_samples=100,500`` -> {"beta": [0, 0.1], "n_samples": [100, 500]}."""
    grid: dict[str, list[Any]] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not raw.strip():
            raise ConfigError(f"--grid {item!r}: write FLAG=V1,V2 (e.g. --grid beta=0,0.1)")
        key = key.strip()
        if key in grid:
            raise ConfigError(f"--grid {key} is given twice; give all its values once: --grid {key}=V1,V2")
        grid[key] = [_scalar(v.strip()) for v in raw.split(",")]
    return grid


def parse_set_option(values: list[str]) -> dict[str, Any]:
    """``--set max_steps=60`` -> {"max_steps": 60}: flags of every run."""
    out = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: write FLAG=VALUE (e.g. --set max_steps=60)")
        if key.strip() in out:
            raise ConfigError(f"--set {key.strip()} is given twice; give it once")
        out[key.strip()] = _scalar(raw.strip())
    return out


def _scalar(text: str) -> Any:
    if text.lower() in ("true", "false"):  # a switch: --grid mask_truncated_completions=true,false
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _flag_text(value: Any, exact: bool = False) -> str:
    """A flag's value in an arm's name: short (0.1 -> "0.1", 1e-05 -> "1e-05"), or ``exact`` (the shortest text
    that reads back as the same float) where the short forms of two values of the grid would be the same."""
    if isinstance(value, float):
        return repr(value) if exact else "%g" % value  # noqa: UP031
    return str(value)


def _value_texts(values: list[Any]) -> list[str]:
    """How each of a grid key's values is named: short, unless two would then share a name (0.1234567 and
    0.1234568 are both 0.123457 in short), so that distinct values never merge into one arm."""
    short = [_flag_text(v) for v in values]
    return short if len(set(short)) == len(short) else [_flag_text(v, exact=True) for v in values]


def _effect(value: Any, where: str) -> float | None:
    """An arm's effect size: a positive number in the metric's units (0.02: two points of accuracy)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{where}: effect must be a positive number in the metric's units, e.g. effect = 0.02 "
                          f"(two points of accuracy); got {_shown(value)}")  # fmt: skip
    return float(value)


def _text(data: dict[str, Any], key: str, where: str, one_line: bool = False) -> str | None:
    """``data[key]``: absent, or text a person may see printed (no control characters)."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be text (in quotes), not {type(value).__name__}")
    return check_text(f"{where}: {key}", value, one_line=one_line)


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """``data[key]``: absent, or a table (``[key]`` in TOML, ``{...}`` inline)."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key} must be a table ([{key}] or {key} = {{...}}), not {type(value).__name__}")
    return dict(value)


TRL_PREFIX = "trl."  # a grid or flag key trl.KEY sets --trl KEY=VALUE


def merge_flags(*layers: dict[str, Any]) -> dict[str, Any]:
    """Flags of a run from its layers (the sweep's base, then its arm): a later layer wins, and --trl fields merge
    key by key, whether given as ``trl = {delta = 1.5}`` or as ``trl.delta``."""
    out: dict[str, Any] = {}
    trl: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key == "trl":
                trl.update(value)
            elif key.startswith(TRL_PREFIX):
                trl[key.removeprefix(TRL_PREFIX)] = value
            else:
                out[key] = value
    if trl:
        out["trl"] = trl
    return out


def _check_flags(flags: dict[str, Any], where: str) -> None:
    if "trl" in flags and not isinstance(flags["trl"], dict):
        raise ConfigError(f"{where}: trl must be a table of TRL fields, e.g. trl = {{delta = 1.5}}")
    unknown = sorted(k for k in set(flags) - FLAGS if not (k.startswith(TRL_PREFIX) and len(k) > len(TRL_PREFIX)))
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
        raise ConfigError(f"{source}: name {str(name)[:80]!r}: give the sweep a name of letters, digits, '.', '_' "
                          "and '-'")  # fmt: skip
    hypothesis = _text(data, "hypothesis", source)
    if not hypothesis or not hypothesis.strip():
        raise ConfigError(f"{source}: a sweep needs a hypothesis: say what it tests")
    for key in ("expected", "criteria", "compare", "baseline", "metric", "preset"):
        _text(data, key, source, one_line=key in ("baseline", "metric", "preset"))
    preset = data.get("preset")
    if preset is not None:
        preset_values(preset)  # unknown presets fail here
    base = _table(data, "base", source)
    _check_flags(base, f"{source} [base]")
    grid = _table(data, "grid", source)
    _check_flags(grid, f"{source} [grid]")
    named = _table(data, "arms", source)
    arms_flags: dict[str, dict[str, Any]] = {}
    if grid:
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{source} [grid] {key}: give a list of values")
            if any(isinstance(v, list | dict) for v in values):
                raise ConfigError(f"{source} [grid] {key}: each value is one number, text or true/false")
        texts = {key: _value_texts(values) for key, values in grid.items()}
        for combo in itertools.product(*(range(len(values)) for values in grid.values())):
            flags = {key: grid[key][i] for key, i in zip(grid, combo, strict=True)}
            arms_flags[",".join(f"{k}={texts[k][i]}" for k, i in zip(grid, combo, strict=True))] = flags
        if len(arms_flags) < math.prod(len(v) for v in grid.values()):
            raise ConfigError(f"{source} [grid]: a value is listed twice; list each value of a flag once")
    for arm_name, arm in named.items():
        if not isinstance(arm, dict) or set(arm) - ARM_KEYS:
            raise ConfigError(f"{source} [arms.{arm_name}]: keys are {', '.join(sorted(ARM_KEYS))}")
        where = f"{source} [arms.{arm_name}]"
        for key in ("hypothesis", "expected", "criteria", "compare"):
            _text(arm, key, where)
        flags = _table(arm, "flags", where)
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
                _effect(extra.get("effect", data.get("effect")), f"{source} [arms.{arm_name}]"),
            )
        )
    seeds = parse_seeds(data.get("seeds", [42]))
    baseline = data.get("baseline")
    if baseline is not None and baseline not in arms_flags:
        raise ConfigError(f"{source}: baseline {baseline!r} is not an arm; arms: {', '.join(arms_flags)}")
    tags = data.get("tags", [])
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ConfigError(f'{source}: tags: give a list of text, e.g. tags = ["sweep"]')
    for tag in tags:
        check_text(f"{source}: tags", tag, one_line=True)
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
    for arm in spec.arms:  # TRL's own checks, once per arm, where a GRPO setting is not the seed's
        config = first[arm.name].config
        if config.differs_from_seed():
            from .training import check_with_trl

            try:
                check_with_trl(config)
            except GrpoLabError as exc:
                raise ConfigError(f"sweep {spec.name}, arm {arm.name}: {exc}") from None
    if spec.metric is not None:  # every arm is compared on it, so every arm must have it
        from .metrics import valid_names

        for arm in spec.arms:
            if spec.metric not in valid_names(first[arm.name].config.evaluated_sets()):
                raise ConfigError(
                    f"sweep {spec.name}: metric {spec.metric!r} is not one of this sweep's metrics"
                    + ("" if arm is spec.arms[0] else f" (arm {arm.name} is not evaluated on it)")
                )
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


SWEEP_FILE_MAX = 1 << 20  # bytes: a sweep file is a page of TOML


def load(path: str | Path) -> SweepSpec:
    from . import paths

    p = Path(path)
    if not paths.exists(p):
        raise GrpoLabError(f"no sweep file {path}; give the path to a .toml file")
    if not paths.is_file(p):  # a pipe or /dev/zero would never end
        raise GrpoLabError(f"sweep file {path} is not a regular file; give the path to a .toml file")
    try:
        with open(p, "rb") as f:
            raw = f.read(SWEEP_FILE_MAX + 1)
        if len(raw) > SWEEP_FILE_MAX:
            raise GrpoLabError(f"sweep file {path} is over {SWEEP_FILE_MAX >> 20} MB; a sweep file is a page of TOML")
        data = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise GrpoLabError(f"cannot read sweep file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise GrpoLabError(f"sweep file {path} is not valid TOML: {exc}") from None
    except ValueError:  # a number of thousands of digits: Python refuses to read it
        raise GrpoLabError(f"sweep file {path} holds a number too long to read; a count or a seed has at most "
                           "20 digits") from None  # fmt: skip
    except RecursionError:
        raise GrpoLabError(f"sweep file {path} nests too deeply to read; a sweep file is a page of TOML") from None
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


def queue(store, spec: SweepSpec, source: str, argv: list[str], parallel: int = 1, wandb_mode: str = "disabled",
          power: PowerPlan | None = None, underpowered: bool = False):  # fmt: skip
    """Record a new sweep with every run queued, or pick up the sweep this spec already is: its finished runs
    stay, its queued ones wait, and crashed, interrupted or failed ones get a new attempt (the old is kept)."""
    import shlex

    from .ids import new_run_id
    from .provenance import redact_args
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
                      command=shlex.join(redact_args(argv)), created_at=iso(now()), underpowered=underpowered,
                      power=json.dumps(power.to_dict()) if power else None)  # fmt: skip
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
    if recorded.unsent:  # the store stayed unreachable: the worker's log says where the record waits
        print(f"grpo-lab: error: run {run_id} {recorded.status}, but {recorded.unsent}", file=sys.stderr)
        return 1
    return recorded.exit_code


def _worker_command(run_id: str) -> list[str]:
    """A worker's command line: no store location on it (every user of the machine can read a command line, and
    a PostgreSQL URL may hold a password); the worker finds the store in its environment (``worker_env``)."""
    return [sys.executable, "-m", "grpo_lab", "sweep", "work", run_id]


def worker_env(db_url: str) -> dict[str, str]:
    """The environment of a worker process: this one's, with the store's location in ``GRPO_LAB_DB`` (a process's
    environment is readable by its own user only), and this process as the one it dies with (a worker never
    trains on after its sweep was killed: processes.follow_parent)."""
    import os

    from .processes import PARENT_ENV

    return {**os.environ, "GRPO_LAB_DB": db_url, PARENT_ENV: str(os.getpid())}


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
            code = subprocess.run(_worker_command(run_id), stdout=log, stderr=subprocess.STDOUT,
                                  env=worker_env(db_url)).returncode  # fmt: skip
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


STORE_FILE = "store-url"  # in a sweep's submitit folder, readable by its owner only


def submitit_job(store_file: str, run_id: str) -> int:
    """The function each Slurm (or submitit-local) job runs: one queued run. submitit pickles a job's arguments
    into its folder, so the store's location (a URL may hold a password) is not one of them: the job reads it
    from ``store_file``, a file only its owner may read."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():  # Ctrl-C ends the run (see ctrl_c_not_for_controllers)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return work(Path(store_file).read_text(encoding="utf-8"), run_id)


@contextlib.contextmanager
def ctrl_c_not_for_controllers():
    """While submitit-local starts a job's controller (a Python process that watches the job, in the terminal's
    process group): Ctrl-C ignored, so the controller inherits that and prints no KeyboardInterrupt traceback
    when the terminal's Ctrl-C reaches everyone; the job itself takes Ctrl-C back (``submitit_job``), records
    its run as interrupted and ends, and its controller with it."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def private_folder(folder: Path) -> Path:
    """``folder``, made if missing, that only its owner may enter (submitit's pickles and logs go there)."""
    import os

    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file that only its owner may read, never readable by others for an instant."""
    import os

    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def run_submitit(db_url: str, run_ids: list[str], folder: Path, cluster: str | None, parallel: int,
                 slurm: dict[str, Any], wait: bool, on_done=None) -> list[Any]:  # fmt: skip
    """One submitit job per run: ``cluster`` None picks Slurm where it is installed; "local" runs the same job
    code as local processes (submitit's LocalExecutor), ``parallel`` at a time. Returns the jobs."""
    import time

    try:
        import submitit
    except ImportError:
        raise GrpoLabError("--executor slurm needs submitit: pip install 'grpo-lab[slurm]'") from None
    private_folder(folder.parent)
    private_folder(folder)
    store_file = folder / STORE_FILE
    write_private(store_file, db_url)
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    executor.update_parameters(**slurm)
    jobs: dict[str, Any] = {}  # run ID -> job
    reported: set[str] = set()
    pending = list(run_ids)
    while pending or (wait and len(reported) < len(jobs)):
        running = [j for j in jobs.values() if not j.done()]
        while pending and (cluster != "local" or len(running) < max(1, parallel)):
            run_id = pending.pop(0)
            with ctrl_c_not_for_controllers():
                jobs[run_id] = executor.submit(submitit_job, str(store_file.absolute()), run_id)
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


# --- power: what the sweep can detect, before it runs ------------------------------------------------------------


@dataclass
class ArmPower:
    arm: str
    seeds: int
    arms: int  # how many arms its p is Holm-adjusted over (1: its criterion uses the unadjusted p)
    alpha: float
    claim: str
    reachable: bool  # whether its seeds can reach its criterion's significance at all (True without a p in it)
    mde_sd: float | None  # the MDE in sds of the paired differences
    mde: float | None = None  # ... in the metric's units, when the sd is known
    effect: float | None = None
    seeds_needed: int | None = None


@dataclass
class PowerPlan:
    arms: list[ArmPower]
    sd: float | None  # the sd of the paired differences assumed
    sd_source: str  # where it came from
    points: bool  # accuracy: shown in percentage points

    @property
    def underpowered(self) -> list[ArmPower]:
        return [a for a in self.arms if not a.reachable]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def power_plan(spec: SweepSpec, sd: float | None = None, sd_source: str = "") -> PowerPlan:
    """For every arm compared with the baseline: the significance its compare criterion asks for, whether its seeds
    can reach it at all (n seeds give p >= 2/2^n, Holm multiplies the smallest by the number of arms), the
    minimum detectable effect (stats.mde; in the metric's units when the sd of the paired differences is known),
    and the seeds its ``effect`` needs."""
    from . import answer, stats
    from .metrics import parse

    compared = [a for a in spec.arms if a.name != spec.baseline and spec.baseline is not None]
    points = parse(spec.metric or "") is not None
    out = []
    for arm in compared:
        alpha, holm = answer.alpha_of(arm.compare)
        arms = len(compared) if holm else 1
        n = len(spec.seeds)
        mde_sd = stats.mde(n, arms, alpha)
        reachable = stats.reachable(n, arms, alpha) or not answer.names_p(arm.compare)
        plan = ArmPower(arm.name, n, arms, alpha, answer.claim(arm.compare, points), reachable, mde_sd,
                        None if mde_sd is None or sd is None else mde_sd * sd, arm.effect)  # fmt: skip
        if arm.effect is not None and sd:
            plan.seeds_needed = stats.seeds_needed(arm.effect / sd, arms, alpha)
        out.append(plan)
    return PowerPlan(out, sd, sd_source, points)


def pilot_sd(store, spec: SweepSpec, pilot: str | None = None) -> tuple[float | None, str]:
    """The sd of the paired differences a power plan assumes: from an earlier sweep named ``pilot`` (the pooled sd
    of its arms' paired differences on this sweep's metric), else from this sweep's own finished baseline runs (their
    sd x sqrt 2: two independent runs' difference), else unknown."""
    import statistics

    if pilot is not None:
        record = store.find_sweep(pilot)
        rows = compare_rows(store, store.sweep_runs(record.id))
        table = paired_with_verdicts(rows, record, spec.metric)
        variances = [r["diff_sd"] ** 2 for r in table.rows if r.get("diff_sd") is not None]
        if not variances:
            raise GrpoLabError(f"--pilot {pilot}: that sweep has no paired differences on {spec.metric} yet")
        return statistics.fmean(variances) ** 0.5, f"sweep {record.name}'s paired differences ({len(variances)} arms)"
    existing = store.find_sweep_by_digest(spec.name, spec.digest()) if store is not None else None
    if existing is not None and spec.baseline is not None:
        values = [store.metrics(r.id).get(spec.metric) for r in store.sweep_runs(existing.id)
                  if r.arm == spec.baseline and r.status == FINISHED]  # fmt: skip
        values = [v for v in values if v is not None]
        if len(values) >= 2:
            return statistics.stdev(values) * 2**0.5, f"its {len(values)} finished baseline runs (sd x sqrt 2)"
    return None, "unknown (give --pilot-sd SD or --pilot SWEEP for the MDE in the metric's units)"


def power_lines(plan: PowerPlan) -> list[str]:
    """The power plan as a person reads it before a sweep runs."""
    unit = (lambda v: f"{100 * v:.2g} pt") if plan.points else (lambda v: f"{v:.3g}")
    sd = f"sd of the paired differences {unit(plan.sd)} from {plan.sd_source}" if plan.sd else plan.sd_source
    lines = [f"Power, before the runs (80% power, Holm over the arms compared; {sd}):"]
    for a in plan.arms:
        if not a.reachable:
            floor = a.arms * 2 / 2**a.seeds
            lines.append(f"  {a.arm}: {a.claim} at p{'_holm' if a.arms > 1 else ''} < {a.alpha:g} CANNOT be shown "
                         f"with {a.seeds} seeds: the smallest p{'_holm' if a.arms > 1 else ''} they give is "
                         f"{floor:.3g}")  # fmt: skip
            continue
        if a.mde_sd is None:  # an interval criterion, with too few seeds for any p-value test
            lines.append(f"  {a.arm}: {a.claim}, {a.seeds} seeds: no effect reaches p_holm < {a.alpha:g} with them")
            continue
        mde = f"{unit(a.mde)} ({a.mde_sd:.2f} sd)" if a.mde is not None else f"{a.mde_sd:.2f} sd of the differences"
        needed = ""
        if a.effect is not None:
            needed = (f"; its effect {unit(a.effect)} needs {a.seeds_needed} seeds" if a.seeds_needed
                      else f"; its effect {unit(a.effect)}: seeds needed unknown without the sd" if plan.sd is None
                      else f"; its effect {unit(a.effect)} needs more than 64 seeds")  # fmt: skip
        lines.append(f"  {a.arm}: {a.claim}, {a.seeds} seeds, p{'_holm' if a.arms > 1 else ''} < {a.alpha:g}: "
                     f"detects >= {mde}{needed}")  # fmt: skip
    return lines


# --- views ----------------------------------------------------------------------------------------------------


def scoped_fetch(fetch, sweep_id: str):
    """compare's row source limited to a sweep's current attempts (superseded ones are kept, not shown)."""

    def scoped(conditions, *args):
        return fetch([("run", "sweep_id", "=", sweep_id), ("run", "superseded", "=", False), *conditions], *args)

    scoped.has_metric = getattr(fetch, "has_metric", None)
    return scoped


def paired_with_verdicts(rows: list[dict[str, Any]], record, metric: str | None = None):
    """compare's paired table of a sweep against its baseline arm, with each arm's verdict from its ``compare``
    criterion (unchecked until every seed of both arms has finished)."""
    from . import answer
    from .compare import detectable, paired_table

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
    tested = sum(r["p"] is not None for r in table.rows)
    for prow in table.rows:
        arm = spec.arm(prow["name"].removeprefix(f"{spec.name}_"))
        complete = finished.get(arm.name, 0) == len(spec.seeds) == finished.get(spec.baseline, 0)
        verdict = arm_verdict(arm, prow) if complete or arm.compare is None else run_criteria.Verdict(
            "unchecked", f"{finished.get(arm.name, 0)} of {len(spec.seeds)} seeds finished")  # fmt: skip
        prow["arm"] = arm.name
        prow["verdict"], prow["verdict_detail"] = verdict.status, verdict.detail
        prow["criterion"] = arm.compare
        prow["claim"] = answer.claim(arm.compare, table.points)
        prow["verdict_words"] = answer.verdict_words(verdict.status, prow["claim"], prow, table.points)
        prow["thresholds"] = answer.thresholds(arm.compare)
        alpha, holm = answer.alpha_of(arm.compare)
        prow["mde"] = detectable(prow.get("per_seed") or [], tested if holm else 1, alpha)
    table.columns += ["claim", "verdict", "verdict_detail"]
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
                    "git_dirty": bool(run.git_dirty), "metrics": store.metrics(run.id)})  # fmt: skip
    return out
