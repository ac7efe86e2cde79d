"""The grpo-lab command line: a thin shell over the library.

Options of ``grpo-lab run`` are generated from RunConfig's fields, so a flag is documented in
exactly one place. Library errors (GrpoLabError) and usage errors become one line on stderr
and exit code 2. Commands that neither train nor evaluate never import torch.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import sys
import threading
from typing import Literal, Optional

import typer
from typer.core import TyperArgument, TyperOption

from . import __version__
from .config import RunConfig, check_text, config_fields, load_presets, resolve, split_tags
from .errors import GrpoLabError, Terminated

app = typer.Typer(
    help="Train small language models with GRPO on arithmetic tasks, and keep the research journal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


UsageError = typer.BadParameter.__bases__[0]  # typer vendors click; this is its UsageError


def _option_type(type_text: str, choices: tuple[str, ...] | None):
    if choices:
        return Optional[Literal[choices]]  # noqa: UP045  typer shows and checks the choices
    if type_text.startswith("list"):
        return Optional[list[str]]  # noqa: UP045  typer needs typing.Optional here
    if "int" in type_text:
        return Optional[int]  # noqa: UP045
    if "float" in type_text:
        return Optional[float]  # noqa: UP045
    return Optional[str]  # noqa: UP045


def config_parameters() -> list[inspect.Parameter]:
    """One typer option per RunConfig field: --snake_case and --dashed-case, default None (= not given)."""
    params = []
    for name, type_text, default, meta in config_fields():
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        shown = ", ".join(default) if isinstance(default, list) else default
        help_text = meta["help"] + ("" if shown is None else f" [dim]\\[default: {shown}][/]")
        option = typer.Option(None, *flags, help=help_text, rich_help_panel=meta["group"], show_default=False)
        annotation = _option_type(type_text, meta.get("choices"))
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation))
    return params


def with_config_options(func):
    """Give ``func`` (which takes ``**config``) every RunConfig option in its signature."""
    sig = inspect.signature(func)
    fixed = [p for p in sig.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    func.__signature__ = sig.replace(parameters=fixed + config_parameters())
    return func


def resolve_config(preset: str | None, options: dict) -> RunConfig:
    if options.get("tags") is not None:
        options["tags"] = split_tags(options["tags"])
    return resolve(options, preset)


SQL_INT = 2**63 - 1  # the largest count SQLite takes
DB_HELP = "The store: a SQLite file or any SQLAlchemy URL \\[default: $GRPO_LAB_DB or ./grpo_lab.db]"


def db_option():
    return typer.Option(None, "--db", help=DB_HELP, show_default=False)


def _open(db: str | None):
    from .store.db import open_store

    return open_store(_db_url(db))


def _fetcher(db: str | None):
    """compare's row source: plain sqlite3, after the full store has upgraded the file or marked crashed runs
    when either is due (opening SQLAlchemy only then keeps compare fast)."""
    from functools import partial

    from .store import sqlite_read

    path = sqlite_read.sqlite_path(_db_url(db) or sqlite_read.default_url())
    if path is None:
        raise GrpoLabError("compare works on SQLite stores; copy the runs to a SQLite file and pass --db FILE")
    if not path.exists() or not sqlite_read.ready_to_read(path):
        _open(db)
    fetch = partial(sqlite_read.table_rows, path)
    fetch.has_metric = partial(sqlite_read.has_metric, path)
    return fetch


def _db_url(db: str | None) -> str | None:
    if db is None:
        return None
    return db if "://" in db else f"sqlite:///{db}"


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
@with_config_options
def run(
    hypothesis: str = typer.Option(
        None, "--hypothesis", help="What this run tests; required, except with --dry_run.", rich_help_panel="Journal"
    ),
    expected: str = typer.Option(None, "--expected", help="The outcome you expect.", rich_help_panel="Journal"),
    criteria: str = typer.Option(
        None,
        "--criteria",
        help="What counts as success, checked when the run ends: conditions on its metrics, e.g. "
        "'arith-v1 >= 0.42 and kl_last < 1' or 'arith-v1_gain > 0' (free text is kept, unchecked).",
        rich_help_panel="Journal",
    ),
    preset: str = typer.Option(None, "--preset", help="A named bundle of flags (`grpo-lab presets`); flags win."),
    dry_run: bool = typer.Option(False, "--dry_run", "--dry-run", help="Print the configuration and plan, then exit."),
    db: str = db_option(),
    wandb: str = typer.Option(
        None, "--wandb", help="online | offline | disabled \\[default: online with a WandB login, else offline]"
    ),
    wandb_project: str = typer.Option(
        None, "--wandb_project", "--wandb-project", help="WandB project \\[default: $WANDB_PROJECT or grpo-lab]"
    ),
    wandb_entity: str = typer.Option(None, "--wandb_entity", "--wandb-entity", help="WandB entity (team or user)."),
    **options,
):
    """Train with GRPO, evaluate before and after, and record the run in the store.

    Batch sizes count completions, as in TRL: --batch_size 256 --num_generations 16 trains on 16 prompts per step.
    """
    from .criteria import parse as parse_criteria
    from .display import config_table, console, esc, plan_table, print_warnings
    from .models import offline_warning
    from .tracking import choose_mode

    config = resolve_config(preset, options)
    for option, text in (("--hypothesis", hypothesis), ("--expected", expected), ("--criteria", criteria)):
        if text is not None:
            check_text(option, text)
    parse_criteria(criteria, config.evaluated_sets())  # a malformed criterion fails here, before anything loads
    mode = choose_mode(wandb)
    if not dry_run and not (hypothesis or "").strip():
        raise GrpoLabError('--hypothesis is required: say what this run tests, e.g. --hypothesis "beta 0.1 beats 0"')
    console.print(config_table(config, title=f"Configuration{f' (preset {preset})' if preset else ''}"))
    console.print(plan_table(config))
    print_warnings(config, offline_warning(config.model_name) if dry_run else None)
    if dry_run:
        return
    store = _open(db)

    from .display import LiveView, generalization_gap, results_table, verdict_text
    from .runner import Intent, quiet_libraries, record_run

    quiet_libraries()
    view = LiveView()

    def started(wb, output_dir):
        console.print(
            f"[bold]run {wb.id}[/]  {esc(config.exp_name)}  wandb {wb.mode}  ->  {esc(output_dir)}", soft_wrap=True
        )

    intent = Intent(hypothesis, expected, criteria, preset, ["grpo-lab", *sys.argv[1:]])
    try:
        recorded = record_run(config, intent, store, mode, wandb_project, wandb_entity, [view], started)
    finally:
        view.close()
    results = store.results(recorded.run_id)
    if results:  # what the store holds, as `grpo-lab show` prints it
        console.print(results_table(results))
        gap = generalization_gap(store.find_run(recorded.run_id).metrics)
        if gap:
            console.print(gap)
    if recorded.verdict is not None:
        console.print(f"verdict: {verdict_text(store.find_run(recorded.run_id).run)}", soft_wrap=True)
    if recorded.wandb.sync_command:
        console.print(f"wandb is offline; to upload: {esc(recorded.wandb.sync_command)}", soft_wrap=True)
    if recorded.status == "finished":
        console.print(
            f"run {recorded.run_id} finished; model saved to {esc(recorded.outcome.output_dir)}", soft_wrap=True
        )
        return
    fail(f"run {recorded.run_id} {recorded.status}: {recorded.error} (recorded in the store)", recorded.exit_code)


@app.command()
def runs(
    db: str = db_option(),
    limit: int = typer.Option(20, "--limit", "-n", help="How many runs, newest first (0 for all).", min=0, max=SQL_INT),
):
    """List recorded runs, newest first."""
    from .display import print_runs

    print_runs(_open(db).runs(limit=limit or None))


@app.command()
def show(run_id: str = typer.Argument(..., help="A run ID or a unique prefix of one.", show_default=False),
         db: str = db_option()):  # fmt: skip
    """Print one run in full: intent, provenance, configuration, curve, samples, results, notes."""
    from .display import console, show_run

    store = _open(db)
    show_run(store, store.find_run(run_id), console)


@app.command()
def note(
    run_id: str = typer.Argument(..., help="A run ID or a unique prefix of one."),
    text: str = typer.Argument(..., help="The note."),
    kind: str = typer.Option("comment", "--kind", help="result | learning | comment."),
    db: str = db_option(),
):
    """Add a result, learning or comment to a run after the fact."""
    if not check_text("the note", text).strip():
        raise GrpoLabError("the note is empty; write what you want to keep, e.g. grpo-lab note 3f9a 'lr 5e-5 overfits'")
    n = _open(db).add_note(run_id, text, kind)
    typer.echo(f"noted on run {n.run_id} ({n.kind} #{n.seq})")


@app.command(name="eval")
def eval_command(
    model_name: str = typer.Option(
        ..., "--model_name", "--model-name", help="Built-in name, local path, hub id, or run:RUN_ID (a run's model)."
    ),
    suite: list[str] = typer.Option(
        None,
        "--suite",
        help="Suite to evaluate on (a built-in name or a .jsonl file), repeatable \\[default: arith-v1]",
    ),
    batch_size: int = typer.Option(256, "--batch_size", "--batch-size", help="Prompts per generate call."),
    max_new_tokens: int = typer.Option(16, "--max_new_tokens", "--max-new-tokens", help="Most tokens per answer."),
    threads: int = typer.Option(None, "--threads", help="Torch CPU threads \\[default: half the cores]"),
    hypothesis: str = typer.Option(None, "--hypothesis", help="Why you evaluate this model (optional)."),
    db: str = db_option(),
):
    """Evaluate any model greedily on standard suites and record it, so base models get a row in compare."""
    from .display import LiveView, console, results_table
    from .runner import quiet_libraries, record_eval

    if batch_size < 1 or max_new_tokens < 1:
        raise GrpoLabError("--batch_size and --max_new_tokens must be at least 1")
    store = _open(db)
    quiet_libraries()
    view = LiveView()
    threads = threads or max(1, (os.cpu_count() or 2) // 2)
    from .suites import is_user_suite

    suites = [os.path.abspath(s) if is_user_suite(s) else s for s in suite or ["arith-v1"]]
    try:
        run_id = record_eval(model_name, suites, store, ["grpo-lab", *sys.argv[1:]], batch_size,
                             max_new_tokens, threads, hypothesis, [view])  # fmt: skip
    finally:
        view.close()
    console.print(results_table(store.results(run_id), title="Greedy accuracy"))
    console.print(f"evaluation {run_id} recorded", soft_wrap=True)


@app.command()
def suites():
    """List the built-in evaluation suites."""
    from rich.table import Table

    from .display import console
    from .suites import describe, suite_names

    table = Table("name", "problems", "groups", "description", "sha256")
    for name in suite_names():
        d = describe(name)
        groups = ", ".join(f"{g} {n}" for g, n in d["groups"].items())
        table.add_row(name, str(d["problems"]), groups, d["description"], d["sha256"][:12])
    console.print(table)


@app.command()
def models():
    """List the built-in models (usable offline as --model_name NAME)."""
    from rich.table import Table

    from .display import console
    from .models import BUILTINS

    table = Table("name", "parameters", "description")
    for m in BUILTINS.values():
        table.add_row(m.name, m.params, m.description)
    console.print(table)
    console.print("Any other --model_name is a local checkpoint directory or a hub id (needs network the first time).")


@app.command()
def presets():
    """List the presets for `grpo-lab run --preset NAME`."""
    from rich.table import Table

    from .display import console

    table = Table("name", "description", "flags")
    for name, values in load_presets().items():
        flags = " ".join(f"--{k} {v}" for k, v in values.items() if k != "description")
        table.add_row(name, values.get("description", ""), flags)
    console.print(table)


@app.command(name="compare")
def compare_command(
    run_ids: list[str] = typer.Argument(None, help="Runs to compare (IDs or prefixes) \\[default: all]"),
    where: str = typer.Option(None, "--where", help="Conditions like 'beta=0.1 and arith-v1>=0.4'."),
    tag: str = typer.Option(None, "--tag", help="Only runs with this tag."),
    last: int = typer.Option(None, "--last", help="Only the newest N runs.", min=1, max=SQL_INT),
    sort: str = typer.Option(None, "--sort", help="Sort by a column; -COL sorts descending."),
    limit: int = typer.Option(None, "--limit", help="Show the first N rows (after sorting).", min=1, max=SQL_INT),
    all_columns: bool = typer.Option(False, "--all-columns", "--all_columns", help="Every config column."),
    group_by_seed: bool = typer.Option(
        False, "--group-by-seed", "--group_by_seed", help="Collapse runs that differ only in seed: mean ± sd, n."
    ),
    baseline: str = typer.Option(
        None,
        "--baseline",
        help="With --group-by-seed: compare every group with this one (a run name or ID), "
        "paired by seed: differences, 95% t interval, exact sign-flip p, Holm-adjusted p.",
    ),
    metric: str = typer.Option(
        None, "--metric", help="The metric --baseline compares \\[default: the first suite, e.g. arith-v1]"
    ),
    fmt: str = typer.Option(None, "--format", help="table | md | csv | json \\[default: table on a terminal, else md]"),
    db: str = db_option(),
):
    """One row per run: the config columns that differ, results, verdict and diagnostics."""
    from . import compare as cmp

    fmt = fmt if fmt is not None else ("table" if sys.stdout.isatty() else "md")
    if fmt not in cmp.FORMATS:
        raise GrpoLabError(f"--format {fmt!r} is not one of: {', '.join(cmp.FORMATS)}")
    if (baseline or metric) and not group_by_seed:
        raise GrpoLabError("--baseline and --metric compare seed groups; add --group-by-seed")
    if metric and not baseline:
        raise GrpoLabError("--metric chooses what --baseline compares; add --baseline NAME_OR_ID")
    fetch = _fetcher(db)
    table = cmp.compare(fetch, run_ids, where, tag, last, sort, limit, all_columns, group_by_seed)
    tables = [table]
    if baseline:
        rows = cmp.fetch_rows(fetch, run_ids, where, tag, last)
        paired = cmp.paired_table(rows, baseline, metric)
        tables = [table, paired] if fmt in ("table", "md") else [paired]
    for t in tables:
        if fmt == "table":
            from .display import console

            if all_columns:  # every column whole: wider than the terminal, so plain text (less -S scrolls it)
                sys.stdout.write(cmp.to_plain(t))
            else:
                console.print(cmp.to_rich(t, console.width))
        else:
            writer = {"md": cmp.to_markdown, "csv": cmp.to_csv, "json": cmp.to_json}[fmt]
            sys.stdout.write(writer(t) + ("\n" if len(tables) > 1 and t is table else ""))


@app.command()
def diff(
    run_a: str = typer.Argument(..., help="A run ID or prefix."),
    run_b: str = typer.Argument(..., help="Another run ID or prefix."),
    db: str = db_option(),
):
    """Two runs side by side: configuration and results, differences highlighted."""
    from .display import console, diff_tables

    store = _open(db)
    for table in diff_tables(store.find_run(run_a), store.find_run(run_b)):
        console.print(table)


journal_app = typer.Typer(help="Write the research journal from the store.", no_args_is_help=True)
app.add_typer(journal_app, name="journal")


@journal_app.command("render")
def journal_render(
    run_ids: list[str] = typer.Argument(None, help="Runs to render (IDs or unique prefixes) \\[default: all]"),
    out: str = typer.Option("journal/research_journal.md", "--out", help="The journal file."),
    template: str = typer.Option("default", "--template", help="A template name in templates/ or a file path."),
    since: str = typer.Option(None, "--since", help="Only runs started on or after this date (YYYY-MM-DD)."),
    tag: str = typer.Option(None, "--tag", help="Only runs with this tag."),
    stdout: bool = typer.Option(False, "--stdout", help="Print the entries instead of writing the journal."),
    db: str = db_option(),
):
    """Render one entry per run in the seed's journal format; hand-written text in the file is kept."""
    from pathlib import Path

    from .journal import Selection, render

    report = render(_open(db), Selection(run_ids or None, since, tag), Path(out), template, to_stdout=stdout)
    if stdout:
        typer.echo(report.text, nl=False)
        return
    typer.echo(f"rendered {len(report.rendered)} runs into {report.path} ({len(report.plots)} plots updated)")


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        typer.echo(f"grpo-lab {__version__}")
        raise typer.Exit()


class _Argument(TyperArgument):
    def _usage_display_name(self) -> str:  # RUN_ID in usage lines, as click writes it (typer 0.29 writes {run_id})
        name = (self.metavar or self.name or "").upper()
        return (name if self.required else f"[{name}]") + ("..." if self.nargs != 1 else "")


class _Switch(TyperOption):
    def display_type_rich(self, ctx) -> None:  # a switch takes no value: no <bool> beside it
        return None


def command():
    """The click command behind ``app``, with usage lines and switches shown the way click shows them."""
    cmd = typer.main.get_command(app)

    def switch(param):
        if type(param) is TyperOption and param.is_flag:
            param.__class__ = _Switch
        return param

    def tidy(c) -> None:
        for param in c.params:
            if type(param) is TyperArgument:
                param.__class__ = _Argument
            switch(param)
        make_help_option = c.get_help_option  # --help is made when a context asks for it
        c.get_help_option = lambda ctx: switch(make_help_option(ctx))
        for sub in getattr(c, "commands", {}).values():
            tidy(sub)

    tidy(cmd)
    return cmd


def one_line(message: str) -> str:
    """An error message as one line: what to do, with no line breaks a library may have put in it."""
    return " ".join(message.split()) or "failed"


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"grpo-lab: error: {one_line(message)}", err=True)
    raise SystemExit(code)


def _not_text(args: list[str]) -> str | None:
    """The first argument that is not valid text (bytes the shell passed that are not UTF-8), if any."""
    for i, arg in enumerate(args, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return f"argument {i} ({arg.encode('utf-8', 'backslashreplace').decode()!r}) is not valid UTF-8 text"
    return None


def _terminate(signum, frame):
    raise Terminated()


def _leave_now(signum, frame):
    """Ctrl-C once the command is done (libraries' exit hooks run: WandB's, tempfile's): leave quietly."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(130)


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (kill, timeout, Slurm) unwinds like Ctrl-C, so temporary files and records are cleaned up
        signal.signal(signal.SIGTERM, _terminate)
    code = 0
    try:
        problem = _not_text(sys.argv[1:])
        if problem:
            raise GrpoLabError(f"{problem}; pass arguments in UTF-8")
        code = command().main(sys.argv[1:], prog_name="grpo-lab", standalone_mode=False)
        if code == 130:  # typer turns Ctrl-C inside a command into a silent exit code 130
            raise KeyboardInterrupt
    except GrpoLabError as exc:
        fail(str(exc))
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `grpo-lab` or `grpo-lab journal` alone: the help
            typer.echo(exc.format_message(), nl=False)  # typer's rich help has printed itself already
            raise SystemExit(0) from None
        command_path = exc.ctx.command_path if exc.ctx else "grpo-lab"
        fail(f"{exc.format_message()} (see {command_path} --help)")
    except Terminated:
        fail("terminated", 143)
    except (KeyboardInterrupt, typer.Abort):
        fail("interrupted", 130)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, _leave_now)  # no traceback from an exit hook a late Ctrl-C cuts
    raise SystemExit(code or 0)
