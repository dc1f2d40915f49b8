"""A launch form built from the API's own OpenAPI schema, so it shows every spec field with its limits.

The dashboard never imports the spec models: the schema that the API publishes
is the single source of field names, allowed values, ranges and help texts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import streamlit as st

KEY_PREFIX = "spec."
UNSET = "(default)"


@dataclass(frozen=True)
class Field:
    """One leaf of the spec: its dotted path and its JSON schema."""

    path: str
    schema: dict[str, Any]
    nullable: bool

    @property
    def key(self) -> str:
        return KEY_PREFIX + self.path

    @property
    def optional(self) -> bool:
        """Whether the form may leave the field out, so that the server applies its default.

        A field whose default comes from a factory, such as train.lr_milestones,
        has no default in the schema, so the form cannot show it.
        """
        return self.nullable or "default" not in self.schema

    @property
    def label(self) -> str:
        return self.schema.get("title") or self.path.rsplit(".", 1)[-1]


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        target = components[schema["$ref"].rsplit("/", 1)[-1]]
        return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return {**_resolve(schema["allOf"][0], components), **{k: v for k, v in schema.items() if k != "allOf"}}
    return schema


def spec_sections(openapi: dict[str, Any], root: str = "RunSpec") -> dict[str, list[Field]]:
    """Return the spec's leaf fields grouped by top-level section ('model', 'data', ...; '' for top-level)."""
    components = openapi["components"]["schemas"]
    sections: dict[str, list[Field]] = {}

    def walk(schema: dict[str, Any], prefix: str, section: str) -> None:
        for name, prop in schema.get("properties", {}).items():
            resolved = _resolve(prop, components)
            path = f"{prefix}{name}"
            if resolved.get("type") == "object" and "properties" in resolved:
                walk(resolved, f"{path}.", section or name)
                continue
            options = resolved.get("anyOf", [])
            nullable = any(option.get("type") == "null" for option in options)
            sections.setdefault(section, []).append(Field(path, resolved, nullable))

    walk(components[root], "", "")
    return sections


def format_number(value: float) -> str:
    """Write a schema bound as people read it: 8 rather than 8.0, 2147483647 rather than 2.14748e+09."""
    if float(value).is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:g}"


def describe_range(schema: dict[str, Any]) -> str:
    """Return "Range: ≥ low, ≤ high." from a JSON schema's bounds, or "" when it has none."""
    bounds = []
    if "minimum" in schema:
        bounds.append(f"≥ {format_number(schema['minimum'])}")
    if "exclusiveMinimum" in schema:
        bounds.append(f"> {format_number(schema['exclusiveMinimum'])}")
    if "maximum" in schema:
        bounds.append(f"≤ {format_number(schema['maximum'])}")
    if "exclusiveMaximum" in schema:
        bounds.append(f"< {format_number(schema['exclusiveMaximum'])}")
    if not bounds:
        return ""
    return "Range: " + ", ".join(bounds) + "."


def _variants(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the non-null alternatives of a schema, with nested anyOf lists flattened."""
    if "anyOf" not in schema:
        return [schema]
    variants = []
    for option in schema["anyOf"]:
        if option.get("type") != "null":
            variants.extend(_variants(option))
    return variants


def _describe_variant(variant: dict[str, Any]) -> list[str]:
    parts = [describe_range(variant)]
    if "enum" in variant:
        parts.append("Allowed: " + ", ".join(str(value) for value in variant["enum"]) + ".")
    if variant.get("type") == "array":
        items = variant.get("items", {})
        kind = "whole numbers" if items.get("type") == "integer" else "values"
        parts.append(f"Enter {kind} separated by commas.")
        parts.append(describe_range(items).replace("Range:", "Range of each:"))
        if "maxItems" in variant:
            parts.append(f"At most {variant['maxItems']} values.")
    if variant.get("type") == "string" and "maxLength" in variant:
        parts.append(f"At most {variant['maxLength']} characters.")
    if "$ref" in variant:
        parts.append('Or a JSON object such as {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}.')
    return parts


def help_text(field: Field) -> str:
    """Describe a field with its meaning, unit, range and allowed values, all taken from the schema."""
    schema = field.schema
    parts = [schema.get("description", "")]
    for variant in _variants(schema):
        parts.extend(_describe_variant(variant))
    if field.optional:
        if _kind(field) == "select":
            parts.append(f"Choose {UNSET} to use the default.")
        else:
            parts.append("Leave empty for the default.")
    return " ".join(part for part in parts if part)


def schema_property(openapi: dict[str, Any], model: str, name: str) -> dict[str, Any]:
    """Return the JSON schema of one property of a component, such as RunSpec.seed."""
    return openapi["components"]["schemas"][model]["properties"][name]


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, dict) and name != "normalization":
            flat.update(_flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _default(field: Field) -> Any:
    return field.schema.get("default")


def _display_value(field: Field, value: Any) -> Any:
    """Convert a spec value to what the field's widget holds."""
    kind = _kind(field)
    if kind == "select":
        return UNSET if value is None else value
    if kind in ("list", "json"):
        if value is None:
            return ""
        if kind == "list":
            return ", ".join(str(item) for item in value)
        return value if isinstance(value, str) else json.dumps(value)
    if kind == "text":
        return value or ""
    if kind == "float" and value is not None:
        return float(value)
    if kind == "int" and value is not None:
        return int(value)
    return value


def _kind(field: Field) -> str:
    options = _variants(field.schema)
    if len(options) > 1:
        return "json"
    option = options[0]
    if "enum" in option:
        return "select"
    return {"boolean": "bool", "integer": "int", "number": "float", "array": "list"}.get(option.get("type", ""), "text")


def apply_prefill(sections: dict[str, list[Field]], spec: dict[str, Any] | None) -> None:
    """Set every widget to the spec's value, or to the field default where the spec is silent."""
    flat = _flatten(spec or {})
    for fields in sections.values():
        for field in fields:
            st.session_state[field.key] = _display_value(field, flat.get(field.path, _default(field)))


def render_field(field: Field) -> None:
    """Draw the widget of one field; its value lands in st.session_state[field.key]."""
    if field.key not in st.session_state:
        st.session_state[field.key] = _display_value(field, _default(field))
    kind = _kind(field)
    help_message = help_text(field)
    label = field.path.rsplit(".", 1)[-1]
    if kind == "select":
        options = [variant for variant in _variants(field.schema) if "enum" in variant][0]["enum"]
        st.selectbox(label, ([UNSET] if field.nullable else []) + list(options), key=field.key, help=help_message)
    elif kind == "bool":
        st.checkbox(label, key=field.key, help=help_message)
    elif kind == "int":
        bounds = _bounds(field)
        st.number_input(label, step=1, key=field.key, help=help_message, min_value=bounds[0], max_value=bounds[1])
    elif kind == "float":
        st.number_input(label, key=field.key, help=help_message, format="%g", step=None)
    else:
        st.text_input(label, key=field.key, help=help_message)


def _bounds(field: Field) -> tuple[int | None, int | None]:
    option = [variant for variant in _variants(field.schema) if variant.get("type") == "integer"][0]
    low, high = option.get("minimum"), option.get("maximum")
    return (None if low is None else int(low)), (None if high is None else int(high))


def collect_spec(sections: dict[str, list[Field]]) -> dict[str, Any]:
    """Build the spec dict from the widgets, leaving out optional fields left at '(default)' or empty.

    Raises ValueError naming the field when a list or JSON value cannot be parsed.
    """
    spec: dict[str, Any] = {}
    for fields in sections.values():
        for field in fields:
            value = _parse(field, st.session_state.get(field.key))
            if value is None and field.optional:
                continue
            target = spec
            parts = field.path.split(".")
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = value
    return spec


def _parse(field: Field, value: Any) -> Any:
    kind = _kind(field)
    if kind == "select":
        return None if value == UNSET else value
    if kind == "list":
        text = str(value or "").strip()
        if not text:
            return None
        try:
            return [int(item) for item in text.replace(";", ",").split(",") if item.strip()]
        except ValueError as error:
            raise ValueError(f"{field.path}: expected whole numbers separated by commas; received {text!r}") from error
    if kind == "json":
        text = str(value or "").strip()
        if not text:
            return None
        if text.startswith("{"):
            try:
                return json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(f"{field.path}: invalid JSON ({error.msg}); received {text!r}") from error
        return text
    if kind == "text":
        return value or None
    return value


def parse_number_list(text: str, name: str, integer: bool = False) -> list[float] | list[int]:
    """Parse '0.001, 0.1, 10' into numbers; raise ValueError naming the field on bad input."""
    items = [item.strip() for item in text.replace(";", ",").split(",") if item.strip()]
    if not items:
        raise ValueError(f"{name}: enter at least one value, separated by commas")
    try:
        return [int(item) for item in items] if integer else [float(item) for item in items]
    except ValueError as error:
        kind = "whole numbers" if integer else "numbers"
        raise ValueError(f"{name}: expected {kind} separated by commas; received {text!r}") from error
