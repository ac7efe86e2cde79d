"""Evaluation sets as researchers keep them, read into Problems: a ``datasets`` folder (``save_to_disk``), a
.jsonl, .json, .csv or .parquet file, or a hub dataset ``user/name[:split]`` (through ``datasets``).

Fields are found by name: the prompt in ``prompt``, ``question`` or ``input``; the answer in ``answer``, ``target``
or ``output``; ``task_type``, ``operation`` and ``difficulty`` under their names anywhere, also inside a nested
column (``metadata.operation``, or a CSV column of that name). ``--suite_fields prompt=question,answer=target``
names any other column (a nested one as ``metadata.op``). Without a task type, one is taken from the operation
(+ - * / arithmetic, count counting, compare comparison) or else from the prompt (tasks.task_type_of): it decides
how an answer is read from a completion (yes/no for comparisons, the leading number otherwise).

Rows stay as the source has them, repeated prompts included, so that an accuracy counts what the source's own
evaluation counts; one prompt with two answers is refused. Nothing here writes a file: a hub dataset goes into the
Hugging Face cache, as ``datasets`` keeps it.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import paths
from .errors import GrpoLabError
from .tasks import Problem, task_type_of
from .text import check_text, printable

FORMATS = (".jsonl", ".json", ".csv", ".parquet")
FORMATS_TEXT = ".jsonl, .json, .csv or .parquet"
FILE_MAX = 256 << 20  # bytes: what a suite of a million problems takes; more is not a suite
UNPACKED_MAX = 1 << 30  # bytes a Parquet file may unpack to (its own metadata says, before anything is read)
ROWS_MAX = 1_000_000
FIELDS = ("prompt", "answer", "task_type", "operation", "difficulty")
NAMES = {"prompt": ("prompt", "question", "input"), "answer": ("answer", "target", "output"),
         "task_type": ("task_type",), "operation": ("operation",), "difficulty": ("difficulty",)}  # fmt: skip
ANYWHERE = ("task_type", "operation", "difficulty")  # found inside a nested column too (metadata.operation)
TASK_TYPE_OF_OPERATION = {"+": "arithmetic", "-": "arithmetic", "*": "arithmetic", "/": "arithmetic",
                          "count": "counting", "compare": "comparison"}  # fmt: skip
INFERRED = "(inferred)"  # the column recorded for a task type no column gave
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+(?::[\w.-]+)?")
FOLDER_MARKERS = ("dataset_info.json", "state.json")  # a Dataset's save_to_disk folder; a DatasetDict's has:
DICT_MARKER = "dataset_dict.json"
WALK_MAX = 10_000  # entries a datasets folder may hold


@dataclass(frozen=True)
class Source:
    """Where a suite comes from: ``kind`` one of jsonl, json, csv, parquet, datasets folder, hub; ``where`` an
    absolute path or a hub id; ``split`` for a folder of several splits or a hub dataset."""

    kind: str
    where: str
    split: str | None = None

    @property
    def spec(self) -> str:
        """How a run names it again (recorded in its configuration)."""
        return self.where + (f":{self.split}" if self.split else "")

    @property
    def label(self) -> str:
        """How messages name it: ``suite file x.csv``, ``datasets folder /data/eval``, ``hub dataset u/n:test``."""
        what = {"hub": "hub dataset", "datasets folder": "datasets folder"}.get(self.kind, "suite file")
        return f"{what} {self.spec}"

    @property
    def stem(self) -> str:
        """The name a run records its results under, unless it was imported under another."""
        if self.kind == "hub":
            base = self.where.split("/", 1)[1]
        else:
            path = Path(self.where)
            base = path.name[: -len(path.suffix)] if path.suffix.lower() in FORMATS else path.name
        return base + (f"-{self.split}" if self.split else "")


def find(spec: str) -> Source | None:
    """The source ``spec`` names (a path here, or a hub id), or None when it names none (a suite's name)."""
    path = Path(spec).expanduser()
    suffix = path.suffix.lower()
    if suffix in FORMATS:
        if paths.is_dir(path):
            raise GrpoLabError(f"suite file {spec} is not a regular file but a folder; give a {suffix} file (a "
                               "datasets folder is named without a suffix)")  # fmt: skip
        if not paths.is_file(path):  # never read a device or a pipe (/dev/zero.jsonl would never end)
            what = "is not a regular file" if paths.exists(path) else "does not exist"
            raise GrpoLabError(f"suite file {spec} {what}; give a {FORMATS_TEXT} file or a datasets folder")
        return Source(suffix[1:], os.path.abspath(path))
    if paths.is_dir(path):
        return Source("datasets folder", os.path.abspath(path))
    if paths.exists(path):
        what = "a file" if paths.is_file(path) else "not a regular file"
        raise GrpoLabError(f"suite {spec} is {what} of no suite format; give a {FORMATS_TEXT} file, a "
                           "datasets folder or a hub id")  # fmt: skip
    folder, sep, split = spec.rpartition(":")
    if sep and split and paths.is_dir(Path(folder).expanduser()):
        return Source("datasets folder", os.path.abspath(Path(folder).expanduser()), split)
    if HUB_ID.fullmatch(spec):
        repo, _, split = spec.partition(":")
        parent = Path(repo.split("/", 1)[0])
        if paths.is_dir(parent):  # data/eval: a folder missing here, not a hub id
            raise GrpoLabError(f"no datasets folder {spec} ({parent}/ has no {Path(repo).name}); give a folder, a "
                               f"{FORMATS_TEXT} file or a hub id")  # fmt: skip
        return Source("hub", repo, split or None)
    if "/" in spec or spec.startswith((".", "~")):
        raise GrpoLabError(f"no suite file or datasets folder at {spec}")
    return None


def parse_fields(text: str | None) -> dict[str, str]:
    """``--suite_fields prompt=question,answer=target``: field -> column."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        field, sep, column = (part.strip() for part in item.partition("="))
        if not sep or not column:
            raise GrpoLabError(f"--suite_fields {item.strip()!r}: write FIELD=COLUMN, e.g. answer=target")
        if field not in FIELDS:
            raise GrpoLabError(f"--suite_fields: {field!r} is not a field; the fields are {', '.join(FIELDS)}")
        if field in out:
            raise GrpoLabError(f"--suite_fields names {field} twice; give it once")
        out[field] = column
    if not out and text is not None:
        raise GrpoLabError("--suite_fields is empty; write FIELD=COLUMN,..., e.g. answer=target, or leave it out")
    return out


# --- reading rows ---------------------------------------------------------------------------------------------


def read_rows(source: Source) -> list[dict[str, Any]]:
    """Every row of ``source``, as the source has them (nested columns as dicts)."""
    if source.kind == "datasets folder":
        return _folder_rows(source)
    if source.kind == "hub":
        return _hub_rows(source)
    path = Path(source.where)
    size = path.stat().st_size
    if size > FILE_MAX:
        raise GrpoLabError(f"{source.label} is {size / 2**30:.1f} GiB; a suite file is at most {FILE_MAX >> 20} MiB "
                           "(a million problems)")  # fmt: skip
    if source.kind == "parquet":
        return _parquet_rows(source, path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise GrpoLabError(f"cannot read {source.label}: {getattr(exc, 'strerror', None) or exc}") from None
    if source.kind == "csv":
        return _csv_rows(source, text)
    if source.kind == "json":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return _json_lines(source, text)  # Dataset.to_json writes JSON lines into a .json file
        return _json_rows(source, data)
    return _json_lines(source, text)


def _json_lines(source: Source, text: str) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as exc:
            what = "is not JSON" if source.kind == "jsonl" else "is neither JSON nor JSON lines (one row per line)"
            if "integer string conversion" in str(exc):  # Python reads no number of more than 4,300 digits
                what = "holds a number of more than 4,300 digits"
            raise GrpoLabError(f"{source.label} line {n} {what}") from None
        if not isinstance(row, dict):
            raise GrpoLabError(f"{source.label} line {n} is a JSON {type(row).__name__}, not an object of fields")
        rows.append(row)
        _count(source, len(rows))
    return rows


def _json_rows(source: Source, data: Any) -> list[dict[str, Any]]:
    """A JSON list of rows, or an object holding one (``{"data": [...]}``)."""
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 and len(data) == 1 else [data]  # {"data": [rows]}, or one row
    if not isinstance(data, list) or any(not isinstance(row, dict) for row in data):
        raise GrpoLabError(f"{source.label} is not a list of rows (JSON objects of fields)")
    _count(source, len(data))
    return data


def _csv_rows(source: Source, text: str) -> list[dict[str, Any]]:
    import csv
    import io

    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return []
        if len(set(header)) != len(header):
            twice = next(h for h in header if header.count(h) > 1)
            raise GrpoLabError(f"{source.label}: the column {printable(twice)!r} appears twice in its header")
        rows = []
        for cells in reader:
            if not any(cells):
                continue
            if len(cells) != len(header):
                raise GrpoLabError(f"{source.label} line {reader.line_num} has {len(cells)} cells for "
                                   f"{len(header)} columns")  # fmt: skip
            rows.append(dict(zip(header, cells, strict=True)))
            _count(source, len(rows))
    except csv.Error as exc:
        raise GrpoLabError(f"{source.label} line {reader.line_num} is not CSV ({exc})") from None
    return rows


def _parquet_rows(source: Source, path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as file:
            meta = file.metadata
            _count(source, meta.num_rows)
            unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
            if unpacked > UNPACKED_MAX:
                raise GrpoLabError(f"{source.label} unpacks to {unpacked / 2**30:.1f} GiB; a suite is at most "
                                   f"{UNPACKED_MAX >> 30} GiB")  # fmt: skip
            return file.read().to_pylist()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise GrpoLabError(f"cannot read {source.label} as Parquet: {_first_line(exc)}") from None


def _folder_rows(source: Source) -> list[dict[str, Any]]:
    folder = Path(source.where)
    is_dict = paths.is_file(folder / DICT_MARKER)
    if not is_dict and not all(paths.is_file(folder / m) for m in FOLDER_MARKERS):
        raise GrpoLabError(f"{folder} is not a datasets folder (no {' and '.join(FOLDER_MARKERS)}, nor "
                           f"{DICT_MARKER}); save one with Dataset.save_to_disk, or give a "
                           f"{FORMATS_TEXT} file")  # fmt: skip
    _check_folder(source, folder)
    if not is_dict and _no_data(folder / "state.json"):
        raise GrpoLabError(f"{source.label} holds no problems")  # datasets itself fails on it (an IndexError)
    import datasets

    datasets.disable_progress_bars()
    try:
        data = datasets.load_from_disk(str(folder))
    except Exception as exc:  # a damaged folder: whatever datasets raises, said in one line
        raise GrpoLabError(f"cannot read the datasets folder {folder}: {_first_line(exc)}") from None
    return _rows_of(source, data)


def _no_data(state: Path) -> bool:
    """Whether a Dataset's state.json lists no data files (an empty Dataset saved)."""
    try:
        return json.loads(state.read_text(encoding="utf-8")).get("_data_files") == []
    except (OSError, ValueError, AttributeError, RecursionError):
        return False  # datasets says what is wrong with it


def _check_folder(source: Source, folder: Path) -> None:
    """Every file of a datasets folder is a regular file (a pipe or a device would never end), and all of them
    together no larger than a suite file may be (a sparse file says its whole size)."""
    total, seen = 0, 0
    for root, dirs, files in os.walk(folder):
        seen += len(dirs) + len(files)
        if seen > WALK_MAX:
            raise GrpoLabError(f"{source.label} holds more than {WALK_MAX:,} files; it is not a suite")
        for name in files:
            path = Path(root) / name
            if not paths.is_file(path):
                raise GrpoLabError(f"{source.label}: {path} is not a regular file")
            total += path.stat().st_size
    if total > FILE_MAX:
        raise GrpoLabError(f"{source.label} holds {total / 2**30:.1f} GiB; a suite is at most {FILE_MAX >> 20} MiB "
                           "(a million problems)")  # fmt: skip


def _hub_rows(source: Source) -> list[dict[str, Any]]:
    import datasets
    from huggingface_hub import constants
    from huggingface_hub.utils import logging as hub_logging

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    hub_logging.set_verbosity_error()  # its retries would print a line each
    try:
        data = datasets.load_dataset(source.where, split=source.split)
    except Exception as exc:
        if constants.HF_HUB_OFFLINE:
            raise GrpoLabError(f"hub dataset {source.spec}: the Hugging Face hub is offline here (HF_HUB_OFFLINE=1) "
                               "and the dataset is not in the local cache; save it with save_to_disk where the hub "
                               "is reachable and give that folder") from None  # fmt: skip
        raise GrpoLabError(f"cannot load the hub dataset {source.spec}: {_first_line(exc)}") from None
    return _rows_of(source, data)


def _rows_of(source: Source, data) -> list[dict[str, Any]]:
    """The rows of a Dataset, or of one split of a DatasetDict (the split the source names, or its only one)."""
    import datasets

    if isinstance(data, datasets.DatasetDict):
        splits = list(data.keys())
        if source.split is None and len(splits) == 1:
            data = data[splits[0]]
        elif source.split in splits:
            data = data[source.split]
        else:
            which = f"has no split {source.split!r}" if source.split else "holds several splits"
            raise GrpoLabError(f"{source.label} {which} ({', '.join(map(printable, splits))}); name one: "
                               f"{source.where}:{printable(splits[0])}")  # fmt: skip
    elif source.split is not None and source.kind == "datasets folder":
        raise GrpoLabError(f"{source.label}: the folder holds one dataset, no splits; leave :{source.split} out")
    _count(source, len(data))
    return data.to_list()


def _count(source: Source, rows: int) -> None:
    if rows > ROWS_MAX:
        raise GrpoLabError(f"{source.label} holds more than {ROWS_MAX:,} rows; a suite holds at most a million")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return printable(text[0] if text else type(exc).__name__)[:300]


# --- rows -> problems -----------------------------------------------------------------------------------------


def flatten(row: dict[str, Any], prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """A row with its nested columns spelled out: ``{"metadata": {"operation": "+"}}`` -> ``metadata.operation``."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < 4:
            out.update(flatten(value, name + ".", depth + 1))
        else:
            out[name] = value
    return out


def columns_of(rows: Iterable[dict[str, Any]]) -> list[str]:
    found: dict[str, None] = {}
    for row in rows:
        found.update(dict.fromkeys(row))
    return list(found)


def mapping(label: str, columns: list[str], given: dict[str, str]) -> dict[str, str]:
    """Which column gives each field: the one --suite_fields names, else the first of its usual names (any case),
    else (task_type, operation, difficulty) a nested column of its name."""
    out: dict[str, str] = {}
    lower = {}
    for c in columns:
        lower.setdefault(c.lower(), []).append(c)
    for field in FIELDS:
        if field in given:
            if given[field] not in columns:
                raise GrpoLabError(f"--suite_fields {field}={printable(given[field])}: {label} has no such column "
                                   f"(its columns: {_listed(columns)})")  # fmt: skip
            out[field] = given[field]
            continue
        for name in NAMES[field]:
            if name in columns:
                out[field] = name
            elif len(lower.get(name, [])) == 1:
                out[field] = lower[name][0]
            if field in out:
                break
        if field not in out and field in ANYWHERE:
            nested = sorted((c for c in columns if c.rsplit(".", 1)[-1].lower() == field),
                            key=lambda c: (c.count("."), c))  # fmt: skip
            if nested:
                out[field] = nested[0]
    for field in ("answer", "prompt"):
        if field not in out:
            raise GrpoLabError(f"{label} has no {field} field (its columns: {_listed(columns)}); name the column "
                               f"that holds it: --suite_fields {field}=COLUMN")  # fmt: skip
    if out["prompt"] == out["answer"]:
        raise GrpoLabError(f"{label}: the column {printable(out['prompt'])!r} cannot be both the prompt and the answer")
    return out


def _listed(columns: list[str], most: int = 20) -> str:
    shown = ", ".join(printable(c) for c in columns[:most])
    return (shown + f", ... ({len(columns)} in all)" if len(columns) > most else shown) or "none"


def problems_of(label: str, rows: list[dict[str, Any]], given: dict[str, str] | None = None):
    """The problems of ``rows`` in their order, repeats kept, and the column each field came from. One prompt with
    two answers, an empty prompt or answer, or text with control characters are refused in one line."""
    if not rows:
        raise GrpoLabError(f"{label} holds no problems")
    flat = [flatten(r) for r in rows]
    fields = mapping(label, columns_of(flat), given or {})
    problems, first = [], {}
    for n, row in enumerate(flat, 1):
        values = {}
        for field, column in fields.items():
            value = row.get(column)
            if type(value) is not str:
                value = _text(value, f"{label} row {n}: {field}")
            if field != "prompt":
                value = value.strip()
            if not value.isprintable():  # (the messages are built only for a value that needs a look)
                check_text(f"{label} row {n}: {field}", value, one_line=field != "prompt")
            values[field] = value
        for field in ("prompt", "answer"):
            if not values[field].strip():
                raise GrpoLabError(f"{label} row {n} has an empty {field} ({fields[field]})")
        if "task_type" not in fields or not values["task_type"]:
            op = values.get("operation", "")
            values["task_type"] = TASK_TYPE_OF_OPERATION.get(op) or task_type_of(values["prompt"])
        problem = Problem(**{f: values.get(f, "") for f in FIELDS})
        seen = first.setdefault(problem.prompt, (n, problem.answer))
        if seen[1] != problem.answer:
            raise GrpoLabError(f"{label}: the prompt {printable(problem.prompt[:60])!r} has two answers "
                               f"({printable(seen[1])!r} in row {seen[0]}, {printable(problem.answer)!r} in row {n}); "
                               "a prompt has one answer")  # fmt: skip
        problems.append(problem)
    if not problems:
        raise GrpoLabError(f"{label} holds no problems")
    if "task_type" not in fields:
        fields["task_type"] = INFERRED
    return problems, {f: fields[f] for f in FIELDS if f in fields}


def _text(value: Any, where: str) -> str:
    """A value of a field as text: text as it is, a whole number in digits (4.0 too), nothing as ''."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise GrpoLabError(f"{where} is {str(value).lower()}, not text; give the answer as text (yes/no?)")
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # more than 4,300 digits
            raise GrpoLabError(f"{where} is a number of more than 4,300 digits") from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise GrpoLabError(f"{where} is {value}, not a value")
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    raise GrpoLabError(f"{where} is a {type(value).__name__}, not text")
