"""Registry: duplicates, unknown names, availability, and the plugin host around it."""

import pytest

from clbench import hookimpl
from clbench.errors import UserError
from clbench.plugins import disabled_plugins, make_plugin_host
from clbench.registry import DuplicateComponentError, Registry


def _factory(*args, **kwargs):
    return None


def test_duplicate_names_name_both_plugins():
    reg = Registry()
    reg.add("models", "first-plugin", "net", _factory, description="a")
    with pytest.raises(DuplicateComponentError, match="first-plugin.*second-plugin"):
        reg.add("models", "second-plugin", "net", _factory, description="b")


def test_same_name_in_different_kinds_is_fine():
    reg = Registry()
    reg.add("meta", "p", "none", _factory, description="a")
    reg.add("replay", "p", "none", _factory, description="b")
    assert reg.get("meta", "none").kind == "meta" and reg.get("replay", "none").kind == "replay"


def test_unknown_name_suggests_the_closest():
    reg = Registry()
    for name in ("mlp", "dnc", "lstm"):
        reg.add("models", "p", name, _factory, description=name)
    with pytest.raises(UserError) as info:
        reg.get("models", "mpl")
    msg = str(info.value)
    assert "did you mean 'mlp'" in msg and "dnc, lstm, mlp" in msg and "\n" not in msg


def test_unknown_name_mentions_broken_plugins():
    reg = Registry(broken_plugins={"fancy": "ImportError: x"})
    with pytest.raises(UserError, match="fancy"):
        reg.get("models", "anything")


def test_requirements_are_checked_without_importing():
    reg = Registry()
    comp = reg.add(
        "strategies",
        "p",
        "needs-missing",
        _factory,
        description="d",
        requires=("surely_not_an_installed_module_xyz",),
        install_hint="pip install xyz",
    )
    assert not comp.available
    assert "pip install xyz" in comp.unavailable_reason()
    assert reg.add("strategies", "p", "ok", _factory, description="d", requires=("json",)).available


def test_options_must_subclass_clbench_options():
    from pydantic import BaseModel

    class Plain(BaseModel):
        x: int = 1

    with pytest.raises(ValueError, match="clbench.Options"):
        Registry().add("models", "p", "m", _factory, description="d", options=Plain)


def test_description_is_one_line():
    comp = Registry().add("models", "p", "m", _factory, description="two\n   lines")
    assert comp.description == "two lines"


class _DupPlugin:
    @hookimpl
    def clbench_register_models(self, register):
        register("mlp", _factory, description="clash with the built-in")


def test_host_rejects_a_duplicate_across_plugins():
    host = make_plugin_host(objects=[("dup", _DupPlugin())])
    with pytest.raises(UserError, match="'basic'.*'dup'|'dup'.*'basic'"):
        host.registry  # noqa: B018


def test_each_host_is_independent():
    class Extra:
        @hookimpl
        def clbench_register_models(self, register):
            register("only-here", _factory, description="x")

    a = make_plugin_host(objects=[("extra", Extra())])
    b = make_plugin_host()
    assert "only-here" in a.registry.names("models")
    assert "only-here" not in b.registry.names("models")


def test_disable_env_blocks_plugins():
    assert disabled_plugins({"CLBENCH_DISABLE_PLUGINS": "a, b,,"}) == {"a", "b"}
    host = make_plugin_host(environ={"CLBENCH_DISABLE_PLUGINS": "memory"})
    assert "dnc" not in host.registry.names("models") and "mlp" in host.registry.names("models")
    assert {i.name: i.status for i in host.infos}["memory"] == "disabled"


def test_registration_error_marks_plugin_failed_and_spares_others():
    class Broken:
        @hookimpl
        def clbench_register_models(self, register):
            raise RuntimeError("boom")

    host = make_plugin_host(objects=[("broken", Broken())])
    assert "mlp" in host.registry.names("models")
    info = {i.name: i for i in host.infos}["broken"]
    assert info.status == "failed" and "boom" in info.error
