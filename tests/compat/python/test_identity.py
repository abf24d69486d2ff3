"""The official Python SDK (azure-communication-identity) against acs-identity.

Only the public client of the pinned SDK and the connection string from
ACS_CONNECTION_STRING are used; the development CA is trusted through
REQUESTS_CA_BUNDLE (requests, sync client) and SSL_CERT_FILE (aiohttp, async client).
Expected behaviour is that of Azure Communication Services (see shared/WIRE.md).
"""

import asyncio
import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from azure.communication.identity import (
    CommunicationIdentityClient,
    CommunicationTokenScope,
    CommunicationUserIdentifier,
)
from azure.communication.identity import _api_versions
from azure.communication.identity._shared.utils import create_access_token
from azure.communication.identity.aio import (
    CommunicationIdentityClient as AsyncCommunicationIdentityClient,
)
from azure.core.exceptions import HttpResponseError

from support import CLOCK_SLACK_S, assert_user, env, jwt_part, jwt_payload, parse_expires_on, timed, timed_async

# An identity of some other resource.
FOREIGN_ID = "8:acs:00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000001"

# The scope sets every SDK suite issues tokens with.
SCOPE_SETS = json.loads((Path(__file__).parent.parent / "scope-sets.json").read_text())

API_VERSIONS = ["2021-03-07", "2022-06-01", "2022-10-01", "2023-10-01"]

@pytest.fixture(scope="module")
def client():
    return CommunicationIdentityClient.from_connection_string(env("ACS_CONNECTION_STRING"))


def assert_token(user, access_token, scopes, minutes, before, after):
    """Checks a token issued between `before` and `after` (epoch seconds)."""
    header = jwt_part(access_token.token, 0)
    assert header["typ"] == "JWT"
    assert header["alg"] in ("RS256", "ES256", "EdDSA")
    payload = jwt_payload(access_token.token)
    assert payload["acsScope"].split(",") == scopes
    assert payload["skypeid"] == user.raw_id[len("8:"):]
    lifetime = minutes * 60
    iat, exp = payload["iat"], payload["exp"]
    assert isinstance(iat, int) and isinstance(exp, int)
    assert lifetime - 1 <= exp - iat <= lifetime, f"exp - iat = {exp - iat}, wanted {lifetime}"
    assert before - CLOCK_SLACK_S <= iat <= after + CLOCK_SLACK_S
    expires_on = parse_expires_on(access_token.expires_on)
    assert abs(expires_on - exp) <= 1, f"expiresOn {access_token.expires_on} vs exp {exp}"
    assert before + lifetime - CLOCK_SLACK_S <= expires_on <= after + lifetime + CLOCK_SLACK_S
    # The SDK's own parser (base64 with the standard alphabet) must read the same expiry.
    assert create_access_token(access_token.token).expires_on == exp


def assert_http_error(excinfo, status, code, message_part):
    err = excinfo.value
    assert err.status_code == status, f"status {err.status_code}: {err.message}"
    assert err.error is not None, f"no error body: {err.message}"
    assert err.error.code == code
    assert message_part in err.message, err.message


# ---------------------------------------------------------------- create


def test_create_user(client):
    first = client.create_user()
    second = client.create_user()
    assert_user(first)
    assert_user(second)
    assert first.raw_id != second.raw_id


@pytest.mark.parametrize("scopes", SCOPE_SETS, ids=lambda s: "+".join(s))
def test_create_user_and_token_per_scope_set(client, scopes):
    (user, token), before, after = timed(client.create_user_and_token, scopes)
    assert_user(user)
    assert_token(user, token, scopes, 1440, before, after)


def test_create_user_and_token_with_scope_enum(client):
    scopes = [CommunicationTokenScope.CHAT, CommunicationTokenScope.VOIP_JOIN]
    (user, token), before, after = timed(client.create_user_and_token, scopes)
    assert_token(user, token, ["chat", "voip.join"], 1440, before, after)


@pytest.mark.parametrize("minutes", [60, 1440])
def test_create_user_and_token_custom_expiry(client, minutes):
    (user, token), before, after = timed(client.create_user_and_token, ["chat"], token_expires_in=timedelta(minutes=minutes))
    assert_token(user, token, ["chat"], minutes, before, after)


@pytest.mark.parametrize("minutes", [59, 1441])
def test_create_user_and_token_invalid_expiry(client, minutes):
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_user_and_token(["chat"], token_expires_in=timedelta(minutes=minutes))
    assert_http_error(excinfo, 400, "ValidationError", "ExpiresInMinutes")
    assert f"ExpiresInMinutes value {minutes} is invalid." in excinfo.value.message


# ---------------------------------------------------------------- get_token


@pytest.mark.parametrize("minutes", [60, 1440])
def test_get_token_custom_expiry(client, minutes):
    user = client.create_user()
    token, before, after = timed(client.get_token, user, ["chat", "voip"], token_expires_in=timedelta(minutes=minutes))
    assert_token(user, token, ["chat", "voip"], minutes, before, after)


def test_get_token_default_expiry(client):
    user = client.create_user()
    token, before, after = timed(client.get_token, user, ["voip"])
    assert_token(user, token, ["voip"], 1440, before, after)


@pytest.mark.parametrize("minutes", [59, 1441])
def test_get_token_invalid_expiry(client, minutes):
    user = client.create_user()
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_token(user, ["chat"], token_expires_in=timedelta(minutes=minutes))
    assert_http_error(excinfo, 400, "ValidationError", "ExpiresInMinutes")
    assert f"ExpiresInMinutes value {minutes} is invalid." in excinfo.value.message


def test_get_token_empty_scopes(client):
    user = client.create_user()
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_token(user, [])
    assert_http_error(excinfo, 400, "ValidationError", "Invalid scopes - Scopes field is required.")


# ---------------------------------------------------------------- revoke / delete


def test_revoke_then_get_token(client):
    user, _ = client.create_user_and_token(["chat"])
    assert client.revoke_tokens(user) is None
    token, before, after = timed(client.get_token, user, ["chat"])
    assert_token(user, token, ["chat"], 1440, before, after)


def test_delete_then_get_token_fails(client):
    user, _ = client.create_user_and_token(["chat"])
    assert client.delete_user(user) is None
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_token(user, ["chat"])
    # ACS documents no exact status for a deleted identity; it must be a client error
    # with an ACS error body.
    err = excinfo.value
    assert 400 <= err.status_code < 500, f"status {err.status_code}: {err.message}"
    assert err.error is not None and err.error.code, err.message


# ---------------------------------------------------------------- foreign identity


def test_foreign_identity_get_token(client):
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_token(CommunicationUserIdentifier(FOREIGN_ID), ["chat"])
    assert_http_error(excinfo, 401, "IdentityNotOwned", "IdentityNotOwned")
    assert "Provided identity doesn't belong to the resource." in excinfo.value.message


def test_foreign_identity_revoke(client):
    with pytest.raises(HttpResponseError) as excinfo:
        client.revoke_tokens(CommunicationUserIdentifier(FOREIGN_ID))
    assert_http_error(excinfo, 401, "IdentityNotOwned", "IdentityNotOwned")


def test_foreign_identity_delete(client):
    with pytest.raises(HttpResponseError) as excinfo:
        client.delete_user(CommunicationUserIdentifier(FOREIGN_ID))
    assert_http_error(excinfo, 401, "IdentityNotOwned", "IdentityNotOwned")


# ---------------------------------------------------------------- api versions


def test_sdk_api_versions_are_the_known_set():
    assert sorted(v.value for v in _api_versions.ApiVersion) == API_VERSIONS


@pytest.mark.parametrize("api_version", API_VERSIONS)
def test_api_version(api_version):
    client = CommunicationIdentityClient.from_connection_string(env("ACS_CONNECTION_STRING"), api_version=api_version)
    (user, token), before, after = timed(client.create_user_and_token, ["chat", "voip"])
    assert_user(user)
    assert_token(user, token, ["chat", "voip"], 1440, before, after)
    token, before, after = timed(client.get_token, user, ["voip"])
    assert_token(user, token, ["voip"], 1440, before, after)
    client.revoke_tokens(user)
    client.delete_user(user)
    with pytest.raises(HttpResponseError):
        client.get_token(user, ["voip"])


@pytest.mark.parametrize("api_version", ["2022-10-01", "2023-10-01"])
def test_api_version_custom_expiry(api_version):
    client = CommunicationIdentityClient.from_connection_string(env("ACS_CONNECTION_STRING"), api_version=api_version)
    (user, token), before, after = timed(client.create_user_and_token, ["chat"], token_expires_in=timedelta(minutes=60))
    assert_token(user, token, ["chat"], 60, before, after)


# ---------------------------------------------------------------- async client


def test_async_client():
    # The async client signs the percent-decoded path (`8:acs:...`) while it sends
    # `8%3Aacs%3A...`; every call below with an identity in the path exercises that.
    async def scenario():
        async with AsyncCommunicationIdentityClient.from_connection_string(env("ACS_CONNECTION_STRING")) as client:
            user = await client.create_user()
            assert_user(user)

            (user2, token), before, after = await timed_async(client.create_user_and_token, ["chat", "voip"], token_expires_in=timedelta(minutes=60))
            assert_token(user2, token, ["chat", "voip"], 60, before, after)

            token, before, after = await timed_async(client.get_token, user, ["voip.join"], token_expires_in=timedelta(minutes=1440))
            assert_token(user, token, ["voip.join"], 1440, before, after)

            with pytest.raises(HttpResponseError) as excinfo:
                await client.get_token(user, ["chat"], token_expires_in=timedelta(minutes=1441))
            assert_http_error(excinfo, 400, "ValidationError", "ExpiresInMinutes")

            with pytest.raises(HttpResponseError) as excinfo:
                await client.get_token(CommunicationUserIdentifier(FOREIGN_ID), ["chat"])
            assert_http_error(excinfo, 401, "IdentityNotOwned", "IdentityNotOwned")

            assert await client.revoke_tokens(user) is None
            token = await client.get_token(user, ["chat"])
            assert jwt_payload(token.token)["acsScope"] == "chat"

            assert await client.delete_user(user) is None
            assert await client.delete_user(user2) is None
            with pytest.raises(HttpResponseError) as excinfo:
                await client.get_token(user, ["chat"])
            assert 400 <= excinfo.value.status_code < 500

    asyncio.run(scenario())

