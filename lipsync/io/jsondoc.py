"""JSON documents from files a user hands over (a panel's key and its judges' scores, a
checkpoint's metadata, a frame folder's index): read, then checked field by field, so that
anything wrong is one line naming the file and the field, never a KeyError or TypeError.
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable, Optional

from ..errors import InputError

_MISSING = object()
_KINDS = {int: "a whole number", float: "a number", str: "text", dict: "an object", list: "a list", bool: "true or false"}


def read(path: str, what: str) -> Any:
    """The JSON value in the file `path` (InputError when it is unreadable or not JSON)."""
    from .media import check_readable

    check_readable(path, what)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, a number too long, nesting too deep
        raise InputError(f"{path}: not a {what} (invalid JSON: {str(exc)[:80]})") from None


def parse(text: str, where: str, what: str) -> Any:
    """The JSON value in `text` (InputError naming `where` when it is not JSON)."""
    try:
        return json.loads(text)
    except (ValueError, TypeError, RecursionError) as exc:
        raise InputError(f"{where}: not a {what} (invalid JSON: {str(exc)[:80]})") from None


def require(doc: Any, key: str, kind: type, where: str, what: str, *, default: Any = _MISSING,
            check: Optional[Callable[[Any], bool]] = None, expected: Optional[str] = None) -> Any:
    """`doc[key]`, which must be of `kind` (int excludes true/false; float takes whole numbers
    and must be finite) and pass `check`; `default` when it is missing or null, if given.
    `expected` describes a valid value in the message."""
    if not isinstance(doc, dict):
        raise InputError(f"{where}: the {what} must be a JSON object, not {_name(doc)}")
    value = doc.get(key, _MISSING)
    if value is _MISSING or (value is None and default is not _MISSING):  # null is "not given"
        if default is not _MISSING:
            return default
        raise InputError(f"{where}: the {what} has no {key!r} field")
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value) if abs(value) < 1e300 else math.inf, True
    if ok and kind is float:
        ok = math.isfinite(value)
    if not ok or (check is not None and not check(value)):
        raise InputError(f"{where}: the {what}{chr(39) if what.endswith('s') else chr(39) + 's'} field {key!r} must be {expected or _KINDS.get(kind, kind.__name__)}, "
                         f"not {json.dumps(value)[:40]}")
    return value


def _name(value: Any) -> str:
    return "null" if value is None else _KINDS.get(type(value), type(value).__name__)
