"""eid-client: typed Python clients and the ``eid`` CLI for the eid identity service.

Quick start::

    from eid_client import EidClient, EidError

    with EidClient("127.0.0.1:50051", api_key="...") as eid:
        result = eid.verify_password(personal_id="001090001234", password="...")

Calls that fail with UNAVAILABLE or ABORTED are sent again with the same
request id (:class:`RetryPolicy`); ``tls=Tls(...)`` connects over TLS or mTLS;
:mod:`eid_client.sandbox` runs a throw-away server for your tests.
"""

from eid_client._requests import Passport
from eid_client.client import AsyncEidClient, EidClient
from eid_client.errors import EidError, ErrorReason, error_from_rpc_error
from eid_client.retry import RetryPolicy
from eid_client.tls import Tls

__all__ = [
    "AsyncEidClient",
    "EidClient",
    "EidError",
    "ErrorReason",
    "Passport",
    "RetryPolicy",
    "Tls",
    "error_from_rpc_error",
]
