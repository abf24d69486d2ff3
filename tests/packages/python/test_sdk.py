"""The installed wheel's pytest fixture with the official Python SDK, as the README shows:
no TLS code, no configuration, only `acs_identity.connection_string`."""

import asyncio

import pytest
from azure.communication.identity import CommunicationIdentityClient, CommunicationTokenScope
from azure.communication.identity.aio import CommunicationIdentityClient as AsyncClient
from azure.core.exceptions import HttpResponseError


def test_user_token_revoke_delete(acs_identity):
    client = CommunicationIdentityClient.from_connection_string(acs_identity.connection_string)
    user, token = client.create_user_and_token([CommunicationTokenScope.CHAT])
    assert user.properties["id"].startswith("8:acs:")
    assert token.token.count(".") == 2
    assert client.get_token(user, [CommunicationTokenScope.VOIP]).token != token.token
    assert client.revoke_tokens(user) is None
    assert client.delete_user(user) is None
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_token(user, [CommunicationTokenScope.CHAT])
    assert 400 <= excinfo.value.status_code < 500


def test_async_client(acs_identity):
    async def run():
        async with AsyncClient.from_connection_string(acs_identity.connection_string) as client:
            user = await client.create_user()
            token = await client.get_token(user, [CommunicationTokenScope.CHAT])
            await client.delete_user(user)
            return token

    assert asyncio.run(run()).token.count(".") == 2


def test_connection_string_has_the_endpoint(acs_identity):
    assert acs_identity.connection_string.startswith(f"endpoint={acs_identity.endpoint}")
    assert "key" not in repr(acs_identity)
