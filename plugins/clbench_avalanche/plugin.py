"""Registration of the ``avalanche.*`` strategies, and the cross-check's closing comparison.

Neither torch nor Avalanche is imported here: each strategy is registered with
``requires=("avalanche",)`` so that ``clbench list`` shows it as unavailable, with the install
command, where Avalanche is missing; Avalanche is imported only when one of them runs.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from clbench import hookimpl
from clbench.components import BuildContext
from clbench_avalanche.crosscheck import CROSSCHECK_KEY, compare, summary_lines
from clbench_avalanche.specs import SPECS, StrategySpec

PREFIX = "avalanche."
INSTALL_HINT = "pip install 'clbench[avalanche]'"


def build_strategy(spec: StrategySpec, options: Any, build: BuildContext) -> Any:
    """The factory of ``avalanche.<spec.name>``: a clbench learner running the Avalanche strategy."""
    from clbench_avalanche.adapter import AvalancheLearner

    return AvalancheLearner(spec, options, build)


@hookimpl
def clbench_register_strategies(register):
    """Register one ``avalanche.<name>`` strategy per entry of :data:`clbench_avalanche.specs.SPECS`."""
    for spec in SPECS:
        register(
            PREFIX + spec.name,
            partial(build_strategy, spec),
            description=spec.description,
            options=spec.options,
            requires=("avalanche",),
            install_hint=INSTALL_HINT,
        )


@hookimpl
def clbench_run_end(context: Any, record: dict[str, Any]) -> None:
    """When a run cross-checked with Avalanche, compare Avalanche's metrics with clbench's."""
    crosscheck = context.extras.get(CROSSCHECK_KEY)
    if isinstance(crosscheck, dict):
        crosscheck["comparison"] = compare(crosscheck, record)


@hookimpl
def clbench_summary_lines(record: dict[str, Any]) -> list[str]:
    """The Avalanche cross-check, when the record has one, for ``clbench run`` and ``show``."""
    return summary_lines((record.get("extras") or {}).get(CROSSCHECK_KEY))
