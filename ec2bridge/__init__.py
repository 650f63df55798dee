"""ec2bridge: an AWS EC2 Query API server in front of Apache CloudStack.

The request path, one module boundary per arrow:

    aiohttp request -> ec2bridge.app (request id, error rendering, body limits)
      -> signing (SigV2 / SigV4 verification against the key store)
      -> ec2bridge.protocol (Query parameters -> the action's input shape, botocore model)
      -> mappings (the action's record) -> the engine (CloudStack client, id map, describe)
      -> ec2bridge.protocol (output dict -> XML in the request's EC2 namespace)
"""

__version__ = "0.1.0"
