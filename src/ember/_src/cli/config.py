"""Training configs: read YAML or JSON keeping each value's line, check them against the schema.

A config is checked in two passes, both before anything trains: the JSON Schema
shipped beside this module (``schema.json``, read by a small validator for the
keywords it uses), then the meaning of the values (layer and loss names,
arguments, files) in :mod:`ember._src.cli.build`. Either pass reports a
:class:`ConfigError` naming the file, the line, the key, the bad value and what
is allowed there.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
from collections.abc import Mapping
from importlib import resources
from typing import Any

Path = tuple[str | int, ...]


class UserError(Exception):
    """A mistake the user can fix: printed as a message, never as a traceback."""


class ConfigError(UserError):
    """A bad config value, with where it is and what is allowed there."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        allowed: str | None = None,
        source_line: str | None = None,
    ) -> None:
        self.file, self.line, self.key, self.allowed = file, line, key, allowed
        self.problem = message
        where = file or "<config>"
        if line is not None:
            where += f":{line}"
        text = f"{where}: " + (f"{key}: " if key else "") + message
        if source_line is not None:
            text += f"\n    {line} | {source_line}"
        if allowed:
            text += f"\n  allowed: {allowed}"
        super().__init__(text)


def key_string(path: Path) -> str:
    """``("model", "layers", 2, "type")`` -> ``model.layers[2].type``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out or "(top level)"


def did_you_mean(value: Any, choices: list[str]) -> str:
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Config:
    """A loaded config: its values and, for every key path, the line it is on."""

    def __init__(self, data: Any, file: str, lines: dict[Path, int], text: str) -> None:
        self.data = data
        self.file = file
        self.lines = lines
        self._text = text.splitlines()

    @property
    def folder(self) -> str:
        return os.path.dirname(os.path.abspath(self.file))

    def line_of(self, path: Path) -> int | None:
        """The line of ``path``'s value, or of its nearest parent that has one."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return None

    def error(self, path: Path, message: str, allowed: str | None = None) -> ConfigError:
        line = self.line_of(path)
        src = self._text[line - 1].rstrip() if line and line <= len(self._text) else None
        return ConfigError(
            message,
            file=self.file,
            line=line,
            key=key_string(path),
            allowed=allowed,
            source_line=src,
        )


# ================================================================= loading
def load(path: str | os.PathLike[str]) -> Config:
    """Read a YAML or JSON config, keeping the line of every value."""
    try:
        import yaml
    except ImportError:
        raise UserError(
            "ember train reads configs with PyYAML, which is not installed: pip install pyyaml "
            "(or pip install 'ember[cli]')"
        ) from None
    file = os.fspath(path)
    if os.path.isdir(file):
        raise UserError(f"{file} is a folder; give a config file (.yaml, .yml or .json)")
    try:
        with open(file, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise UserError(f"{file}: no such config file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{file}: can't read it: {e}") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Path, int] = {}
        data = _value(loader, node, (), lines, file)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        kind = "JSON" if file.endswith(".json") else "YAML"
        raise ConfigError(
            f"not valid {kind}: {e.problem or e.context}", file=file, line=line
        ) from None
    finally:
        loader.dispose()
    if data is None:
        raise ConfigError(
            "the file is empty; a config is a mapping with model, data, solver", file=file
        )
    return Config(data, file, lines, text)


def _value(loader: Any, node: Any, path: Path, lines: dict[Path, int], file: str) -> Any:
    import yaml

    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise ConfigError(f"keys must be strings, got {key!r}", file=file, line=line)
            if key in out:
                raise ConfigError(
                    f"key {key!r} appears twice in this mapping (first on line "
                    f"{lines[(*path, key)]})",
                    file=file,
                    line=line,
                    key=key_string((*path, key)),
                )
            out[key] = _value(loader, value_node, (*path, key), lines, file)
            lines[(*path, key)] = (
                line
                if isinstance(value_node, yaml.CollectionNode)
                else (value_node.start_mark.line + 1)
            )
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_value(loader, v, (*path, i), lines, file) for i, v in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


# ================================================================= the schema
def schema() -> dict[str, Any]:
    """The JSON Schema of training configs (``schema.json`` inside the package)."""
    text = resources.files("ember._src.cli").joinpath("schema.json").read_text("utf-8")
    return json.loads(text)


#: The JSON Schema keywords the validator understands; the schema uses no others.
KEYWORDS = frozenset(
    ("$schema", "$id", "$ref", "$defs", "title", "description", "default", "type", "enum",
     "properties", "required", "additionalProperties", "items", "minItems", "minimum",
     "maximum", "exclusiveMinimum", "exclusiveMaximum", "pattern", "anyOf")
)  # fmt: skip

_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _is_type(value: Any, t: str) -> bool:
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "string":
        return isinstance(value, str)
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "boolean":
        return isinstance(value, bool)
    return value is None


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        text = json.dumps(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return "null" if value is None else repr(value)


class _Invalid(Exception):
    def __init__(self, path: Path, message: str, allowed: str | None = None) -> None:
        super().__init__(message)
        self.path, self.message, self.allowed = path, message, allowed


class Validator:
    """Checks a value against the schema subset in :data:`KEYWORDS`; fills in defaults."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root

    def _resolve(self, s: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in s:
            ref = s["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"only local $refs are supported, got {ref!r}")
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target[part]
            s = {**target, **{k: v for k, v in s.items() if k != "$ref"}}
        return s

    def check(self, value: Any, s: Mapping[str, Any], path: Path = ()) -> Any:
        """``value`` with defaults filled in; raises ``_Invalid`` at the first problem."""
        s = self._resolve(s)
        if "anyOf" in s:
            value = self._any_of(value, s, path)
        if "type" in s:
            types = s["type"] if isinstance(s["type"], list) else [s["type"]]
            if not any(_is_type(value, t) for t in types):
                want = " or ".join(_TYPES[t] for t in types)
                raise _Invalid(path, f"{_show(value)} is not {want}", want)
        if "enum" in s and value not in s["enum"]:
            choices = [str(c) for c in s["enum"]]
            raise _Invalid(
                path,
                f"{_show(value)} is not allowed here{did_you_mean(value, choices)}",
                ", ".join(choices),
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            for kw, ok, word in (
                ("minimum", lambda v, b: v >= b, ">="),
                ("maximum", lambda v, b: v <= b, "<="),
                ("exclusiveMinimum", lambda v, b: v > b, ">"),
                ("exclusiveMaximum", lambda v, b: v < b, "<"),
            ):
                if kw in s and not ok(value, s[kw]):
                    raise _Invalid(path, f"{_show(value)} is out of range", f"{word} {s[kw]}")
        if isinstance(value, str) and "pattern" in s:
            import re

            if not re.search(s["pattern"], value):
                raise _Invalid(
                    path, f"{_show(value)} has the wrong form", f"matches {s['pattern']}"
                )
        if isinstance(value, list):
            if len(value) < s.get("minItems", 0):
                raise _Invalid(path, "the list is too short", f"at least {s['minItems']} entries")
            if "items" in s:
                value = [self.check(v, s["items"], (*path, i)) for i, v in enumerate(value)]
        if isinstance(value, dict):
            value = self._object(value, s, path)
        return value

    def _object(self, value: dict[str, Any], s: Mapping[str, Any], path: Path) -> dict[str, Any]:
        props: Mapping[str, Any] = s.get("properties", {})
        if s.get("additionalProperties", True) is False:
            # Unknown keys first: a misspelt key is the likely cause of a missing one.
            for key in value:
                if key not in props:
                    raise _Invalid(
                        (*path, key),
                        f"unknown key {key!r}{did_you_mean(key, list(props))}",
                        ", ".join(props),
                    )
        for key in s.get("required", []):
            if key not in value:
                raise _Invalid(path, f"the key {key!r} is missing", ", ".join(props) or None)
        out = dict(value)
        for key, v in value.items():
            if key in props:
                out[key] = self.check(v, props[key], (*path, key))
        for key, p in props.items():
            p = self._resolve(p)
            if key not in out and "default" in p:
                out[key] = self.check(copy.deepcopy(p["default"]), p, (*path, key))
        return out

    def _any_of(self, value: Any, s: Mapping[str, Any], path: Path) -> Any:
        branches = [self._resolve(b) for b in s["anyOf"]]
        failures: list[_Invalid] = []
        for b in branches:
            try:
                return self.check(value, b, path)
            except _Invalid as e:
                failures.append(e)
        # Report the branch the value was meant for: the one whose type matches and whose
        # required keys are present; else list what the branches accept.
        fits = [
            (b, f)
            for b, f in zip(branches, failures)
            if "type" not in b
            or any(
                _is_type(value, t)
                for t in (b["type"] if isinstance(b["type"], list) else [b["type"]])
            )
        ]
        if isinstance(value, dict):
            keyed = [(b, f) for b, f in fits if all(k in value for k in b.get("required", []))]
            fits = keyed or fits
        if len(fits) == 1:
            raise fits[0][1]
        titles = [b.get("title", "?") for b in branches]
        raise _Invalid(path, f"{_show(value)} is none of the accepted forms", "; or ".join(titles))


def validate(config: Config) -> dict[str, Any]:
    """Check ``config`` against the schema; returns its values with defaults filled in."""
    try:
        return Validator(schema()).check(config.data, schema())
    except _Invalid as e:
        raise config.error(e.path, e.message, e.allowed) from None
