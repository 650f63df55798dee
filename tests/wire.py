"""Raw EC2 requests for tests that need control below the SDKs: signed by botocore's own
signers (so our verifier is checked against an independent implementation), sent with
http.client, and errors parsed with botocore's EC2 parser as an SDK would."""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from unittest import mock
from urllib.parse import urlencode, urlsplit

from botocore.auth import ISO8601, SigV2Auth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.parsers import create_parser

_PARSER = create_parser("ec2")


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict

    @property
    def error_code(self) -> str | None:
        parsed = _PARSER.parse({"status_code": self.status, "headers": self.headers, "body": self.body}, None)
        return parsed.get("Error", {}).get("Code")


def send(url: str, method: str = "POST", *, params: dict | None = None, body: bytes | None = None,
         headers: dict | None = None, path: str | None = None, query: str = "", timeout: float = 30) -> Reply:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    target = (path or parts.path or "/") + (f"?{query}" if query else "")
    headers = dict(headers or {})
    if params is not None and body is None:
        if method == "GET":
            target = (path or parts.path or "/") + "?" + urlencode(params)
        else:
            body = urlencode(params).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        return Reply(response.status, response.read(), dict(response.getheaders()))
    finally:
        connection.close()


def _aws_request(url: str, method: str, params: dict) -> AWSRequest:
    if method == "GET":
        return AWSRequest(method="GET", url=url, params=dict(params))
    return AWSRequest(method="POST", url=url, data=dict(params),
                      headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})


def _send_prepared(request: AWSRequest) -> Reply:
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    headers = {k: v for k, v in prepared.headers.items()}
    return send(prepared.url, prepared.method, body=prepared.body or None, headers=headers,
                path=parts.path or "/", query=parts.query)


def sigv4(url: str, creds: tuple[str, str], params: dict, *, method: str = "POST", service: str = "ec2",
          region: str = "cloudstack", when: datetime | None = None, presign: bool = False,
          tamper=None) -> Reply:
    request = _aws_request(url, method, params)
    signer = (SigV4QueryAuth if presign else SigV4Auth)(Credentials(*creds), service, region)
    moment = (when or datetime.now(timezone.utc)).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment):
        signer.add_auth(request)
    if tamper:
        tamper(request)
    return _send_prepared(request)


def sigv2(url: str, creds: tuple[str, str], params: dict, *, method: str = "POST",
          timestamp: datetime | None = None, expires: datetime | None = None, tamper=None) -> Reply:
    """SigV2 as botocore signs it, with a chosen Timestamp or Expires."""
    request = _aws_request(url, method, params)
    signed = request.data if method == "POST" else request.params
    signed.update({"AWSAccessKeyId": creds[0], "SignatureVersion": "2", "SignatureMethod": "HmacSHA256"})
    if expires is not None:
        signed["Expires"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        signed["Timestamp"] = (timestamp or datetime.now(timezone.utc)).strftime(ISO8601)
    _, signature = SigV2Auth(Credentials(*creds)).calc_signature(request, signed)
    signed["Signature"] = signature
    if tamper:
        tamper(signed)
    return _send_prepared(request)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def now() -> datetime:
    return datetime.now(timezone.utc)


__all__ = ["Reply", "send", "sigv2", "sigv4", "minutes", "now", "time"]
