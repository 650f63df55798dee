"""The framework-free view of an incoming HTTP request that the verifiers work on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(slots=True)
class HttpRequest:
    """What a signature covers, exactly as received. Read-only by convention: not a frozen
    dataclass because one is built for every request, and a frozen dataclass's ``__init__``
    (``object.__setattr__`` per field) costs three times as much.

    ``host`` is the Host header as the client sent it (with or without a port: boto 2 signs
    ``127.0.0.1`` without the port). ``path`` and ``query_string`` are raw (still
    percent-encoded). ``headers`` is case-insensitive. ``params`` are the decoded EC2
    parameters: the query string for GET, the form body for a POST form.
    """

    method: str
    host: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes
    params: Mapping[str, str] = field(default_factory=dict)
