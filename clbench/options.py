"""Validated options for components (pydantic), and the parsing of ``--set`` values.

Every registered component declares a subclass of :class:`Options`; a field's default is the
component's default and its ``description`` is shown by ``clbench list``. Unknown keys and bad
values become :class:`~clbench.errors.UserError` messages of one line.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from clbench.errors import UserError


class Options(BaseModel):
    """Base class of a component's options: unknown keys are rejected, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class NoOptions(Options):
    """Options of a component that takes none."""


def parse_value(text: str) -> Any:
    """Turn a ``--set`` value into Python: JSON when it parses (numbers, true/false, null, lists),
    else the plain string. ``"128"`` -> 128, ``"[64,64]"`` -> [64, 64], ``"relu"`` -> "relu"."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text


def describe_fields(options_cls: type[Options]) -> list[dict[str, Any]]:
    """List a component's options as dicts of name, type, default and description."""
    rows = []
    for name, field in options_cls.model_fields.items():
        annotation = field.annotation
        type_name = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
        rows.append(
            {
                "name": name,
                "type": type_name,
                "default": field.default if not field.is_required() else None,
                "required": field.is_required(),
                "description": field.description or "",
            }
        )
    return rows


def validate_options(section: str, component: str, options_cls: type[Options], raw: dict[str, Any]) -> Options:
    """Validate ``raw`` against ``options_cls``; raise a one-line :class:`UserError` on failure.

    ``section`` and ``component`` name the place in the config (``model``, ``mlp``) for the message.
    """
    try:
        return options_cls(**raw)
    except ValidationError as exc:
        raise UserError(_one_line(section, component, options_cls, exc)) from None
    except TypeError as exc:  # e.g. a non-string key
        raise UserError(f"bad options for {section} {component!r}: {exc}") from None


def _one_line(section: str, component: str, options_cls: type[Options], exc: ValidationError) -> str:
    allowed = ", ".join(options_cls.model_fields) or "none"
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) if err["loc"] else "?"
    if err["type"] == "extra_forbidden":
        return f"unknown option {section}.{key} for {section} {component!r}; allowed: {allowed}"
    if err["type"] == "missing":
        return f"missing option {section}.{key} for {section} {component!r}"
    field = options_cls.model_fields.get(str(err["loc"][0])) if err["loc"] else None
    hint = ""
    if field is not None:
        type_name = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
        hint = f"; allowed: {type_name}"
        if field.description:
            hint += f" ({field.description})"
    got = err.get("input")
    return f"bad value {got!r} for {section}.{key} of {section} {component!r}: {err['msg']}{hint}"
