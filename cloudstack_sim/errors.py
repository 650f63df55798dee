"""CloudStack's API errors: one exception carrying the HTTP code, ``cserrorcode`` and text.

CloudStack turns every failure into an ``ExceptionResponse`` (``ApiServer.getSerializedApiError``)
whose ``errorcode`` is the ``ApiErrorCode`` and also the HTTP status, and whose ``cserrorcode`` is
the numeric code of the Java exception class (``CSExceptionErrorCode``). The helpers below name the
exceptions CloudStack throws so handlers read like the Java services they imitate.
"""

from __future__ import annotations

# CSExceptionErrorCode values of the exception classes CloudStack maps to each ApiErrorCode.
CS_SERVER_API = 9999
CS_CLOUD_RUNTIME = 4250
CS_INVALID_PARAMETER = 4350
CS_PERMISSION_DENIED = 4365
CS_RESOURCE_ALLOCATION = 4370
CS_RESOURCE_IN_USE = 4375
CS_RESOURCE_UNAVAILABLE = 4380
CS_INSUFFICIENT_CAPACITY = 4325
CS_NETWORK_RULE_CONFLICT = 4400
CS_ACCOUNT_LIMIT = 4280

CS_CODE_FOR_HTTP = {431: CS_INVALID_PARAMETER, 530: CS_CLOUD_RUNTIME, 531: CS_PERMISSION_DENIED,
                    532: CS_ACCOUNT_LIMIT, 533: CS_INSUFFICIENT_CAPACITY, 534: CS_RESOURCE_UNAVAILABLE,
                    535: CS_RESOURCE_ALLOCATION, 536: CS_RESOURCE_IN_USE, 537: CS_NETWORK_RULE_CONFLICT}


class ApiError(Exception):
    """An error CloudStack reports with ``errorcode`` (= HTTP status) and ``cserrorcode``."""

    def __init__(self, code: int, text: str, cserrorcode: int | None = None, *,
                 wrapper: str | None = None) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.cserrorcode = cserrorcode
        # Overrides the response key (``errorresponse`` for unknown commands).
        self.wrapper = wrapper

    def body(self) -> dict:
        body: dict = {"uuidList": [], "errorcode": self.code}
        if self.cserrorcode is not None:
            body["cserrorcode"] = self.cserrorcode
        body["errortext"] = self.text
        return body


def invalid_parameter(text: str) -> ApiError:
    """``InvalidParameterValueException`` raised by a service: 431 / 4350."""
    return ApiError(431, text, CS_INVALID_PARAMETER)


def permission_denied(text: str) -> ApiError:
    """``PermissionDeniedException``: 531 / 4365."""
    return ApiError(531, text, CS_PERMISSION_DENIED)


def cloud_runtime(text: str) -> ApiError:
    """``CloudRuntimeException``: 530 / 4250."""
    return ApiError(530, text, CS_CLOUD_RUNTIME)


def resource_in_use(text: str) -> ApiError:
    return ApiError(536, text, CS_RESOURCE_IN_USE)


def resource_allocation(text: str) -> ApiError:
    """``ResourceAllocationException`` (e.g. a resource limit reached): 535 / 4370."""
    return ApiError(535, text, CS_RESOURCE_ALLOCATION)


def network_rule_conflict(text: str) -> ApiError:
    return ApiError(537, text, CS_NETWORK_RULE_CONFLICT)


def command_name(wrapper: str) -> str:
    """``deployvirtualmachineresponse`` -> ``deployvirtualmachine`` as ParamProcessWorker prints it."""
    return wrapper.removesuffix("response")


def missing_parameter(wrapper: str, param: str) -> ApiError:
    return ApiError(431, f"Unable to execute API command {command_name(wrapper)} due to missing parameter {param}",
                    CS_SERVER_API)


def bad_value(wrapper: str, param: str, value: str) -> ApiError:
    return ApiError(431, f"Unable to execute API command {command_name(wrapper)} due to invalid value {value} "
                         f"for parameter {param}", CS_SERVER_API)


def unknown_entity(wrapper: str, param: str, value: str) -> ApiError:
    return ApiError(431, f"Unable to execute API command {command_name(wrapper)} due to invalid value. "
                         f"Invalid parameter {param} value={value} due to incorrect long value format, or entity "
                         "does not exist or due to incorrect parameter annotation for the field in api cmd class.",
                    CS_SERVER_API)


def unknown_command(name: str) -> ApiError:
    return ApiError(432, f"Unknown API command: {name}", CS_SERVER_API, wrapper="errorresponse")


UNAUTHORIZED_TEXT = "unable to verify user credentials and/or request signature"
# BaseCmd.USER_ERROR_MESSAGE: what ApiServer (and the async job dispatcher) tell a caller about an
# unexpected exception instead of its details.
INTERNAL_ERROR_TEXT = "Internal error executing command, please contact your system administrator"


def internal_error() -> ApiError:
    """An unexpected exception as ``ApiServer.handleRequest`` reports it: 530 / 9999."""
    return ApiError(530, INTERNAL_ERROR_TEXT, CS_SERVER_API)


def unauthorized() -> ApiError:
    # ApiServlet answers 401 without a cserrorcode.
    return ApiError(401, UNAUTHORIZED_TEXT)
