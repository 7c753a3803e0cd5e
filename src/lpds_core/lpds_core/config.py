"""The config schema: every setting is one typed dataclass field with its default and a one-line doc.

Why one module: YAML files, command-line flags, saved run configs and Python callers all go through the same
conversion and checks, so `lr: 1e-3` (a *string* to PyYAML) becomes 0.001 everywhere, `use_eps: "false"` is refused
everywhere (never silently True), and a new field gets its flag, its `--help` line and its checks by being declared.

    @dataclass
    class LoopConfig:
        env_steps: int = setting(100_000, "env-step budget", min=1)

A config may nest other configs (`agent: AgentConfig = nested(AgentConfig)`): YAML takes them as sections
(`agent: {delta: 8}`) or as flat keys (`delta: 8`), and the CLI flags are flat (`--delta`); `check_schema` makes sure
every flat name has exactly one home. Nothing here imports torch: the robot-side deployment code may use it.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, TypeVar

from .errors import ConfigError

C = TypeVar("C")
_MISSING = dataclasses.MISSING
# keys a run writes into its own config.yaml beside the settings; accepted (and ignored) when it is read back
META_KEYS = frozenset({"kind", "provenance"})


# ---------------------------------------------------------------------------------------------------------------
# declaring fields
# ---------------------------------------------------------------------------------------------------------------
def setting(default: Any, doc: str, *, choices: Iterable[Any] | None = None, min: float | None = None,
            max: float | None = None, above: float | None = None, flag: str | None = None) -> Any:
    """A config field: its default, a one-line doc (shown by `--help`) and the checks every source goes through.

    `min`/`max`: inclusive bounds; `above`: exclusive lower bound (δ > 0); `choices`: the allowed values;
    `flag`: the command-line name when it must differ from the field's (rare; names stay unique either way)."""
    meta = {"doc": doc, "choices": tuple(choices) if choices is not None else None, "min": min, "max": max,
            "above": above, "flag": flag}
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def nested(cls: type, doc: str = "", **defaults: Any) -> Any:
    """A section holding another config (its fields keep their own home; `defaults` override a few for this use)."""
    return dataclasses.field(default_factory=lambda: dataclasses.replace(cls(), **defaults),
                             metadata={"doc": doc or (cls.__doc__ or cls.__name__).strip().splitlines()[0],
                                       "nested": True})


def is_config(obj: Any) -> bool:
    return dataclasses.is_dataclass(obj)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _fields(cls: type) -> list[dataclasses.Field]:
    return list(dataclasses.fields(cls))


def _is_nested(f: dataclasses.Field, hint: Any) -> bool:
    return bool(f.metadata.get("nested")) or (isinstance(hint, type) and dataclasses.is_dataclass(hint))


def doc_of(f: dataclasses.Field) -> str:
    return str(f.metadata.get("doc", ""))


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not _MISSING:
        return f.default
    if f.default_factory is not _MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return _MISSING


# ---------------------------------------------------------------------------------------------------------------
# flat names: each leaf field's one home
# ---------------------------------------------------------------------------------------------------------------
def leaves(cls: type, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], dataclasses.Field, Any]]:
    """(path, field, type hint) of every non-nested field, nested sections included, in declaration order."""
    out = []
    hints = _hints(cls)
    for f in _fields(cls):
        hint = hints[f.name]
        if _is_nested(f, hint):
            out += leaves(hint, prefix + (f.name,))
        else:
            out.append((prefix + (f.name,), f, hint))
    return out


def check_schema(cls: type) -> dict[str, tuple[str, ...]]:
    """{flat name: path}; a flat name (or flag) used by two fields is a bug in the schema, refused here."""
    seen: dict[str, tuple[str, ...]] = {}
    flags: dict[str, tuple[str, ...]] = {}
    for path, f, _ in leaves(cls):
        name = path[-1]
        if name in seen:
            raise TypeError(f"{cls.__name__}: setting {name!r} is declared twice ({'.'.join(seen[name])} and "
                            f"{'.'.join(path)}); every setting must have one home")
        seen[name] = path
        flag = flag_name(f, name)
        if flag in flags:
            raise TypeError(f"{cls.__name__}: flag {flag} is derived twice ({'.'.join(flags[flag])}, {'.'.join(path)})")
        flags[flag] = path
    return seen


def flag_name(f: dataclasses.Field, name: str | None = None) -> str:
    return "--" + (f.metadata.get("flag") or (name or f.name).replace("_", "-"))


# ---------------------------------------------------------------------------------------------------------------
# conversion: one value to one field's type, or one ConfigError naming where, key, value and expected type
# ---------------------------------------------------------------------------------------------------------------
def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in typing.get_args(hint))
    if origin in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return f"a list of {_type_name(args[0])}" if args else "a list"
    return getattr(hint, "__name__", str(hint))


class _Bad(Exception):
    pass


def _convert(value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "~")
                             and type(None) in args):
            if type(None) in args:
                return None
            raise _Bad
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a)
            except _Bad:
                continue
        raise _Bad
    if origin is typing.Literal:
        for choice in typing.get_args(hint):
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise _Bad
    if origin in (list, tuple):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise _Bad
        args = typing.get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise _Bad
            return tuple(_convert(v, a) for v, a in zip(value, args))
        item = args[0] if args else Any
        items = [_convert(v, item) for v in value]
        return tuple(items) if origin is tuple else items
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Bad  # "false", 0, 1: refused, never guessed
    if hint is int:
        if isinstance(value, bool):
            raise _Bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                try:
                    f = float(value)
                except ValueError:
                    raise _Bad from None
                if f.is_integer():
                    return int(f)
        raise _Bad
    if hint is float:
        if isinstance(value, bool):
            raise _Bad
        if isinstance(value, (int, float)):
            out = float(value)
        elif isinstance(value, str):  # PyYAML reads `1e-3` (no dot) as a string
            try:
                out = float(value.replace("_", ""))
            except ValueError:
                raise _Bad from None
        else:
            raise _Bad
        if not math.isfinite(out):
            raise _Bad
        return out
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, Path):
            return str(value)
        raise _Bad
    if isinstance(value, hint):
        return value
    raise _Bad


def convert(value: Any, hint: Any, key: str, where: str) -> Any:
    try:
        return _convert(value, hint)
    except _Bad:
        raise ConfigError(f"{where}: {key}={value!r} is not {_type_name(hint)}") from None


def _check_value(f: dataclasses.Field, value: Any, key: str, where: str) -> None:
    m = f.metadata
    if m.get("choices") and value is not None and value not in m["choices"]:
        raise ConfigError(f"{where}: {key}={value!r} is not valid; choose one of "
                          f"{', '.join(map(str, m['choices']))}")
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if v is None or isinstance(v, (bool, str)):
            continue
        if m.get("min") is not None and v < m["min"]:
            raise ConfigError(f"{where}: {key} must be >= {m['min']:g}, got {v!r} — {doc_of(f)}")
        if m.get("max") is not None and v > m["max"]:
            raise ConfigError(f"{where}: {key} must be <= {m['max']:g}, got {v!r} — {doc_of(f)}")
        if m.get("above") is not None and not v > m["above"]:
            raise ConfigError(f"{where}: {key} must be > {m['above']:g}, got {v!r} — {doc_of(f)}")


# ---------------------------------------------------------------------------------------------------------------
# building configs
# ---------------------------------------------------------------------------------------------------------------
def _route(cls: type, data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A nested dict from `data`, whose keys may be sections or flat names of nested fields."""
    data = dict(data)
    legacy = getattr(cls, "legacy_keys", None)
    if callable(legacy):
        data = legacy(data)
    names = check_schema(cls)
    hints = _hints(cls)
    sections = {f.name for f in _fields(cls) if _is_nested(f, hints[f.name])}
    out: dict[str, Any] = {}
    unknown = []
    for key, value in data.items():
        if key in sections:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: section {key!r} must be a mapping of key: value, got {value!r}")
            sub = _route(hints[key], value, f"{where} [{key}]")
            out.setdefault(key, {})
            _deep_update(out[key], sub)
        elif key in names:
            path = names[key]
            _set(out, path, value)
        else:
            unknown.append(key)
    if unknown:
        valid = sorted(set(names) | sections)
        raise ConfigError(f"{where}: unknown config key{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(map(repr, sorted(unknown)))}; valid keys are: {', '.join(valid)}")
    return out


def _set(d: dict, path: tuple[str, ...], value: Any) -> None:
    for p in path[:-1]:
        d = d.setdefault(p, {})
    d[path[-1]] = value


def _deep_update(d: dict, new: Mapping[str, Any]) -> None:
    for k, v in new.items():
        if isinstance(v, Mapping) and isinstance(d.get(k), dict):
            _deep_update(d[k], v)
        else:
            d[k] = v


def _construct(cls: type, nested_data: Mapping[str, Any], where: str, base: Any = None) -> Any:
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in _fields(cls):
        hint = hints[f.name]
        start = getattr(base, f.name) if base is not None else default_of(f)
        if _is_nested(f, hint):
            kwargs[f.name] = _construct(hint, nested_data.get(f.name, {}), where, start)
        elif f.name in nested_data:
            flag = flag_name(f) if where.startswith("command line") else f.name
            value = convert(nested_data[f.name], hint, flag, where)
            _check_value(f, value, flag, where)
            kwargs[f.name] = value
        else:
            kwargs[f.name] = start
    return cls(**kwargs)


def build(cls: type[C], data: Mapping[str, Any] | None = None, where: str = "config", base: C | None = None) -> C:
    """`cls` from a mapping (sections or flat keys), every value converted and checked; `base` gives the values of
    the keys `data` does not set (default: the fields' defaults). Unknown keys are one error listing the valid ones."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping of key: value, got {type(data).__name__}")
    cfg = _construct(cls, _route(cls, data, where), where, base)
    return validate(cfg, where)


def validate(cfg: C, where: str = "config") -> C:
    """Field checks (types, bounds, choices) of every value, then the config's own `check()` (cross-field rules)."""
    hints = _hints(type(cfg))
    for f in _fields(type(cfg)):
        value = getattr(cfg, f.name)
        if _is_nested(f, hints[f.name]):
            validate(value, where)
            continue
        value = convert(value, hints[f.name], f.name, where)
        _check_value(f, value, f.name, where)
        object.__setattr__(cfg, f.name, value)
    check = getattr(cfg, "check", None)
    if callable(check):
        check()
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (tuples as lists) that `yaml.safe_dump` writes and `build` reads back."""
    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return {f.name: (to_dict(getattr(cfg, f.name)) if is_config(getattr(cfg, f.name))
                     else plain(getattr(cfg, f.name))) for f in _fields(type(cfg))}


def flatten(cfg_or_dict: Any) -> dict[str, Any]:
    """{leaf name: value} of a config or its nested dict (section names dropped: leaf names are unique)."""
    d = to_dict(cfg_or_dict) if is_config(cfg_or_dict) else dict(cfg_or_dict)
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(flatten(v))
        else:
            out[k] = v
    return out


def strip_meta(data: Mapping[str, Any], kind: str | None, where: str) -> dict[str, Any]:
    """A run's own config.yaml read back as settings: its `kind` must match, its provenance keys are dropped."""
    data = dict(data)
    if "kind" in data and kind is not None and data["kind"] != kind:
        raise ConfigError(f"{where} is the config of a '{data['kind']}' run; this command takes '{kind}' settings")
    return {k: v for k, v in data.items() if k not in META_KEYS}


def require_count(value: int | None, flag: str, minimum: int = 1, meaning: str = "") -> None:
    """A count given to a command without a config class (demos, eval): refused up front below `minimum`."""
    if value is not None and value < minimum:
        note = f" ({meaning})" if meaning else ""
        raise ConfigError(f"{flag} must be >= {minimum}{note}, got {value}")


# ---------------------------------------------------------------------------------------------------------------
# command-line flags, derived from the schema
# ---------------------------------------------------------------------------------------------------------------
def _show(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return " ".join(map(str, v)) if v else "[]"
    return "none" if v is None or v == "" else str(v)


def add_flags(parser: argparse.ArgumentParser, cls: type, *, skip: Iterable[str] = (),
              required: Iterable[str] = ()) -> None:
    """One flag per leaf field of `cls` (`--env-steps`, `--use-eps/--no-use-eps`, lists as several values);
    `--help` shows each one's doc and default. Flags default to None (= not given), so defaults < file < flags."""
    skip, required = set(skip), set(required)
    defaults = {path[-1]: v for path, v in _leaf_values(cls())}
    groups: dict[tuple[str, ...], Any] = {(): parser}
    hints = _hints(cls)
    for f in _fields(cls):  # one --help section per nested config (agent:, train:)
        if _is_nested(f, hints[f.name]):
            groups[(f.name,)] = parser.add_argument_group(f"{f.name} settings (YAML section `{f.name}:`)",
                                                          doc_of(f))
    for path, f, hint in leaves(cls):
        name = path[-1]
        if name in skip:
            continue
        group = groups.get(path[:1] if len(path) > 1 else (), parser)
        flag = flag_name(f, name)
        default = defaults[name]
        choices = f.metadata.get("choices")
        lit = _literal_choices(hint)
        doc = doc_of(f)
        kw: dict[str, Any] = {"dest": name, "default": None}
        inner = _strip_optional(hint)
        if inner is bool:
            kw["action"] = argparse.BooleanOptionalAction
            kw["help"] = f"{doc} (default: {'on' if default else 'off'})"
        else:
            kw["help"] = f"{doc} (default: {_show(default)})"
            origin = typing.get_origin(inner)
            if origin in (list, tuple):
                args = [a for a in typing.get_args(inner) if a is not Ellipsis]
                fixed = origin is tuple and typing.get_args(inner) and typing.get_args(inner)[-1] is not Ellipsis
                kw["nargs"] = len(args) if fixed else "+"
                kw["metavar"] = _metavar(args[0] if args else str) or "V"
            else:
                kw["metavar"] = ("{" + ",".join(map(str, choices or lit)) + "}") if (choices or lit) \
                    else _metavar(inner)
        if name in required:
            kw["help"] = kw["help"].replace(f"(default: {_show(default)})", "(required)")
        group.add_argument(flag, **kw)


def _metavar(hint: Any) -> str | None:
    return {int: "N", float: "X"}.get(hint)


def _literal_choices(hint: Any) -> tuple:
    inner = _strip_optional(hint)
    return typing.get_args(inner) if typing.get_origin(inner) is typing.Literal else ()


def _strip_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _leaf_values(cfg: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out = []
    for f in _fields(type(cfg)):
        v = getattr(cfg, f.name)
        out += _leaf_values(v, prefix + (f.name,)) if is_config(v) else [(prefix + (f.name,), v)]
    return out


def given_flags(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """{flat name: value} of the schema flags given on the command line (argparse stored None for the others)."""
    names = check_schema(cls)
    out = {}
    for k, v in vars(args).items():
        if k in names and v is not None:
            out[k] = v[0] if isinstance(v, list) and len(v) == 1 and str(v[0]).lower() in ("none", "null") else v
    return out


def resolve(cls: type[C], file: str | Path | None, flags: Mapping[str, Any], *, kind: str | None = None,
            base: C | None = None, read: Callable[[str | Path], Mapping[str, Any]] | None = None) -> C:
    """defaults (or `base`) < YAML `file` < command-line `flags`, each layer converted and checked with its
    source named (file name, or the flag) in the error."""
    cfg = base if base is not None else cls()
    if file:
        data = strip_meta((read or read_yaml)(file), kind, str(file))
        cfg = _construct(cls, _route(cls, data, str(file)), str(file), cfg)
    if flags:
        cfg = _construct(cls, _route(cls, dict(flags), "command line"), "command line", cfg)
    return validate(cfg, str(file) if file else "command line")


def read_yaml(path: str | Path) -> Mapping[str, Any]:
    """A YAML config file as a mapping, with a ConfigError that names the file for every way it can be wrong."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config file {path} must hold a mapping of key: value")
    return raw


def conflicts(saved: Any, cfg: Any, keys: Iterable[str],
              same: Callable[[str, Any, Any], bool] | None = None) -> list[str]:
    """'key: saved → now' for each of `keys` whose value differs between two configs (flattened); `same(key, a, b)`
    may say two different spellings are one value (e.g. two paths to the same folder)."""
    a, b = flatten(saved), flatten(cfg)
    eq = same or (lambda _k, x, y: x == y)
    return [f"{k}={a.get(k)!r} (run) vs {b.get(k)!r} (now)" for k in keys if not eq(k, a.get(k), b.get(k))]
