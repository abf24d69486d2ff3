// End users exchanging their own Entra tokens with the official JS common library
// (@azure/communication-common: AzureCommunicationTokenCredential with Entra options)
// against acs-identity.
//
// crates/acs_identity_cli/tests/compat.rs mints the tokens (ACS_EXTENSION_*, ACS_CLIENTS_*)
// and assigns their users before the suite runs. The library picks the route by scope:
// - scopes under https://auth.msft.communication.azure.com/ →
//   POST /access/teamsExtension/:exchangeAccessToken?api-version=2025-06-30;
// - scopes under https://communication.azure.com/clients/ (the default) →
//   POST /access/entra/:exchangeAccessToken?api-version=2025-03-02-preview.
// Expected behaviour is that of Azure Communication Services (shared/WIRE.md §3.7, §3.8, §8.2).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { AzureCommunicationTokenCredential } from "@azure/communication-common";

import { env, jwtPayload, staticCredential } from "./support.mjs";

const EXTENSION_SCOPE = "https://auth.msft.communication.azure.com/TeamsExtension.ManageCalls";
const CLIENTS_DEFAULT_SCOPE = "https://communication.azure.com/clients/.default";
const GUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";

function exchangeCredential(entraToken, scopes) {
  const tokenCredential = staticCredential(entraToken);
  const options = { resourceEndpoint: env("ACS_ENDPOINT"), tokenCredential };
  if (scopes) {
    options.scopes = scopes;
  }
  return { credential: new AzureCommunicationTokenCredential(options), tokenCredential };
}

/** Checks an exchanged token: its identity, and that it expires with the Entra token. */
function assertExchanged(accessToken, entraToken, skypeidPattern) {
  const payload = jwtPayload(accessToken.token);
  assert.match(payload.skypeid, skypeidPattern);
  const entraExp = jwtPayload(entraToken).exp;
  assert.ok(Math.abs(payload.exp - entraExp) <= 1, `exp ${payload.exp}, Entra exp ${entraExp}`);
  assert.ok(Math.abs(accessToken.expiresOnTimestamp / 1000 - payload.exp) <= 1);
}

describe("Teams Phone extensibility exchange", () => {
  test("an assigned Teams user gets a token for 8:acs:<resource>_<tenant>_<user>", async () => {
    const entraToken = env("ACS_EXTENSION_TOKEN");
    const { credential, tokenCredential } = exchangeCredential(entraToken, [EXTENSION_SCOPE]);
    const accessToken = await credential.getToken();
    const skypeid = new RegExp(
      `^acs:${GUID}_${env("ACS_TENANT_ID")}_${env("ACS_EXTENSION_USER_ID")}$`,
    );
    assertExchanged(accessToken, entraToken, skypeid);
    assert.deepEqual(tokenCredential.requests.at(-1), [EXTENSION_SCOPE]);
    // The same Entra token is not exchanged again while the ACS token is valid.
    const again = await credential.getToken();
    assert.equal(again.token, accessToken.token);
    credential.dispose();
  });

  test("a Teams user without an assignment is refused with 403", async () => {
    const { credential } = exchangeCredential(env("ACS_EXTENSION_TOKEN_UNASSIGNED"), [
      EXTENSION_SCOPE,
    ]);
    await assert.rejects(credential.getToken(), /Status: 403/);
  });

  test("a token for another scope is refused with 401", async () => {
    // The assigned user's Entra-access token is not a Teams extension token.
    const { credential } = exchangeCredential(env("ACS_CLIENTS_TOKEN"), [EXTENSION_SCOPE]);
    await assert.rejects(credential.getToken(), /Status: 401/);
  });
});

describe("Entra user access exchange", () => {
  test("an assigned Entra user gets a token for 8:acs:<resource>_wf_<tenant>_<user>", async () => {
    const entraToken = env("ACS_CLIENTS_TOKEN");
    const { credential, tokenCredential } = exchangeCredential(entraToken);
    const accessToken = await credential.getToken();
    const skypeid = new RegExp(
      `^acs:${GUID}_wf_${env("ACS_TENANT_ID")}_${env("ACS_CLIENTS_USER_ID")}$`,
    );
    assertExchanged(accessToken, entraToken, skypeid);
    assert.deepEqual(tokenCredential.requests.at(-1), [CLIENTS_DEFAULT_SCOPE]);
    assert.equal(jwtPayload(accessToken.token).acsScope, "voip,chat");
  });

  test("an Entra user without an assignment is refused with 403", async () => {
    const { credential } = exchangeCredential(env("ACS_CLIENTS_TOKEN_UNASSIGNED"));
    await assert.rejects(credential.getToken(), /Status: 403/);
  });
});
