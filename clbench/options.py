"""Validated options for components (pydantic), and the parsing of ``--set`` values.

Every registered component declares a subclass of :class:`Options`; a field's default is the
component's default and its ``description`` is shown by ``clbench list``. Unknown keys and bad
values become :class:`~clbench.errors.UserError` messages of one line.
"""

from __future__ import annotations

import json
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from clbench.errors import UserError


class Options(BaseModel):
    """Base class of a component's options: unknown keys are rejected, values are validated;
    NaN and infinite floats are rejected everywhere, and a boolean is never taken for a number
    (see :func:`validate_options`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=(), allow_inf_nan=False)


#: Any subclass of :class:`Options` (what :func:`validate_options` returns for a given class).
O = TypeVar("O", bound=Options)


class NoOptions(Options):
    """Options of a component that takes none."""


#: ``json_schema_extra`` keys by which a field says how it takes part in the run id.
NEUTRAL_KEY = "clbench_neutral"
NOT_IDENTITY_KEY = "clbench_not_identity"
_SAME: Any = object()


def added_option(default: Any, *, neutral: Any = _SAME, **kwargs: Any) -> Any:
    """A ``Field`` for an option added to a component after runs of it exist.

    ``neutral`` is the value that reproduces the behaviour from before the option existed (by
    default, ``default``). While the option holds that value it is left out of the run id, so that
    records written before it existed are still found and skipped by sweeps; any other value, a
    changed default included, is part of the run id. Other keywords go to ``pydantic.Field``.
    """
    from pydantic import Field

    value = default if neutral is _SAME else neutral
    return Field(default, json_schema_extra={NEUTRAL_KEY: value}, **kwargs)


def setting(default: Any, **kwargs: Any) -> Any:
    """A ``Field`` for a setting that cannot change the accuracy matrix (threads, device, loggers,
    checkpointing): it is left out of the canonical config (and so of the run id and the record's
    ``config``), and travels beside it (``ResolvedConfig.settings()``) to the run's worker."""
    from pydantic import Field

    return Field(default, json_schema_extra={NOT_IDENTITY_KEY: True}, **kwargs)


def identity_of(options: Options) -> dict[str, Any]:
    """``options`` as JSON-ready values, without the fields that do not identify a run: those
    declared with :func:`setting`, and those declared with :func:`added_option` that hold their
    neutral value."""
    dumped = options.model_dump(mode="json")
    for name, field in type(options).model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get(NOT_IDENTITY_KEY):
            dumped.pop(name, None)
        elif NEUTRAL_KEY in extra and dumped.get(name) == _as_json(extra[NEUTRAL_KEY]):
            dumped.pop(name, None)
    return dumped


def settings_of(options: Options) -> dict[str, Any]:
    """The values of the fields of ``options`` declared with :func:`setting`, JSON-ready."""
    dumped = options.model_dump(mode="json")
    out = {}
    for name, field in type(options).model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get(NOT_IDENTITY_KEY):
            out[name] = dumped[name]
    return out


def _as_json(value: Any) -> Any:
    """``value`` as ``model_dump(mode="json")`` would give it (tuples as lists, and so on)."""
    return json.loads(json.dumps(value, default=str))


def parse_value(text: str) -> Any:
    """Turn a ``--set`` value into Python: JSON when it parses (numbers, true/false, null, lists),
    else the plain string. ``"128"`` -> 128, ``"[64,64]"`` -> [64, 64], ``"relu"`` -> "relu"."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text


def split_top_level(text: str, keep_empty: bool = False) -> list[str]:
    """Split on commas outside brackets, braces and quotes: ``"1,[64,64],x"`` -> ["1", "[64,64]", "x"].
    Parts are stripped; empty ones are dropped unless ``keep_empty``."""
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return parts if keep_empty else [p for p in parts if p]


def type_name(annotation: Any) -> str:
    """A short readable name of a field type: ``int``, ``list[int]``, ``one of a|b``, ``float | None``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "one of " + "|".join(str(a) for a in args)
    if origin is Annotated:
        return type_name(args[0])
    if origin in (Union, UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join(type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def describe_fields(options_cls: type[Options]) -> list[dict[str, Any]]:
    """List a component's options as dicts of name, type, default and description."""
    rows = []
    for name, field in options_cls.model_fields.items():
        rows.append(
            {
                "name": name,
                "type": type_name(field.annotation),
                "default": field.default if not field.is_required() else None,
                "required": field.is_required(),
                "description": field.description or "",
            }
        )
    return rows


def validate_options(section: str, component: str, options_cls: type[O], raw: dict[str, Any]) -> O:
    """Validate ``raw`` against ``options_cls``; raise a one-line :class:`UserError` on failure.

    ``section`` and ``component`` name the place in the config (``model``, ``mlp``) for the message.
    """
    for key, value in raw.items():
        field = options_cls.model_fields.get(key) if isinstance(key, str) else None
        if field is not None and _holds_bool(value) and not _admits_bool(field.annotation):
            where = f" of {section} {component!r}" if component else ""
            raise UserError(
                f"bad value {value!r} for {section}.{key}{where}: a boolean is not a number; "
                f"allowed: {type_name(field.annotation)}"
            )
    try:
        return options_cls(**raw)
    except ValidationError as exc:
        raise UserError(_one_line(section, component, options_cls, exc)) from None
    except TypeError as exc:  # e.g. a non-string key
        raise UserError(f"bad options for {section} {component!r}: {exc}") from None


def _holds_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_bool(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_bool(v) for v in value.values())
    return False


def _admits_bool(annotation: Any) -> bool:
    """True when a field's type accepts booleans somewhere (``bool``, ``Any``, a Literal of them)."""
    if annotation is bool or annotation is Any:
        return True
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return any(isinstance(a, bool) for a in args)
    return any(_admits_bool(a) for a in args)


def _one_line(section: str, component: str, options_cls: type[Options], exc: ValidationError) -> str:
    allowed = ", ".join(options_cls.model_fields) or "none"
    err = exc.errors()[0]
    where = f"{section} {component!r}" if component else section
    msg = str(err["msg"]).removeprefix("Value error, ")
    if not err["loc"]:  # a check across several options
        return f"bad options for {where}: {msg}"
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"unknown option {section}.{key} for {where}; allowed: {allowed}"
    if err["type"] == "missing":
        return f"missing option {section}.{key} for {where}"
    field = options_cls.model_fields.get(str(err["loc"][0]))
    hint = ""
    if field is not None:
        hint = f"; allowed: {type_name(field.annotation)}"
        if field.description:
            hint += f" ({field.description})"
    of = f" of {where}" if component else ""
    return f"bad value {_shown(err.get('input'))} for {section}.{key}{of}: {msg}{hint}"


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
