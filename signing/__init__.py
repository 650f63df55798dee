"""Request signing: verify what EC2 clients send, sign what we send to CloudStack.

No web framework inside: every function takes plain values (method, host, path, params,
headers, body) so that the server, the simulator, the tests and the benchmark generator all
share one implementation.

- ``sigv2``: AWS Signature Version 2 (HmacSHA1 / HmacSHA256, query or form).
- ``sigv4``: AWS Signature Version 4 (Authorization header and presigned query).
- ``cloudstack``: CloudStack's own HMAC-SHA1 request signature (client and verifier).
- ``keystore``: access keys, their secrets (encrypted at rest) and their CloudStack keys.
"""

from signing.errors import AuthError

__all__ = ["AuthError"]
