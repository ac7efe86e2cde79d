"""Finding a task: a built-in dataset type, a Python file, a module, or an installed package's entry point.

``--task`` takes ``arithmetic`` (or ``small_numbers``, ``mixed``: the built-in ones), ``path/to/task.py`` (its
``task`` object, or its only Task), ``path/to/task.py:NAME``, ``package.module:NAME``, or the name of a task an
installed package offers in the ``grpo_lab.tasks`` entry-point group (as ``llm`` finds plugins): in its
``pyproject.toml``, ``[project.entry-points."grpo_lab.tasks"] sort = "my_tasks:SortTask"``. The object found may
be a Task, a Task subclass (made with no arguments) or a function returning one.

A run records which task it was: its name, version, where it came from, and the SHA-256 of that source file.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import GrpoLabError
from .base import Task

ENTRY_POINTS = "grpo_lab.tasks"
BUILTIN = ("arithmetic", "mixed", "small_numbers")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class TaskInfo:
    """What a run records about its task (and about each reward it added with --reward)."""

    name: str
    version: str
    source: str  # the file the object lives in (or "grpo-lab" for a built-in one)
    sha256: str | None  # of that file
    spec: str  # what --task (or --reward) said

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_builtin(spec: str | None) -> bool:
    return spec is None or spec in BUILTIN


def builtin_info(dataset_type: str) -> TaskInfo:
    """What a run records about a built-in task: its source is grpo-lab's own tasks/arithmetic.py."""
    source = Path(__file__).with_name("arithmetic.py")
    return TaskInfo(dataset_type, "1", f"grpo_lab/tasks/{source.name}", sha256(source), dataset_type)


def load(spec: str) -> tuple[Task, TaskInfo]:
    """The task ``spec`` names (not a built-in one: those are made from the run's flags), and what to record."""
    obj, source = find_object(spec, "task", ENTRY_POINTS)
    task = _instance(obj, spec)
    name, version = getattr(task, "name", None), getattr(task, "version", None)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise GrpoLabError(f"--task {spec}: its name {name!r} must be text of letters, digits, '.', '_' and '-' "
                           "(set name = \"...\" in the task)")  # fmt: skip
    if name in BUILTIN:
        raise GrpoLabError(f"--task {spec}: the name {name!r} is a built-in task's; give yours another name")
    if not isinstance(version, str) or not version.strip():
        raise GrpoLabError(f'--task {spec}: its version {version!r} must be text, e.g. version = "1"')
    if not callable(getattr(task, "generate", None)) or not callable(getattr(task, "problems", None)):
        raise GrpoLabError(f"--task {spec}: {type(task).__name__} is not a task; subclass grpo_lab.tasks.Task and "
                           "define generate(rng)")  # fmt: skip
    return task, TaskInfo(name, version, str(source), sha256(source), spec)


def find_object(spec: str, what: str, group: str | None = None) -> tuple[Any, Path]:
    """The object ``spec`` names (``file.py``, ``file.py:NAME``, ``module:NAME``, or an entry point of ``group``)
    and the file it is defined in. ``what`` (task, reward) words the errors."""
    if spec.endswith(".py") or ".py:" in spec:
        stem, _, attr = spec.rpartition(".py:") if ".py:" in spec else (spec[:-3], "", "")
        path = Path(stem + ".py").expanduser()
        module = _import_file(path, what)
        return _attribute(module, attr or None, spec, what), path.absolute()
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        module = _import_module(module_name, spec, what)
        return _attribute(module, attr, spec, what), Path(getattr(module, "__file__", "") or module_name)
    if group is not None:
        found = entry_point(group, spec)
        if found is not None:
            try:
                obj = found.load()
            except Exception as exc:
                raise GrpoLabError(f"the {what} {spec!r} (entry point {found.value}) failed to load: "
                                   f"{_one(exc)}") from None  # fmt: skip
            module = sys.modules.get(getattr(obj, "__module__", "") or "")
            return obj, Path(getattr(module, "__file__", "") or found.value)
        known = ", ".join([*BUILTIN, *(ep.name for ep in entry_points(group))]) if what == "task" else ""
    raise GrpoLabError(
        f"--{what} {spec!r} is neither a .py file, a module:NAME, nor an installed {what}"
        + (f" ({known})" if group and known else "")
        + ("; `grpo-lab tasks` lists them" if what == "task" else "")
    )


def _import_file(path: Path, what: str):
    if not paths.exists(path):
        raise GrpoLabError(f"--{what} {path}: no such file; give the path to a .py file")
    if not paths.is_file(path):
        raise GrpoLabError(f"--{what} {path} is not a regular file; give the path to a .py file")
    name = "grpo_lab_user_" + hashlib.sha256(str(path.absolute()).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise GrpoLabError(f"--{what} {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # its own bugs, a SystemExit, a KeyboardInterrupt-free import error
        del sys.modules[name]
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise GrpoLabError(f"--{what} {path} raised {_one(exc)} on import{_where(exc, path)}") from None
    return module


def _import_module(module_name: str, spec: str, what: str):
    if not re.fullmatch(r"[A-Za-z_][\w.]*", module_name):
        raise GrpoLabError(f"--{what} {spec!r}: write module:NAME with a Python module path, or a .py file")
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise GrpoLabError(f"--{what} {spec}: no module {module_name} (is its package installed?)") from None
        raise GrpoLabError(f"--{what} {spec}: importing {module_name} raised {_one(exc)}") from None
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise GrpoLabError(f"--{what} {spec}: importing {module_name} raised {_one(exc)}") from None


def _attribute(module, attr: str | None, spec: str, what: str) -> Any:
    if attr:
        if not hasattr(module, attr):
            raise GrpoLabError(f"--{what} {spec}: the module has no {attr!r}")
        return getattr(module, attr)
    if what == "task":
        if hasattr(module, "task"):
            return module.task
        found = [v for v in vars(module).values()
                 if isinstance(v, Task) or (inspect.isclass(v) and issubclass(v, Task) and v is not Task
                                            and v.__module__ == module.__name__)]  # fmt: skip
        instances = [v for v in found if isinstance(v, Task)]
        found = instances or found
        if len(found) == 1:
            return found[0]
        how = "none" if not found else f"{len(found)}"
        raise GrpoLabError(f"--task {spec}: the file defines {how} tasks; name one: {spec}:NAME (or call it task)")
    raise GrpoLabError(f"--{what} {spec}: name the function: {spec}:FUNCTION")


def _instance(obj: Any, spec: str) -> Task:
    try:
        if inspect.isclass(obj):
            return obj()
        if callable(obj) and not isinstance(obj, Task) and not hasattr(obj, "generate"):
            return obj()
    except Exception as exc:
        raise GrpoLabError(f"--task {spec}: making the task raised {_one(exc)}") from None
    return obj


def entry_point(group: str, name: str):
    for ep in entry_points(group):
        if ep.name == name:
            return ep
    return None


def entry_points(group: str) -> list:
    from importlib.metadata import entry_points as found

    return sorted(found(group=group), key=lambda ep: ep.name)


def sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _one(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _where(exc: BaseException, path: Path) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path.absolute()]
    return f" (line {frames[-1].lineno})" if frames else ""
