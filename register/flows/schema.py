"""A flow's parameter schema, made with pydantic the way Prefect makes it.

`prefect deploy` imports the flow and calls `prefect.utilities.callables.parameter_schema`: one pydantic
field per parameter (title, description from the docstring, `position`), a parameter whose type pydantic
cannot describe becomes `Any`, instances of plain classes describe as `{}`, and `$defs` are copied into
`definitions`. This module does the same from a signature read from source (see values.py), without
importing Prefect, whose callables module costs more than a second.
"""

from __future__ import annotations

import inspect
import logging
import re
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic.errors import PydanticInvalidForJsonSchema, PydanticUndefinedAnnotation, PydanticUserError
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema

EMPTY = inspect.Parameter.empty


class UNKNOWN:
    """A default that cannot be known: registered without one (runs use the flow's own default)."""


@dataclass(frozen=True)
class Parameter:
    name: str
    annotation: Any = EMPTY  # a type, or EMPTY (no annotation, or one that cannot be known)
    default: Any = EMPTY  # a value, EMPTY (required) or UNKNOWN


class _EmptyForUserClasses(GenerateJsonSchema):
    """As Prefect: an instance of a class pydantic knows nothing about accepts any value."""

    def is_instance_schema(self, schema):
        return {}


_CONFIG = pydantic.ConfigDict(arbitrary_types_allowed=True)


def _model_schema(name: str, fields: dict[str, tuple]) -> dict:
    model = pydantic.create_model(name, __config__=_CONFIG, **fields)
    try:
        schema = pydantic.TypeAdapter(model).json_schema(by_alias=True, ref_template="#/definitions/{model}",
                                                         schema_generator=_EmptyForUserClasses)
    except PydanticUndefinedAnnotation as error:
        raise TypeError(error.message) from None
    except PydanticUserError as error:
        if error.code == "class-not-fully-defined":
            raise TypeError(str(error)) from None
        raise
    if "$defs" in schema:
        schema["definitions"] = schema["$defs"]
    return schema


def parameter_schema(parameters: list[Parameter], descriptions: dict[str, str]) -> dict:
    """The schema `prefect deploy` registers for these parameters (its `model_dump(exclude_unset=True)`)."""
    fields: dict[str, tuple] = {}
    unknown_defaults = []
    for position, parameter in enumerate(parameters):
        # a parameter named like a BaseModel attribute ('copy', 'json') is renamed and aliased back
        name = parameter.name + "__" if hasattr(pydantic.BaseModel, parameter.name) else parameter.name
        if name in ("cls", "self"):
            continue
        annotation = Any if parameter.annotation is EMPTY else parameter.annotation
        given = parameter.default if isinstance(parameter.default, FieldInfo) else None
        default = given.default if given is not None else parameter.default
        if default is UNKNOWN:
            unknown_defaults.append(parameter.name)
            default = None
        extra = dict(given.json_schema_extra) if given is not None and isinstance(given.json_schema_extra, dict) else {}
        extra.setdefault("position", position)
        field = pydantic.Field(default=... if default is EMPTY else default, title=parameter.name,
                               description=(given.description if given is not None and given.description
                                            else descriptions.get(parameter.name)),
                               alias=parameter.name if name != parameter.name else None, json_schema_extra=extra)
        fields[name] = (annotation, field)
    try:
        schema = _model_schema("Parameters", fields)
    except (ValueError, TypeError, PydanticInvalidForJsonSchema):
        # As Prefect: each parameter whose type pydantic cannot describe on its own accepts any value.
        for name, (annotation, field) in fields.items():
            try:
                _model_schema("CheckParameter", {name: (annotation, field)})
            except (ValueError, TypeError, PydanticInvalidForJsonSchema):
                fields[name] = (Any, field)
        schema = _model_schema("Parameters", fields)
    properties = schema.get("properties", {})
    for name in unknown_defaults:
        properties.get(name, {}).pop("default", None)
    result = {"title": "Parameters", "type": "object", "properties": properties}
    for key in ("required", "definitions"):
        if key in schema:
            result[key] = schema[key]
    return result


_PARAMETERS_SECTION = re.compile(r"^\s*(args|arguments|params|parameters)\s*:", re.IGNORECASE | re.MULTILINE)


def parameter_descriptions(docstring: str | None) -> dict[str, str]:
    """Descriptions of parameters from a Google-style docstring, parsed as Prefect parses them (griffe),
    which is imported only when the docstring has a section to parse."""
    if not docstring or not _PARAMETERS_SECTION.search(docstring):
        return {}
    from griffe import Docstring, DocstringSectionKind, Parser, parse

    logger = logging.getLogger("griffe")
    disabled, logger.disabled = logger.disabled, True
    try:
        descriptions: dict[str, str] = {}
        for section in parse(Docstring(inspect.cleandoc(docstring)), Parser.google):
            if section.kind == DocstringSectionKind.parameters:
                descriptions = {p.name: p.description for p in section.value}
        return descriptions
    finally:
        logger.disabled = disabled


def is_pydantic_v1(annotation: Any) -> bool:
    """Prefect describes pydantic.v1 models with pydantic.v1; this module does not."""
    import typing

    for part in (annotation, *typing.get_args(annotation)):
        for cls in getattr(part, "__mro__", ()) if isinstance(part, type) else ():
            if (getattr(cls, "__module__", "") or "").startswith("pydantic.v1"):
                return True
    return False
