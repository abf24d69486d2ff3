// Helpers shared by the Entra suites (not a test file: `node --test` runs *.test.mjs).

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
