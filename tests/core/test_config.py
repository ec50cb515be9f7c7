"""Run configs: TOML, --set, validation messages, canonical form and run ids."""

import pytest

from clbench.config import RunConfig, config_from_dict, load_toml, resolve
from clbench.errors import UserError
from clbench.options import parse_value


@pytest.mark.parametrize(
    "text, value",
    [("128", 128), ("0.5", 0.5), ("true", True), ("null", None), ("[64,64]", [64, 64]), ("relu", "relu")],
)
def test_parse_value(text, value):
    assert parse_value(text) == value


def test_defaults_are_filled_in(host):
    canonical = resolve(RunConfig(), host.registry).canonical()
    assert canonical["benchmark"]["name"] == "shifting-linear"
    assert canonical["benchmark"]["options"]["n_tasks"] == 20
    assert canonical["model"] == {
        "name": "mlp",
        "options": {"hidden_sizes": [128, 128], "activation": "relu", "dropout": 0.0},
    }
    assert canonical["meta"]["name"] == "none" and canonical["replay"]["name"] == "none"
    assert canonical["strategy"] is None
    assert canonical["train"]["epochs"] == 5 and canonical["train"]["batch_size"] == 32
    assert canonical["seed"] == 0


def test_run_id_is_stable_and_sensitive(host):
    a = resolve(RunConfig(), host.registry)
    b = resolve(RunConfig(), host.registry)
    assert a.run_id == b.run_id and len(a.run_id) == 16
    c = RunConfig()
    c.apply_set("train.lr=0.01")
    assert resolve(c, host.registry).run_id != a.run_id
    d = RunConfig(seed=1)
    assert resolve(d, host.registry).run_id != a.run_id
    # spelling a default out explicitly is the same config
    e = RunConfig()
    e.apply_set("model.hidden_sizes=[128,128]")
    assert resolve(e, host.registry).run_id == a.run_id


def test_set_coerces_and_validates(host):
    cfg = RunConfig()
    cfg.apply_set("model.hidden_sizes=[16]")
    cfg.apply_set("train.clip=1")
    resolved = resolve(cfg, host.registry)
    assert resolved.options["model"].hidden_sizes == [16]
    assert resolved.train.clip == 1.0


@pytest.mark.parametrize(
    "assignment, fragment",
    [
        ("model.nope=1", "unknown option model.nope for model 'mlp'; allowed: hidden_sizes, activation, dropout"),
        ("model.activation=swish", "allowed: one of relu|tanh|gelu|elu"),
        ("train.epochs=0", "train.epochs"),
        ("train.lr=-1", "train.lr"),
        ("train.lr_decay=0.9", "lr_decay_every"),
    ],
)
def test_bad_values_give_one_line(host, assignment, fragment):
    cfg = RunConfig()
    cfg.apply_set(assignment)
    with pytest.raises(UserError) as info:
        resolve(cfg, host.registry)
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("assignment", ["model", "foo.bar=1", "model.=3", "model.a.b=1"])
def test_malformed_set(assignment):
    with pytest.raises(UserError, match="SECTION.KEY=VALUE"):
        RunConfig().apply_set(assignment)


def test_strategy_cannot_take_meta_or_replay(host):
    cfg = RunConfig()
    cfg.set_name("strategy", "joint")
    cfg.set_name("replay", "none")
    resolve(cfg, host.registry)
    cfg.names["meta"] = "something"
    with pytest.raises(UserError, match="own training loop"):
        resolve(cfg, host.registry)


def test_toml_layout(tmp_path, host):
    path = tmp_path / "exp.toml"
    path.write_text(
        'seed = 4\n[benchmark]\nname = "shifting-linear"\nn_tasks = 3\n'
        '[model]\nname = "mlp"\nhidden_sizes = [8]\n[train]\nepochs = 2\n'
    )
    resolved = resolve(load_toml(path), host.registry)
    assert resolved.seed == 4
    assert resolved.options["benchmark"].n_tasks == 3
    assert resolved.options["model"].hidden_sizes == [8]
    assert resolved.train.epochs == 2


def test_cli_name_replaces_file_component_and_drops_its_options():
    cfg = config_from_dict({"model": {"name": "dnc", "memory_slots": 16}})
    cfg.set_name("model", "mlp")
    assert cfg.options["model"] == {}
    cfg2 = config_from_dict({"model": {"name": "dnc", "memory_slots": 16}})
    cfg2.set_name("model", "dnc")
    assert cfg2.options["model"] == {"memory_slots": 16}


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("seed = [", "not valid TOML"),
        ("colour = 1", "unknown key 'colour'; allowed: seed, benchmark"),
        ("seed = 'x'", "seed must be an integer"),
        ("model = 3", "[model] must be a table"),
        ("[strategy]\nlambda = 1", "[strategy] needs a name"),
    ],
)
def test_bad_toml(tmp_path, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_toml(path)
    assert fragment in str(info.value)


def test_missing_toml(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_toml(tmp_path / "nope.toml")
