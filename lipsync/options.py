"""Options defined once: each group is a frozen dataclass whose fields carry their help, choices
and check (`option`). An instance is validated once, when it is made (`Options.__post_init__`
runs every field's check: a bad value is an InputError naming it); the command line's flags
(`add_flags`, `from_args`) and the web page's controls are generated from the same fields.

    @dataclasses.dataclass(frozen=True)
    class Speech(Options):
        rate: Optional[int] = option(None, "speaking rate in words per minute", check=positive("rate"))

    parser = argparse.ArgumentParser()
    add_flags(parser, [Speech])                 # --rate RATE
    speech = from_args(Speech, parser.parse_args())
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Type, TypeVar

from .errors import InputError

T = TypeVar("T", bound="Options")


def option(default: Any, help: str, *, choices: Optional[Sequence[Any]] = None,
           check: Optional[Callable[[Any], None]] = None, flag: Optional[str] = None, negate: bool = False,
           metavar: Any = None, from_flag: Optional[Callable[[Any], Any]] = None, cli: bool = True) -> Any:
    """A dataclass field with what the front ends need: `help` (one line), `choices` (checked,
    and offered), `check(value)` (raises InputError), and for the command line: `flag` (default
    --<name>), `negate` (a switch that stores False, such as --no_cache), `metavar` (a tuple for
    a field of several numbers) and `from_flag` (the flag's value -> the field's). `cli=False`:
    no flag."""
    return dataclasses.field(default=default, metadata=dict(help=help, choices=choices, check=check, flag=flag,
                                                            negate=negate, metavar=metavar, from_flag=from_flag,
                                                            cli=cli))


def one_of(what: str, choices: Sequence[str]) -> Callable[[Any], None]:
    """A check: the value is one of `choices` ("unknown <what> 'x' (choose from a, b)")."""
    def check(value: Any) -> None:
        if value not in choices:
            raise InputError(f"unknown {what} {value!r} (choose from {', '.join(map(str, choices))})")
    return check


def finite_range(what: str, low: float, high: float, unit: str = "", low_open: bool = False) -> Callable[[Any], None]:
    """A check: a finite number between `low` and `high` (above `low` when `low_open`); None passes."""
    def check(value: Any) -> None:
        if value is None:
            return
        ok = math.isfinite(value) and (value > low if low_open else value >= low) and value <= high
        if not ok:
            bound = f"more than {low:g} and at most {high:g}" if low_open else f"between {low:g} and {high:g}"
            raise InputError(f"{what} {value:g}{unit}: must be {bound}")
    return check


def positive(what: str, unit: str = "") -> Callable[[Any], None]:
    """A check: a finite number above 0."""
    def check(value: Any) -> None:
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"{what} {value:g}{unit}: must be more than 0")
    return check


def at_least(what: str, low: int) -> Callable[[Any], None]:
    """A check: a whole number at least `low`; None passes."""
    def check(value: Any) -> None:
        if value is not None and value < low:
            raise InputError(f"{what} {value}: must be {low} or more")
    return check


class Options:
    """The base of an options dataclass (declare it `@dataclasses.dataclass(frozen=True)`)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("choices") is not None and f.metadata.get("check") is None:
                one_of(f.name, f.metadata["choices"])(value)
            if f.metadata.get("check") is not None:
                f.metadata["check"](value)

    @classmethod
    def names(cls) -> Tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def pick(cls: Type[T], values: Dict[str, Any]) -> T:
        """An instance from the entries of `values` that are fields of this class (the rest are
        ignored); validated."""
        return cls(**{k: v for k, v in values.items() if k in cls.names()})

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> Dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def fields_of(classes: Iterable[type]) -> List[dataclasses.Field]:
    """The fields of several options classes, each name once (the first class that has it)."""
    seen: Dict[str, dataclasses.Field] = {}
    for cls in classes:
        for f in dataclasses.fields(cls):
            seen.setdefault(f.name, f)
    return list(seen.values())


def _type(cls: type, name: str) -> Any:
    """The field's type without Optional: int, float, str, bool or a Tuple[...]."""
    kind = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) is typing.Union and len(args) == 1:
        kind = args[0]
    return kind


@dataclasses.dataclass(frozen=True)
class Described:
    """One option as a front end shows it (`describe`)."""

    name: str
    kind: Any  # int, float, str or bool (of each number, for a field of several)
    default: Any
    help: str
    choices: Optional[Tuple[Any, ...]] = None
    count: int = 1  # numbers in the field (4 for pads)
    metavar: Any = None


def describe(cls: type) -> Dict[str, Described]:
    """{name: Described} of the fields of an options class, for the web page's controls."""
    out = {}
    for f in dataclasses.fields(cls):
        kind, count = _type(cls, f.name), 1
        if typing.get_origin(kind) is tuple:
            items = typing.get_args(kind)
            kind, count = items[0], len(items)
        choices = f.metadata.get("choices")
        out[f.name] = Described(f.name, kind, f.default, f.metadata.get("help", ""),
                                tuple(choices) if choices is not None else None, count, f.metadata.get("metavar"))
    return out


def add_flags(parser: argparse.ArgumentParser, classes: Sequence[type], helps: Optional[Dict[str, str]] = None) -> None:
    """Adds a flag for every field of `classes` (once per name; `helps` may give a name a help
    of its own, such as one that covers several generators)."""
    owners = {}
    for cls in classes:
        for f in dataclasses.fields(cls):
            owners.setdefault(f.name, cls)
    for f in fields_of(classes):
        meta = f.metadata
        if not meta.get("cli", True):
            continue
        flag = meta.get("flag") or f"--{f.name}"
        text = (helps or {}).get(f.name, meta["help"])
        kind = _type(owners[f.name], f.name)
        if kind is bool:  # a switch; a negated one (--no_cache) keeps its own name, turned over by from_args
            parser.add_argument(flag, dest=_dest(f), action="store_true", help=text)
            continue
        kwargs: Dict[str, Any] = dict(dest=f.name, help=text, default=f.default)
        if typing.get_origin(kind) is tuple:
            items = typing.get_args(kind)
            kwargs.update(type=items[0], nargs=len(items), metavar=meta.get("metavar"))
            if f.default is not None:
                kwargs["default"] = list(f.default)
        else:
            kwargs.update(type=kind)
            if meta.get("metavar"):
                kwargs["metavar"] = meta["metavar"]
        if meta.get("choices") is not None:
            kwargs["choices"] = list(meta["choices"])
        parser.add_argument(flag, **kwargs)


def _dest(f: dataclasses.Field) -> str:
    """The parsed flags' attribute of a field: its name, or a negated switch's own (no_cache)."""
    return f.metadata["flag"].lstrip("-") if f.metadata.get("negate") else f.name


def from_args(cls: Type[T], args: argparse.Namespace) -> T:
    """The options of `cls` from parsed flags (see `add_flags`); validated."""
    values = {}
    for f in dataclasses.fields(cls):
        if not hasattr(args, _dest(f)):
            continue
        value = getattr(args, _dest(f))
        if f.metadata.get("negate"):
            value = not value
        convert = f.metadata.get("from_flag")
        if convert is not None:
            value = convert(value)
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return cls(**values)
