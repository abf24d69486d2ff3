// Helpers shared by the suites (not a test file: `node --test` runs *.test.mjs).

import assert from "node:assert/strict";

/** The value of a variable the harness (crates/acs_identity_cli/tests/compat.rs) sets. */
export function env(name) {
  const value = process.env[name];
  assert.ok(value, `${name} is not set (run through crates/acs_identity_cli/tests/compat.rs)`);
  return value;
}

/** The decoded payload of a JWT. */
export function jwtPayload(token) {
  const parts = token.split(".");
  assert.equal(parts.length, 3, `not a JWS compact token: ${token}`);
  return JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
}

/** A TokenCredential handing out one fixed Entra token; records the scopes it was asked for. */
export function staticCredential(token) {
  const requests = [];
  return {
    requests,
    getToken: async (scopes) => {
      requests.push([].concat(scopes));
      return { token, expiresOnTimestamp: jwtPayload(token).exp * 1000 };
    },
  };
}

/** Now, in epoch seconds. */
export function nowS() {
  return Date.now() / 1000;
}

/** An ACS user as the SDK returns it. */
export function assertUser(user) {
  assert.equal(typeof user.communicationUserId, "string");
  assert.match(user.communicationUserId, /^8:acs:/);
}

/** Two users created one after the other are ACS users, and not the same. */
export async function assertCreatesDistinctUsers(client) {
  const first = await client.createUser();
  const second = await client.createUser();
  assertUser(first);
  assertUser(second);
  assert.notEqual(first.communicationUserId, second.communicationUserId);
}
