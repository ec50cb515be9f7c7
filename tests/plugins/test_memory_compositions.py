"""Every memory model with every meta-learner and every replay buffer (short settings)."""

import pytest

from clbench.config import RunConfig, resolve
from clbench.harness import execute
from clbench.plugins import make_plugin_host

HOST = make_plugin_host()
MODELS = ["dnc", "ntm", "lstm", "transformer"]
METAS = HOST.registry.names("meta")
REPLAYS = HOST.registry.names("replay")
SHORT = {"n_tasks": 2, "train_size": 48, "test_size": 16}


def _run(model, meta, replay):
    cfg = RunConfig()
    for section, name in (("model", model), ("meta", meta), ("replay", replay)):
        cfg.set_name(section, name)
    cfg.options["benchmark"].update(SHORT)
    cfg.options["model"].update({"memory_slots": 16, "word_size": 8} if model in ("dnc", "ntm") else {})
    cfg.train.update({"epochs": 1, "batch_size": 16})
    record = execute(resolve(cfg, HOST.registry), HOST, results=None).record
    assert record["status"] == "ok", record.get("traceback")
    assert len(record["accuracy_matrix"]) == 2


@pytest.mark.parametrize("meta", METAS)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_with_every_meta_learner(model, meta):
    _run(model, meta, "prioritized")


@pytest.mark.parametrize("replay", REPLAYS)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_with_every_replay(model, replay):
    _run(model, "maml", replay)
