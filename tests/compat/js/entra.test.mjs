// Entra ID with the official JS SDK (@azure/communication-identity) against acs-identity.
//
// The server trusts a local OpenID issuer; crates/acs_identity_cli/tests/compat.rs mints
// the tokens and passes them in ACS_ENDPOINT, ACS_ENTRA_API_TOKEN*, ACS_TEAMS_* (see the
// harness for what each one is). Two uses are covered:
// - an Entra token authenticates the Identity API (the client built from an endpoint and
//   a TokenCredential; the SDK sends `Authorization: Bearer`, over HTTPS only);
// - getTokenForTeamsUser exchanges a Teams user's Entra token for an ACS token (the
//   client authenticated with the access key, the Entra token in the body).
// Expected behaviour is that of Azure Communication Services (shared/WIRE.md §3.5, §8).

import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import { CommunicationIdentityClient } from "@azure/communication-identity";

import {
  assertCreatesDistinctUsers,
  assertUser,
  env,
  jwtPayload,
  nowS,
  staticCredential,
} from "./support.mjs";

// The scope every SDK asks a TokenCredential for (note the double slash).
const API_SCOPE = "https://communication.azure.com//.default";

// Slack between the test's clock reading and the service's issue time.
const CLOCK_SLACK_S = 60;

const INVALID_ACCESS_TOKEN = "Provided access token is not valid.";

function assertAskedForApiScope(credential) {
  assert.ok(credential.requests.length > 0, "the SDK never asked the credential for a token");
  for (const scopes of credential.requests) {
    assert.deepEqual(scopes, [API_SCOPE]);
  }
}

function assertAcsToken(user, accessToken, scopes, minutes, beforeS, afterS) {
  const payload = jwtPayload(accessToken.token);
  assert.equal(payload.skypeid, user.communicationUserId.slice("8:".length));
  assert.deepEqual(payload.acsScope.split(","), scopes);
  const lifetime = minutes * 60;
  const span = payload.exp - payload.iat;
  assert.ok(span >= lifetime - 1 && span <= lifetime, `exp - iat = ${span}, wanted ${lifetime}`);
  assert.ok(payload.iat >= beforeS - CLOCK_SLACK_S && payload.iat <= afterS + CLOCK_SLACK_S, `iat ${payload.iat}`);
  assert.ok(accessToken.expiresOn instanceof Date, "expiresOn is not a Date");
  assert.ok(Math.abs(accessToken.expiresOn.getTime() / 1000 - payload.exp) <= 1);
}

/** A validator for assert.rejects: a RestError with exactly this status, code, message and target. */
function restError(status, code, message, target) {
  return (err) => {
    assert.equal(err.name, "RestError", `not a RestError: ${err}`);
    assert.equal(err.statusCode, status, `status ${err.statusCode}: ${err.message}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.message, message);
    assert.equal(err.details?.error?.target, target, JSON.stringify(err.details));
    return true;
  };
}

/** A validator for assert.rejects: a 401 RestError with an ACS error code. */
function unauthorized(err) {
  assert.equal(err.name, "RestError", `not a RestError: ${err}`);
  assert.equal(err.statusCode, 401, `status ${err.statusCode}: ${err.message}`);
  assert.equal(typeof err.code, "string");
  return true;
}

describe("CommunicationIdentityClient with an Entra TokenCredential", () => {
  let endpoint;
  let credential;
  let client;

  before(() => {
    endpoint = env("ACS_ENDPOINT");
    assert.match(endpoint, /^https:\/\//);
    credential = staticCredential(env("ACS_ENTRA_API_TOKEN"));
    client = new CommunicationIdentityClient(endpoint, credential);
  });

  test("createUser returns distinct ACS users", async () => {
    await assertCreatesDistinctUsers(client);
    assertAskedForApiScope(credential);
  });

  test("createUserAndToken, getToken, revokeTokens, deleteUser", async () => {
    let beforeS = nowS();
    const { user, ...created } = await client.createUserAndToken(["chat", "voip"], { tokenExpiresInMinutes: 60 });
    let afterS = nowS();
    assertUser(user);
    assertAcsToken(user, created, ["chat", "voip"], 60, beforeS, afterS);

    beforeS = nowS();
    const token = await client.getToken(user, ["voip.join"]);
    afterS = nowS();
    assertAcsToken(user, token, ["voip.join"], 1440, beforeS, afterS);

    await assert.rejects(
      client.getToken(user, ["chat"], { tokenExpiresInMinutes: 59 }),
      restError(
        400,
        "ValidationError",
        "ExpiresInMinutes value 59 is invalid. Value must be within the [60, 1440] interval.",
        "ExpiresInMinutes",
      ),
    );

    assert.equal(await client.revokeTokens(user), undefined);
    const again = await client.getToken(user, ["chat"]);
    assert.equal(jwtPayload(again.token).acsScope, "chat");

    // Entra and the access key reach the same resource.
    const hmacClient = new CommunicationIdentityClient(env("ACS_CONNECTION_STRING"));
    const viaKey = await hmacClient.getToken(user, ["voip"]);
    assert.equal(jwtPayload(viaKey.token).skypeid, user.communicationUserId.slice("8:".length));

    assert.equal(await client.deleteUser(user), undefined);
    await assert.rejects(client.getToken(user, ["chat"]), (err) => {
      assert.equal(err.name, "RestError", `not a RestError: ${err}`);
      assert.ok(err.statusCode >= 400 && err.statusCode < 500, `status ${err.statusCode}`);
      return true;
    });
    assertAskedForApiScope(credential);
  });

  test("a token for another audience is 401", async () => {
    const wrong = staticCredential(env("ACS_ENTRA_API_TOKEN_WRONG_AUDIENCE"));
    await assert.rejects(new CommunicationIdentityClient(endpoint, wrong).createUser(), unauthorized);
    assertAskedForApiScope(wrong);
  });

  test("a Teams user's token does not open the Identity API", async () => {
    const teams = staticCredential(env("ACS_TEAMS_TOKEN"));
    await assert.rejects(new CommunicationIdentityClient(endpoint, teams).createUser(), unauthorized);
  });

  test("a token signed by an unpublished key is 401", async () => {
    const forged = staticCredential(env("ACS_ENTRA_API_TOKEN_FORGED"));
    await assert.rejects(
      new CommunicationIdentityClient(endpoint, forged).createUserAndToken(["chat"]),
      unauthorized,
    );
  });

  test("the SDK refuses to send a bearer token over plain HTTP", async () => {
    const plain = new CommunicationIdentityClient("http://127.0.0.1:9", staticCredential(env("ACS_ENTRA_API_TOKEN")));
    await assert.rejects(plain.createUser(), /non-TLS/);
  });
});

describe("getTokenForTeamsUser", () => {
  let client;
  let teams;

  before(() => {
    client = new CommunicationIdentityClient(env("ACS_CONNECTION_STRING"));
    teams = {
      teamsUserAadToken: env("ACS_TEAMS_TOKEN"),
      clientId: env("ACS_TEAMS_APP_ID"),
      userObjectId: env("ACS_TEAMS_USER_ID"),
    };
  });

  function assertTeamsToken(accessToken, beforeS, afterS) {
    const entraExp = jwtPayload(teams.teamsUserAadToken).exp;
    const payload = jwtPayload(accessToken.token);
    // The ACS token expires with the Entra token (WIRE.md §3.5).
    assert.equal(payload.exp, entraExp);
    assert.ok(accessToken.expiresOn instanceof Date, "expiresOn is not a Date");
    assert.ok(
      Math.abs(accessToken.expiresOn.getTime() / 1000 - entraExp) <= 1,
      `expiresOn ${accessToken.expiresOn.toISOString()} vs Entra exp ${entraExp}`,
    );
    // A Teams user in the public cloud: skypeid `orgid:<object id>`.
    assert.equal(payload.skypeid, `orgid:${teams.userObjectId}`);
    assert.ok(payload.iat >= beforeS - CLOCK_SLACK_S && payload.iat <= afterS + CLOCK_SLACK_S, `iat ${payload.iat}`);
  }

  test("exchanges a Teams user's Entra token", async () => {
    const beforeS = nowS();
    const token = await client.getTokenForTeamsUser(teams);
    const afterS = nowS();
    assertTeamsToken(token, beforeS, afterS);
  });

  test("works with an Entra-authenticated client too", async () => {
    const entraClient = new CommunicationIdentityClient(env("ACS_ENDPOINT"), staticCredential(env("ACS_ENTRA_API_TOKEN")));
    const beforeS = nowS();
    const token = await entraClient.getTokenForTeamsUser(teams);
    const afterS = nowS();
    assertTeamsToken(token, beforeS, afterS);
  });

  const invalidTokens = [
    ["an empty token", () => ""],
    ["an expired token", () => env("ACS_TEAMS_TOKEN_EXPIRED")],
    ["a token for the wrong audience", () => env("ACS_TEAMS_TOKEN_WRONG_AUDIENCE")],
    ["a token with a forged signature", () => env("ACS_TEAMS_TOKEN_FORGED")],
    ["a token without a Teams scope", () => env("ACS_TEAMS_TOKEN_NO_TEAMS_SCOPE")],
    ["a token that is not a JWT", () => "not-a-jwt"],
  ];
  for (const [name, token] of invalidTokens) {
    test(`rejects ${name} with 401 InvalidAccessToken`, async () => {
      await assert.rejects(
        client.getTokenForTeamsUser({ ...teams, teamsUserAadToken: token() }),
        restError(401, "InvalidAccessToken", INVALID_ACCESS_TOKEN, undefined),
      );
    });
  }

  test("rejects another client id", async () => {
    await assert.rejects(
      client.getTokenForTeamsUser({ ...teams, clientId: "00000000-0000-0000-0000-00000000abcd" }),
      restError(400, "ValidationError", "AAD application is not the expected one.", "appId"),
    );
  });

  test("rejects another user id", async () => {
    await assert.rejects(
      client.getTokenForTeamsUser({ ...teams, userObjectId: "00000000-0000-0000-0000-00000000dcba" }),
      restError(400, "ValidationError", "Provided AAD token issued for unexpected user.", "userId"),
    );
  });

  test("rejects an empty client id", async () => {
    await assert.rejects(
      client.getTokenForTeamsUser({ ...teams, clientId: "" }),
      restError(400, "ValidationError", "AppId: The AppId field is required.", "AppId"),
    );
  });
});
