"""The kind table drives every list of kinds; pluggy used as documented; plugin commands and figures."""

import inspect
import sys

import click
import pytest

from clbench import hookimpl, hookspecs
from clbench.cli import cli, main
from clbench.config import COMPONENT_SECTIONS, SET_SECTIONS, RunConfig
from clbench.errors import UserError
from clbench.plugins import ESSENTIAL_PLUGINS, make_plugin_host
from clbench.registry import DEFAULT_NAMES, KIND_TABLE, KINDS, LOGGER_HOOK, LOGGERS, REGISTRATION_HOOKS, Registry


def test_every_list_of_kinds_comes_from_the_table():
    sections = tuple(k.section for k in KIND_TABLE)
    assert COMPONENT_SECTIONS == sections and SET_SECTIONS == (*sections, "train")
    assert list(KINDS) == [k.plural for k in KIND_TABLE]
    assert REGISTRATION_HOOKS == {k.plural: k.hook for k in KIND_TABLE}
    assert RunConfig().names == DEFAULT_NAMES
    assert set(Registry()._items) == {*KINDS, LOGGERS}  # the table's kinds, and the loggers (not a run section)
    assert hasattr(hookspecs, LOGGER_HOOK)
    for kind in KIND_TABLE:
        assert hasattr(hookspecs, kind.hook), f"no hookspec for {kind.hook}"
        from clbench import components

        assert hasattr(components, kind.factory), f"no factory protocol {kind.factory}"
    for command in ("run", "sweep"):
        flags = {p.name for p in cli.commands[command].params}
        assert set(sections) <= flags, command
    list_kinds = next(p for p in cli.commands["list"].params if p.name == "kind")
    assert list(list_kinds.type.choices) == [*KINDS, LOGGERS, "train"]  # the table's kinds, loggers, train settings


def test_a_misspelled_hook_fails_its_plugin_only(capsys):
    class Typo:
        @hookimpl
        def clbench_register_model(self, register):  # missing "s": would never be called
            register("typo-net", lambda o, b: None, description="x")

    host = make_plugin_host(objects=[("typo", Typo())])
    info = next(i for i in host.infos if i.name == "typo")
    assert info.status == "failed" and "unknown hook" in info.error and "clbench_register_model" in info.error
    assert host.pm.get_plugin("typo") is None
    assert "mlp" in host.registry.names("models")  # the others still load


def test_a_wrapper_on_a_lifecycle_hook_is_refused():
    class Wrapping:
        @hookimpl(wrapper=True)
        def clbench_task_start(self, context, task_index):
            return (yield)

    host = make_plugin_host(objects=[("wrapping", Wrapping())])
    info = next(i for i in host.infos if i.name == "wrapping")
    assert info.status == "failed" and "wrapper" in info.error


def test_observers_follow_pluggys_order():
    calls = []

    class First:
        @hookimpl(tryfirst=True)
        def clbench_task_start(self, context, task_index):
            calls.append("first")

    class Plain:
        @hookimpl
        def clbench_task_start(self, context, task_index):
            calls.append("plain")

    class Last:
        @hookimpl(trylast=True)
        def clbench_task_start(self, context, task_index):
            calls.append("last")

    host = make_plugin_host(use_entry_points=False, objects=[("last", Last()), ("plain", Plain()), ("first", First())])
    host.call_observers("clbench_task_start", [], context=None, task_index=0)
    assert calls == ["first", "plain", "last"]


@pytest.mark.parametrize("name", ESSENTIAL_PLUGINS)
def test_essential_plugins_cannot_be_disabled(name):
    with pytest.raises(UserError, match=f"'{name}'.*essential"):
        make_plugin_host(environ={"CLBENCH_DISABLE_PLUGINS": f"{name},replay"})


def test_disabled_plugins_are_blocked():
    host = make_plugin_host(environ={"CLBENCH_DISABLE_PLUGINS": "replay"})
    assert host.pm.is_blocked("replay")
    assert next(i for i in host.infos if i.name == "replay").status == "disabled"
    assert "fifo" not in host.registry.names("replay")


PLUGIN_WITH_COMMAND = '''
import click
from clbench import hookimpl

@click.command("hello")
@click.argument("who")
def hello(who):
    """Say hello (a plugin's command)."""
    click.echo(f"hello {who}")

@click.command("run")
def hijack():
    """Tries to replace a built-in command."""

@hookimpl
def clbench_register_commands(cli):
    cli.add_command(hello)
    cli.add_command(hijack)
'''


def test_plugins_bring_commands_but_cannot_replace_built_ins(tmp_path, monkeypatch, capsys):
    (tmp_path / "greeting_plugin.py").write_text(PLUGIN_WITH_COMMAND)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["--plugin", "greeting_plugin", "hello", "world"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "hello world"
    assert "command 'run' is taken by clbench" in err
    assert inspect.getmodule(cli.commands["run"].callback).__name__ == "clbench.cli.run"
    assert main(["--help"]) == 0  # without --plugin, the command is gone again
    assert "hello" not in capsys.readouterr().out
    sys.modules.pop("greeting_plugin", None)


def test_the_traces_command_comes_from_the_traces_plugin(capsys):
    assert main(["--help"]) == 0
    assert "traces" in capsys.readouterr().out
    assert inspect.getmodule(cli.commands["traces"].callback).__name__ == "clbench_traces.command"
    assert "traces" not in {name for name in cli.commands if name in __import__("clbench.cli").cli.BUILTIN_COMMANDS}


def test_plugin_figures_reach_the_report(tmp_path):
    from clbench.report.command import generate_report
    from tests.helpers import complete_record

    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "0123456789abcdef.json").write_text(__import__("json").dumps(complete_record()))

    class Figures:
        @hookimpl
        def clbench_report_figures(self, report):
            from clbench.report.figures import Figure

            return [Figure("accuracy_matrices.png", "A plugin's figure", "drawn by a test plugin", b"\x89PNG fake")]

    class Broken:
        @hookimpl
        def clbench_report_figures(self, report):
            raise RuntimeError("cannot draw")

    import clbench.plugins as plugins

    original = plugins.make_plugin_host

    def with_figures(extra=(), **kwargs):
        return original(extra, objects=[("figures", Figures()), ("broken", Broken())], **kwargs)

    plugins.make_plugin_host = with_figures
    try:
        path = generate_report(tmp_path, fmt="md", warn=lambda line: None)
    finally:
        plugins.make_plugin_host = original
    text = path.read_text().replace("\\_", "_")  # markdown escapes underscores
    assert "A plugin's figure" in text and "accuracy_matrices_2.png" in text  # renamed: the core's name is taken
    assert "plugin 'broken' failed in clbench_report_figures: RuntimeError: cannot draw" in text


def test_commands_hook_gets_a_click_group():
    seen = []

    class Probe:
        @hookimpl
        def clbench_register_commands(self, cli):
            seen.append(isinstance(cli, click.Group))

    host = make_plugin_host(objects=[("probe", Probe())])
    host.collect("clbench_register_commands", [], cli=click.Group("probe"))
    assert seen == [True]


@pytest.mark.parametrize("fmt", ["md", "html", "latex"])
def test_plugin_sections_reach_every_report_format(tmp_path, fmt):
    import json

    import clbench.plugins as plugins
    from clbench.report.command import generate_report
    from clbench.report.tables import Table
    from tests.helpers import complete_record

    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "0123456789abcdef.json").write_text(json.dumps(complete_record()))

    class Sections:
        @hookimpl
        def clbench_report_tables(self, report):
            good = Table("Memory usage by group", ["group", "slots used"], [[g.label, "17"] for g in report.groups],
                         ["l", "r"], intro="From a test plugin.")  # fmt: skip
            bad = Table("Broken", ["a", "b"], [["only one cell"]], ["l", "l"])
            return [good, bad]

    original = plugins.make_plugin_host

    def with_sections(extra=(), **kwargs):
        return original(extra, objects=[("sections", Sections())], **kwargs)

    plugins.make_plugin_host = with_sections
    try:
        path = generate_report(tmp_path, fmt=fmt, out=tmp_path / f"report.{ 'tex' if fmt == 'latex' else fmt}",
                               warn=lambda line: None, figures=False)  # fmt: skip
    finally:
        plugins.make_plugin_host = original
    text = path.read_text()
    assert "Memory usage by group" in text and "slots used" in text and "17" in text
    assert "Broken" not in text.replace("not a well-formed", "")
    if fmt != "latex":  # latex carries notes as comments too, but escaped differently
        assert "not a well-formed clbench Table" in text.replace("\\_", "_")
