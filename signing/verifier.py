"""The two calls the server makes to authenticate an EC2 request, with the key store between:

    claim = parse_auth(req)                  # which scheme, which access key; needs no secret
    ... look claim.access_key up in the key store (unknown or disabled: the server's AuthFailure)
    verify(req, claim, secret_key)           # clock and signature, constant-time

``parse_auth`` picks the scheme from what the request carries, in this order:

1. an ``Authorization`` header: SigV4 (``"sigv4"``). A header that is not ``AWS4-...`` while
   SigV2 parameters are present is left to whatever put it there (a proxy), and SigV2 is used;
2. ``X-Amz-Algorithm``/``-Credential``/``-Signature``/``-SignedHeaders`` in the query string:
   presigned SigV4 (``"sigv4-query"``). Both 1 and 2 at once is refused, as AWS does;
3. ``AWSAccessKeyId``/``Signature``/``SignatureVersion``/``SignatureMethod`` among the
   parameters: SigV2 (``"sigv2"``);
4. nothing: ``MissingParameter`` "The request must contain the parameter AWSAccessKeyId",
   which is what ec2.amazonaws.com itself answers to an unsigned request, with HTTP 400
   (``MissingAuthenticationToken`` "Request is missing Authentication Token" is what API
   Gateway and the JSON-protocol services answer; ``NO_AUTH_CODE``/``NO_AUTH_MESSAGE`` hold
   the choice).

SigV4 scopes may name any region (euca2ools signs ``undefined-<pid>``) and the services in
``SERVICES``: ``ec2``, and ``sts`` for Ansible's GetCallerIdentity sent to the same endpoint.

The claim holds everything parsed (``signature`` is the scheme's parsed form), so ``verify``
does not parse again: it checks the clock, recomputes the signature and compares it with
``hmac.compare_digest``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from signing import sigv2, sigv4
from signing.errors import AuthError
from signing.request import HttpRequest

SERVICES = ("ec2", "sts")      # the first is the one named in a wrong-service message
SIGV2_SERVICE = "ec2"          # SigV2 has no scope: a query signed for us is for EC2
DEFAULT_MAX_SKEW = timedelta(minutes=15)

NO_AUTH_CODE = "MissingParameter"
NO_AUTH_MESSAGE = "The request must contain the parameter AWSAccessKeyId"


@dataclass(frozen=True, slots=True)
class AuthClaim:
    """Who the request says it comes from, and how it is signed."""

    access_key: str
    scheme: str                    # "sigv2" | "sigv4" | "sigv4-query"
    region: str | None             # None for SigV2
    service: str
    security_token: str | None = None
    signature: sigv2.V2Signature | sigv4.V4Signature | None = field(
        default=None, repr=False, compare=False)


def _v4_claim(sig: sigv4.V4Signature, scheme: str) -> AuthClaim:
    return AuthClaim(access_key=sig.access_key, scheme=scheme, region=sig.region,
                     service=sig.service, security_token=sig.security_token, signature=sig)


def _v2_claim(sig: sigv2.V2Signature) -> AuthClaim:
    return AuthClaim(access_key=sig.access_key, scheme="sigv2", region=None,
                     service=SIGV2_SERVICE, security_token=sig.security_token, signature=sig)


def _presigned_query(req: HttpRequest) -> dict[str, str] | None:
    # A substring test first: most requests carry no X-Amz-* query parameter at all.
    if "X-Amz-" not in req.query_string:
        return None
    query = sigv4.query_params(req.query_string)
    return query if sigv4.has_presigned_params(query) else None


def parse_auth(req: HttpRequest) -> AuthClaim:
    """Decide the scheme and extract the access key; raises AuthError for a request that is
    unsigned (``MissingParameter``), half-signed or malformed (``IncompleteSignature``,
    ``MissingParameter``, ``InvalidParameterValue``) or scoped wrongly
    (``SignatureDoesNotMatch``)."""
    authorization = req.headers.get("Authorization")
    presigned = _presigned_query(req)
    if authorization is not None and (authorization.lstrip().startswith("AWS4")
                                      or not sigv2.has_params(req.params)):
        if presigned is not None:
            raise sigv4.signature_mismatch(
                "The request carries both an Authorization header and X-Amz-* query "
                "signature parameters; sign it one way only.")
        return _v4_claim(sigv4.parse_authorization(req, SERVICES), "sigv4")
    if presigned is not None:
        return _v4_claim(sigv4.parse_presigned_query(presigned, SERVICES), "sigv4-query")
    if sigv2.has_params(req.params):
        return _v2_claim(sigv2.parse(req.params))
    raise AuthError(NO_AUTH_CODE, NO_AUTH_MESSAGE)


def verify(req: HttpRequest, claim: AuthClaim, secret_key: str, *,
           now: datetime | None = None, max_skew: timedelta = DEFAULT_MAX_SKEW) -> None:
    """Raise AuthError (``RequestExpired``, ``SignatureDoesNotMatch``) unless ``req`` is
    signed with ``secret_key`` as ``claim`` says; ``now`` defaults to the clock (UTC)."""
    if now is None:
        now = datetime.now(timezone.utc)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    sig = claim.signature
    if isinstance(sig, sigv4.V4Signature):
        sigv4.verify(req, sig, secret_key, now=now, max_skew=max_skew)
    elif isinstance(sig, sigv2.V2Signature):
        sigv2.verify(req, sig, secret_key, now=now, max_skew=max_skew)
    else:
        raise ValueError("verify() takes the AuthClaim that parse_auth() returned")
