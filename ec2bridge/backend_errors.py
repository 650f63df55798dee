"""CloudStack failures as EC2 errors, decided by error code and the parameter involved.

A mapping record names, per CloudStack parameter, the EC2 id kind it carries
(``{"templateid": "ami", "keypair": "key"}``). A 431 (bad parameter) or 531 (not yours) on
such a parameter is that kind's ``NotFound``: AWS does not reveal that another account's
object exists. Other codes have one EC2 meaning each. An unexpected failure is logged with
its details and reaches the client as ``InternalError``.
"""

from __future__ import annotations

import logging
from typing import Mapping

from ec2bridge.cloudstack import BackendUnavailable, CloudStackError
from ec2bridge.errors import EC2Error, internal_error, unavailable
from ec2bridge.ids import not_found

log = logging.getLogger(__name__)

_BY_CODE = {
    401: ("AuthFailure", "CloudStack refused the credentials behind this access key"),
    532: ("ResourceLimitExceeded", "You have reached a resource limit of your account"),
    533: ("InsufficientInstanceCapacity", "There is not enough capacity to fulfil the request"),
    534: ("Unavailable", "A resource needed by the request is unavailable"),
    535: ("InsufficientInstanceCapacity", "The cloud could not allocate a resource for the request"),
    536: ("DependencyViolation", "The resource is in use"),
    537: ("InvalidPermission.Duplicate", "The specified rule already exists"),
}


def translate(error: Exception, param_kinds: Mapping[str, str] | None = None,
              ids_by_param: Mapping[str, str] | None = None) -> EC2Error:
    """The EC2 error for a backend failure.

    ``param_kinds`` maps CloudStack parameter names to EC2 id kinds; ``ids_by_param`` gives the
    EC2 id the client sent for a parameter, so the message names what the client asked for.
    """
    if isinstance(error, EC2Error):
        return error
    if isinstance(error, BackendUnavailable):
        log.warning("CloudStack unavailable: %s", error)
        return unavailable("the cloud did not answer")
    if not isinstance(error, CloudStackError):
        log.exception("unexpected backend failure", exc_info=error)
        return internal_error()
    param = error.param
    kinds = param_kinds or {}
    if error.code in (431, 531) and param in kinds:
        return not_found(kinds[param], (ids_by_param or {}).get(param, "(unknown)"))
    if error.code == 431:
        return EC2Error("InvalidParameterValue", error.text)
    if error.code == 531:
        return EC2Error("UnauthorizedOperation", "You are not authorized to perform this operation.")
    if error.code in _BY_CODE:
        code, message = _BY_CODE[error.code]
        return EC2Error(code, f"{message}: {error.text}" if error.code in (532, 536, 537) else message)
    log.error("CloudStack error %s on %s: %s", error.code, error.command, error.text)
    return internal_error()
