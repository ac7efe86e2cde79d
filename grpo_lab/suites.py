"""Evaluation suites: fixed problem sets, versioned, shipped as JSONL package data.

Numbers from different runs are comparable only on the same problems, so a released suite never
changes: its SHA-256 is pinned here and checked on load. A changed suite gets a new name.
``scripts/build_suites.py`` regenerates the files deterministically.

Built-in suites are held out by construction: tasks.py never puts one of their problems into a
training set or a run's own held-out split (``reserved_prompts``: the v1 suites, unless a set of suites is
named). A user's own suite has no such guarantee; runs count how many of their training problems it contains
instead. A user's suite is an evaluation set as researchers keep it (suite_sources.py: a ``datasets`` folder, a
.jsonl, .json, .csv or .parquet file, a hub id), read with its repeated prompts, or a set frozen by
``grpo-lab suites import SOURCE --name NAME`` into the suites folder (``suites_home``): a file in the built-in
format beside a manifest holding its SHA-256 and where it came from, named by NAME from then on.

Every suite a run evaluates on is recorded with the SHA-256 of its problems written in the built-in format
(``suite_text``), whatever format they came in: the same problems give the same checksum from a folder, a CSV or
a Parquet file, and a built-in suite's is its pinned one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from . import paths, suite_sources
from .errors import GrpoLabError
from .suite_sources import FILE_MAX as SUITE_FILE_MAX
from .suite_sources import FORMATS, FORMATS_TEXT, Source
from .tasks import Problem
from .text import check_text, printable

SUITES_DIR = Path(__file__).parent / "suites"


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    sha256: str


SUITES = {
    s.name: s
    for s in (
        Suite(
            "arith-v1",
            "200 arithmetic problems in five tiers: very_easy (+, 0-5), easy (+-*, 0-10), medium (+-*, 0-20), "
            "hard (+-*, 10-50), very_hard (+-* and exact /, 20-100)",
            "df0b5831b4e3ddc3cb59aa3e898e424d8e3e31855d7929fa6da302bfa90c32ce",
        ),
        Suite(
            "mixed-v1",
            "100 counting (1-5, 6-10 words) and comparison (0-20, 20-100) problems",
            "cb446d730d388e2b8ad7f4e7b6fd72ca7d802d89c71a4dbfdae044ec2c465938",
        ),
        Suite(
            "arith-v2",
            "500 arithmetic problems drawn uniformly from what the default range trains on (+ - * on 0-20), in five "
            "tiers: very_easy (a * 0, 0 * b), easy (+ without a carry), medium (+ with a carry, - with a result >= "
            "0), hard (- below 0, * below 100), very_hard (* of 100 or more)",
            "768d7b40836fe9d0173f33e57b6542574adc640f1771a3253f817ac8cc256d93",
        ),
        Suite(
            "mixed-v2",
            "100 problems drawn uniformly from what mixed runs train on: 50 counting (easy 1-5 words, medium 6-10) and "
            "50 comparison (0-20; very_easy 3 or more apart, hard at most 2 apart)",
            "1b5fbe99ef3ec78f90a55c729830a3dd0c5962b385a7ac0a76645cd9ef8c7156",
        ),
    )
}
# Which suites training sets are drawn without: every run before the v2 suites reserved the v1 ones (and still does
# by default, so that its training set stays what it was); the v2 testbed (and tiny-arith-2) reserves the v2 ones.
V1_SUITES = ("arith-v1", "mixed-v1")
V2_SUITES = ("arith-v2", "mixed-v2")
V1 = V1_SUITES  # what every run recorded before --reserve existed held out of its training sets
NONE = "none"
DIFFICULTY_TIERS = ("very_easy", "easy", "medium", "hard", "very_hard")


def tier_rank(group: str) -> tuple[int, str]:
    """Sort key that puts difficulty tiers easy to hard (other groups after them, by name)."""
    return (DIFFICULTY_TIERS.index(group) if group in DIFFICULTY_TIERS else len(DIFFICULTY_TIERS), group)


def suite_names() -> list[str]:
    return list(SUITES)


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*")  # a suite's name becomes a column and a metric name
TAKEN = ("train", "held_out", NONE)


def suite_text(problems: Iterable[Problem]) -> str:
    """Problems in the built-in suites' format: one JSON object per line, keys sorted."""
    return "".join(json.dumps(p.row(), sort_keys=True) + "\n" for p in problems)


@dataclass(frozen=True)
class LoadedSuite:
    """A suite as a run evaluates on it and records it: its problems in order (repeats kept), the name its results
    are recorded under, how a run names it again (``source``), and the SHA-256 of its problems (``suite_text``)."""

    name: str
    source: str  # a built-in or imported suite's name, a file's or folder's absolute path[:split], a hub id[:split]
    kind: str  # built-in, imported, jsonl, json, csv, parquet, datasets folder, hub
    problems: tuple[Problem, ...]
    sha256: str
    fields: dict[str, str] = field(default_factory=dict)  # field -> the column it came from (sets read as they are)
    imported_from: dict[str, str] = field(default_factory=dict)  # an imported suite's source, kind and date

    @property
    def rows(self) -> int:
        return len(self.problems)

    @property
    def distinct(self) -> int:
        return len({p.prompt for p in self.problems})

    def record(self) -> dict[str, object]:
        """What a run keeps about the suite."""
        out: dict[str, object] = {"name": self.name, "source": self.source, "kind": self.kind, "sha256": self.sha256,
                                  "rows": self.rows, "distinct": self.distinct}  # fmt: skip
        if self.fields:
            out["fields"] = self.fields
        if self.imported_from:
            out["imported_from"] = self.imported_from
        return out

    def notice(self) -> str | None:
        """One line when prompts repeat: how many, and that each row counts."""
        repeats = self.rows - self.distinct
        if not repeats:
            return None
        return (f"suite {self.name}: {self.rows} rows, {self.distinct} distinct problems; {repeats} rows repeat an "
                "earlier row's prompt and each counts in its accuracy, as the source counts it")  # fmt: skip


def is_user_suite(spec: str) -> bool:
    """Whether ``spec`` names a suite of the user's (a file, a folder, a hub id, an imported suite), not a built-in."""
    return spec not in SUITES and spec != NONE


def resolve_spec(spec: str) -> str:
    """``--eval_suite``/``--suite`` as a run records it, so that the recorded command reruns from anywhere: a
    built-in or imported suite's name as it is, a file or folder by its absolute path, a hub id as it is."""
    if spec in SUITES or spec == NONE or imported_name(spec):
        return spec
    source = suite_sources.find(spec)
    if source is None:
        raise _unknown(spec)
    return source.spec


def _unknown(spec: str) -> GrpoLabError:
    mine = [name for name, *_ in imported_suites()]
    extra = f"; imported: {', '.join(mine)}" if mine else ""
    return GrpoLabError(
        f"unknown suite {spec!r}; `grpo-lab suites` lists them (built in: {', '.join(SUITES)}{extra}), or give a "
        f"{FORMATS_TEXT} file, a datasets folder or a hub id user/name[:split]"
    )


def suite_name(spec: str) -> str:
    """The name results are recorded under: a built-in or imported suite's own; a file's name without its
    suffix; a folder's name; a hub dataset's name (with -SPLIT when a split is named)."""
    if spec in SUITES or spec == NONE or imported_name(spec):
        return spec
    source = suite_sources.find(spec)
    if source is None:
        raise _unknown(spec)
    name = source.stem
    what = f"{source.label}: its name {name!r}"
    if name in SUITES or name in TAKEN:
        raise GrpoLabError(f"{what} is taken; rename it, or import it under another: grpo-lab suites import "
                           f"{source.spec} --name NAME")  # fmt: skip
    if not NAME.fullmatch(name) or re.search(r"_(before|gain|overlap)$", name):
        raise GrpoLabError(f"{what} becomes a column: rename it with letters, digits, '.' and '-', or import it "
                           f"under such a name: grpo-lab suites import {source.spec} --name NAME")  # fmt: skip
    return name


def load_suite(spec: str, fields: str | None = None) -> list[Problem]:
    """The problems of a suite in order (repeats kept); ``fields`` is --suite_fields."""
    return list(open_suite(spec, fields).problems)


_OPENED: dict[tuple, LoadedSuite] = {}  # a run reads its suites several times (config, data, evaluation, record)


def open_suite(spec: str, fields: str | None = None) -> LoadedSuite:
    """The suite ``spec`` names (built in, imported, a file, a folder or a hub id), read and checked; ``fields`` is
    --suite_fields (for sets read as they are). Read once per process while the files stay as they were."""
    if spec in SUITES:
        return _builtin(spec)
    if imported_name(spec):
        return _imported(spec)
    source = suite_sources.find(spec)
    if source is None:
        raise _unknown(spec)
    return open_source(source, fields, suite_name(spec))


def _builtin(name: str) -> LoadedSuite:
    key = ("built-in", name)
    if key not in _OPENED:
        data = (SUITES_DIR / f"{name}.jsonl").read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != SUITES[name].sha256:
            raise GrpoLabError(f"suite {name} has changed on disk (sha256 {digest[:12]}); reinstall grpo-lab")
        problems = tuple(Problem(**json.loads(line)) for line in data.decode().splitlines())
        _OPENED[key] = LoadedSuite(name, name, "built-in", problems, digest)
    return _OPENED[key]


def open_source(source: Source, fields: str | None, name: str) -> LoadedSuite:
    given = suite_sources.parse_fields(fields)
    key = (source, tuple(sorted(given.items())), name, _signature(source))
    if key not in _OPENED:
        rows = suite_sources.read_rows(source)
        problems, used = suite_sources.problems_of(source.label, rows, given)
        text = suite_text(problems)
        digest = hashlib.sha256(text.encode()).hexdigest()
        if len(_OPENED) > 32:
            _OPENED.clear()
        _OPENED[key] = LoadedSuite(name, source.spec, source.kind, tuple(problems), digest, used)
    return _OPENED[key]


def _signature(source: Source) -> tuple:
    """What changes when a local set is rewritten (size, time, inode of its files); a hub set by its id."""
    if source.kind == "hub":
        return ()
    files = [Path(source.where)]
    if source.kind == "datasets folder":
        files = sorted(Path(root) / f for root, _, names in os.walk(source.where) for f in names)[:10_000]
    out = []
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((str(path), st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


# --- suites imported into the suites folder ---------------------------------------------------------------------

MANIFEST_MAX = 1 << 20


def suites_home() -> Path:
    """The folder imported suites live in: $GRPO_LAB_SUITES, else $XDG_DATA_HOME/grpo-lab/suites (by default
    ~/.local/share/grpo-lab/suites). Point $GRPO_LAB_SUITES at a folder of the project to share them with it."""
    given = os.environ.get("GRPO_LAB_SUITES")
    if given:
        return Path(given).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "grpo-lab" / "suites"


def imported_name(spec: str) -> bool:
    """Whether ``spec`` is the name of an imported suite (its manifest is in the suites folder)."""
    return (
        spec not in SUITES
        and NAME.fullmatch(spec) is not None
        and Path(spec).suffix.lower() not in FORMATS
        and paths.exists(suites_home() / f"{spec}.json")
    )


def _manifest(name: str) -> dict:
    """An imported suite's manifest, checked: a small regular file holding its name, checksum and origin."""
    path = suites_home() / f"{name}.json"
    damaged = f"the imported suite {name} ({path}) is damaged"
    if not paths.is_file(path) or path.stat().st_size > MANIFEST_MAX:
        raise GrpoLabError(f"{damaged}: its manifest is not a small regular file; import it again under a new name")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        raise GrpoLabError(f"{damaged}: its manifest is not JSON; import it again under a new name") from None
    ok = (isinstance(data, dict) and data.get("name") == name
          and isinstance(data.get("sha256"), str) and re.fullmatch(r"[0-9a-f]{64}", data["sha256"])
          and all(isinstance(data.get(k), str) for k in ("source", "kind", "imported_at")))  # fmt: skip
    if not ok:
        raise GrpoLabError(f"{damaged}: its manifest lacks its name, sha256, source, kind or date; import it again "
                           "under a new name")  # fmt: skip
    for key in ("source", "kind", "imported_at"):
        check_text(f"{damaged}: its {key}", data[key], one_line=True)
    return data


def _imported(name: str) -> LoadedSuite:
    manifest = _manifest(name)
    path = suites_home() / f"{name}.jsonl"
    source = Source("jsonl", str(path))
    if not paths.is_file(path) or path.stat().st_size > SUITE_FILE_MAX:
        raise GrpoLabError(f"the imported suite {name}: {path} is missing or not a suite file; import it again")
    key = ("imported", name, _signature(Source("jsonl", str(path.with_suffix(".json")))), _signature(source))
    if key not in _OPENED:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != manifest["sha256"]:
            raise GrpoLabError(f"the imported suite {name} has changed on disk ({path}: sha256 {digest[:12]}, "
                               f"imported as {manifest['sha256'][:12]}); import its source again, under a new "
                               "name")  # fmt: skip
        problems, _ = suite_sources.problems_of(f"the imported suite {name}", suite_sources.read_rows(source))
        origin = {k: manifest[k] for k in ("source", "kind", "imported_at")}
        _OPENED[key] = LoadedSuite(name, name, "imported", tuple(problems), digest, imported_from=origin)
    return _OPENED[key]


def imported_suites() -> list[tuple[str, dict | None, str | None]]:
    """(name, manifest, why it cannot be used) for every suite in the suites folder, by name."""
    home = suites_home()
    if not paths.is_dir(home):
        return []
    out = []
    try:
        names = sorted(p.stem for p in home.iterdir() if p.suffix == ".json" and NAME.fullmatch(p.stem))
    except OSError:
        return []
    for name in names[:10_000]:
        try:
            out.append((name, _manifest(name), None))
        except GrpoLabError as exc:
            out.append((name, None, str(exc)))
    return out


def check_import_name(name: str) -> str:
    check_text("--name", name, one_line=True)
    if not NAME.fullmatch(name) or re.search(r"_(before|gain|overlap)$", name):
        raise GrpoLabError(f"--name {printable(name)!r}: name a suite with letters, digits, '.' and '-' (the name "
                           "becomes a column), e.g. orig-eval-v1")  # fmt: skip
    if Path(name).suffix.lower() in FORMATS:
        raise GrpoLabError(f"--name {name}: a suite's name does not end in {Path(name).suffix}; e.g. "
                           f"{name[: -len(Path(name).suffix)]}-v1")  # fmt: skip
    if name in SUITES or name in TAKEN:
        raise GrpoLabError(f"--name {name} is taken (a built-in suite, or a set every run has); choose another")
    return name


@dataclass(frozen=True)
class Imported:
    suite: LoadedSuite  # the suite as runs now name it
    written: bool  # False: the same problems were imported under this name before; nothing was written
    folder: Path


def import_suite(spec: str, name: str, fields: str | None = None) -> Imported:
    """Freeze the set ``spec`` names as the suite ``name`` in the suites folder: its problems in the built-in
    format (NAME.jsonl) and a manifest (NAME.json) with their SHA-256 and where they came from. The same problems
    again are a no-op; other problems under a name already taken are refused (a changed set is a new suite)."""
    check_import_name(name)
    if spec in SUITES or imported_name(spec):
        raise GrpoLabError(f"{spec} is a suite already (`grpo-lab suites` lists it); give a file, a folder or a hub id")
    source = suite_sources.find(spec)
    if source is None:
        raise _unknown(spec)
    loaded = open_source(source, fields, name)
    home = suites_home()
    if paths.exists(home / f"{name}.json"):
        before = _manifest(name)
        if before["sha256"] != loaded.sha256:
            raise GrpoLabError(
                f"suite {name} was imported from {printable(before['source'])} with sha256 {before['sha256'][:12]}; "
                f"{source.spec} gives sha256 {loaded.sha256[:12]} (other problems): a changed set is a new suite, "
                f"import it under a new name (e.g. {next_version(name)})"
            )
        return Imported(_imported(name), False, home)
    if paths.exists(home) and not paths.is_dir(home):
        raise GrpoLabError(f"the suites folder {home} ($GRPO_LAB_SUITES) is not a folder; point it at one")
    manifest = {"name": name, "sha256": loaded.sha256, "rows": loaded.rows, "distinct": loaded.distinct,
                "source": source.spec, "kind": source.kind, "fields": loaded.fields,
                "imported_at": _now()}  # fmt: skip
    try:
        home.mkdir(parents=True, exist_ok=True)
        _write_atomically(home / f"{name}.jsonl", suite_text(loaded.problems))
        _write_atomically(home / f"{name}.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    except OSError as exc:
        raise GrpoLabError(f"cannot write the suite {name} into {home}: {exc.strerror or exc}; set $GRPO_LAB_SUITES "
                           "to a folder you can write to") from None  # fmt: skip
    return Imported(_imported(name), True, home)


def next_version(name: str) -> str:
    """The name a changed set could take: orig-eval-v1 -> orig-eval-v2; orig-eval -> orig-eval-v2."""
    m = re.fullmatch(r"(.*-v)(\d+)", name)
    return f"{m[1]}{int(m[2]) + 1}" if m else f"{name}-v2"


def _write_atomically(path: Path, text: str) -> None:
    """``text`` into ``path`` whole or not at all (a file beside it, renamed over it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if paths.exists(tmp):
            tmp.unlink()


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def suite_records(suites: Sequence[LoadedSuite]) -> str:
    """What a run's row keeps about its suites (JSON): each one's name, source, kind, checksum, rows, distinct."""
    return json.dumps([s.record() for s in suites])


def check_unchanged(recorded: str | None, suites: Sequence[LoadedSuite]) -> None:
    """A resumed run evaluates on the problems it started with: each suite's checksum as its row recorded it."""
    try:
        before = {s["name"]: s["sha256"] for s in json.loads(recorded or "[]")}
    except (ValueError, TypeError, KeyError):
        return  # recorded before suites were recorded, or not by grpo-lab: nothing to hold it to
    for suite in suites:
        if suite.name in before and before[suite.name] != suite.sha256:
            raise GrpoLabError(f"suite {suite.name} ({printable(suite.source)}) has changed since the run started "
                               f"(sha256 {before[suite.name][:12]}, now {suite.sha256[:12]}); a resumed run would "
                               "evaluate on other problems: import the set as it was, or start a new run")  # fmt: skip


def reserved_prompts(names: Iterable[str] = V1_SUITES) -> frozenset[str]:
    """The prompts of the built-in suites ``names`` (by default the v1 suites, as every run before the v2 suites
    reserved): the problems training never uses."""
    names = tuple(names)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise GrpoLabError(f"cannot reserve {', '.join(map(repr, unknown))}: only built-in suites are held out of "
                           f"training ({', '.join(SUITES)})")  # fmt: skip
    return _reserved(tuple(sorted(set(names))))


@cache
def _reserved(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(p.prompt for name in names for p in load_suite(name))


def describe(name: str) -> dict[str, object]:
    """A built-in or imported suite as `grpo-lab suites` lists it."""
    suite = open_suite(name)
    if suite.kind == "built-in":
        description = SUITES[name].description
    else:
        origin = suite.imported_from
        description = f"imported from {origin['source']} ({origin['kind']}) on {origin['imported_at'][:10]}"
    tiers = Counter(p.difficulty for p in suite.problems if p.difficulty)
    return {
        "name": name,
        "description": description,
        "problems": suite.rows,
        "distinct": suite.distinct,
        "groups": dict(sorted(tiers.items(), key=lambda kv: tier_rank(kv[0]))),
        "sha256": suite.sha256,
    }
