"""The built-in Entra authority with the official Python libraries, offline.

crates/acs_identity_cli/tests/compat.rs starts `acs-identity serve --in-memory --dev
--output json --entra-listen 127.0.0.1:0 --entra-proxy-listen 127.0.0.1:0` and passes its
ready line in ACSID_READY (REQUESTS_CA_BUNDLE is its development CA). Every proxy variable
names the service's Entra proxy, which answers for login.microsoftonline.com itself, tunnels
to the service's own listeners and refuses anything else, so nothing here can leave the
machine (the last test checks the refusal).

- azure-identity's DefaultAzureCredential configured only by AZURE_* variables, with
  `disable_instance_discovery=True`, with `AZURE_TENANT_ID=adfs` and no option at all, and
  with HTTPS_PROXY and no option at all (login.microsoftonline.com answered by the proxy),
  authenticates the official azure-communication-identity client over HTTPS;
- MSAL's ROPC for the development user, with instance discovery off and through the proxy,
  then `get_token_for_teams_user` for that user's oid;
- a wrong client secret and a wrong password get Entra's errors.
"""

import base64
import json
import os
from pathlib import Path

import msal
import pytest
import requests
from azure.communication.identity import CommunicationIdentityClient
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential, DefaultAzureCredential

# The scopes and the AZURE_* variables, shared with the Node suite (js/authority).
ENVIRONMENT = json.loads((Path(__file__).parent / "entra-environment.json").read_text())
API_SCOPE = ENVIRONMENT["apiScope"]
TEAMS_SCOPES = ENVIRONMENT["teamsScopes"]


@pytest.fixture(scope="module")
def ready():
    text = os.environ.get("ACSID_READY")
    if not text:
        pytest.fail("ACSID_READY is not set (run through crates/acs_identity_cli/tests/compat.rs)")
    ready = json.loads(text)
    assert ready["entra"], ready
    return ready


def credential_env(monkeypatch, entra, **variables):
    """The application's credentials and `variables` in the environment, no other AZURE_*."""
    for name in ENVIRONMENT["azureVariables"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_TENANT_ID", entra["tenantId"])
    monkeypatch.setenv("AZURE_CLIENT_ID", entra["clientId"])
    monkeypatch.setenv("AZURE_CLIENT_SECRET", entra["clientSecret"])
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.fixture
def azure_env(monkeypatch, ready):
    """The variables a developer sets for DefaultAzureCredential, and nothing else."""
    entra = ready["entra"]
    return credential_env(monkeypatch, entra, AZURE_AUTHORITY_HOST=entra["authority"])


def jwt_payload(token):
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def create_user_with(ready, credential):
    client = CommunicationIdentityClient(ready["endpoint"], credential)
    user = client.create_user()
    assert user.properties["id"].startswith("8:acs:"), user.properties
    client.delete_user(user)
    return user


def test_default_azure_credential_without_instance_discovery(ready, azure_env):
    credential = DefaultAzureCredential(disable_instance_discovery=True)
    create_user_with(ready, credential)
    claims = jwt_payload(credential.get_token(API_SCOPE).token)
    assert claims["azp"] == ready["entra"]["clientId"]
    assert claims["iss"] == f'{ready["entra"]["authority"]}/{ready["entra"]["tenantId"]}/v2.0'


def test_default_azure_credential_with_the_adfs_tenant_and_no_option(ready, azure_env):
    azure_env.setenv("AZURE_TENANT_ID", "adfs")
    credential = DefaultAzureCredential()
    create_user_with(ready, credential)
    assert jwt_payload(credential.get_token(API_SCOPE).token)["tid"] == ready["entra"]["tenantId"]


@pytest.fixture
def proxy_env(monkeypatch, ready):
    """Only the application's credentials and HTTPS_PROXY: no authority host, no CA option."""
    entra = ready["entra"]
    return credential_env(monkeypatch, entra, HTTPS_PROXY=entra["proxy"])


def test_default_azure_credential_through_the_proxy_and_no_option(ready, proxy_env):
    credential = DefaultAzureCredential()
    create_user_with(ready, credential)
    claims = jwt_payload(credential.get_token(API_SCOPE).token)
    # Entra's own issuer, which the service trusts with the authority's keys.
    assert claims["iss"] == f'https://login.microsoftonline.com/{ready["entra"]["tenantId"]}/v2.0'
    assert claims["azp"] == ready["entra"]["clientId"]


def exchange_for_the_teams_user(ready, result):
    """`get_token_for_teams_user` with MSAL's ROPC `result`, for the user's oid."""
    assert "access_token" in result, result
    oid = result["id_token_claims"]["oid"]
    client = CommunicationIdentityClient.from_connection_string(ready["connectionString"])
    token = client.get_token_for_teams_user(
        result["access_token"], ready["entra"]["clientId"], oid
    )
    assert jwt_payload(token.token)["skypeid"].endswith(f"orgid:{oid}")


def test_msal_ropc_through_the_proxy_then_the_teams_exchange(ready, proxy_env):
    entra = ready["entra"]
    # Unmodified MSAL code: Entra's authority, instance discovery and user realm lookup on.
    app = msal.PublicClientApplication(
        entra["clientId"], authority=f'https://login.microsoftonline.com/{entra["tenantId"]}'
    )
    result = app.acquire_token_by_username_password(
        entra["username"], entra["password"], scopes=TEAMS_SCOPES
    )
    exchange_for_the_teams_user(ready, result)
    assert result["id_token_claims"]["iss"].startswith("https://login.microsoftonline.com/")


def test_the_proxy_refuses_every_other_host(ready, proxy_env):
    for url in ["https://example.com/", "https://graph.microsoft.com/v1.0/me"]:
        with pytest.raises(requests.exceptions.ProxyError) as raised:
            requests.get(url, timeout=10)
        assert "403" in str(raised.value), (url, raised.value)
    # A plain-HTTP request is answered by the proxy itself, never forwarded.
    assert requests.get("http://example.com/", timeout=10).status_code == 403


def msal_app(ready):
    # MSAL's user realm discovery drops the authority's port, so tenant `adfs`, which skips it.
    return msal.PublicClientApplication(
        ready["entra"]["clientId"],
        authority=f'{ready["entra"]["authority"]}/adfs',
        instance_discovery=False,
    )


def test_msal_ropc_then_the_teams_exchange(ready):
    entra = ready["entra"]
    result = msal_app(ready).acquire_token_by_username_password(
        entra["username"], entra["password"], scopes=TEAMS_SCOPES
    )
    exchange_for_the_teams_user(ready, result)
    assert result["id_token_claims"]["preferred_username"] == entra["username"]


def test_a_wrong_secret_gets_entras_invalid_client(ready):
    entra = ready["entra"]
    credential = ClientSecretCredential(
        entra["tenantId"],
        entra["clientId"],
        "not-the-secret",
        authority=entra["authority"],
        disable_instance_discovery=True,
    )
    with pytest.raises(ClientAuthenticationError) as raised:
        credential.get_token(API_SCOPE)
    message = str(raised.value)
    assert "AADSTS7000215: Invalid client secret provided." in message, message
    assert "not-the-secret" not in message
    # MSAL, which azure-identity uses, hands back Entra's error object as is.
    result = msal.ConfidentialClientApplication(
        entra["clientId"],
        client_credential="not-the-secret",
        authority=f'{entra["authority"]}/{entra["tenantId"]}',
        instance_discovery=False,
    ).acquire_token_for_client([API_SCOPE])
    assert result.get("error") == "invalid_client", result
    assert result.get("error_codes") == [7000215], result


def test_a_wrong_password_gets_entras_invalid_grant(ready):
    result = msal_app(ready).acquire_token_by_username_password(
        ready["entra"]["username"], "not-the-password", scopes=TEAMS_SCOPES
    )
    assert result.get("error") == "invalid_grant", result
    assert result.get("error_codes") == [50126], result
    assert result["error_description"].startswith("AADSTS50126:"), result
