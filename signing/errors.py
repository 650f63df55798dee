"""Authentication failures, named by the EC2 error code AWS returns for each."""

from __future__ import annotations

_STATUS = {
    "AuthFailure": 401,
    "MissingAuthenticationToken": 401,
    "SignatureDoesNotMatch": 403,
    "IncompleteSignature": 400,
    "RequestExpired": 400,
    "InvalidParameterValue": 400,
}


class AuthError(Exception):
    """A request that fails authentication; ``code`` is the EC2 error code."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = _STATUS.get(code, 400)
