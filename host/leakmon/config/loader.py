"""Read a TOML file and validate it against a model: the one loader behind scenario,
site, recipe and board files.

The models (pydantic, strict: no "1" for 1.0, no true for 1) say the types, the
bounds and which keys exist; their structured errors become one line that names the
file, the table with its entry number and the key, e.g.
"station.toml [[segments]] #2: 'volume_m3' must be positive, got -1.0". What a model
cannot say (a name that must exist elsewhere in the file) the caller checks after,
and reports through fail() in the same words.
"""

from __future__ import annotations

import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from leakmon.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

TOP = "(top level)"
TYPE_NAMES = {"str": "a string", "float": "a number", "int": "an integer", "bool": "true or false"}


class Model(BaseModel):
    """A table of a leakmon file: unknown keys, wrong types and non-finite numbers refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def _i2c_address(v: int) -> int:
    if not 0x08 <= v <= 0x77:
        raise ValueError(f"must be a 7-bit I2C address 0x08..0x77 (0x00-0x07 and 0x78-0x7f are reserved), got 0x{v:x}")
    return v


def _mux_address(v: int) -> int:
    if not 0x70 <= v <= 0x77:
        raise ValueError(f"must be a TCA9548A address 0x70..0x77, got 0x{v:x}")
    return v


def _probability(v: float) -> float:
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"is a probability: 0..1, got {v!r}")
    return v


Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Count = Annotated[int, Field(ge=0)]
I2cAddress = Annotated[int, AfterValidator(_i2c_address)]
MuxAddress = Annotated[int, AfterValidator(_mux_address)]
Probability = Annotated[float, AfterValidator(_probability)]


def fail(source: str, table: str, message: str) -> ConfigError:
    """The error for a check the models cannot express, worded like theirs."""
    return ConfigError(f"{source} {table}: {message}")


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """A TOML file as a dict; what ("scenario", "recipe") names it in the errors."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror or e}") from e
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{what} {path} is not valid TOML: {e}") from e


def parse_toml(text: str, source: str, what: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{what} {source} is not valid TOML: {e}") from e


def validate(model: type[M], data: Any, source: str) -> M:
    """data as a model, or ConfigError naming source, table and key of the first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(describe(model, e, source)) from None


def _submodel(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """(the model a field holds, whether as an array of them) or (None, False)."""
    many = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return None, False
            annotation = args[0]
        elif origin is list and not many:
            annotation, many = typing.get_args(annotation)[0], True
        else:
            break
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, many
    return None, False


def describe(model: type[BaseModel], e: ValidationError, source: str) -> str:
    """One line for the first error: walk its location through the models to the table."""
    errors = e.errors(include_url=False)
    # A misspelt key also leaves a required one missing: name the misspelling.
    err = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
    loc = list(err["loc"])
    cur: type[BaseModel] = model
    tables: list[str] = []
    entry: int | None = None
    last_array = False
    key: str | None = None
    held: type[BaseModel] | None = None  # the model of an array-of-tables key itself
    i = 0
    while i < len(loc):
        part = loc[i]
        if not isinstance(part, str):
            break
        field = cur.model_fields.get(part)
        sub, many = _submodel(field.annotation) if field is not None else (None, False)
        inside = i + 1 < len(loc) and (isinstance(loc[i + 1], int) if many else isinstance(loc[i + 1], str))
        if sub is None or not inside:
            key, held, i = part, sub if many else None, i + 1
            break
        tables.append(part)
        if many:
            entry, last_array, i = int(loc[i + 1]) + 1, True, i + 2
            if i == len(loc):  # the entry itself is not a table
                key = None
                break
        else:
            last_array, i = False, i + 1
        cur = sub
    name = ".".join(tables)
    table = TOP if not tables else (f"[[{name}]]" if last_array else f"[{name}]")
    if entry is not None:
        table += f" #{entry}"
    rest = loc[i:]
    what = f"'{key}'" + "".join(f" entry #{int(p) + 1}" for p in rest if isinstance(p, int))
    if key is None:
        what = "this entry"
    tags: list[str] = []  # the members of a union type, each with its own error
    if rest and isinstance(rest[0], str):
        for other in errors:
            t = other["loc"][i] if len(other["loc"]) > i and list(other["loc"][:i]) == loc[:i] else None
            if isinstance(t, str) and TYPE_NAMES.get(t, t) not in tags:
                tags.append(TYPE_NAMES.get(t, t))
    return f"{source} {table}: {_message(err, what, cur, held, tags)}"


def _message(err: Any, what: str, cur: type[BaseModel], held: type[BaseModel] | None, tags: list[str]) -> str:
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "missing":
        return f"missing {what}"
    if kind == "extra_forbidden":
        return f"unknown key {what} (allowed: {', '.join(k for k, f in cur.model_fields.items() if not f.exclude)})"
    if tags:
        return f"{what} must be {' or '.join(tags)}, got {got!r}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        bound = next(iter(ctx.values()))
        if kind == "greater_than" and bound == 0:
            return f"{what} must be positive, got {got!r}"
        return f"{what} must be {bounds[kind]} {bound:g}, got {got!r}"
    if kind in ("float_type", "finite_number", "float_parsing"):
        return f"{what} must be a finite number, got {got!r}"
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return f"{what} must be an integer, got {got!r}"
    if kind == "string_type":
        return f"{what} must be a string, got {got!r}"
    if kind == "bool_type":
        return f"{what} must be true or false, got {got!r}"
    if kind == "literal_error":
        allowed = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{what} = {got!r} is not one of {allowed}"
    if kind == "list_type":
        return f"{what} must be an array of tables ([[{what.strip(chr(39))}]])" if held else f"{what} must be an array"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"{what} must be a table, got {got!r}"
    if kind == "value_error":
        return f"{what} {ctx.get('error', err['msg'])}"
    return f"{what}: {err['msg']}"
