"""The EC2 wire protocol, driven by botocore's service models.

- :mod:`.model`: the EC2 and STS models, loaded once (:class:`ServiceModels`), and the
  request's API version (:func:`request_version`).
- :mod:`.parse`: Query parameters -> the action's input dict (:func:`parse_request`).
- :mod:`.serialize`: output dict -> EC2 / STS XML (:func:`render_response`), and the error
  envelopes (:func:`render_error`).

Parsers and writers are compiled per action on first use and cached for the process;
:func:`prepare` does it up front, e.g. for every mapped action at start-up.
"""

from collections.abc import Iterable

from botocore.model import OperationModel

from ec2bridge.protocol.model import EC2_API_VERSION, STS_API_VERSION, ServiceModels, request_version
from ec2bridge.protocol.parse import parse_request, prepare_parser
from ec2bridge.protocol.serialize import prepare_writers, render_error, render_parts, render_response

__all__ = [
    "EC2_API_VERSION", "STS_API_VERSION", "ServiceModels", "parse_request", "prepare", "render_error",
    "render_parts", "render_response", "request_version",
]


def prepare(operations: Iterable[OperationModel]) -> None:
    """Compile the parsers and writers of ``operations`` now instead of on their first request."""
    for operation in operations:
        prepare_parser(operation)
        prepare_writers(operation)
