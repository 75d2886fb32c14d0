"""The `aloe` command.

Each workspace package contributes its commands through the ``aloe.cli`` entry-point group: a name
like ``data`` mounts a typer group (or a single command, ``demo``), and a dotted name like
``data.sample`` adds one command to another package's group (aloe-fixtures puts ``sample`` into
``aloe data``). This keeps imports acyclic (core never imports the packages above it) and lets a
machine that installs only some packages get only their commands.

Errors a user can cause (:class:`~aloe_core.errors.AloeError`, bad usage) print one line and exit 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

import typer

from aloe_core.errors import AloeError

# typer >= 0.24 vendors click; its usage errors derive from the same base as typer.BadParameter.
UsageError = typer.BadParameter.__mro__[1]

HELP = (
    "aloe: the Aloe recipe for open healthcare LLMs as distributed software.\n\n"
    "Curate medical and general instruction data on Ray Data (clean, deduplicate, decontaminate, score, "
    "template, generate chain-of-thought with vLLM), train with Ray Train + FSDP2 (SFT, DPO), merge models "
    "and evaluate. Set RAY_ADDRESS to use a cluster; otherwise a local Ray is started."
)

GROUP_ORDER = ("data", "train", "infer", "eval", "model", "demo")


def build_app(only: str | None = None) -> typer.Typer:
    """The root typer app with every installed package's groups and commands mounted.

    ``only`` mounts just that group (and the commands other packages add to it): loading a group imports
    its package, and `aloe data ingest` has no use for torch, which `aloe train` imports (seconds).
    """
    app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    # Keeps `aloe` a group even when no package above core is installed (typer refuses an empty app).
    app.callback()(lambda: None)
    points = sorted(entry_points(group="aloe.cli"), key=lambda ep: ep.name)
    if only is not None:
        points = [ep for ep in points if ep.name.split(".", 1)[0] == only]
    mounted: dict[str, Any] = {ep.name: ep.load() for ep in points if "." not in ep.name}
    for ep in points:
        if "." in ep.name:
            group, command = ep.name.split(".", 1)
            if not isinstance(mounted.get(group), typer.Typer):
                mounted[group] = typer.Typer(no_args_is_help=True)
            mounted[group].command(name=command)(ep.load())
    for name in sorted(mounted, key=lambda n: (GROUP_ORDER.index(n) if n in GROUP_ORDER else 99, n)):
        target = mounted[name]
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name)
        else:
            app.command(name=name)(target)
    return app


def run_app(app: typer.Typer, argv: list[str] | None = None, prog_name: str = "aloe") -> None:
    """Run ``app`` as the `aloe` script does: INFO logging, and a usage or user error (:class:`AloeError`)
    printed as one ``aloe: error:`` line with exit code 2 instead of a traceback."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("aloe: aborted", file=sys.stderr)
        sys.exit(130)
    except UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        print(f"aloe: error: {exc.format_message()}{hint}", file=sys.stderr)
        sys.exit(2)
    except AloeError as exc:
        print(f"aloe: error: {exc}", file=sys.stderr)
        sys.exit(2)
    # Outside standalone mode click returns a command's `typer.Exit(n)` code instead of raising it.
    if isinstance(code, int) and code:
        sys.exit(code)


def run_standalone(command: Callable[..., Any], module: str, argv: list[str] | None = None) -> None:
    """Run one command function on its own (``python -m MODULE ...``, e.g. ``aloe_train.sft.cli``), with
    the same logging and one-line errors as the `aloe` script."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(command)
    run_app(app, argv, prog_name=f"python -m {module}")


def requested_group(argv: list[str]) -> str | None:
    """The group or command ``argv`` asks for (its first word, when an installed package provides it);
    None for `aloe --help` and unknown words, which need every group mounted (to list them)."""
    first = argv[0] if argv else None
    if first is None or first.startswith("-"):
        return None
    names = {ep.name.split(".", 1)[0] for ep in entry_points(group="aloe.cli")}
    return first if first in names else None


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `aloe` script: mounts only the group the command line names."""
    args = sys.argv[1:] if argv is None else argv
    run_app(build_app(only=requested_group(args)), args)


if __name__ == "__main__":
    main()
