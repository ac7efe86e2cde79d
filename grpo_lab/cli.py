"""The grpo-lab command line: a thin shell over the library.

Options of ``grpo-lab run`` are generated from RunConfig's fields, so a flag is documented in
exactly one place. Library errors (GrpoLabError) and usage errors become one line on stderr
and exit code 2. Commands that neither train nor evaluate never import torch.
"""

from __future__ import annotations

import inspect
import os
import shlex
import sys
from pathlib import Path
from typing import Literal, Optional

import typer

from . import __version__
from .config import RunConfig, config_fields, load_presets, resolve, split_tags
from .errors import GrpoLabError

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


def typed_command() -> str:
    """The command as the user typed it, shell-quoted."""
    return shlex.join(["grpo-lab", *sys.argv[1:]])


def resolve_config(preset: str | None, options: dict) -> RunConfig:
    if options.get("tags") is not None:
        options["tags"] = split_tags(options["tags"])
    return resolve(options, preset)


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
@with_config_options
def run(
    hypothesis: str = typer.Option(
        None, "--hypothesis", help="What this run tests (recorded with the run).", rich_help_panel="Journal"
    ),
    preset: str = typer.Option(
        None, "--preset", help="Fill in a named bundle of flags (`grpo-lab presets`); explicit flags win."
    ),
    dry_run: bool = typer.Option(
        False, "--dry_run", "--dry-run", help="Print the resolved configuration and plan, then exit."
    ),
    **options,
):
    """Train with GRPO, evaluate before and after, and record the run.

    Batch sizes count completions, as in TRL: --batch_size 256 --num_generations 16 trains on 16 prompts per step.
    """
    from .display import config_table, console, plan_table, print_warnings

    config = resolve_config(preset, options)
    console.print(config_table(config, title=f"Configuration{f' (preset {preset})' if preset else ''}"))
    console.print(plan_table(config))
    print_warnings(config)
    if dry_run:
        return
    if not hypothesis:
        raise GrpoLabError('--hypothesis is required: say what this run tests, e.g. --hypothesis "beta 0.1 beats 0"')

    from .display import LiveView, comparison_table
    from .ids import new_run_id
    from .runner import execute, quiet_libraries

    run_id = new_run_id()
    output_dir = config.output_dir or str(Path("runs") / run_id)
    console.print(f"[bold]run {run_id}[/]  {config.exp_name}  ->  {output_dir}")
    quiet_libraries()
    view = LiveView()
    try:
        outcome = execute(config, output_dir, [view])
    finally:
        view.close()
    console.print(comparison_table(outcome.results.get("before", {}), outcome.results.get("after", {})))
    console.print(f"model saved to {outcome.output_dir}")


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


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.")):
    if version:
        typer.echo(f"grpo-lab {__version__}")
        raise typer.Exit()


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"grpo-lab: error: {message}", err=True)
    raise SystemExit(code)


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        code = app(standalone_mode=False)
    except GrpoLabError as exc:
        fail(str(exc))
    except UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "grpo-lab"
        fail(f"{exc.format_message()} (see {command} --help)")
    except (KeyboardInterrupt, typer.Abort):
        fail("interrupted", 130)
    raise SystemExit(code or 0)
