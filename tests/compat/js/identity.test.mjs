// The official JS SDK (@azure/communication-identity) against acs-identity.
//
// Only the public client of the pinned SDK and the connection string from
// ACS_CONNECTION_STRING are used; the development CA is trusted through
// NODE_EXTRA_CA_CERTS. Expected behaviour is that of Azure Communication Services
// (see shared/WIRE.md). Run with `node --test tests/compat/js/`.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { before, describe, test } from "node:test";

import { CommunicationIdentityClient } from "@azure/communication-identity";

import { assertCreatesDistinctUsers, assertUser, nowS } from "./support.mjs";

// An identity of some other resource.
const FOREIGN_USER = {
  communicationUserId:
    "8:acs:00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000001",
};

// The scope sets every SDK suite issues tokens with.
const SCOPE_SETS = JSON.parse(readFileSync(new URL("../scope-sets.json", import.meta.url), "utf8"));

// Slack between the test's clock reading and the service's issue time.
const CLOCK_SLACK_S = 60;

function connectionString() {
  const value = process.env.ACS_CONNECTION_STRING;
  assert.ok(value, "ACS_CONNECTION_STRING is not set (run through crates/acs_identity_cli/tests/compat.rs)");
  return value;
}

function jwtPart(token, index) {
  const parts = token.split(".");
  assert.equal(parts.length, 3, `not a JWS compact token: ${token}`);
  return JSON.parse(Buffer.from(parts[index], "base64url").toString("utf8"));
}

/** Checks a token issued between `beforeS` and `afterS` (epoch seconds). */
function assertToken(user, accessToken, scopes, minutes, beforeS, afterS) {
  assert.equal(typeof accessToken.token, "string");
  const header = jwtPart(accessToken.token, 0);
  assert.equal(header.typ, "JWT");
  assert.ok(["RS256", "ES256", "EdDSA"].includes(header.alg), `alg ${header.alg}`);
  const payload = jwtPart(accessToken.token, 1);
  assert.deepEqual(payload.acsScope.split(","), scopes);
  assert.equal(payload.skypeid, user.communicationUserId.slice("8:".length));
  const lifetime = minutes * 60;
  assert.ok(Number.isInteger(payload.iat) && Number.isInteger(payload.exp));
  const span = payload.exp - payload.iat;
  assert.ok(span >= lifetime - 1 && span <= lifetime, `exp - iat = ${span}, wanted ${lifetime}`);
  assert.ok(payload.iat >= beforeS - CLOCK_SLACK_S && payload.iat <= afterS + CLOCK_SLACK_S, `iat ${payload.iat}`);
  assert.ok(accessToken.expiresOn instanceof Date, "expiresOn is not a Date");
  const expiresOn = accessToken.expiresOn.getTime() / 1000;
  assert.ok(!Number.isNaN(expiresOn), "expiresOn is an invalid Date");
  assert.ok(Math.abs(expiresOn - payload.exp) <= 1, `expiresOn ${accessToken.expiresOn.toISOString()} vs exp ${payload.exp}`);
  assert.ok(
    expiresOn >= beforeS + lifetime - CLOCK_SLACK_S && expiresOn <= afterS + lifetime + CLOCK_SLACK_S,
    `expiresOn ${accessToken.expiresOn.toISOString()} is not about now + ${minutes} min`,
  );
}

/** A validator for assert.rejects: a RestError with this status, code and message part. */
function restError(status, code, messagePart) {
  return (err) => {
    assert.equal(err.name, "RestError", `not a RestError: ${err}`);
    assert.equal(err.statusCode, status, `status ${err.statusCode}: ${err.message}`);
    if (code !== undefined) {
      assert.equal(err.code, code);
    }
    if (messagePart !== undefined) {
      assert.ok(err.message.includes(messagePart), err.message);
    }
    return true;
  };
}

describe("CommunicationIdentityClient", () => {
  let client;

  before(() => {
    client = new CommunicationIdentityClient(connectionString());
  });

  test("createUser returns distinct ACS users", async () => {
    await assertCreatesDistinctUsers(client);
  });

  for (const scopes of SCOPE_SETS) {
    test(`createUserAndToken [${scopes.join(", ")}]`, async () => {
      const beforeS = nowS();
      const { user, ...token } = await client.createUserAndToken(scopes, { tokenExpiresInMinutes: 60 });
      const afterS = nowS();
      assertUser(user);
      assertToken(user, token, scopes, 60, beforeS, afterS);
    });
  }

  for (const minutes of [60, 1440]) {
    test(`createUserAndToken with tokenExpiresInMinutes ${minutes}`, async () => {
      const beforeS = nowS();
      const { user, ...token } = await client.createUserAndToken(["voip"], { tokenExpiresInMinutes: minutes });
      const afterS = nowS();
      assertToken(user, token, ["voip"], minutes, beforeS, afterS);
    });
  }

  test("createUserAndToken without expiry lasts 24 h", async () => {
    const beforeS = nowS();
    const { user, ...token } = await client.createUserAndToken(["chat"]);
    const afterS = nowS();
    assertToken(user, token, ["chat"], 1440, beforeS, afterS);
  });

  for (const minutes of [59, 1441]) {
    test(`createUserAndToken rejects tokenExpiresInMinutes ${minutes}`, async () => {
      await assert.rejects(
        client.createUserAndToken(["chat"], { tokenExpiresInMinutes: minutes }),
        restError(400, "ValidationError", `ExpiresInMinutes value ${minutes} is invalid.`),
      );
    });
  }

  for (const minutes of [60, 1440]) {
    test(`getToken with tokenExpiresInMinutes ${minutes}`, async () => {
      const user = await client.createUser();
      const beforeS = nowS();
      const token = await client.getToken(user, ["chat", "voip"], { tokenExpiresInMinutes: minutes });
      const afterS = nowS();
      assertToken(user, token, ["chat", "voip"], minutes, beforeS, afterS);
    });
  }

  test("getToken without expiry lasts 24 h", async () => {
    const user = await client.createUser();
    const beforeS = nowS();
    const token = await client.getToken(user, ["chat.join"]);
    const afterS = nowS();
    assertToken(user, token, ["chat.join"], 1440, beforeS, afterS);
  });

  for (const minutes of [59, 1441]) {
    test(`getToken rejects tokenExpiresInMinutes ${minutes}`, async () => {
      const user = await client.createUser();
      await assert.rejects(
        client.getToken(user, ["chat"], { tokenExpiresInMinutes: minutes }),
        restError(400, "ValidationError", `ExpiresInMinutes value ${minutes} is invalid.`),
      );
    });
  }

  test("getToken rejects empty scopes", async () => {
    const user = await client.createUser();
    await assert.rejects(
      client.getToken(user, []),
      restError(400, "ValidationError", "Invalid scopes - Scopes field is required."),
    );
  });

  test("revokeTokens, then getToken still works", async () => {
    const { user } = await client.createUserAndToken(["chat"]);
    assert.equal(await client.revokeTokens(user), undefined);
    const beforeS = nowS();
    const token = await client.getToken(user, ["chat"]);
    const afterS = nowS();
    assertToken(user, token, ["chat"], 1440, beforeS, afterS);
  });

  test("deleteUser, then getToken fails", async () => {
    const { user } = await client.createUserAndToken(["chat"]);
    assert.equal(await client.deleteUser(user), undefined);
    // ACS documents no exact status for a deleted identity: a client error with an
    // ACS error code.
    await assert.rejects(client.getToken(user, ["chat"]), (err) => {
      assert.equal(err.name, "RestError", `not a RestError: ${err}`);
      assert.ok(err.statusCode >= 400 && err.statusCode < 500, `status ${err.statusCode}`);
      assert.equal(typeof err.code, "string");
      return true;
    });
  });

  test("getToken for a foreign identity is 401 IdentityNotOwned", async () => {
    await assert.rejects(
      client.getToken(FOREIGN_USER, ["chat"]),
      restError(401, "IdentityNotOwned", "Provided identity doesn't belong to the resource."),
    );
  });

  test("revokeTokens for a foreign identity is 401 IdentityNotOwned", async () => {
    await assert.rejects(client.revokeTokens(FOREIGN_USER), restError(401, "IdentityNotOwned"));
  });

  test("deleteUser for a foreign identity is 401 IdentityNotOwned", async () => {
    await assert.rejects(client.deleteUser(FOREIGN_USER), restError(401, "IdentityNotOwned"));
  });
});
