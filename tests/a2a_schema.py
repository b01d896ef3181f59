"""The A2A 1.0 JSON schema of a message, derived offline from the specification's own proto.

In A2A 1.0 the normative definition is ``specification/a2a.proto`` and the published JSON schema is
generated from it. a2a-sdk ships the compiled proto (``lf.a2a.v1``, field behaviours included), so
the schema is derived here from that descriptor the way the spec's generator does: one object per
message with only its own fields (``additionalProperties: false``), JSON (camelCase) names, fields
marked ``REQUIRED`` required, enums by name, maps as objects, 64-bit integers as strings.
"""

from __future__ import annotations

from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_BYTES: {"type": "string"},
    FieldDescriptor.TYPE_INT32: {"type": "integer"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer"},
    FieldDescriptor.TYPE_INT64: {"type": ["integer", "string"]},
    FieldDescriptor.TYPE_UINT64: {"type": ["integer", "string"]},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Timestamp": {"type": "string"},
}


def json_schema_of(message: Descriptor) -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    root = _message(message, definitions)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **root, "$defs": definitions}


def _message(message: Descriptor, definitions: dict[str, Any]) -> dict[str, Any]:
    if message.full_name in _WELL_KNOWN:
        return _WELL_KNOWN[message.full_name]
    if message.full_name not in definitions:
        definitions[message.full_name] = {}  # placeholder: recursive messages refer to it
        properties = {field.json_name: _field(field, definitions) for field in message.fields}
        required = [field.json_name for field in message.fields if _is_required(field)]
        definitions[message.full_name] = {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
    return {"$ref": f"#/$defs/{message.full_name}"}


def _field(field: FieldDescriptor, definitions: dict[str, Any]) -> dict[str, Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value = field.message_type.fields_by_name["value"]
        return {"type": "object", "additionalProperties": _single(value, definitions)}
    single = _single(field, definitions)
    return {"type": "array", "items": single} if field.is_repeated else single


def _single(field: FieldDescriptor, definitions: dict[str, Any]) -> dict[str, Any]:
    if field.type == FieldDescriptor.TYPE_ENUM:
        return {"enum": [value.name for value in field.enum_type.values]}
    if field.message_type is not None:
        return _message(field.message_type, definitions)
    return _SCALARS[field.type]


def _is_required(field: FieldDescriptor) -> bool:
    behaviours = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return field_behavior_pb2.REQUIRED in behaviours
