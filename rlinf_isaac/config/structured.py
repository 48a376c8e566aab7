"""Strict conversion of plain dicts (composed Hydra YAML) into typed config dataclasses.

Every key must map to a dataclass field: an unknown key is an error naming its dotted
path, the valid keys and the closest match. Values are type-checked against the field
annotations (bool, int, float, str, Optional, Literal, list/tuple, dict, nested dataclasses).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

__all__ = ["ConfigError", "from_dict", "to_dict", "check"]


class ConfigError(ValueError):
    """A config value is wrong: the message names the dotted key, the value and what is valid."""


def check(cond: bool, key: str, value: Any, valid: str) -> None:
    """Raise ConfigError(``key``) unless ``cond``: "<key> = <value>: expected <valid>"."""
    if not cond:
        raise ConfigError(f"{key} = {value!r}: expected {valid}")


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        check(value in get_args(tp), key, value, f"one of {_type_name(tp)}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            check(type(None) in args, key, value, _type_name(tp))
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key} = {value!r}: expected {_type_name(tp)}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin in (list, tuple):
        check(isinstance(value, (list, tuple)), key, value, f"a list ({_type_name(tp)})")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            check(len(value) == len(args), key, value, f"a list of {len(args)} items")
            return tuple(_convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        out = [_convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        check(isinstance(value, dict), key, value, "a mapping")
        _, vt = get_args(tp) or (Any, Any)
        return {str(k): _convert(vt, v, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        check(isinstance(value, bool), key, value, "true or false")
        return value
    if tp is int:
        check(isinstance(value, int) and not isinstance(value, bool), key, value, "an integer")
        return value
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        check(ok, key, value, "a number")
        return float(value)
    if tp is str:
        check(isinstance(value, str), key, value, "a string")
        return value
    raise TypeError(f"unsupported config annotation {tp!r} at {key}")


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``data`` (a mapping), strictly.

    Unknown keys, wrong types and failing ``__post_init__`` checks raise ConfigError with
    the dotted key. Missing keys take the dataclass defaults (a field without default is
    required). A class with a ``resolve_subclass(data)`` classmethod is replaced by the class it
    returns (a registered family chosen by a key of ``data``); keys listed in a class's
    ``IGNORED_KEYS`` are accepted and dropped.
    """
    where = prefix or cls.__name__
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where} = {data!r}: expected a mapping of keys for {cls.__name__}")
    resolve = getattr(cls, "resolve_subclass", None)
    if resolve is not None:  # a registered family (e.g. actor.model): the data names its class
        cls = resolve(data)
    ignored = getattr(cls, "IGNORED_KEYS", ())  # keys a published format carries that mean nothing here
    data = {k: v for k, v in data.items() if k not in ignored}
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        k = unknown[0]
        close = difflib.get_close_matches(str(k), list(fields), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"{_join(prefix, k)}: unknown key{hint}; valid keys under {where}: "
            f"{', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, f in fields.items():
        key = _join(prefix, name)
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: required key is missing ({_type_name(hints[name])})")
    try:
        return cls(**kwargs)
    except ConfigError as e:
        if prefix and not str(e).startswith(prefix):
            raise ConfigError(f"{prefix}.{e}") from None
        raise


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def to_dict(obj: Any) -> Any:
    """Inverse of :func:`from_dict` (tuples become lists, for YAML/JSON)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj

