"""The one request a benchmark replays, signed the way a real client signs it.

- EC2 with SigV4: a form-encoded POST signed by botocore's ``SigV4Auth``, as boto3 sends it.
- EC2 with SigV2: the same POST with boto 2's ``SignatureVersion=2``/``HmacSHA256`` parameters,
  signed by botocore's ``SigV2Auth``.
- CloudStack: the form-encoded POST the bridge's own client sends (``signing.cloudstack``,
  ``signatureversion=3`` with ``expires``), for the backend floor.

Signatures carry a timestamp that the server accepts for 15 minutes (SigV2 ``Timestamp``, SigV4
``X-Amz-Date``), so the runner re-signs before every wrk run rather than once per session.
Replaying a signed request is legitimate against ec2bridge: like AWS, it keeps no replay cache,
only the skew window (``ec2bridge/auth.py``); the preflight sends the same bytes several times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import boto3
import botocore
from botocore.auth import SigV2Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from signing import cloudstack as cloudstack_signing

EC2_VERSION = "2016-11-15"
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
BOTO3_AGENT = f"Boto3/{boto3.__version__} Botocore/{botocore.__version__} ec2bridge-bench"
BOTO2_AGENT = "Boto/2.49.0 ec2bridge-bench"
# Longer than any session: CloudStack only requires ``expires`` to lie in the future.
CLOUDSTACK_TTL = timedelta(hours=2)


@dataclass(frozen=True)
class SignedRequest:
    url: str                 # scheme://host:port/path
    headers: dict[str, str]
    body: bytes
    method: str = "POST"
    description: str = ""    # what a person reads in the results ("SigV4 DescribeInstances")

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def base_url(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class Ec2Call:
    """An EC2 Query call to replay: action, extra Query parameters, and how it is signed."""

    action: str
    params: dict[str, str] = field(default_factory=dict)
    signature: str = "v4"    # "v4" (boto3) or "v2" (boto 2)

    def form(self) -> dict[str, str]:
        return {"Action": self.action, "Version": EC2_VERSION, **self.params}


def sign_ec2(url: str, call: Ec2Call, credentials: tuple[str, str], region: str) -> SignedRequest:
    request = AWSRequest(method="POST", url=url, data=call.form(), headers={"Content-Type": FORM_TYPE})
    creds = Credentials(*credentials)
    if call.signature == "v4":
        request.headers["User-Agent"] = BOTO3_AGENT
        SigV4Auth(creds, "ec2", region).add_auth(request)
    elif call.signature == "v2":
        request.headers["User-Agent"] = BOTO2_AGENT
        SigV2Auth(creds).add_auth(request)
    else:
        raise ValueError(f"unknown signature version {call.signature!r}")
    prepared = request.prepare()
    body = prepared.body if isinstance(prepared.body, bytes) else prepared.body.encode()
    headers = {name: value for name, value in prepared.headers.items()}
    headers["Host"] = urlsplit(url).netloc   # the value SigV4 signed and SigV2 put in its string to sign
    return SignedRequest(url=url, headers=headers, body=body,
                         description=f"Sig{call.signature.upper()} {call.action}")


def sign_cloudstack(url: str, command: str, params: dict[str, str], credentials: tuple[str, str]) -> SignedRequest:
    query = {"command": command, "response": "json", **params}
    signed = cloudstack_signing.signed_params(query, credentials[0], credentials[1], ttl=CLOUDSTACK_TTL)
    body = urlencode(signed).encode()
    headers = {"Host": urlsplit(url).netloc, "Content-Type": "application/x-www-form-urlencoded",
               "User-Agent": "ec2bridge-bench (CloudStack client)"}
    return SignedRequest(url=url, headers=headers, body=body, description=f"CloudStack {command}")
