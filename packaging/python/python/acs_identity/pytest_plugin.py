"""pytest plugin (entry point ``pytest11``): the session fixture ``acs_identity``.

A test asks for ``acs_identity`` and gets a running in-memory service (an
:class:`acs_identity.AcsIdentity`) that is shared by the whole test session::

    from azure.communication.identity import CommunicationIdentityClient

    def test_token(acs_identity):
        client = CommunicationIdentityClient.from_connection_string(acs_identity.connection_string)
        user, token = client.create_user_and_token(["chat"])

While the fixture is active, the test process trusts the service's development CA
(``acs_identity.trust_ca``: ``REQUESTS_CA_BUNDLE`` and ``SSL_CERT_FILE`` point at a
temporary bundle of the CAs trusted before plus the development CA), so tests hold no TLS
code. The service is stopped, and the bundle removed, when the session ends.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from ._service import AcsIdentity, start, trust_ca


@pytest.fixture(scope="session")
def acs_identity() -> Iterator[AcsIdentity]:
    """A running in-memory acs-identity service whose CA this process trusts."""
    with start() as service, trust_ca(service.ca_file):
        yield service
