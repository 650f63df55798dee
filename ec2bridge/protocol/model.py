"""botocore's service models: the single source of truth for the wire format.

Every EC2 client we serve (aws cli, boto3, boto 2.49, euca2ools, libcloud, Ansible) speaks a
dialect of the same Query protocol; botocore's ``ec2`` model (API 2016-11-15) names every
input parameter, output element and type, so parsing and rendering are driven by it rather
than by per-action code.

:class:`ServiceModels` loads the models once per application. Lookups afterwards are plain
dict reads. Clients send older API versions too (boto 2.49 sends 2014-10-01, euca2ools
2015-10-01): the 2016-11-15 model is a superset of the parameters they use, so every request
is parsed and rendered with it, and only the response namespace follows the request's
``Version`` (libcloud reads nothing from a document whose namespace it does not expect).
The check of a ``Version`` is cached per value (a few dozen at most): clients send the same
few versions with every request.

STS ``GetCallerIdentity`` is answered at the same endpoint because Ansible's
``ec2_security_group`` calls it there to learn the account id; it uses STS's own model, whose
protocol is plain ``query`` rather than ``ec2``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from functools import lru_cache

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel

from ec2bridge.errors import EC2Error, invalid_value

EC2_API_VERSION = "2016-11-15"
STS_API_VERSION = "2011-06-15"

# The STS actions served at the EC2 endpoint. Only the identity question: the other STS
# actions mint credentials, which is not this bridge's business.
STS_ACTIONS = ("GetCallerIdentity",)

_VERSION_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class ServiceModels:
    """The EC2 and STS models, loaded once; instantiate once per application."""

    def __init__(self, loader: Loader | None = None):
        loader = loader or Loader()
        self.ec2 = _load(loader, "ec2", EC2_API_VERSION)
        self.sts = _load(loader, "sts", STS_API_VERSION)
        operations = {name: self.ec2.operation_model(name) for name in self.ec2.operation_names}
        operations.update((name, self.sts.operation_model(name)) for name in STS_ACTIONS)
        self._operations: Mapping[str, OperationModel] = operations

    def operation(self, action: str) -> OperationModel:
        """The operation named by the request's ``Action``, or ``InvalidAction``."""
        try:
            return self._operations[action]
        except KeyError:
            raise EC2Error("InvalidAction", f"The action {action} is not valid for this web service.") from None

    def __contains__(self, action: object) -> bool:
        return action in self._operations


def _load(loader: Loader, service: str, api_version: str) -> ServiceModel:
    return ServiceModel(loader.load_service_model(service, "service-2", api_version), service_name=service)


def request_version(operation: OperationModel, params: Mapping[str, str]) -> str:
    """The API version to answer in: the request's ``Version``, or the model's when absent.

    Any well-formed date is accepted, since clients pin many past versions and the current
    model parses all of them. A value that is not a date is refused with
    ``InvalidParameterValue`` rather than echoed: it would end up inside the response's XML
    namespace, and AWS itself refuses versions it does not know.
    """
    version = params.get("Version")
    if not version:
        return operation.service_model.api_version
    if not is_api_version(version):
        raise invalid_value("Version", version, "expected an API version such as 2016-11-15")
    return version


@lru_cache(maxsize=64)
def is_api_version(version: str) -> bool:
    """True for a calendar date written YYYY-MM-DD, the form of every AWS API version.
    Cached: clients send the few versions they pin with every request."""
    if not _VERSION_SHAPE.fullmatch(version):
        return False
    try:
        date.fromisoformat(version)
    except ValueError:
        return False
    return True
