"""Query parameters -> the operation's input, shaped exactly as a boto3 user passes it.

A request arrives as a flat mapping (``Filter.1.Name=instance-state-name``,
``Filter.1.Value.1=running``, ``DryRun=true``) and leaves as
``{"Filters": [{"Name": "instance-state-name", "Values": ["running"]}], "DryRun": True}``.
This is botocore's Query serializer run backwards, in two steps:

1. :func:`_trie` splits every parameter name on ``.`` into nested dicts, so
   ``Filter.1.Name`` and ``Filter.1.Value.1`` share the branch ``Filter`` -> ``1``. A
   parameter's value sits in its branch under the key ``None``, which no name segment can be.
2. A tree of small nodes, compiled once per input shape and cached, walks that trie: a
   structure node maps wire names to member names, a list node orders its 1-based indices, a
   scalar node turns text into the member's type. Nothing walks botocore's model per request.

Naming rules differ per protocol and live in two small classes (:class:`_Ec2Naming`,
:class:`_QueryNaming`); see their docstrings. Errors are the ones AWS answers with:
``UnknownParameter`` for a name the input shape does not have, ``MissingParameter`` for an
absent required member (at any depth), ``InvalidParameterValue`` for text that is not of the
member's type. Enum values stay strings: the engine validates them with better messages.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from botocore.model import OperationModel, Shape

from ec2bridge.errors import EC2Error, invalid_value, missing_parameter
from ec2bridge.protocol.model import request_version

# Parameters every request may carry besides the action's own: the action, the API version
# and SigV2 / SigV4 (presigned) authentication. Only at the top level: nested members such
# as ``LaunchTemplate.Version`` or ``Storage.S3.AWSAccessKeyId`` are ordinary input.
COMMON_PARAMETERS = frozenset({
    "Action", "Version", "AWSAccessKeyId", "SignatureVersion", "SignatureMethod", "Signature",
    "Timestamp", "Expires", "SecurityToken",
})
_SIGV4_PREFIX = "X-Amz-"

# The deepest EC2 input name has 11 segments (RequestSpotFleet's
# ``SpotFleetRequestConfig.LaunchTemplateConfigs.N.Overrides.N.InstanceRequirements
# .BaselinePerformanceFactors.Cpu.References.N.InstanceFamily``); longer names cannot match
# anything, so they are refused before any dict is built for them.
MAX_NAME_SEGMENTS = 16
# AWS caps every EC2 list far lower (1000 resource ids in CreateTags); an index beyond this
# is a broken or hostile client, refused instead of silently read.
MAX_LIST_INDEX = 100_000
_MESSAGE_VALUE_CHARS = 100

_VALUE = None  # the key under which a trie branch holds its parameter's value

_Branch = dict  # a trie branch: {segment: branch, None: value}


# --- protocol naming -------------------------------------------------------------------

class _Ec2Naming:
    """The ``ec2`` protocol (botocore's ``EC2Serializer``).

    A member travels under its ``queryName`` if it has one, else its ``locationName`` with the
    first letter capitalised (locationNames are the *output* element names, ``groupId`` ->
    ``GroupId``), else its member name. Lists are always flattened as ``Name.N``: EC2 never
    sends ``Name.member.N``.
    """

    def wire_name(self, member: Shape, member_name: str) -> str:
        serialization = member.serialization
        if "queryName" in serialization:
            return serialization["queryName"]
        if "name" in serialization:
            name = serialization["name"]
            return name[:1].upper() + name[1:]
        return member_name

    def list_item(self, shape: Shape) -> str | None:
        return None


class _QueryNaming(_Ec2Naming):
    """The plain ``query`` protocol (STS), botocore's ``QuerySerializer``.

    STS answers at our endpoint for GetCallerIdentity, so its inputs go through the same
    parser; only these rules differ: ``locationName`` is used as is, and a list is
    ``Name.member.N`` (or ``Name.<member locationName>.N``) unless the model flattens it, in
    which case it is ``Name.N`` where ``Name`` is the list member's locationName if it has one.
    """

    def wire_name(self, member: Shape, member_name: str) -> str:
        if member.type_name == "list" and member.serialization.get("flattened"):
            return member.member.serialization.get("name", member_name)
        return member.serialization.get("name", member_name)

    def list_item(self, shape: Shape) -> str | None:
        if shape.serialization.get("flattened"):
            return None
        return shape.member.serialization.get("name", "member")


_NAMING = {"ec2": _Ec2Naming(), "query": _QueryNaming()}


# --- errors ----------------------------------------------------------------------------

def _unknown(name: str) -> EC2Error:
    return EC2Error("UnknownParameter", f"The parameter {_abbreviate(name)} is not recognized")


def _abbreviate(text: str) -> str:
    # Error messages echo what the client sent; a megabyte of it helps nobody.
    return text if len(text) <= _MESSAGE_VALUE_CHARS else text[:_MESSAGE_VALUE_CHARS] + "..."


def _join(path: str, segment: str) -> str:
    return f"{path}.{segment}" if path else segment


def _first_name(path: str, branch: _Branch) -> str:
    """The full name of one parameter at or below ``branch``, for error messages."""
    while _VALUE not in branch:
        segment = next(iter(branch))
        path, branch = _join(path, segment), branch[segment]
    return path


# --- nodes -----------------------------------------------------------------------------

class _Scalar:
    __slots__ = ("convert",)

    def __init__(self, convert: Callable[[str, str], Any]):
        self.convert = convert

    def parse(self, branch: _Branch, path: str) -> Any:
        if len(branch) != 1 or _VALUE not in branch:  # e.g. DryRun.1=true: a scalar has no parts
            segment = next(segment for segment in branch if segment is not _VALUE)
            raise _unknown(_first_name(_join(path, segment), branch[segment]))
        return self.convert(path, branch[_VALUE])


class _Structure:
    __slots__ = ("members", "required")

    def __init__(self) -> None:
        self.members: dict[str, tuple[str, Any]] = {}  # wire name -> (member name, node)
        self.required: tuple[tuple[str, str], ...] = ()  # (wire name, member name)

    def parse(self, branch: _Branch, path: str) -> dict[str, Any]:
        if _VALUE in branch:  # e.g. Placement=x: a structure is sent member by member
            raise _unknown(path)
        parsed = {}
        for segment, child in branch.items():
            child_path = _join(path, segment)
            member = self.members.get(segment)
            if member is None:
                raise _unknown(_first_name(child_path, child))
            name, node = member
            parsed[name] = node.parse(child, child_path)
        for wire_name, name in self.required:
            if name not in parsed:
                raise missing_parameter(_join(path, wire_name))
        return parsed


class _List:
    __slots__ = ("member", "item")

    def __init__(self, member: Any, item: str | None):
        self.member = member
        self.item = item  # query protocol: the "member" in Name.member.N; EC2: None

    def parse(self, branch: _Branch, path: str) -> list[Any]:
        if _VALUE in branch:
            # botocore's query serializer sends an empty list as "Name=".
            if len(branch) == 1 and branch[_VALUE] == "":
                return []
            raise _unknown(path)
        if self.item is not None:
            path, branch = self._items(branch, path)
        indexed = sorted((_list_index(segment, path, child), segment, child) for segment, child in branch.items())
        # Gaps collapse: Filter.1 and Filter.3 make a two-element list, in index order, as AWS reads them.
        return [self.member.parse(child, f"{path}.{segment}") for _, segment, child in indexed]

    def _items(self, branch: _Branch, path: str) -> tuple[str, _Branch]:
        items = branch.get(self.item)
        if items is None or len(branch) != 1:
            segment = next(segment for segment in branch if segment != self.item)
            raise _unknown(_first_name(_join(path, segment), branch[segment]))
        path = f"{path}.{self.item}"
        if _VALUE in items:
            raise _unknown(path)
        return path, items


class _Map:
    """A map travels as a list of key/value entries: Name.entry.N.key / Name.entry.N.value."""

    __slots__ = ("entries",)

    def __init__(self, entries: _List):
        self.entries = entries

    def parse(self, branch: _Branch, path: str) -> dict[str, Any]:
        return {entry["key"]: entry["value"] for entry in self.entries.parse(branch, path)}


_INDEX = re.compile(r"[1-9][0-9]*")


def _list_index(segment: str, path: str, child: _Branch) -> int:
    if not _INDEX.fullmatch(segment):  # "0", "01", "x", "": not a list element's name
        raise _unknown(_first_name(f"{path}.{segment}", child))
    if len(segment) > 6 or int(segment) > MAX_LIST_INDEX:
        name = _abbreviate(_first_name(f"{path}.{segment}", child))
        raise EC2Error("InvalidParameterValue", f"The parameter {name} has a list index above {MAX_LIST_INDEX}")
    return int(segment)


# --- scalar conversions ----------------------------------------------------------------

def _string(path: str, text: str) -> str:
    return text


def _boolean(path: str, text: str) -> bool:
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise invalid_value(path, _abbreviate(text), "expected true or false")


_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")


def _integer_of(bits: int) -> Callable[[str, str], int]:
    # Java's parseInt / parseLong behind AWS: optional sign, decimal digits, leading zeros
    # allowed ("007" is 7), nothing else ("1.5", "1e3", " 5" and "0x10" are refused).
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def convert(path: str, text: str) -> int:
        if _INTEGER.fullmatch(text):
            number = int(text)
            if low <= number <= high:
                return number
        raise invalid_value(path, _abbreviate(text), f"expected an integer from {low} to {high}")

    return convert


_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")


def _float(path: str, text: str) -> float:
    # Decimal notation only: Python's float() would also take "nan", "inf" and "1_000".
    if _FLOAT.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return number
    raise invalid_value(path, _abbreviate(text), "expected a finite decimal number")


_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[Tt][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)


def _timestamp(path: str, text: str) -> datetime:
    # ISO 8601 as AWS takes it: a date, optionally a time with seconds, a fraction and a zone.
    # No zone means UTC, as for every AWS timestamp.
    if _TIMESTAMP.fullmatch(text):
        try:
            moment = datetime.fromisoformat(text.upper())
        except ValueError:  # a well-shaped but impossible date or time, e.g. 2026-02-30
            pass
        else:
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    raise invalid_value(path, _abbreviate(text), "expected an ISO 8601 timestamp such as 2026-11-22T01:02:03Z")


def _blob(path: str, text: str) -> bytes:
    # Whitespace is dropped first: tools that wrap base64 at 76 columns are common.
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        raise invalid_value(path, _abbreviate(text), "expected base64") from None


_SCALARS = {
    "string": _Scalar(_string),
    "character": _Scalar(_string),
    "boolean": _Scalar(_boolean),
    "integer": _Scalar(_integer_of(32)),
    "long": _Scalar(_integer_of(64)),
    "float": _Scalar(_float),
    "double": _Scalar(_float),
    "timestamp": _Scalar(_timestamp),
    "blob": _Scalar(_blob),
}


# --- compilation -----------------------------------------------------------------------

class _Compiler:
    """Builds the node tree of one service's shapes, each shape once (shapes are shared)."""

    def __init__(self, protocol: str):
        try:
            self.naming = _NAMING[protocol]
        except KeyError:
            raise ValueError(f"no request parser for the {protocol!r} protocol") from None
        self.structures: dict[str, _Structure] = {}

    def node(self, shape: Shape) -> Any:
        kind = shape.type_name
        if kind == "structure":
            return self.structure(shape)
        if kind == "list":
            return _List(self.node(shape.member), self.naming.list_item(shape))
        if kind == "map":
            return self.map(shape)
        try:
            return _SCALARS[kind]
        except KeyError:
            raise ValueError(f"shape {shape.name} has the unsupported type {kind!r}") from None

    def structure(self, shape: Shape) -> _Structure:
        known = self.structures.get(shape.name)
        if known is not None:
            return known
        node = self.structures[shape.name] = _Structure()  # registered first: shapes may recurse
        wire_names = {name: self.naming.wire_name(member, name) for name, member in shape.members.items()}
        node.members = {wire_names[name]: (name, self.node(member)) for name, member in shape.members.items()}
        node.required = tuple((wire_names[name], name) for name in shape.required_members)
        return node

    def map(self, shape: Shape) -> _Map:
        entry = _Structure()
        key_name = self.naming.wire_name(shape.key, "key")
        value_name = self.naming.wire_name(shape.value, "value")
        entry.members = {key_name: ("key", self.node(shape.key)), value_name: ("value", self.node(shape.value))}
        entry.required = ((key_name, "key"), (value_name, "value"))
        item = None if shape.serialization.get("flattened") else "entry"
        return _Map(_List(entry, item))


# Caches keyed by immutable names. One compiler per service version shares the shapes
# common to many operations (Filter, TagSpecification, ...).
_COMPILERS: dict[tuple[str, str, str], _Compiler] = {}
_INPUTS: dict[tuple[str, str, str, str], _Structure] = {}


def _input_node(operation: OperationModel) -> _Structure:
    service = operation.service_model
    service_key = (service.service_name, service.api_version, service.protocol)
    node = _INPUTS.get(service_key + (operation.name,))
    if node is None:
        compiler = _COMPILERS.get(service_key)
        if compiler is None:
            compiler = _COMPILERS[service_key] = _Compiler(service.protocol)
        shape = operation.input_shape
        node = compiler.structure(shape) if shape is not None else _Structure()
        _INPUTS[service_key + (operation.name,)] = node
    return node


# --- the trie --------------------------------------------------------------------------

def _trie(params: Mapping[str, str]) -> _Branch:
    root: _Branch = {}
    for name, value in params.items():
        if name in COMMON_PARAMETERS or name.startswith(_SIGV4_PREFIX):
            continue
        segments = name.split(".", MAX_NAME_SEGMENTS)
        if len(segments) > MAX_NAME_SEGMENTS:
            raise _unknown(name)
        branch = root
        for segment in segments:
            child = branch.get(segment)
            if child is None:
                child = branch[segment] = {}
            branch = child
        branch[_VALUE] = value
    return root


# --- entry points ----------------------------------------------------------------------

def prepare_parser(operation: OperationModel) -> None:
    """Build the operation's lookup structure now rather than on its first request."""
    _input_node(operation)


def parse_request(operation: OperationModel, params: Mapping[str, str]) -> dict[str, Any]:
    """The operation's input, keyed by botocore member names, from the request parameters.

    ``params`` is the whole request (query string and form body); the common parameters
    (Action, Version, authentication) are skipped, though a malformed ``Version`` is refused
    here, before the engine runs anything. Raises :class:`EC2Error`.
    """
    request_version(operation, params)
    return _input_node(operation).parse(_trie(params), "")
