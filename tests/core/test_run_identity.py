"""Run identity: ids survive added options and non-result settings, and records on disk stay found."""

import json
from pathlib import Path

import pytest
from pydantic import Field

from clbench import Options, hookimpl
from clbench.config import RunConfig, TrainConfig, config_from_canonical, resolve, run_id_of
from clbench.options import added_option, identity_of, setting
from clbench.plugins import make_plugin_host

ROOT = Path(__file__).resolve().parents[2]
#: Run ids of the two commands the README leads with, as computed before run identity was introduced.
DEFAULT_RUN_ID = "8750a296e61b5179"
RECIPE_RUN_ID = "566ace59b74e9768"


def _resolve(host, **names):
    config = RunConfig()
    for section, name in names.items():
        config.set_name(section, name)
    return resolve(config, host.registry)


def test_the_readme_runs_keep_their_ids(host):
    assert _resolve(host).run_id == DEFAULT_RUN_ID
    assert _resolve(host, model="dnc", meta="maml", replay="prioritized").run_id == RECIPE_RUN_ID


def test_every_committed_record_is_found_by_its_config(host):
    """Records written by earlier versions (results/*/runs) resolve to their own id, so a sweep skips them."""
    paths = sorted(ROOT.glob("results/*/runs/*.json"))
    assert paths, "no committed records to check"
    for path in paths:
        record = json.loads(path.read_text())
        assert resolve(config_from_canonical(record["config"]), host.registry).run_id == record["run_id"], path


class _Before(Options):
    width: int = Field(8, ge=1)


class _After(Options):
    """``_Before`` grown by an option whose default reproduces the old behaviour, and a setting."""

    width: int = Field(8, ge=1)
    momentum: float = added_option(0.0, ge=0)
    log_every: int = setting(10, ge=1)


class _DefaultMoved(Options):
    """``_After`` with the new option's default moved away from its neutral value."""

    width: int = Field(8, ge=1)
    momentum: float = added_option(0.9, neutral=0.0, ge=0)
    log_every: int = setting(10, ge=1)


def _host_with(options_cls):
    class Plugin:
        @hookimpl
        def clbench_register_models(self, register):
            register("probe-net", lambda options, build: None, description="probe", options=options_cls)

    return make_plugin_host(objects=[("probe", Plugin())])


def _probe_id(options_cls, **options):
    config = RunConfig()
    config.set_name("model", "probe-net")
    config.options["model"].update(options)
    return resolve(config, _host_with(options_cls).registry).run_id


def test_adding_a_defaulted_option_keeps_the_run_id():
    before = _probe_id(_Before)
    assert _probe_id(_After) == before
    assert _probe_id(_After, log_every=99) == before  # a setting never enters the id
    assert _probe_id(_After, momentum=0.5) != before  # a value other than the neutral one does
    assert _probe_id(_After, width=9) != _probe_id(_Before)  # existing options still count


def test_moving_a_default_away_from_its_neutral_value_changes_the_run_id():
    assert _probe_id(_DefaultMoved) != _probe_id(_Before)
    assert _probe_id(_DefaultMoved, momentum=0.0) == _probe_id(_Before)


def test_the_canonical_config_is_the_identity_and_settings_travel_beside_it():
    resolved = resolve(_config_with_model("probe-net"), _host_with(_After).registry)
    canonical = resolved.canonical()
    assert canonical["model"]["options"] == {"width": 8}  # momentum at its neutral value, log_every a setting
    assert resolved.settings()["model"] == {"log_every": 10} and resolved.settings()["train"] == {
        "device": "auto",
        "log": [],
    }
    again = resolve(config_from_canonical(canonical, resolved.settings()), _host_with(_After).registry)
    assert again.run_id == resolved.run_id and again.settings() == resolved.settings()
    moved = resolve(_config_with_model("probe-net"), _host_with(_After).registry)
    assert moved.canonical() == canonical


def _config_with_model(name):
    config = RunConfig()
    config.set_name("model", name)
    return config


class _GrownTrain(TrainConfig):
    """Train settings grown by a setting that cannot change results and a defaulted option."""

    device: str = setting("cpu")
    warmup_epochs: int = added_option(0, ge=0)


def test_adding_a_train_setting_keeps_the_run_id(host):
    resolved = _resolve(host)
    grown = type(resolved)(resolved.components, resolved.options, _GrownTrain(), resolved.seed)
    assert "device" not in grown.canonical()["train"] and grown.settings()["train"] == {"device": "cpu", "log": []}
    assert grown.run_id == resolved.run_id == DEFAULT_RUN_ID
    moved = type(resolved)(resolved.components, resolved.options, _GrownTrain(device="cuda"), resolved.seed)
    assert moved.run_id == DEFAULT_RUN_ID
    warm = type(resolved)(resolved.components, resolved.options, _GrownTrain(warmup_epochs=2), resolved.seed)
    assert warm.run_id != DEFAULT_RUN_ID


@pytest.mark.parametrize("value", [(1, 2), [1, 2]])
def test_neutral_values_compare_as_json(value):
    class Grown(Options):
        sizes: tuple[int, ...] = added_option((1, 2))

    assert identity_of(Grown(sizes=value)) == {}
    assert identity_of(Grown(sizes=(3,))) == {"sizes": [3]}


def test_run_id_of_is_order_independent():
    assert run_id_of({"a": 1, "b": {"c": 2, "d": 3}}) == run_id_of({"b": {"d": 3, "c": 2}, "a": 1})


def test_a_kind_added_later_keeps_run_ids_while_its_neutral_component_is_used(monkeypatch):
    """A new kind (here a learning-rate scheduler) with ``neutral="none"``: runs that use ``none``
    keep their ids and old records read as using it; another scheduler is a new run."""
    import clbench.config as config_module
    import clbench.registry as registry_module
    from clbench.registry import Kind

    kind = Kind("schedulers", "scheduler", "scheduler", "clbench_register_schedulers", "none", "Factory", "x", "none")
    monkeypatch.setattr(registry_module, "KIND_TABLE", (*registry_module.KIND_TABLE, kind))
    monkeypatch.setitem(registry_module.KINDS, "schedulers", "scheduler")
    monkeypatch.setattr(config_module, "COMPONENT_SECTIONS", (*config_module.COMPONENT_SECTIONS, "scheduler"))
    monkeypatch.setitem(config_module.DEFAULT_NAMES, "scheduler", "none")
    monkeypatch.setitem(config_module.KIND_OF_SECTION, "scheduler", "schedulers")
    registry = make_plugin_host().registry
    registry._items["schedulers"] = {}
    registry.add("schedulers", "test", "none", lambda options, build: None, description="constant lr")
    registry.add("schedulers", "test", "cosine", lambda options, build: None, description="cosine")

    default = resolve(RunConfig(), registry)
    assert "scheduler" not in default.canonical() and default.run_id == DEFAULT_RUN_ID
    cosine = RunConfig()
    cosine.set_name("scheduler", "cosine")
    assert resolve(cosine, registry).canonical()["scheduler"]["name"] == "cosine"
    assert resolve(cosine, registry).run_id != DEFAULT_RUN_ID
    old = dict(default.canonical())  # a record written before the kind existed
    assert resolve(config_from_canonical(old), registry).run_id == DEFAULT_RUN_ID
