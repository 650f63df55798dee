"""CloudStack's XML rendering (the default when ``response=json`` is absent).

``ApiResponseSerializer.toXMLSerializedString`` writes the wrapper element with a
``cloud-stack-version`` attribute, one element per field, lists as repeated elements named after
the field, and booleans as ``true``/``false``.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

VERSION = "4.18.0.0"


def to_xml(wrapper: str, body: dict) -> str:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', f'<{wrapper} cloud-stack-version="{VERSION}">']
    write_fields(parts, body)
    parts.append(f"</{wrapper}>")
    return "".join(parts)


def write_fields(parts: list[str], body: dict) -> None:
    for name, value in body.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            write_value(parts, name, item)


def write_value(parts: list[str], name: str, value) -> None:
    if isinstance(value, dict):
        parts.append(f"<{name}>")
        write_fields(parts, value)
        parts.append(f"</{name}>")
    elif isinstance(value, bool):
        parts.append(f"<{name}>{'true' if value else 'false'}</{name}>")
    elif value is not None:
        parts.append(f"<{name}>{escape(str(value))}</{name}>")
