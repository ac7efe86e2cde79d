"""The grpo-lab command line: a thin shell over the library.

Options of ``grpo-lab run`` are generated from RunConfig's fields, so a flag is documented in
exactly one place. Library errors (GrpoLabError) and usage errors become one line on stderr
and exit code 2. Commands that neither train nor evaluate never import torch.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import math
import os
import signal
import sys
import threading
from typing import Literal, Optional

import typer
from typer.core import TyperArgument, TyperOption

from . import __version__
from .config import EvalConfig, RunConfig, check_text, config_fields, load_presets, resolve, split_tags
from .errors import GrpoLabError, Terminated
from .text import count

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
    if type_text == "bool":
        return Optional[bool]  # noqa: UP045  a switch: --use_vllm
    if type_text.startswith(("list", "dict")):  # a dict is given as KEY=VALUE, repeated (--trl)
        return Optional[list[str]]  # noqa: UP045  typer needs typing.Optional here
    if "int" in type_text:
        return Optional[int]  # noqa: UP045
    if "float" in type_text:
        return Optional[float]  # noqa: UP045
    return Optional[str]  # noqa: UP045


CHOICES_SHOWN = 8  # choices longer than this as <a|b|c> leave long flag names no room in an 80-column help


def config_parameters(cls: type = RunConfig) -> list[inspect.Parameter]:
    """One typer option per field of ``cls``: --snake_case and --dashed-case (or the field's own flags), default
    None (= not given) unless the field is required."""
    params = []
    for name, type_text, default, meta in config_fields(cls):
        flags = list(meta.get("flags") or [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else []))
        shown = ", ".join(default) if isinstance(default, list) else default
        help_text = meta["help"] + ("" if shown is None else f" [dim]\\[default: {shown}][/]")
        metavar = (
            {"metavar": "KEY=VALUE" if type_text.startswith("dict") else "<str>"}
            if type_text.startswith(("list", "dict"))
            else {}
        )  # a repeated flag takes text
        if meta.get("choices") and len("|".join(meta["choices"])) > CHOICES_SHOWN:
            metavar = {"metavar": "<choice>"}  # the help names them, in words that wrap where words do
            if not all(choice in help_text for choice in meta["choices"]):
                help_text += f" One of: {', '.join(meta['choices'])}."
        option = typer.Option(... if meta.get("required") else None, *flags, help=help_text,
                              rich_help_panel=meta["group"], show_default=False, **metavar)  # fmt: skip
        annotation = _option_type(type_text, meta.get("choices"))
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation))
    return params


def with_config_options(cls: type = RunConfig):
    """Give the decorated command (which takes ``**config``) every option of ``cls`` in its signature."""

    def decorate(func):
        sig = inspect.signature(func)
        fixed = [p for p in sig.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
        func.__signature__ = sig.replace(parameters=fixed + config_parameters(cls))
        return func

    return decorate


def resolve_config(preset: str | None, options: dict) -> RunConfig:
    for name in ("tags", "reserve"):
        if options.get(name) is not None:
            options[name] = split_tags(options[name])
    return resolve(options, preset)


SQL_INT = 2**63 - 1  # the largest count SQLite takes
DB_HELP = "The store: a SQLite file, or a postgresql://USER@HOST/DB URL \\[default: $GRPO_LAB_DB or ./grpo_lab.db]"


def format_option():
    return typer.Option(
        None, "--format", help="table | plain | tsv | md | csv | json \\[default: table on a terminal, else plain]"
    )


def db_option():
    return typer.Option(None, "--db", help=DB_HELP, show_default=False)


def store_grace_option():
    return typer.Option(
        None, "--store_grace", "--store-grace", min=0, max=10**7, metavar="<float>",
        help="Seconds a run waits at its end for a store that became unreachable while it worked (its records wait "
        "in OUTPUT_DIR.spool.jsonl meanwhile); then it ends with them there, for grpo-lab sync "
        "\\[default: 300, or $GRPO_LAB_STORE_GRACE]",
    )  # fmt: skip


def _open(db: str | None, write: bool = False, create: bool = False):
    """The store: recording commands (``write``) create it when ``create``, upgrade it and mark crashed runs;
    the others read it and say what they could not do."""
    from .store.db import open_store

    store = open_store(db, readonly=not write, create=create)
    _notices(store.notices)
    return store


def _refuse_early(db: str | None, model_name: str) -> None:
    """What a recording command can check without writing is checked before the store is opened for writing (a
    store opened for writing is rewritten when it closes, even when nothing was recorded): the model (a run's
    model is looked up read-only; the suites were checked with the config)."""
    from .runner import RUN_PREFIX, resolve_model

    resolve_model(model_name, _open(db) if model_name.startswith(RUN_PREFIX) else None)


def _existing(db: str | None):
    """The store to read, or None where there is none yet (no file; an empty PostgreSQL database): a dry run or
    a plan creates none."""
    from .store.location import NoStore, locate

    path = locate(db).path
    if path is not None and not path.exists():
        return None
    try:
        return _open(db)
    except NoStore:
        return None


def _estimate(db: str | None, spec, planned) -> float | None:
    """A sweep's seconds from the store's finished runs like it; None where there is no store yet (a dry run
    creates none)."""
    from . import sweep as sw

    store = _existing(db)
    return None if store is None else sw.estimate_seconds(store, spec, planned)


def _fetcher(db: str | None):
    """compare's and runs' row source: plain sqlite3 for a SQLite file (SQLAlchemy only when an upgrade or a
    crash marking is due), the server's own filtering for PostgreSQL."""
    from .store import Rows

    rows = Rows(db)
    _notices(rows.notices)
    return rows


def _refuse_blank(**options: str | None) -> None:
    """Options that name something (a sweep, a baseline, a metric, seeds) given as empty text: refused, not taken
    as not given."""
    for name, value in options.items():
        if value is not None and not value.strip():
            raise GrpoLabError(f"--{name} is empty; give its value, or leave the option out")


def _notices(notices: list[str]) -> None:
    for notice in notices:
        typer.echo(f"grpo-lab: note: {notice}", err=True)


def _suite_notices(config) -> None:
    """One line for each suite whose prompts repeat: how many, and that each row counts."""
    _notices([notice for suite in config.loaded_suites() if (notice := suite.notice())])


def _say_if_empty(rows, shown: int, **filters: object) -> None:
    """Nothing shown: say whether the store is empty or the filters (option -> value) matched no run."""
    if shown:
        return
    if rows.is_empty():
        _notices([f"the store {rows.location} (from {rows.location.source}) holds no runs yet"])
        return
    from .text import printable

    given = [f"--{k} {printable(v)}" if v is not True else f"--{k}" for k, v in filters.items() if v]
    _notices([f"no run matches {' '.join(given) or 'the selection'}; `grpo-lab runs` lists the runs there are"])


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
@with_config_options(RunConfig)
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
    store_grace: float = store_grace_option(),
    **options,
):
    """Train with GRPO, evaluate before and after, and record the run in the store.

    Batch sizes count completions, as in TRL: --batch_size 256 --num_generations 16 trains on 16 prompts per step.
    """
    from . import launch
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
    if not dry_run and hypothesis and (config.num_processes or 1) > 1 and launch.world_size() == 1:
        launch.hand_over(config.num_processes, sys.argv[1:])  # accelerate's launcher starts N of this command
    console.quiet = not launch.is_main()  # under a launcher the main process speaks for all
    if launch.is_main():
        _suite_notices(config)
    console.print(config_table(config, title=f"Configuration{f' (preset {preset})' if preset else ''}"))
    console.print(plan_table(config))
    print_warnings(config, offline_warning(config.model_name) if dry_run else None)
    if config.differs_from_seed():  # TRL's own checks of the GRPO settings, before anything is written
        from .training import check_with_trl

        check_with_trl(config)
    from .store.spool import grace_seconds

    grace_seconds(store_grace)  # a bad $GRPO_LAB_STORE_GRACE is refused now, not after the training
    for key, text in (("hypothesis", hypothesis), ("expected", expected), ("criteria", criteria)):
        if text:  # said before training, as it is recorded: what the run tests and what will decide it
            console.print(f"[bold]{key}[/] {esc(text)}" + (" (checked when the run ends)" if key == "criteria"
                                                           else ""), soft_wrap=True)  # fmt: skip
    if dry_run:
        return
    _refuse_early(db, config.model_name)
    store = _open(db, write=True, create=True)

    from .display import LiveView
    from .runner import Intent, quiet_libraries, record_run

    quiet_libraries()
    view = LiveView()

    def started(wb, output_dir):
        url = f" {esc(wb.url)}" if wb.url else ""
        console.print(f"[bold]run {wb.id}[/]  {esc(config.exp_name)}  wandb {wb.mode}{url}  ->  {esc(output_dir)}",
                      soft_wrap=True)  # fmt: skip

    intent = Intent(hypothesis, expected, criteria, preset, launch.typed_command(["grpo-lab", *sys.argv[1:]]))
    _train_and_report(store, view, lambda: record_run(config, intent, store, mode, wandb_project, wandb_entity,
                                                      [view], started, store_grace=store_grace))  # fmt: skip


def _train_and_report(store, view, train) -> None:
    """Train (``train()`` records a run) with the live view open, then end as `grpo-lab show` would print it;
    under a launcher the other processes only pass on their exit code."""
    from . import launch

    try:
        recorded = train()
    finally:
        view.close()
    if not launch.is_main():
        if recorded.exit_code:
            raise SystemExit(recorded.exit_code)
        return
    _report_run(store, recorded)


def _report_run(store, recorded) -> None:
    """The end of a training run as the store holds it (as `grpo-lab show` prints it), and its exit code."""
    from .display import console, esc, generalization_gap, results_table, verdict_text

    if recorded.unsent:  # the store stayed unreachable: its record is in the run's spool, not in the store
        if recorded.wandb.sync_command:
            console.print(f"wandb is offline; to upload: {esc(recorded.wandb.sync_command)}", soft_wrap=True)
        fail(f"run {recorded.run_id} {recorded.status}{f' ({recorded.error})' if recorded.error else ''}, but "
             f"{recorded.unsent}", 1)  # fmt: skip
    results = store.results(recorded.run_id)
    if results:
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
def resume(
    run_id: str = typer.Argument(..., help="An interrupted, crashed or failed run (ID or unique prefix)."),
    db: str = db_option(),
    wandb: str = typer.Option(None, "--wandb", help="online | offline | disabled \\[default: as the run was]"),
    store_grace: float = store_grace_option(),
):
    """Continue a run from its newest checkpoint (it ran with --save_steps), in the same run row and WandB run.

    The steps it recorded after that checkpoint are recorded again; it runs on as many processes as it started on.
    """
    from . import launch
    from .display import LiveView, console, esc
    from .runner import quiet_libraries, resumable, resume_run
    from .store.spool import grace_seconds
    from .tracking import choose_mode

    mode = choose_mode(wandb) if wandb else None
    grace_seconds(store_grace)  # a bad $GRPO_LAB_STORE_GRACE is refused now, not after the training
    if launch.world_size() == 1:
        resumable(_open(db), run_id)  # refused read-only first: a refused resume leaves the store's bytes alone
    store = _open(db, write=True)
    if launch.world_size() == 1:
        run, config, checkpoint, _ = resumable(store, run_id)
        processes = config.num_processes or 1
        if processes > 1:
            launch.hand_over(processes, sys.argv[1:])
        console.print(f"[bold]resuming run {run.id}[/] {esc(run.exp_name)} from {esc(checkpoint)}", soft_wrap=True)
    console.quiet = not launch.is_main()
    quiet_libraries()
    view = LiveView()
    _train_and_report(store, view, lambda: resume_run(run_id, store, mode, [view], store_grace=store_grace))


@app.command()
def sync(
    spool_file: str = typer.Argument(
        ...,
        metavar="SPOOL",
        help="A run's spool (OUTPUT_DIR.spool.jsonl), as the run named it when it ended without its store.",
    ),  # fmt: skip
    db: str = db_option(),
):
    """Upload the records a run kept in its spool while the store was unreachable (as `wandb sync` uploads an
    offline run): the run then reads as if it had never lost the store."""
    from pathlib import Path

    from .display import esc
    from .store import spool

    kept = spool.load(Path(spool_file))  # every line checked before the store is opened for writing
    if kept.synced is not None:
        typer.echo(f"{esc(spool_file)} was uploaded to {esc(kept.synced.get('store'))} at {kept.synced['at']} "
                   "already; nothing to do")  # fmt: skip
        return
    spool.check_run(_open(db), kept)  # read-only first: a refused sync leaves the store's bytes alone
    store = _open(db, write=True)
    done = spool.sync(store, kept)
    ended = f"; the run {done.status}" if done.status else "; the spool holds no ending (the run stopped without one)"
    typer.echo(f"uploaded {done.counts} of run {done.run_id} to {store.location}{ended}")
    if done.cut_short:
        _notices([f"the last line of {esc(spool_file)} was cut short (the run stopped while writing it) and left out"])


@app.command()
def rerun(
    run_id: str = typer.Argument(..., help="A run that ended (ID or unique prefix)."),
    output_dir: str = typer.Option(
        None, "--output_dir", "--output-dir", help="The rerun's model: a new or empty folder \\[default: runs/<ID>]"
    ),
    db: str = db_option(),
    wandb: str = typer.Option(
        None, "--wandb", help="online | offline | disabled \\[default: online with a WandB login, else offline]"
    ),
    wandb_project: str = typer.Option(
        None, "--wandb_project", "--wandb-project", help="WandB project \\[default: $WANDB_PROJECT or grpo-lab]"
    ),
    wandb_entity: str = typer.Option(None, "--wandb_entity", "--wandb-entity", help="WandB entity (team or user)."),
):
    """Run a recorded run again from its record (configuration, model, hypothesis) as a new run linked to it, and
    say metric by metric whether it reproduced: identical, within float noise, or not.

    It runs the code installed here and says whether that is the code the run ran (its git commit, and the diff
    of a dirty tree: grpo-lab show ID --diff). Exit code 1 when a metric did not reproduce.
    """
    from . import launch
    from .display import LiveView, console, esc, reproduction_table
    from .reproduce import code_of, describe, reproduced, summary
    from .rerun import plan
    from .rerun import rerun as run_again
    from .runner import quiet_libraries
    from .tracking import choose_mode

    mode = choose_mode(wandb)
    planned = plan(_open(db), run_id, output_dir)  # read-only: a refused rerun leaves the store's bytes alone
    original = planned.view.run
    processes = getattr(planned.config, "num_processes", None) or 1
    if processes > 1 and launch.world_size() == 1:
        launch.hand_over(processes, sys.argv[1:])
    console.quiet = not launch.is_main()
    console.print(f"[bold]rerunning run {original.id}[/] {esc(original.exp_name)}: it ran "
                  f"{esc(describe(code_of(original)))}; model {esc(planned.model)}", soft_wrap=True)  # fmt: skip
    _refuse_early(db, planned.config.model_name)
    store = _open(db, write=True)
    quiet_libraries()
    view = LiveView(stages=original.kind != "eval")

    def started(wb, out_dir):
        console.print(f"[bold]run {wb.id}[/]  {esc(planned.config.exp_name)}  wandb {wb.mode}  ->  {esc(out_dir)}",
                      soft_wrap=True)  # fmt: skip

    argv = launch.typed_command(["grpo-lab", *sys.argv[1:]])
    try:
        outcome = run_again(planned, store, argv, mode, wandb_project, wandb_entity, [view], started)
    finally:
        view.close()
    if outcome is None:  # another process of a launch: the main one reports
        return
    if hasattr(outcome.recorded, "wandb"):  # a training run: its end as `grpo-lab run` prints it
        _report_run(store, outcome.recorded)
    else:
        console.print(results_table_of(store, outcome.run_id))
        if outcome.status != "finished":
            fail(f"evaluation {outcome.run_id} {outcome.status}: {outcome.error} (recorded in the store)",
                 outcome.exit_code)  # fmt: skip
    console.print(reproduction_table(outcome.lines, original.id, outcome.run_id))
    console.print(f"code: {esc(outcome.code)}", soft_wrap=True)
    console.print(f"model: {esc(outcome.model)}", soft_wrap=True)
    said = summary(outcome.lines)
    if not reproduced(outcome.lines):
        fail(f"run {outcome.run_id} did not reproduce run {original.id}: {said.removeprefix('not reproduced: ')}", 1)
    console.print(f"run {outcome.run_id} against run {original.id}: {esc(said)}", soft_wrap=True)


def results_table_of(store, run_id: str):
    from .display import results_table

    return results_table(store.results(run_id), title="Greedy accuracy")


@app.command()
def runs(
    db: str = db_option(),
    limit: int = typer.Option(20, "--limit", "-n", help="How many runs, newest first (0 for all).", min=0, max=SQL_INT),
    fmt: str = format_option(),
):
    """List recorded runs, newest first (as compare does)."""
    from . import compare as cmp

    fmt = _format(fmt)
    rows = _fetcher(db)
    table = cmp.runs_table(rows(last=limit or None))
    if table.rows or fmt not in HUMAN_FORMATS:  # no empty table for a person: a note says why there is none
        _write(table, fmt)
    _say_if_empty(rows, len(table.rows))


HUMAN_FORMATS = ("table", "plain", "md")


def _format(fmt: str | None) -> str:
    from .compare import FORMATS

    fmt = fmt if fmt is not None else ("table" if sys.stdout.isatty() else "plain")
    if fmt not in FORMATS:
        raise GrpoLabError(f"--format {fmt!r} is not one of: {', '.join(FORMATS)}")
    return fmt


def _write(table, fmt: str, separate: bool = False, all_columns: bool = False) -> None:
    from . import compare as cmp

    if fmt == "table":
        from .display import console

        if all_columns:  # every column whole: wider than the terminal, so plain text (less -S scrolls it)
            sys.stdout.write(cmp.to_plain(table))
        else:
            console.print(cmp.to_rich(table, console.width))
    else:
        writer = {"plain": cmp.to_plain, "tsv": cmp.to_tsv, "md": cmp.to_markdown, "csv": cmp.to_csv,
                  "json": cmp.to_json}[fmt]  # fmt: skip
        sys.stdout.write(writer(table) + ("\n" if separate else ""))


@app.command()
def show(
    run_id: str = typer.Argument(..., help="A run ID or a unique prefix of one.", show_default=False),
    diff: bool = typer.Option(
        False, "--diff", help="Print only the diff of the uncommitted changes the run ran with (git apply takes it)."
    ),
    db: str = db_option(),
):
    """Print one run in full: intent, provenance, configuration, curve, samples, results, notes."""
    from .display import console, show_run

    store = _open(db)
    view = store.find_run(run_id)
    if diff:
        return _print_diff(view.run)
    show_run(store, view, console)


def _print_diff(run) -> None:
    """A run's kept diff as it was recorded (on a terminal, control characters as escapes), or why there is none."""
    from .reproduce import code_of, describe
    from .text import printable

    if not run.git_dirty or run.code_diff is None:
        why = "no uncommitted changes" if run.git_dirty is False else describe(code_of(run))
        raise GrpoLabError(f"run {run.id} has no diff to print: it ran {why}")
    sys.stdout.write(printable(run.code_diff, keep="\t\n") if sys.stdout.isatty() else run.code_diff)


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
    from .store.db import NOTE_KINDS

    if kind not in NOTE_KINDS:
        raise GrpoLabError(f"--kind {kind!r} is not one of: {', '.join(NOTE_KINDS)}")
    run_id = _open(db).find_run(run_id).run.id  # an unknown or ambiguous ID is refused before anything is written
    n = _open(db, write=True).add_note(run_id, text, kind)
    typer.echo(f"noted on run {n.run_id} ({n.kind} #{n.seq})")


@app.command(name="eval")
@with_config_options(EvalConfig)
def eval_command(
    hypothesis: str = typer.Option(None, "--hypothesis", help="Why you evaluate this model (optional)."),
    db: str = db_option(),
    **options,
):
    """Evaluate any model greedily on standard suites and record it, so base models get a row in compare."""
    from .display import LiveView, console, results_table
    from .runner import quiet_libraries, record_eval

    config = EvalConfig(**{k: v for k, v in options.items() if v is not None})
    if hypothesis is not None:
        check_text("--hypothesis", hypothesis)
    _suite_notices(config)
    _refuse_early(db, config.model_name)
    store = _open(db, write=True, create=True)
    quiet_libraries()
    view = LiveView(stages=False)
    try:
        recorded = record_eval(config, store, ["grpo-lab", *sys.argv[1:]], hypothesis, [view])
    finally:
        view.close()
    results = store.results(recorded.run_id)
    if results:
        console.print(results_table(results, title="Greedy accuracy"))
    if recorded.status != "finished":
        fail(f"evaluation {recorded.run_id} {recorded.status}: {recorded.error} (recorded in the store)",
             recorded.exit_code)  # fmt: skip
    console.print(f"evaluation {recorded.run_id} recorded", soft_wrap=True)


suites_app = typer.Typer(
    help="List the evaluation suites (built in, and those `grpo-lab suites import` froze), or import one.",
    invoke_without_command=True,
)
app.add_typer(suites_app, name="suites")


@suites_app.callback()
def suites(ctx: typer.Context):
    """List the evaluation suites: the built-in ones, and those `grpo-lab suites import` froze into the suites
    folder ($GRPO_LAB_SUITES, else ~/.local/share/grpo-lab/suites)."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from .display import console, esc
    from .suites import describe, imported_suites, suite_names, suites_home

    table = Table("name", "problems", "groups", "description", "sha256")
    for name in suite_names():
        d = describe(name)
        groups = ", ".join(f"{g} {n}" for g, n in d["groups"].items())
        table.add_row(name, str(d["problems"]), groups, d["description"], d["sha256"][:12])
    found = imported_suites()
    for name, _, why in found:
        try:
            if why:
                raise GrpoLabError(why)
            d = describe(name)
        except GrpoLabError as exc:  # a damaged suite is listed with why, not hidden
            table.add_row(esc(name), "-", "", esc(f"cannot be used: {exc}"), "")
            continue
        problems = str(d["problems"]) + (f" ({d['distinct']} distinct)" if d["distinct"] != d["problems"] else "")
        groups = ", ".join(f"{g} {n}" for g, n in d["groups"].items())
        table.add_row(esc(name), problems, esc(groups), esc(d["description"]), d["sha256"][:12])
    console.print(table)
    console.print(f"Imported suites live in {esc(str(suites_home()))} ($GRPO_LAB_SUITES); `grpo-lab suites import "
                  "SOURCE --name NAME` adds one.", soft_wrap=True)  # fmt: skip


@suites_app.command("import")
def suites_import(
    source: str = typer.Argument(
        ...,
        help="A datasets save_to_disk folder (PATH[:SPLIT]), a .jsonl, .json, .csv or "
        ".parquet file, or a hub id user/name[:split].",
    ),
    name: str = typer.Option(..., "--name", help="The suite's name from now on, e.g. orig-eval-v1."),
    suite_fields: str = typer.Option(
        None,
        "--suite_fields",
        "--suite-fields",
        help="FIELD=COLUMN,... for the fields not found by name, e.g. prompt=question,answer=target.",
    ),
):
    """Freeze an evaluation set as a versioned suite: its problems in the built-in format with their SHA-256 and
    where they came from, named by NAME in later runs (--eval_suite NAME, eval --suite NAME). The same problems
    again change nothing; other problems under a name already taken are refused."""
    from .display import console, esc
    from .suites import import_suite

    check_text("the source", source, one_line=True)
    if suite_fields is not None:
        check_text("--suite_fields", suite_fields, one_line=True)
    done = import_suite(source, name, suite_fields)
    suite = done.suite
    if suite.notice():
        _notices([suite.notice()])
    origin = suite.imported_from
    what = "imported suite" if done.written else "nothing changed: these problems are already the suite"
    console.print(
        f"{what} {esc(suite.name)}: {suite.rows} rows, {suite.distinct} distinct problems, sha256 "
        f"{suite.sha256[:12]}, from {esc(origin['source'])} ({esc(origin['kind'])}), in {esc(str(done.folder))}; "
        f"runs name it --eval_suite {esc(suite.name)}",
        soft_wrap=True,
    )


@app.command(name="tasks")
def tasks_command():
    """List the tasks --task can name: the built-in ones and those installed packages offer (grpo_lab.tasks)."""
    from rich.table import Table

    from .display import console, esc
    from .tasks import Arithmetic
    from .tasks.loading import BUILTIN, ENTRY_POINTS, entry_points

    table = Table("name", "version", "from", "description")
    for name in BUILTIN:
        table.add_row(name, "1", "built in (--dataset_type)", Arithmetic(name).description)
    for ep in entry_points(ENTRY_POINTS):
        try:
            from .tasks.loading import load

            task, info = load(ep.name)
            table.add_row(esc(ep.name), esc(info.version), esc(f"{ep.dist.name if ep.dist else '?'}: {ep.value}"),
                          esc(getattr(task, "description", "") or ""))  # fmt: skip
        except GrpoLabError as exc:  # a broken plugin is listed with why, not hidden
            table.add_row(esc(ep.name), "-", esc(ep.value), esc(f"cannot load: {exc}"))
    console.print(table)
    console.print("Or a file of your own: --task path/to/task.py (README: Your own task).")


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
    limit: int = typer.Option(
        None,
        "--limit",
        "-n",
        min=0,
        max=SQL_INT,
        help="Show the first N rows (after sorting); 0 for all \\[default: 100 in the table, plain and md formats, "
        "with a note of how many there are; all in tsv, csv and json]",
    ),  # fmt: skip
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
    sweep: str = typer.Option(
        None, "--sweep", help="Only this sweep's runs (ID or name), grouped by arm, paired against its baseline arm."
    ),
    run_verdicts: bool = typer.Option(
        False, "--run-verdicts", "--run_verdicts", help="With --sweep: each arm's per-run verdicts, not the arm's."
    ),
    fmt: str = format_option(),
    db: str = db_option(),
):
    """One row per run, newest first (as runs lists them): the config columns that differ, results, verdict and
    diagnostics. With --sweep, the answer first: each arm's difference, interval and verdict, as a forest plot."""
    from . import compare as cmp

    fmt = _format(fmt)
    _refuse_blank(sweep=sweep, baseline=baseline, metric=metric)
    if (baseline or metric) and not (group_by_seed or sweep):
        raise GrpoLabError("--baseline and --metric compare seed groups; add --group-by-seed")
    if metric and not (baseline or sweep):
        raise GrpoLabError("--metric chooses what --baseline compares; add --baseline NAME_OR_ID")
    fetch = rows_of = _fetcher(db)
    record = None
    if sweep:
        from . import sweep as sw

        record = fetch.find_sweep(sweep)
        sw.from_record(record["spec"])  # a damaged record is refused in one line
        fetch, group_by_seed = sw.scoped_fetch(fetch, record["id"]), True
    page = cmp.PAGE if limit is None and fmt in ("table", "plain", "md") else None  # programs get every row
    table = cmp.compare(fetch, run_ids, where, tag, last, sort, limit or None, all_columns, group_by_seed, page)
    tables = [table]
    human = fmt in HUMAN_FORMATS
    if baseline or (record and record["baseline"]):
        rows = cmp.fetch_rows(fetch, run_ids, where, tag, last)
        if baseline or record is None:
            paired = cmp.paired_table(rows, baseline, metric)
        else:
            paired = sw.paired_with_verdicts(rows, record, metric)
            if not run_verdicts:  # each arm's verdict, not its runs'
                by_arm = {p["name"]: p.get("verdict_words") or p.get("verdict") for p in paired.rows}
                for row in table.rows:
                    row["verdict"] = by_arm.get(row["name"], "baseline")
            if human and "verdict_words" in (paired.rows[0] if paired.rows else {}):
                _headline(paired, record, fmt)
        if human:
            paired = cmp.same_on_every_row(paired)
        tables = [table, paired] if human else [paired]  # one table for programs
    if not table.rows and human:
        tables = []  # no empty table for a person: a note says why there is none
    for t in tables:
        _write(t, fmt, separate=len(tables) > 1 and t is table, all_columns=all_columns)
    if table.selected is not None and table.selected > len(table.rows):
        _notices([f"showing the first {len(table.rows)} of {table.selected:,} runs; --limit 0 shows them all, "
                  "--limit N that many"])  # fmt: skip
    _say_if_empty(rows_of, len(table.rows), where=where, tag=tag, sweep=sweep)


def _headline(paired, record, fmt: str) -> None:
    """compare --sweep's answer, before its tables: one forest-plot line per arm (difference, interval, drawn on
    one axis with zero and the pre-registered thresholds) and its verdict in words below it."""
    from . import answer
    from .display import console

    name = record["name"]
    model = answer.forest(paired.rows, paired.points, metric=record["metric"] or "")
    for row in model.rows:
        row.arm = row.arm.removeprefix(f"{name}_")
    width = min(console.width, 100) if fmt == "table" else 80
    unit = ", points" if model.points else ""
    title = f"Answer ({model.metric}, arm minus baseline{unit}, 95% interval, paired by seed):"
    lines = [title, *answer.forest_text(model, width)]
    if fmt == "md":
        lines = [f"**{title}**", "", "```text", *lines[1:], "```"]
    sys.stdout.write("\n".join(lines) + "\n\n")


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


@app.command()
def report(
    run_ids: list[str] = typer.Argument(None, help="Runs to include (IDs or prefixes) \\[default: all]"),
    where: str = typer.Option(None, "--where", help="Conditions like 'beta=0.1 and arith-v1>=0.4' (as compare)."),
    tag: str = typer.Option(None, "--tag", help="Only runs with this tag."),
    last: int = typer.Option(None, "--last", help="Only the newest N runs."),
    all_columns: bool = typer.Option(False, "--all-columns", "--all_columns", help="Every config column."),
    sweep: str = typer.Option(
        None, "--sweep", help="Only this sweep's runs (ID or name), its arms paired against its baseline arm."
    ),
    baseline: str = typer.Option(
        None, "--baseline", help="Also pair every seed group with this one (a run name or ID), as compare --baseline."
    ),
    metric: str = typer.Option(
        None, "--metric", help="The metric the pairing compares \\[default: the sweep's, else the first suite]"
    ),
    out: str = typer.Option("report.html", "--out", help="The HTML file to write."),
    screenshot: str = typer.Option(
        None, "--screenshot", help="Also save a PNG of the page as headless Chromium shows it (needs chromium)."
    ),
    screenshot_width: int = typer.Option(
        1400, "--screenshot-width", "--screenshot_width", help="The window width of --screenshot, in pixels."
    ),
    db: str = db_option(),
):
    """Write one self-contained HTML page of runs: the answer of a sweep first, grouped curves, accuracy by group,
    completions side by side, compare's table, and each run's accuracy, samples and intent.

    It works offline, opened from disk. Written beside a journal (report.html in the journal's folder), the
    journal's entries link to it.
    """
    from pathlib import Path

    from .paths import check_target
    from .report import Selection, write_report
    from .store.location import locate

    _refuse_blank(sweep=sweep, baseline=baseline, metric=metric, out=out, screenshot=screenshot)
    if not 320 <= screenshot_width <= 4000:
        raise GrpoLabError(f"--screenshot-width {screenshot_width}: give a width from 320 to 4000 pixels")
    if metric and not (baseline or sweep):
        raise GrpoLabError("--metric chooses what --baseline compares; add --baseline NAME_OR_ID")
    store = locate(db).path
    check_target("--out", Path(out), "an HTML file, e.g. --out report.html", (".html", ".htm"), store,
                 {"--screenshot": Path(screenshot) if screenshot else None})  # fmt: skip
    if screenshot:
        check_target("--screenshot", Path(screenshot), "a PNG file, e.g. --screenshot report.png", (".png",), store,
                     {"--out": Path(out)})  # fmt: skip
    from .store import Rows

    rows = Rows(db)  # a SQLite file is upgraded, or its crashed runs marked, when either is due and allowed
    _notices(rows.notices)
    selection = Selection(run_ids or None, where, tag, last, all_columns, baseline, metric, sweep)
    built = write_report(rows.location, selection, Path(out))
    typer.echo(f"wrote {built.path}: {count(built.runs, 'run')}, {built.bytes / 1e6:.1f} MB in {built.seconds:.1f} s")
    if screenshot:
        from .browser import screenshot as take

        take(Path(out), Path(screenshot), width=screenshot_width)
        typer.echo(f"wrote {screenshot}")


SWEEP_WORDS = ("status", "resume", "list", "work")


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def sweep(
    target: list[str] = typer.Argument(
        None, help="FILE.toml to run (or resume); or: status ID | resume ID | list.", show_default=False
    ),
    preset: str = typer.Option(None, "--preset", help="Inline sweep: the preset every run starts from."),
    grid: list[str] = typer.Option(None, "--grid", help="Inline sweep: FLAG=V1,V2 (repeatable); arms are the product."),
    set_: list[str] = typer.Option(None, "--set", help="Inline sweep: FLAG=VALUE for every run (repeatable)."),
    seeds: str = typer.Option(None, "--seeds", help="Inline sweep: seeds, e.g. 1-8 or 1,3,5 \\[default: 42]"),
    name: str = typer.Option(None, "--name", help="Inline sweep: its name \\[default: from the grid]"),
    hypothesis: str = typer.Option(None, "--hypothesis", help="Inline sweep: what it tests (required)."),
    expected: str = typer.Option(None, "--expected", help="Inline sweep: the outcome you expect."),
    criteria: str = typer.Option(None, "--criteria", help="Inline sweep: checked on every run, as run --criteria."),
    compare: str = typer.Option(
        None, "--compare", help="Inline sweep: checked per arm against the baseline, e.g. 'diff > 0 and p < 0.05'."
    ),
    baseline: str = typer.Option(None, "--baseline", help="Inline sweep: the baseline arm, e.g. beta=0.1."),
    metric: str = typer.Option(None, "--metric", help="Inline sweep: what arms are compared on \\[default: arith-v1]"),
    parallel: int = typer.Option(1, "--parallel", help="Runs at once on this machine (they split its cores)."),
    executor: str = typer.Option(
        "local", "--executor", help="local | slurm (submitit; needs grpo-lab[slurm]) | submitit-local."
    ),
    slurm_partition: str = typer.Option(None, "--slurm_partition", "--slurm-partition", help="Slurm partition."),
    timeout_min: int = typer.Option(120, "--timeout_min", "--timeout-min", help="Slurm time limit per run."),
    dry_run: bool = typer.Option(False, "--dry_run", "--dry-run", help="Print every run's command; run nothing."),
    wandb: str = typer.Option(None, "--wandb", help="online | offline | disabled, for every run."),
    pilot_sd: float = typer.Option(
        None,
        "--pilot-sd",
        "--pilot_sd",
        help="The sd of the paired differences (metric units) the power plan assumes \\[default: from --pilot, or the "
        "sweep's own finished baseline runs]",
    ),  # fmt: skip
    pilot: str = typer.Option(
        None, "--pilot", help="An earlier sweep (ID or name) whose paired differences give the sd."
    ),
    underpowered: bool = typer.Option(
        False, "--underpowered", help="Run even if an arm's seeds cannot reach its criterion's significance (recorded)."
    ),
    db: str = db_option(),
):
    """Run a grid of flags x seeds as one experiment: queued in the store, resumable, in parallel or on Slurm.

    grpo-lab sweep sweeps/replication.toml --parallel 2; grpo-lab sweep --preset cpu-quick --grid beta=0,0.1
    --seeds 1-5 --hypothesis "..."; grpo-lab sweep status ID; grpo-lab sweep resume ID; grpo-lab sweep list.
    """
    from . import sweep as sw

    target = list(target or [])
    word = target[0] if target and target[0] in SWEEP_WORDS else None
    if word == "work":  # a worker process of the local executor
        if len(target) != 2:
            raise GrpoLabError("usage: grpo-lab sweep work RUN_ID")
        raise SystemExit(sw.work(db, target[1], wandb))
    if word == "list":
        return _sweep_list(_open(db))
    if word == "status":
        if len(target) != 2:
            raise GrpoLabError("usage: grpo-lab sweep status ID (a sweep ID, prefix or name)")
        return _sweep_status(_open(db), target[1])
    if parallel < 1:
        raise GrpoLabError(f"--parallel must be at least 1 (got {parallel})")
    if executor not in ("local", "slurm", "submitit-local"):
        raise GrpoLabError(f"--executor {executor!r} is not one of: local, slurm, submitit-local")
    if timeout_min < 1:
        raise GrpoLabError(f"--timeout_min must be at least 1 minute (got {timeout_min})")
    _refuse_blank(seeds=seeds, name=name, preset=preset, baseline=baseline, metric=metric,
                  slurm_partition=slurm_partition)  # fmt: skip
    for option, text in (("--hypothesis", hypothesis), ("--expected", expected), ("--criteria", criteria),
                         ("--compare", compare), ("--name", name)):  # fmt: skip
        if text is not None:
            check_text(option, text, one_line=option == "--name")
    if wandb is not None:
        from .tracking import choose_mode

        choose_mode(wandb)  # a wrong --wandb is refused by --dry_run too
    inline = {
        "preset": preset,
        "grid": grid,
        "set": set_,
        "seeds": seeds,
        "name": name,
        "hypothesis": hypothesis,
        "expected": expected,
        "criteria": criteria,
        "compare": compare,
        "baseline": baseline,
        "metric": metric,
    }
    if word == "resume":
        if len(target) != 2:
            raise GrpoLabError("usage: grpo-lab sweep resume ID (a sweep ID, prefix or name)")
        record = _open(db).find_sweep(target[1])  # read-only: a refused key leaves the store as it was
        spec, source = sw.from_record(record.spec), record.source
    elif target:
        if len(target) > 1 or not target[0].endswith(".toml"):
            raise GrpoLabError(f"{' '.join(target)!r}: give one sweep file (.toml), or status ID, resume ID, list")
        if any(v for v in inline.values()):
            given = ", ".join(f"--{k}" for k, v in inline.items() if v)
            raise GrpoLabError(f"{given}: the sweep file says all of that; drop the options or the file")
        spec, source = sw.load(target[0]), target[0]
    else:
        if not grid and not set_:
            raise GrpoLabError("give a sweep file (grpo-lab sweep FILE.toml) or an inline grid (--grid FLAG=V1,V2)")
        data = {"preset": preset, "grid": sw.parse_grid_option(grid or []), "base": sw.parse_set_option(set_ or []),
                "seeds": seeds or [42], "hypothesis": hypothesis, "expected": expected, "criteria": criteria,
                "compare": compare, "baseline": baseline, "metric": metric}  # fmt: skip
        data["name"] = name or "sweep-" + "-".join(k for k in data["grid"]) or "sweep"
        if not data["grid"]:
            data["arms"] = {"all": {}}
            del data["grid"]
        spec, source = sw.build({k: v for k, v in data.items() if v is not None}, "the sweep options"), "inline"
    if pilot_sd is not None and (not math.isfinite(pilot_sd) or pilot_sd <= 0):
        raise GrpoLabError(f"--pilot-sd must be a positive number in the metric's units (got {pilot_sd})")
    _refuse_blank(pilot=pilot)
    power = (pilot_sd, pilot, underpowered)
    _run_sweep(spec, source, parallel, executor, slurm_partition, timeout_min, dry_run, wandb, db, power)


def _power(spec, db, pilot_sd, pilot):
    """The sweep's power plan: with the sd from --pilot-sd, --pilot SWEEP, or its own finished baseline runs."""
    from . import sweep as sw

    if pilot_sd is not None:
        return sw.power_plan(spec, pilot_sd, "--pilot-sd")
    store = _existing(db)
    if pilot is not None and store is None:
        raise GrpoLabError(f"--pilot {pilot}: there is no store here to find that sweep in; give --db")
    sd, source = sw.pilot_sd(store, spec, pilot)
    return sw.power_plan(spec, sd, source)


def _run_sweep(spec, source, parallel, executor, slurm_partition, timeout_min, dry_run, wandb, db,
               power=(None, None, False)) -> None:  # fmt: skip
    import shlex
    from pathlib import Path

    from . import sweep as sw
    from .display import console, esc, sweep_status_table
    from .tracking import choose_mode

    planned = sw.plan_with_threads(spec, parallel)
    pilot_sd, pilot, underpowered = power
    plan = _power(spec, db, pilot_sd, pilot) if spec.baseline is not None else None
    if plan is not None:
        for line in sw.power_lines(plan):
            console.print(esc(line), soft_wrap=True)
        if plan.underpowered and not underpowered:
            names = ", ".join(a.arm for a in plan.underpowered)
            raise GrpoLabError(f"sweep {spec.name}: {names} cannot reach their criteria's significance with "
                               f"{len(spec.seeds)} seeds (above); add seeds, or run it anyway with --underpowered "
                               "(recorded)")  # fmt: skip
    if dry_run:
        for p in planned:
            arm = spec.arm(p.arm)
            extra = [("--hypothesis", arm.hypothesis), ("--expected", arm.expected), ("--criteria", arm.criteria)]
            args = ["grpo-lab", "run", *p.config.command_args(), *[x for k, v in extra if v for x in (k, v)]]
            console.print(esc(shlex.join(args)), soft_wrap=True)
        seconds = _estimate(db, spec, planned)
        if seconds:
            estimate = (f"about {seconds / 60 / parallel:.0f} minutes at --parallel {parallel} (from this store's "
                        f"finished {spec.preset} runs)")  # fmt: skip
        else:
            estimate = "no estimate " + (f"(this store has no finished {spec.preset} runs)" if spec.preset else
                                         "(estimates come from finished runs of the sweep's preset)")  # fmt: skip
        console.print(f"{count(len(planned), 'run')} ({count(len(spec.arms), 'arm')} x "
                      f"{count(len(spec.seeds), 'seed')}); {esc(estimate)}", soft_wrap=True)  # fmt: skip
        return
    mode = choose_mode(wandb)
    store = _open(db, write=True, create=True)
    queued = sw.queue(store, spec, source, ["grpo-lab", *sys.argv[1:]], parallel, mode, plan, underpowered)
    sweep_row = queued.sweep
    verb = "recorded" if queued.new else "resumed"
    console.print(f"[bold]sweep {sweep_row.id}[/] {esc(spec.name)} {verb}: {count(len(queued.to_run), 'run')} to "
                  f"start, {queued.finished} finished, {queued.running} running elsewhere", soft_wrap=True)  # fmt: skip
    url = store.url
    logs = Path("runs") / f"sweep-{sweep_row.id}"

    def done(run_id: str) -> None:
        view = store.find_run(run_id)
        r = view.run
        console.print(f"  {r.id} {esc(r.arm)} seed {view.config.get('seed')}: {r.status}"
                      + (f", verdict {r.verdict}" if r.verdict else ""), soft_wrap=True)  # fmt: skip

    try:
        if executor == "local":
            sw.run_local(url, queued.to_run, parallel, logs, done)
        else:
            slurm = {"timeout_min": timeout_min}
            if slurm_partition:
                slurm["slurm_partition"] = slurm_partition
            cluster = "local" if executor == "submitit-local" else None
            jobs = sw.run_submitit(url, queued.to_run, logs / "submitit", cluster, parallel, slurm,
                                   wait=cluster == "local", on_done=done)  # fmt: skip
            if cluster is None:
                console.print(f"submitted {len(jobs)} jobs: {' '.join(j.job_id for j in jobs)}; "
                              f"`grpo-lab sweep status {sweep_row.id}` follows them", soft_wrap=True)  # fmt: skip
                return
    except KeyboardInterrupt:
        console.print(f"interrupted; finished runs are kept: `grpo-lab sweep resume {sweep_row.id}` goes on")
        raise
    console.print(sweep_status_table(sw.status_rows(store, sweep_row), sweep_row))
    left = [r for r in sw.status_rows(store, sweep_row) if r["finished"] < r["seeds"]]
    if left:
        fail(f"sweep {sweep_row.id}: not every run finished (logs in {logs}); "
             f"`grpo-lab sweep resume {sweep_row.id}` starts them again", 1)  # fmt: skip


def _sweep_status(store, key: str) -> None:
    from . import sweep as sw
    from .display import console, sweep_status_table

    record = store.find_sweep(key)
    console.print(sweep_status_table(sw.status_rows(store, record), record))


def _sweep_list(store) -> None:
    from rich.table import Table

    from .display import console, esc

    table = Table("id", "name", "created", "runs", "hypothesis", title="Sweeps, newest first")
    for record in store.sweeps():
        runs = store.sweep_runs(record.id)
        done = sum(r.status == "finished" for r in runs)
        table.add_row(record.id, esc(record.name), record.created_at[:16], f"{done}/{len(runs)} finished",
                      esc(record.hypothesis[:60]))  # fmt: skip
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
    sweep: str = typer.Option(
        None,
        "--sweep",
        help="A sweep (ID or name): one section about it (arms, paired comparison, verdicts) above its runs' entries.",
    ),
    db: str = db_option(),
):
    """Render one entry per run in the seed's journal format; hand-written text in the file is kept."""
    from pathlib import Path

    from .journal import Selection, render

    if sweep and run_ids:
        raise GrpoLabError("give run IDs or --sweep, not both")
    selection = Selection(run_ids or None, since, tag)
    report = render(_open(db), selection, Path(out), template, to_stdout=stdout, sweep=sweep)
    if stdout:
        typer.echo(report.text, nl=False)
        return
    runs = [r for r in report.rendered if not r.startswith("sweep_")]
    sweep_note = " and its sweep" if len(runs) < len(report.rendered) else ""
    typer.echo(
        f"rendered {count(len(runs), 'run')}{sweep_note} into {report.path} "
        f"({count(len(report.plots), 'plot')} updated)"
    )


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        typer.echo(f"grpo-lab {__version__}")
        raise typer.Exit()


class _Argument(TyperArgument):
    def _usage_display_name(self) -> str:  # RUN_ID in usage lines, as click writes it (typer writes {run_id})
        name = (self.metavar or self.name or "").upper()
        return (name if self.required else f"[{name}]") + ("..." if self.nargs != 1 else "")

    def make_metavar(self, ctx, *args, **kwargs) -> str:  # where typer 0.28 asks for the usage line's name
        if kwargs.get("usage"):
            return self._usage_display_name()
        return super().make_metavar(ctx, *args, **kwargs)


class _Switch(TyperOption):
    def display_type_rich(self, ctx) -> None:  # a switch takes no value: no <bool> beside it
        return None


def _add_with_aliases(self, parser, ctx) -> None:
    """An option the help shows by its first name alone: its other spelling (--batch-size for --batch_size) is
    accepted all the same, and a help 80 columns wide has room for whole names, choices and words."""
    shown = self.opts
    self.opts = [*shown, *self.aliases]
    try:
        TyperOption.add_to_parser(self, parser, ctx)
    finally:
        self.opts = shown


class _AliasedOption(TyperOption):
    add_to_parser = _add_with_aliases


class _AliasedSwitch(_Switch):
    add_to_parser = _add_with_aliases


def _hide_aliases(param) -> None:
    """--snake_case and --dashed-case spellings of one option: the first is shown, the others still work."""
    if not isinstance(param, TyperOption) or len(param.opts) < 2:
        return
    first = param.opts[0].replace("-", "_")
    aliases = [o for o in param.opts[1:] if o.startswith("--") and o.replace("-", "_") == first]
    if aliases:
        param.opts = [o for o in param.opts if o not in aliases]
        param.aliases = aliases
        param.__class__ = _AliasedSwitch if isinstance(param, _Switch) else _AliasedOption


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
            _hide_aliases(param)
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
    """Exit with ``code`` and one line; under a launcher only the main process speaks (every process of a launch
    meets the same error or signal, and the main one says it once)."""
    from . import launch

    if launch.is_main():
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
    """Ctrl-C or SIGTERM once the command is done (its folder removed, libraries' exit hooks: WandB's, tempfile's):
    leave quietly, with the signal's exit code (130 for Ctrl-C, 143 for SIGTERM)."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(128 + signum)


def main() -> None:
    from .processes import follow_parent, private_tmp

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not sys.stderr.isatty():  # piped to a log: no library's progress bar (tqdm reads this when imported)
        os.environ.setdefault("TQDM_DISABLE", "1")
    follow_parent()  # a process a grpo-lab command started dies with it
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        # SIGTERM (kill, timeout, Slurm) unwinds like Ctrl-C, so temporary files and records are cleaned up
        signal.signal(signal.SIGTERM, _terminate)
    code = 0
    held: list[int] = []
    try:
        with private_tmp():  # what libraries leave in the temporary folder goes when the command ends
            try:
                code = _command(sys.argv[1:])
            finally:
                if main_thread:  # the command is over: a Ctrl-C or kill while its folder goes waits for the end
                    for signum in (signal.SIGINT, signal.SIGTERM):
                        signal.signal(signum, lambda signum, frame: held.append(signum))
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, _leave_now)  # no traceback from an exit hook a late Ctrl-C cuts
            signal.signal(signal.SIGTERM, _leave_now)
        if held:  # whether the command succeeded or failed with its one line: the signal's exit code
            _leave_now(held[0], None)
    raise SystemExit(code or 0)


def _command(args: list[str]) -> int:
    """Run one command line; its exit code. Every error a person can act on is one line (``fail``)."""
    try:
        problem = _not_text(args)
        if problem:
            raise GrpoLabError(f"{problem}; pass arguments in UTF-8")
        code = command().main(args, prog_name="grpo-lab", standalone_mode=False)
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
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        with contextlib.suppress(OSError):  # what stdout still holds could not be written at exit either
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        fail(f"{exc.strerror or 'no space left'} while writing the output; free some space, or send it elsewhere")
    return code
