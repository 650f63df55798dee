"""The one error hierarchy of the bridge.

Every failure a client can see is an :class:`EC2Error` carrying the EC2 error code, a
message and the HTTP status AWS uses for that code. The server renders it in the EC2 error
envelope; anything that is not an ``EC2Error`` becomes ``InternalError`` with the details
kept in the log only.
"""

from __future__ import annotations

# HTTP statuses AWS EC2 answers with; every code not listed is a client error (400).
_STATUS_BY_CODE = {
    "AuthFailure": 401,
    "MissingAuthenticationToken": 401,
    "SignatureDoesNotMatch": 403,
    "UnauthorizedOperation": 403,
    "OptInRequired": 403,
    "DryRunOperation": 412,
    "RequestEntityTooLarge": 413,
    "InternalError": 500,
    "Unavailable": 503,
    "ServiceUnavailable": 503,
    "RequestLimitExceeded": 503,
}


class EC2Error(Exception):
    """An error the client sees as ``<Error><Code>code</Code><Message>...``."""

    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status or _STATUS_BY_CODE.get(code, 400)


def missing_parameter(name: str) -> EC2Error:
    return EC2Error("MissingParameter", f"The request must contain the parameter {name}")


def invalid_value(name: str, value: object, why: str = "") -> EC2Error:
    detail = f" ({why})" if why else ""
    return EC2Error("InvalidParameterValue", f"Value ({value}) for parameter {name} is invalid{detail}")


def dry_run_ok() -> EC2Error:
    return EC2Error("DryRunOperation", "Request would have succeeded, but DryRun flag is set.")


def internal_error() -> EC2Error:
    return EC2Error("InternalError", "An internal error has occurred")


def unavailable(why: str = "") -> EC2Error:
    return EC2Error("Unavailable", "The service is unavailable" + (f": {why}" if why else "") + ". Please try again shortly.")
