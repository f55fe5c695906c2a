"""eid-client: typed Python clients and the ``eid`` CLI for the eid identity service.

Quick start::

    from eid_client import EidClient, EidError

    with EidClient("127.0.0.1:50051", api_key="...") as eid:
        result = eid.verify_password(personal_id="001090001234", password="...")
"""

from eid_client.client import AsyncEidClient, EidClient
from eid_client.errors import EidError, error_from_rpc_error

__all__ = ["AsyncEidClient", "EidClient", "EidError", "error_from_rpc_error"]
