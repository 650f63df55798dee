"""The EC2 wire protocol, driven by botocore's service models.

- :mod:`.model`: the EC2 and STS models, loaded once (:class:`ServiceModels`), and the
  request's API version.
- :mod:`.parse`: Query parameters -> the action's input dict (:func:`parse_request`).
- :mod:`.serialize`: output dict -> EC2 / STS XML (:func:`render_response`), and the error
  envelopes (:func:`render_error`).
"""

from ec2bridge.protocol.model import EC2_API_VERSION, STS_API_VERSION, ServiceModels, request_version
from ec2bridge.protocol.parse import parse_request
from ec2bridge.protocol.serialize import render_error, render_response

__all__ = [
    "EC2_API_VERSION", "STS_API_VERSION", "ServiceModels", "parse_request", "render_error",
    "render_response", "request_version",
]
