"""The command group, the commands plugins add, and :func:`main` (errors to one line, exit codes)."""

from __future__ import annotations

import sys

import click

from clbench import __version__
from clbench.cli.common import plugin_option
from clbench.cli.inspect import list_cmd, plugins, show
from clbench.cli.run import run
from clbench.cli.sweep import sweep
from clbench.errors import RunFailed, UserError
from clbench.interrupts import Interrupted, install_handlers
from clbench.text import printable


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="clbench")
@plugin_option
def cli(plugins: tuple[str, ...]) -> None:
    """Compare continual learners on shared task streams and metrics.

    \b
    clbench run --model dnc --meta maml --replay prioritized
    clbench list models
    clbench show RUN_ID
    """


for _command in (run, sweep, list_cmd, plugins, show):
    cli.add_command(_command)


def _add_report_command() -> None:
    from clbench.report.command import report_command

    cli.add_command(report_command)


_add_report_command()
#: The commands clbench itself defines: plugins cannot replace them.
BUILTIN_COMMANDS = frozenset(cli.commands)


def plugin_modules_in(argv: list[str]) -> tuple[str, ...]:
    """The modules named with ``--plugin MODULE`` or ``--plugin=MODULE`` anywhere in ``argv``, so
    that their commands exist before the command line is parsed."""
    found = []
    for i, arg in enumerate(argv):
        if arg == "--plugin" and i + 1 < len(argv):
            found.append(argv[i + 1])
        elif arg.startswith("--plugin="):
            found.append(arg.split("=", 1)[1])
    return tuple(found)


def add_plugin_commands(argv: list[str]) -> None:
    """Add the commands plugins bring (hook ``clbench_register_commands``) to :data:`cli`. Each
    plugin fills a group of its own; a command whose name is taken (a built-in, or another
    plugin's) is left out with a warning."""
    from clbench.plugins import make_plugin_host

    for name in [n for n in cli.commands if n not in BUILTIN_COMMANDS]:  # from an earlier main() in this process
        del cli.commands[name]
    host = make_plugin_host(plugin_modules_in(argv))
    notes: list[str] = []
    for plugin, commands in host.plugin_commands(notes):
        for name, command in commands.items():
            if name in cli.commands:
                owner = "clbench" if name in BUILTIN_COMMANDS else "another plugin"
                notes.append(f"plugin {plugin!r}: command {name!r} is taken by {owner}; left out")
                continue
            cli.add_command(command, name)
    for note in notes:
        click.echo(f"clbench: warning: {printable(note)}", err=True)


def _exit_now(code: int) -> None:
    """Leave at once after an interrupt: run the exit handlers (they stop what this process
    started, such as a local Ray cluster) but skip the interpreter's teardown of torch's modules,
    which takes seconds on a busy machine."""
    import atexit
    import os

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed pipe
            pass
    os._exit(code)


def _say_interrupted(exc: Interrupted) -> None:
    """One line: the signal, and what the interrupted run kept (when it says)."""
    note = f": {printable(exc.note)}" if exc.note else ""
    click.echo(f"clbench: interrupted ({exc}){note}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; user errors -> one line on stderr and exit status 2."""
    install_handlers()  # Ctrl-C and SIGTERM raise Interrupted; a plugin's KeyboardInterrupt does not stop a run
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        add_plugin_commands(args)
        rv = cli.main(args=args, prog_name="clbench", standalone_mode=False)
    except Interrupted as exc:
        _say_interrupted(exc)
        _exit_now(exc.exit_code)
    except click.exceptions.Abort as exc:  # click turns KeyboardInterrupt (our Interrupted too) into Abort
        cause = exc.__context__
        if isinstance(cause, Interrupted):
            _say_interrupted(cause)
            _exit_now(cause.exit_code)
        click.echo("clbench: aborted", err=True)
        return 130
    except click.exceptions.UsageError as exc:
        msg = printable(" ".join(exc.format_message().split()))
        hint = (
            f" (see 'clbench {exc.ctx.info_name} --help')" if exc.ctx and exc.ctx.parent else " (see 'clbench --help')"
        )
        click.echo(f"clbench: error: {msg}{hint}", err=True)
        return 2
    except click.exceptions.ClickException as exc:
        click.echo(f"clbench: error: {printable(exc.format_message())}", err=True)
        return exc.exit_code
    except UserError as exc:
        click.echo(f"clbench: error: {printable(exc)}", err=True)
        return 2
    except RunFailed as exc:
        click.echo(f"clbench: {printable(exc)}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("clbench: interrupted", err=True)
        return 130
    return rv if isinstance(rv, int) else 0
