"""Output dict -> EC2 XML (and STS query XML), driven by botocore's output shapes.

The engine returns a plain dict shaped like the action's output shape, keyed by botocore
member names (what boto3 would hand its user). :func:`render_response` writes it the way
EC2 does (shown here with whitespace added):

    <?xml version="1.0" encoding="UTF-8"?>
    <DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
      <requestId>...</requestId><reservationSet><item>...</item></reservationSet>
    </DescribeInstancesResponse>

Members come in model order under their ``locationName``; a list is one element per item
inside the list element (EC2 never flattens lists); booleans are ``true``/``false``, timestamps
ISO 8601 UTC with milliseconds, blobs base64; ``None`` members are left out.

Speed matters (a DescribeInstances page can hold thousands of instances), so each output
shape is compiled once: a structure into a generated function of straight-line code with
its tags as literals and its nested structures and lists of structures written inline
(other lists and maps are small closures). Rendering is then dict lookups and string
appends to one list, one string per large list item (an instance), encoded and joined at
the end. Escaping is the one cost
that would grow with every string, so it is done in bulk: the first pass sets every string
aside as it writes it, one scan of all of them together decides, and only a document that
holds ``&``, ``<``, ``>``, a non-printable character or a value that is not a string is
written again, by the careful writers, which check and escape value by value.

Keys that are not members of the shape, and values of the wrong Python type, raise
:class:`ValueError`: they are engine bugs and must not reach a client as a document that
silently lacks what the engine meant to say.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple

from botocore.model import OperationModel, ServiceModel, Shape

from ec2bridge.errors import EC2Error
from ec2bridge.protocol.model import is_api_version

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
EC2_NAMESPACE = "http://ec2.amazonaws.com/doc/{version}/"  # trailing slash: libcloud needs it
STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"

_Append = Callable[[Any], None]  # list.append of the document, or of the texts kept aside
_Write = Callable[[Any, _Append, Any], None]
_ToText = Callable[[Any, str], str]


# --- text ------------------------------------------------------------------------------

# Characters XML 1.0 cannot carry at all, not even as references. CloudStack passes user
# text through unchecked (names, descriptions), so they are replaced rather than breaking
# the whole document for every client that parses it.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}
_TO_ESCAPE = re.compile("[&<>\r]")


def _needs_escaping(text: str) -> bool:
    # isprintable() is False for every control character (and for a few harmless ones such
    # as "\n", which then just take the slower path).
    return "&" in text or "<" in text or ">" in text or not text.isprintable()


def _escape(text: str) -> str:
    # "\r" as a reference: an XML parser would otherwise turn "\r\n" into "\n".
    return _TO_ESCAPE.sub(lambda match: _ESCAPES[match.group()], _NOT_XML.sub("\ufffd", text))


def _clean(text: str) -> str:
    return _escape(text) if _needs_escaping(text) else text


def _string(value: Any, label: str) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(f"{label} expects a str, got {type(value).__name__}: {value!r}")


def _integer_text(value: Any, label: str) -> str:
    if value.__class__ is int or (isinstance(value, int) and not isinstance(value, bool)):
        return str(int(value))
    raise ValueError(f"{label} expects an int, got {type(value).__name__}: {value!r}")


def _float_text(value: Any, label: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number):
            return repr(number)
        # The spellings botocore reads and writes for the non-finite doubles.
        return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
    raise ValueError(f"{label} expects a float, got {type(value).__name__}: {value!r}")


def _boolean_text(value: Any, label: str) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise ValueError(f"{label} expects a bool, got {type(value).__name__}: {value!r}")


_TWO_DIGITS = tuple(f"{number:02d}" for number in range(100))
_THREE_DIGITS = tuple(f"{number:03d}" for number in range(1000))


def _timestamp_text(value: Any, label: str) -> str:
    """ISO 8601 in UTC with milliseconds, as EC2 writes every time: 2026-11-22T01:02:03.000Z.

    A naive datetime is taken as UTC (CloudStack's and the stores' times are UTC); an
    already formatted string is read and rewritten, so that every timestamp has one form.
    """
    if value.__class__ is not datetime:
        value = _as_datetime(value, label)
    if value.tzinfo is not None and value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    # Table lookups: datetime.isoformat(timespec=...) is several times slower.
    return (f"{value.year:04d}-{_TWO_DIGITS[value.month]}-{_TWO_DIGITS[value.day]}T{_TWO_DIGITS[value.hour]}:"
            f"{_TWO_DIGITS[value.minute]}:{_TWO_DIGITS[value.second]}.{_THREE_DIGITS[value.microsecond // 1000]}Z")


def _as_datetime(value: Any, label: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{label} expects an ISO 8601 timestamp, got {value!r}") from None
    raise ValueError(f"{label} expects a datetime, got {type(value).__name__}: {value!r}")


def _blob_text(value: Any, label: str) -> str:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    raise ValueError(f"{label} expects bytes, got {type(value).__name__}")


# The scalar types whose text never needs escaping, and how each is written.
_SAFE_TEXT: dict[str, _ToText] = {
    "integer": _integer_text,
    "long": _integer_text,
    "float": _float_text,
    "double": _float_text,
    "boolean": _boolean_text,
    "timestamp": _timestamp_text,
    "blob": _blob_text,
}
_STRINGS = frozenset({"string", "character"})


def _sequence(value: Any, label: str) -> list | tuple:
    if isinstance(value, (list, tuple)):
        return value
    raise ValueError(f"{label} expects a list, got {type(value).__name__}: {value!r}")


def _mapping(value: Any, label: str) -> Mapping:
    if isinstance(value, Mapping):
        return value
    raise ValueError(f"{label} expects a dict, got {type(value).__name__}: {value!r}")


# --- naming ----------------------------------------------------------------------------
# Output naming is the same in both protocols, as botocore's XML parser reads it: an element
# is named by its locationName, else its member name; a flattened list (a model trait EC2
# never uses) repeats its items in the parent under the list member's locationName. Only
# the default name of a list's items differs.

_DEFAULT_ITEM = {"ec2": "item", "query": "member"}


def _element_name(member: Shape, member_name: str) -> str:
    if member.type_name == "list" and member.serialization.get("flattened"):
        return member.member.serialization.get("name", member_name)
    return member.serialization.get("name", member_name)


# --- writers ---------------------------------------------------------------------------
# A writer is write(value, append, keep): it hands its part of the document to ``append``
# (the output list's append). In the first pass ``keep`` collects every string written
# unescaped; in the careful pass it is None and strings are escaped one by one. Passing the
# bound methods down saves every writer from looking them up again.

def _string_element(open_tag: str, close_tag: str, label: str, careful: bool) -> _Write:
    if careful:
        def write(value: Any, append: _Append, keep: None) -> None:
            append(open_tag + _clean(_string(value, label)) + close_tag)
    else:
        def write(value: Any, append: _Append, keep: _Append) -> None:
            keep(value)  # a value that is not a str sends the document to the careful pass
            append(f"{open_tag}{value}{close_tag}")
    return write


def _safe_element(open_tag: str, close_tag: str, to_text: _ToText, label: str) -> _Write:
    def write(value: Any, append: _Append, keep: _Append | None) -> None:
        append(open_tag + to_text(value, label) + close_tag)

    return write


def _element(write_content: _Write, open_tag: str, close_tag: str) -> _Write:
    def write(value: Any, append: _Append, keep: _Append | None) -> None:
        append(open_tag)
        write_content(value, append, keep)
        append(close_tag)

    return write


def _list_element(write_items: _Write, open_tag: str, close_tag: str) -> _Write:
    empty = open_tag[:-1] + "/>"  # <tagSet/>: AWS sends empty lists; botocore reads []

    def write(value: Any, append: _Append, keep: _Append | None) -> None:
        if not value and isinstance(value, (list, tuple)):
            append(empty)
            return
        append(open_tag)
        write_items(value, append, keep)
        append(close_tag)

    return write


def _string_items(item: str, label: str, careful: bool) -> _Write:
    """The items of a list of strings, all joined at once."""
    item_open, between, item_close = f"<{item}>", f"</{item}><{item}>", f"</{item}>"

    def write(value: Any, append: _Append, keep: _Append | None) -> None:
        items = [_string(element, label) for element in _sequence(value, label)]
        if careful:
            items = [_clean(element) for element in items]
        else:
            keep("".join(items))
        if items:
            append(item_open + between.join(items) + item_close)

    return write


def _safe_items(to_text: _ToText, item: str, label: str) -> _Write:
    item_open, between, item_close = f"<{item}>", f"</{item}><{item}>", f"</{item}>"

    def write(value: Any, append: _Append, keep: _Append | None) -> None:
        items = _sequence(value, label)
        if items:
            append(item_open + between.join([to_text(element, label) for element in items]) + item_close)

    return write


def _compound_items(write_item: _Write, label: str) -> _Write:
    """The items of a list of lists or maps, each writing its own tags."""
    def write(value: Any, append: _Append, keep: _Append | None) -> None:
        for element in _sequence(value, label):
            write_item(element, append, keep)

    return write


def _structure_items(write_content: _Write, item: str, label: str) -> _Write:
    """The items of a list of structures: <item>members</item> each."""
    item_open, item_close = f"<{item}>", f"</{item}>"

    def write(value: Any, append: _Append, keep: _Append | None) -> None:
        for element in _sequence(value, label):
            append(item_open)
            write_content(element, append, keep)
            append(item_close)

    return write


# --- structures: generated code ----------------------------------------------------------
# A structure's writer is the hot loop of every render, so it is generated once per shape
# as straight-line Python, the way dataclasses builds __init__: one block per member with
# its tags as literals, no loop over members and no call per string, integer or boolean.
# Nested structures are written inline, and so are lists of small structures (tags, groups,
# block devices: a loop in the generated code), so that a whole instance is one call. A list
# of large structures (the instances of a reservation) calls the item's own writer once per
# item, which renders the item into one string: the document is then a list of a few large
# strings rather than millions of small ones. Tags are checked against _TAG before they enter
# the source; names and labels enter via repr().

_TAG = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_INLINE_ITEM_MEMBERS = 16  # a list item with more members is written by its own writer
_INLINE_DEPTH = 8  # bounds the generated code should a model nest deeply


class _Source:
    """The source of one generated writer, and the objects its code refers to by name."""

    def __init__(self, compiler: "_Compiler"):
        self.compiler = compiler
        self.careful = compiler.careful
        self.lines = ["def write(value, append, keep):"]
        self.namespace: dict[str, Any] = {"_mapping": _mapping, "_sequence": _sequence, "_string": _string,
                                          "_clean": _clean, "_unknown_members": _unknown_members,
                                          "Rendered": Rendered}

    def ref(self, obj: Any) -> str:
        name = f"ref{len(self.namespace)}"
        self.namespace[name] = obj
        return name

    def add(self, indent: int, *lines: str) -> None:
        self.lines.extend("    " * indent + line for line in lines)

    def function(self, label: str) -> _Write:
        exec(compile("\n".join(self.lines), f"<writer of {label}>", "exec"), self.namespace)
        return self.namespace["write"]

    def structure(self, members: tuple[tuple[str, Shape], ...], label: str, var: str, indent: int, depth: int,
                  inlined: tuple[str, ...]) -> None:
        """Code writing the present members of the structure in ``var``, in model order."""
        known, get, value = self.ref(frozenset(name for name, _ in members)), f"get{depth}", f"v{depth}"
        self.add(indent, f"if {var}.__class__ is not dict:", f"    {var} = _mapping({var}, {label!r})",
                 f"if not {known}.issuperset({var}):", f"    _unknown_members({var}, {known}, {label!r})",
                 f"{get} = {var}.get")
        for name, shape in members:
            self.add(indent, f"{value} = {get}({name!r})", f"if {value} is not None:")
            self.member(shape, name, f"{label}.{name}", value, indent + 1, depth, inlined)

    def member(self, shape: Shape, name: str, label: str, value: str, indent: int, depth: int,
               inlined: tuple[str, ...]) -> None:
        tag, kind = _element_name(shape, name), shape.type_name
        if not _TAG.fullmatch(tag):
            raise ValueError(f"{label} has a locationName that is not an XML name: {tag!r}")
        if kind in _STRINGS and self.careful:
            self.add(indent, f'append(f"<{tag}>{{_clean(_string({value}, {label!r}))}}</{tag}>")')
        elif kind in _STRINGS:
            # Trusted here; the text is checked with all the others at the end, and anything
            # doubtful (including a value that is not a str) sends the document to the careful pass.
            self.add(indent, f"keep({value})", f'append(f"<{tag}>{{{value}}}</{tag}>")')
        elif kind in ("integer", "long"):
            helper = self.ref(_integer_text)
            self.add(indent, f'append(f"<{tag}>{{{value}}}</{tag}>" if {value}.__class__ is int '
                             f'else f"<{tag}>{{{helper}({value}, {label!r})}}</{tag}>")')
        elif kind == "boolean":
            helper = self.ref(_boolean_text)
            self.add(indent, f'append("<{tag}>true</{tag}>" if {value} is True else "<{tag}>false</{tag}>" '
                             f"if {value} is False else {helper}({value}, {label!r}))")
        elif kind in _SAFE_TEXT:
            helper = self.ref(_SAFE_TEXT[kind])
            self.add(indent, f'append(f"<{tag}>{{{helper}({value}, {label!r})}}</{tag}>")')
        elif kind == "structure":
            self.add(indent, f'append("<{tag}>")')
            self.nested(shape, value, indent, depth, inlined)
            self.add(indent, f'append("</{tag}>")')
        elif kind == "list" and shape.member.type_name == "structure" and not shape.serialization.get("flattened"):
            self.structure_list(shape, tag, label, value, indent, depth, inlined)
        else:
            helper = self.ref(self.compiler.element(shape, tag, label))
            self.add(indent, f"{helper}({value}, append, keep)")

    def nested(self, shape: Shape, var: str, indent: int, depth: int, inlined: tuple[str, ...]) -> None:
        """A structure's members, inline unless the shape contains itself or nests too deep."""
        if shape.name in inlined or depth >= _INLINE_DEPTH:
            self.add(indent, f"{self.ref(self.compiler.structure(shape))}({var}, append, keep)")
        else:
            self.structure(tuple(shape.members.items()), shape.name, var, indent, depth + 1, inlined + (shape.name,))

    def structure_list(self, shape: Shape, tag: str, label: str, value: str, indent: int, depth: int,
                       inlined: tuple[str, ...]) -> None:
        item_shape, element = shape.member, f"e{depth}"
        item = item_shape.serialization.get("name", self.compiler.default_item)
        self.add(indent, f"if {value}.__class__ is not list:", f"    {value} = _sequence({value}, {label!r})",
                 f"if {value}:", f'    append("<{tag}>")', f"    for {element} in {value}:")
        if len(item_shape.members) <= _INLINE_ITEM_MEMBERS:
            self.add(indent + 2, f'append("<{item}>")')
            self.nested(item_shape, element, indent + 2, depth, inlined)
            self.add(indent + 2, f'append("</{item}>")')
        else:
            writer = self.ref(self.compiler.structure(item_shape))
            self.add(indent + 2, f"if {element}.__class__ is Rendered and {element}.shape == {item_shape.name!r}:",
                     f'    append("<{item}>")', f"    append({element}.xml)", f'    append("</{item}>")', "else:",
                     f'    parts = ["<{item}>"]', f"    {writer}({element}, parts.append, keep)",
                     f'    parts.append("</{item}>")', '    append("".join(parts))')
        # <tagSet/>: AWS sends empty lists; botocore reads []
        self.add(indent, f'    append("</{tag}>")', "else:", f'    append("<{tag}/>")')


def _unknown_members(value: Mapping, known: frozenset, label: str) -> None:
    unknown = ", ".join(sorted(map(repr, set(value) - known)))
    raise ValueError(f"{label} has no member {unknown}; its members are {sorted(known)}")


class _Compiler:
    """Compiles the writers of one service's output shapes, each structure once."""

    def __init__(self, protocol: str, careful: bool):
        try:
            self.default_item = _DEFAULT_ITEM[protocol]
        except KeyError:
            raise ValueError(f"no response renderer for the {protocol!r} protocol") from None
        self.careful = careful
        self.structures: dict[str, _Write] = {}

    def structure(self, shape: Shape) -> _Write:
        """The writer of a structure's content (its members, not its own tags)."""
        known = self.structures.get(shape.name)
        if known is not None:
            return known
        compiled: list[_Write] = []
        # Registered before its members are compiled, through a forwarder, in case a shape
        # contains itself (none of EC2's or STS's output shapes does today).
        self.structures[shape.name] = lambda value, append, keep: compiled[0](value, append, keep)
        compiled.append(self.members(tuple(shape.members.items()), shape.name))
        self.structures[shape.name] = compiled[0]
        return compiled[0]

    def members(self, members: tuple[tuple[str, Shape], ...], label: str) -> _Write:
        source = _Source(self)
        source.structure(members, label, "value", 1, 0, (label,))
        return source.function(label)

    def element(self, shape: Shape, tag: str, label: str) -> _Write:
        """The writer of one element, tags included."""
        open_tag, close_tag = f"<{tag}>", f"</{tag}>"
        kind = shape.type_name
        if kind in _STRINGS:
            return _string_element(open_tag, close_tag, label, self.careful)
        if kind in _SAFE_TEXT:
            return _safe_element(open_tag, close_tag, _SAFE_TEXT[kind], label)
        if kind == "structure":
            return _element(self.structure(shape), open_tag, close_tag)
        if kind == "list":
            return self.list(shape, tag, label)
        if kind == "map":
            return self.map(shape, tag, label)
        raise ValueError(f"{label} has the unsupported type {kind!r}")

    def list(self, shape: Shape, tag: str, label: str) -> _Write:
        flattened = shape.serialization.get("flattened")
        item = tag if flattened else shape.member.serialization.get("name", self.default_item)
        member_kind = shape.member.type_name
        if member_kind in _STRINGS:
            items = _string_items(item, label, self.careful)
        elif member_kind in _SAFE_TEXT:
            items = _safe_items(_SAFE_TEXT[member_kind], item, label)
        elif member_kind == "structure":
            items = _structure_items(self.structure(shape.member), item, label)
        else:
            items = _compound_items(self.element(shape.member, item, label), label)
        return items if flattened else _list_element(items, f"<{tag}>", f"</{tag}>")

    def map(self, shape: Shape, tag: str, label: str) -> _Write:
        write_key = self.element(shape.key, _element_name(shape.key, "key"), label)
        write_value = self.element(shape.value, _element_name(shape.value, "value"), label)
        flattened = shape.serialization.get("flattened")
        entry_open, entry_close = (f"<{tag}>", f"</{tag}>") if flattened else ("<entry>", "</entry>")

        def entries(value: Any, append: _Append, keep: _Append | None) -> None:
            for key, entry in _mapping(value, label).items():
                append(entry_open)
                write_key(key, append, keep)
                write_value(entry, append, keep)
                append(entry_close)

        return entries if flattened else _element(entries, f"<{tag}>", f"</{tag}>")


# botocore's model drops the output of 53 EC2 actions (CreateTags, RebootInstances,
# DeleteVolume, ...) because the SDK shows nothing, but AWS answers them with
# <return>true</return>, which libcloud and boto 2 read.
_RETURN = (("Return", Shape("Boolean", {"type": "boolean", "locationName": "return"})),)


# Caches keyed by immutable names: a compiler per (service, version, protocol, pass), a
# writer per action and pass. Shapes shared by many actions are compiled once.
_COMPILERS: dict[tuple[str, str, str, bool], _Compiler] = {}
_WRITERS: dict[tuple[str, str, str, bool, str], _Write] = {}


def _compiler(service: ServiceModel, careful: bool) -> _Compiler:
    key = (service.service_name, service.api_version, service.protocol, careful)
    compiler = _COMPILERS.get(key)
    if compiler is None:
        compiler = _COMPILERS[key] = _Compiler(service.protocol, careful)
    return compiler


def _output_writer(operation: OperationModel, careful: bool) -> _Write:
    service = operation.service_model
    compiler_key = (service.service_name, service.api_version, service.protocol, careful)
    writer = _WRITERS.get(compiler_key + (operation.name,))
    if writer is None:
        compiler = _compiler(service, careful)
        if operation.output_shape is None:
            writer = compiler.members(_RETURN, f"{operation.name}Result")
        else:
            writer = compiler.structure(operation.output_shape)
        _WRITERS[compiler_key + (operation.name,)] = writer
    return writer


# --- entry points ----------------------------------------------------------------------

class Rendered(dict):
    """A read-only output item that carries its own XML (UTF-8), written once by :func:`prerender`.

    Where a list of large structures (the instances of a reservation) holds a ``Rendered`` of
    the list's item shape, the writer appends its XML instead of walking the dict again: a
    mapping that keeps the items of unchanged CloudStack objects then renders them for free,
    and may hand the same object to every call. The dict may hold more keys than its XML
    shows (bookkeeping the mapping reads); changing it raises ``TypeError``.
    """

    __slots__ = ("shape", "xml")

    def __init__(self, item: Mapping[str, Any], shape: str, xml: bytes):
        super().__init__(item)
        self.shape, self.xml = shape, xml

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a Rendered item is read-only: copy it with dict() to change it")

    __setitem__ = __delitem__ = __ior__ = pop = popitem = clear = update = setdefault = _read_only


def prerender(service: ServiceModel, shape_name: str, item: Mapping[str, Any]) -> bytes:
    """The XML of ``item``'s members as a ``shape_name`` structure (escaped value by value), UTF-8.

    Raises ``ValueError`` as :func:`render_response` does when ``item`` does not fit the shape.
    """
    writer = _compiler(service, careful=True).structure(service.shape_for(shape_name))
    parts: list[str] = []
    writer(item, parts.append, None)
    return "".join(parts).encode("utf-8")



def prepare_writers(operation: OperationModel) -> None:
    """Compile the operation's writers (both passes) now rather than on first use."""
    _output_writer(operation, careful=False)
    _output_writer(operation, careful=True)


def render_response(operation: OperationModel, output: Mapping[str, Any], *, version: str, request_id: str) -> bytes:
    """The XML body answering ``operation`` with ``output`` (a dict of its output shape).

    ``version`` is the request's API version (see ``request_version``): EC2 answers in that
    version's namespace; STS always in its model's. Raises ``ValueError`` when ``output``
    does not fit the output shape.
    """
    return b"".join(render_parts(operation, output, version=version, request_id=request_id))


def render_parts(operation: OperationModel, output: Mapping[str, Any], *, version: str, request_id: str) -> list[bytes]:
    """:func:`render_response`'s body as the parts it is written in, not joined: a large
    answer can then be sent a few parts at a time."""
    plan = _PLANS.get(operation)
    if plan is None:
        plan = _PLANS[operation] = _Plan(_output_writer(operation, careful=False),
                                         _output_writer(operation, careful=True), {})
    envelope = plan.envelopes.get(version)
    if envelope is None:
        envelope = _envelope(operation, version)
        if len(plan.envelopes) < _MAX_VERSIONS:
            plan.envelopes[version] = envelope
    request_id = _clean(request_id)
    head, tail = envelope[0].replace(_ID_SLOT, request_id), envelope[1].replace(_ID_SLOT, request_id)
    texts: list = []
    out = [head]
    plan.fast(output, out.append, texts.append)
    if not _plain_texts(texts):
        out = [head]
        plan.careful(output, out.append, None)
    out.append(tail)
    # Encoded part by part, each dropped once encoded: a large document then never exists
    # as text and as bytes at once. Pre-rendered items are bytes already.
    for index, part in enumerate(out):
        if part.__class__ is str:
            out[index] = part.encode("utf-8")
    return out


class _Plan(NamedTuple):
    """What rendering one operation takes, looked up once per OperationModel object."""

    fast: _Write
    careful: _Write
    envelopes: dict[str, tuple[str, str]]  # API version -> envelope


_PLANS: dict[OperationModel, _Plan] = {}
_MAX_VERSIONS = 16  # envelopes kept per operation; clients use a handful of API versions
# Where the request id goes in a cached envelope: NUL cannot occur in the names around it.
_ID_SLOT = "\x00"


def _plain_texts(texts: list) -> bool:
    """True when no string written by the first pass needs escaping, nor is anything but a str."""
    try:
        return not _needs_escaping("".join(texts))
    except TypeError:  # a value that is not a str: the careful pass names it in its ValueError
        return False


def _envelope(operation: OperationModel, version: str) -> tuple[str, str]:
    """The text before and after the output's members, the request id at ``_ID_SLOT``."""
    action = operation.name
    service = operation.service_model
    if service.protocol == "ec2":
        if not is_api_version(version):
            raise ValueError(f"render_response needs a validated API version, got {version!r}")
        namespace = EC2_NAMESPACE.format(version=version)
        return (f'{_XML_DECLARATION}<{action}Response xmlns="{namespace}"><requestId>{_ID_SLOT}</requestId>',
                f"</{action}Response>")
    shape = operation.output_shape
    wrapper = shape.serialization.get("resultWrapper") if shape is not None else None
    head = f'{_XML_DECLARATION}<{action}Response xmlns="{service.metadata["xmlNamespace"]}">'
    tail = f"<ResponseMetadata><RequestId>{_ID_SLOT}</RequestId></ResponseMetadata></{action}Response>"
    if wrapper:
        head, tail = f"{head}<{wrapper}>", f"</{wrapper}>{tail}"
    return head, tail


def render_error(code: str, message: str, request_id: str, *, protocol: str = "ec2") -> bytes:
    """The error document for ``code``: EC2's envelope, or STS's when ``protocol`` is ``query``.

    EC2 says ``RequestID`` (not ``requestId``) in errors; STS adds a ``Type`` that is
    ``Receiver`` for server-side (5xx) failures and ``Sender`` otherwise.
    """
    code, message, request_id = _clean(code), _clean(message), _clean(request_id)
    if protocol == "ec2":
        return (f"{_XML_DECLARATION}<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
                f"</Error></Errors><RequestID>{request_id}</RequestID></Response>").encode("utf-8")
    if protocol == "query":
        kind = "Receiver" if EC2Error(code, message).status >= 500 else "Sender"
        return (f'{_XML_DECLARATION}<ErrorResponse xmlns="{STS_NAMESPACE}"><Error><Type>{kind}</Type>'
                f"<Code>{code}</Code><Message>{message}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode("utf-8")
    raise ValueError(f"no error envelope for the {protocol!r} protocol")
