"""Entra ID with the official Python SDK (azure-communication-identity) against acs-identity.

The server trusts a local OpenID issuer; crates/acs_identity_cli/tests/compat.rs mints the
tokens and passes them in ACS_ENDPOINT, ACS_ENTRA_API_TOKEN*, ACS_TEAMS_* (see the
harness for what each one is). Two uses are covered:

- an Entra token authenticates the Identity API (the client built from an endpoint and a
  TokenCredential; the SDK sends `Authorization: Bearer`, over HTTPS only);
- `get_token_for_teams_user` exchanges a Teams user's Entra token for an ACS token
  (the client authenticated with the access key, the Entra token in the body).

Expected behaviour is that of Azure Communication Services (shared/WIRE.md §3.5, §8).
"""

import asyncio
from datetime import timedelta

import pytest
from azure.communication.identity import CommunicationIdentityClient
from azure.communication.identity._shared.utils import create_access_token
from azure.communication.identity.aio import (
    CommunicationIdentityClient as AsyncCommunicationIdentityClient,
)
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError

from support import CLOCK_SLACK_S, assert_user, env, jwt_payload, parse_expires_on, timed, timed_async

# The scope every SDK asks a TokenCredential for (note the double slash).
API_SCOPE = "https://communication.azure.com//.default"

INVALID_ACCESS_TOKEN = "Provided access token is not valid."


def expires_at(token):
    return jwt_payload(token)["exp"]


class StaticTokenCredential:
    """A TokenCredential handing out one fixed Entra token; records what it was asked."""

    def __init__(self, token):
        self.token = token
        self.requests = []

    def get_token(self, *scopes, **kwargs):
        self.requests.append(scopes)
        return AccessToken(self.token, expires_at(self.token))


class AsyncStaticTokenCredential:
    """The AsyncTokenCredential twin."""

    def __init__(self, token):
        self.token = token
        self.requests = []

    async def get_token(self, *scopes, **kwargs):
        self.requests.append(scopes)
        return AccessToken(self.token, expires_at(self.token))

    async def close(self):
        pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *args):
        pass


def assert_asked_for_api_scope(credential):
    assert credential.requests, "the SDK never asked the credential for a token"
    for scopes in credential.requests:
        assert scopes == (API_SCOPE,), scopes


def assert_acs_token(user, access_token, scopes, minutes, before, after):
    payload = jwt_payload(access_token.token)
    assert payload["skypeid"] == user.raw_id[len("8:"):]
    assert payload["acsScope"].split(",") == scopes
    lifetime = minutes * 60
    assert lifetime - 1 <= payload["exp"] - payload["iat"] <= lifetime
    assert before - CLOCK_SLACK_S <= payload["iat"] <= after + CLOCK_SLACK_S
    assert abs(parse_expires_on(access_token.expires_on) - payload["exp"]) <= 1


def assert_http_error(excinfo, status, code, message, target=None):
    err = excinfo.value
    assert err.status_code == status, f"status {err.status_code}: {err.message}"
    assert err.error is not None, f"no error body: {err.message}"
    assert err.error.code == code, err.message
    assert err.error.message == message, err.message
    assert err.error.target == target, err.message


# ---------------------------------------------------------------- Entra-authenticated client


@pytest.fixture(scope="module")
def endpoint():
    value = env("ACS_ENDPOINT")
    assert value.startswith("https://"), value
    return value


@pytest.fixture(scope="module")
def entra_credential():
    return StaticTokenCredential(env("ACS_ENTRA_API_TOKEN"))


@pytest.fixture(scope="module")
def entra_client(endpoint, entra_credential):
    return CommunicationIdentityClient(endpoint, entra_credential)


@pytest.fixture(scope="module")
def hmac_client():
    return CommunicationIdentityClient.from_connection_string(env("ACS_CONNECTION_STRING"))


def test_entra_create_user(entra_client, entra_credential):
    first = entra_client.create_user()
    second = entra_client.create_user()
    assert_user(first)
    assert_user(second)
    assert first.raw_id != second.raw_id
    assert_asked_for_api_scope(entra_credential)


def test_entra_full_lifecycle(entra_client, entra_credential, hmac_client):
    (user, token), before, after = timed(entra_client.create_user_and_token, ["chat", "voip"], token_expires_in=timedelta(minutes=60))
    assert_user(user)
    assert_acs_token(user, token, ["chat", "voip"], 60, before, after)

    token, before, after = timed(entra_client.get_token, user, ["voip.join"])
    assert_acs_token(user, token, ["voip.join"], 1440, before, after)

    with pytest.raises(HttpResponseError) as excinfo:
        entra_client.get_token(user, ["chat"], token_expires_in=timedelta(minutes=1441))
    assert_http_error(
        excinfo,
        400,
        "ValidationError",
        "ExpiresInMinutes value 1441 is invalid. Value must be within the [60, 1440] interval.",
        "ExpiresInMinutes",
    )

    assert entra_client.revoke_tokens(user) is None
    token = entra_client.get_token(user, ["chat"])
    assert jwt_payload(token.token)["acsScope"] == "chat"

    # Entra and the access key reach the same resource: the key-authenticated client
    # sees the user the Entra-authenticated one created, and the other way round.
    token = hmac_client.get_token(user, ["voip"])
    assert jwt_payload(token.token)["skypeid"] == user.raw_id[len("8:"):]
    other = hmac_client.create_user()
    assert jwt_payload(entra_client.get_token(other, ["chat"]).token)["skypeid"] == other.raw_id[len("8:"):]

    assert entra_client.delete_user(user) is None
    assert entra_client.delete_user(other) is None
    with pytest.raises(HttpResponseError) as excinfo:
        entra_client.get_token(user, ["chat"])
    assert 400 <= excinfo.value.status_code < 500
    assert_asked_for_api_scope(entra_credential)


def _refused(endpoint, token_variable, call):
    """Calls `call(client)`, the client on the Entra token in `token_variable`, which must fail.

    Returns the service's error and the credential."""
    credential = StaticTokenCredential(env(token_variable))
    client = CommunicationIdentityClient(endpoint, credential)
    with pytest.raises(HttpResponseError) as excinfo:
        call(client)
    return excinfo.value, credential


def test_entra_wrong_audience_is_401(endpoint):
    err, credential = _refused(endpoint, "ACS_ENTRA_API_TOKEN_WRONG_AUDIENCE", lambda c: c.create_user())
    assert err.status_code == 401, f"status {err.status_code}: {err.message}"
    assert err.error is not None and err.error.code, err.message
    assert_asked_for_api_scope(credential)


def test_entra_teams_token_is_not_an_api_token(endpoint):
    # A Teams user's token (audience auth.msft.communication.azure.com) must not open the
    # Identity API itself.
    err, _ = _refused(endpoint, "ACS_TEAMS_TOKEN", lambda c: c.create_user())
    assert err.status_code == 401


def test_entra_forged_api_token_is_401(endpoint):
    # Right issuer, audience and key id, signed by a key the issuer does not publish.
    err, _ = _refused(endpoint, "ACS_ENTRA_API_TOKEN_FORGED", lambda c: c.create_user_and_token(["chat"]))
    assert err.status_code == 401


def test_entra_bearer_refused_over_plain_http_by_the_sdk():
    # azure-core refuses to send a bearer token without TLS, so HTTPS is required.
    client = CommunicationIdentityClient("http://127.0.0.1:9", StaticTokenCredential(env("ACS_ENTRA_API_TOKEN")))
    with pytest.raises(Exception) as excinfo:
        client.create_user()
    assert "non-TLS" in str(excinfo.value), excinfo.value


def test_entra_async_client(endpoint):
    async def scenario():
        credential = AsyncStaticTokenCredential(env("ACS_ENTRA_API_TOKEN"))
        async with AsyncCommunicationIdentityClient(endpoint, credential) as client:
            (user, token), before, after = await timed_async(client.create_user_and_token, ["chat"])
            assert_user(user)
            assert_acs_token(user, token, ["chat"], 1440, before, after)
            token, before, after = await timed_async(client.get_token, user, ["voip"], token_expires_in=timedelta(minutes=60))
            assert_acs_token(user, token, ["voip"], 60, before, after)
            assert await client.revoke_tokens(user) is None
            assert await client.delete_user(user) is None
            with pytest.raises(HttpResponseError) as excinfo:
                await client.get_token(user, ["chat"])
            assert 400 <= excinfo.value.status_code < 500
        assert_asked_for_api_scope(credential)

        credential = AsyncStaticTokenCredential(env("ACS_ENTRA_API_TOKEN_WRONG_AUDIENCE"))
        async with AsyncCommunicationIdentityClient(endpoint, credential) as client:
            with pytest.raises(HttpResponseError) as excinfo:
                await client.create_user()
            assert excinfo.value.status_code == 401

    asyncio.run(scenario())


# ---------------------------------------------------------------- Teams user exchange


@pytest.fixture(scope="module")
def teams():
    return {
        "token": env("ACS_TEAMS_TOKEN"),
        "app_id": env("ACS_TEAMS_APP_ID"),
        "user_id": env("ACS_TEAMS_USER_ID"),
    }


def assert_teams_token(access_token, teams, before, after):
    entra_exp = expires_at(teams["token"])
    payload = jwt_payload(access_token.token)
    # The ACS token expires with the Entra token (WIRE.md §3.5).
    assert payload["exp"] == entra_exp, f"exp {payload['exp']} vs Entra exp {entra_exp}"
    assert abs(parse_expires_on(access_token.expires_on) - entra_exp) <= 1, access_token.expires_on
    assert create_access_token(access_token.token).expires_on == entra_exp
    # A Teams user in the public cloud: skypeid `orgid:<object id>`.
    assert payload["skypeid"] == f"orgid:{teams['user_id']}", payload["skypeid"]
    assert before - CLOCK_SLACK_S <= payload["iat"] <= after + CLOCK_SLACK_S


def test_teams_exchange(hmac_client, teams):
    token, before, after = timed(hmac_client.get_token_for_teams_user, teams["token"], teams["app_id"], teams["user_id"])
    assert isinstance(token, AccessToken)
    assert_teams_token(token, teams, before, after)


def test_teams_exchange_ids_are_case_insensitive(hmac_client, teams):
    token, before, after = timed(hmac_client.get_token_for_teams_user, teams["token"], teams["app_id"].upper(), teams["user_id"].upper())
    assert_teams_token(token, teams, before, after)


def test_teams_exchange_with_entra_authenticated_client(entra_client, teams):
    token, before, after = timed(entra_client.get_token_for_teams_user, teams["token"], teams["app_id"], teams["user_id"])
    assert_teams_token(token, teams, before, after)


def test_teams_exchange_async(teams):
    async def scenario():
        async with AsyncCommunicationIdentityClient.from_connection_string(env("ACS_CONNECTION_STRING")) as client:
            token, before, after = await timed_async(client.get_token_for_teams_user, teams["token"], teams["app_id"], teams["user_id"])
            assert_teams_token(token, teams, before, after)
            with pytest.raises(HttpResponseError) as excinfo:
                await client.get_token_for_teams_user(env("ACS_TEAMS_TOKEN_EXPIRED"), teams["app_id"], teams["user_id"])
            assert_http_error(excinfo, 401, "InvalidAccessToken", INVALID_ACCESS_TOKEN)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "token_var",
    [
        None,
        "ACS_TEAMS_TOKEN_EXPIRED",
        "ACS_TEAMS_TOKEN_WRONG_AUDIENCE",
        "ACS_TEAMS_TOKEN_FORGED",
        "ACS_TEAMS_TOKEN_NO_TEAMS_SCOPE",
        "not-a-jwt",
    ],
    ids=["empty", "expired", "wrong_audience", "forged_signature", "no_teams_scope", "garbage"],
)
def test_teams_exchange_invalid_token(hmac_client, teams, token_var):
    if token_var is None:
        aad_token = ""
    elif token_var.startswith("ACS_"):
        aad_token = env(token_var)
    else:
        aad_token = token_var
    with pytest.raises(HttpResponseError) as excinfo:
        hmac_client.get_token_for_teams_user(aad_token, teams["app_id"], teams["user_id"])
    assert_http_error(excinfo, 401, "InvalidAccessToken", INVALID_ACCESS_TOKEN)


def test_teams_exchange_wrong_client_id(hmac_client, teams):
    other_app = "00000000-0000-0000-0000-00000000abcd"
    with pytest.raises(HttpResponseError) as excinfo:
        hmac_client.get_token_for_teams_user(teams["token"], other_app, teams["user_id"])
    assert_http_error(excinfo, 400, "ValidationError", "AAD application is not the expected one.", "appId")


def test_teams_exchange_wrong_user_id(hmac_client, teams):
    other_user = "00000000-0000-0000-0000-00000000dcba"
    with pytest.raises(HttpResponseError) as excinfo:
        hmac_client.get_token_for_teams_user(teams["token"], teams["app_id"], other_user)
    assert_http_error(excinfo, 400, "ValidationError", "Provided AAD token issued for unexpected user.", "userId")


def test_teams_exchange_empty_client_id(hmac_client, teams):
    with pytest.raises(HttpResponseError) as excinfo:
        hmac_client.get_token_for_teams_user(teams["token"], "", teams["user_id"])
    assert_http_error(excinfo, 400, "ValidationError", "AppId: The AppId field is required.", "AppId")
