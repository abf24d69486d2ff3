"""A local Azure Communication Services Identity service for development and tests.

``acs_identity.start()`` runs the ``acs-identity`` binary shipped in this wheel as an
in-memory service on a free loopback port and returns once it accepts connections::

    import acs_identity
    from azure.communication.identity import CommunicationIdentityClient

    with acs_identity.start() as service, acs_identity.trust_ca(service.ca_file):
        client = CommunicationIdentityClient.from_connection_string(service.connection_string)
        user = client.create_user()

The pytest plugin of this package (``acs_identity.pytest_plugin``) offers the same service
as the session fixture ``acs_identity``, with its development CA already trusted.
"""

from __future__ import annotations

from ._service import (
    AcsIdentity,
    AcsIdentityError,
    UnsupportedPlatformError,
    binary_path,
    start,
    trust_ca,
)

__all__ = [
    "AcsIdentity",
    "AcsIdentityError",
    "UnsupportedPlatformError",
    "binary_path",
    "start",
    "trust_ca",
]
