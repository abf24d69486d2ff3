// The test page's script: the official JS SDK, bundled by esbuild for the browser exactly
// as a web application bundles it, called as a page would call it. `run.mjs` calls
// `window.acsBrowserTest.cases(config)` or `.blocked(config)` and reads the results; the
// page also shows them, one row per case.

import { CommunicationIdentityClient } from "@azure/communication-identity";

// The scope sets every SDK suite issues tokens with (esbuild bundles the JSON).
import SCOPE_SETS from "../../compat/scope-sets.json";

// An identity of some other resource.
const FOREIGN_USER = {
  communicationUserId: "8:acs:00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000001",
};


// Slack between the page's clock and the service's issue time, in seconds.
const CLOCK_SLACK_S = 60;

class CheckFailed extends Error {}

function check(condition, message) {
  if (!condition) {
    throw new CheckFailed(message);
  }
}

function nowS() {
  return Date.now() / 1000;
}

/** The payload of a JWT, decoded with the browser's own base64. */
function jwtPayload(token) {
  const parts = token.split(".");
  check(parts.length === 3, `not a JWS compact token: ${token.slice(0, 20)}…`);
  const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)));
}

function checkUser(user) {
  check(typeof user?.communicationUserId === "string", "no communicationUserId");
  check(user.communicationUserId.startsWith("8:acs:"), `not an ACS user: ${user.communicationUserId}`);
}

/** A token for `user` with `scopes`, issued between `beforeS` and `afterS`, lasting `minutes`. */
function checkToken(user, accessToken, scopes, minutes, beforeS, afterS) {
  check(typeof accessToken?.token === "string", "no token");
  const payload = jwtPayload(accessToken.token);
  check(payload.acsScope === scopes.join(","), `acsScope ${payload.acsScope}, wanted ${scopes.join(",")}`);
  check(payload.skypeid === user.communicationUserId.slice(2), `skypeid ${payload.skypeid}`);
  const span = payload.exp - payload.iat;
  check(span >= minutes * 60 - 1 && span <= minutes * 60, `exp - iat = ${span}, wanted ${minutes * 60}`);
  check(accessToken.expiresOn instanceof Date, "expiresOn is not a Date");
  const expiresOn = accessToken.expiresOn.getTime() / 1000;
  check(Math.abs(expiresOn - payload.exp) <= 1, `expiresOn ${expiresOn} vs exp ${payload.exp}`);
  check(
    expiresOn >= beforeS + minutes * 60 - CLOCK_SLACK_S && expiresOn <= afterS + minutes * 60 + CLOCK_SLACK_S,
    `expiresOn ${accessToken.expiresOn.toISOString()} is not about now + ${minutes} min`,
  );
  return `${payload.acsScope}, ${minutes} min`;
}

/** What a rejected call gave the page: the RestError's status and ACS code. */
async function rejection(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new CheckFailed("the call succeeded");
}

function checkRestError(err, status, code) {
  check(err.name === "RestError", `not a RestError: ${err}`);
  check(err.statusCode === status, `statusCode ${err.statusCode}, wanted ${status}: ${err.message}`);
  check(err.code === code, `code ${err.code}, wanted ${code}`);
  return `${err.statusCode} ${err.code}`;
}

function show(results, title) {
  document.getElementById("title").textContent = title;
  const body = document.getElementById("results");
  body.replaceChildren(
    ...results.map((r) => {
      const row = document.createElement("tr");
      row.className = r.ok ? "pass" : "fail";
      for (const text of [r.ok ? "pass" : "FAIL", r.name, r.detail]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }),
  );
  const passed = results.filter((r) => r.ok).length;
  document.getElementById("summary").textContent = `${passed} passed, ${results.length - passed} failed`;
}

async function runAll(cases, title) {
  const results = [];
  for (const [name, body] of cases) {
    try {
      results.push({ name, ok: true, detail: String((await body()) ?? "") });
    } catch (err) {
      const detail = err instanceof CheckFailed ? err.message : `${err?.name}: ${err?.message} (code ${err?.code})`;
      results.push({ name, ok: false, detail });
    }
    show(results, title);
  }
  return results;
}

/** Every case against the service, from an allowed origin. */
async function cases(config) {
  const client = new CommunicationIdentityClient(config.connectionString);
  const list = [
    [
      "createUserAndToken",
      async () => {
        const beforeS = nowS();
        const { user, ...token } = await client.createUserAndToken(["chat", "voip"]);
        const afterS = nowS();
        checkUser(user);
        return `${user.communicationUserId.slice(0, 14)}…, ${checkToken(user, token, ["chat", "voip"], 1440, beforeS, afterS)}`;
      },
    ],
    [
      "createUserAndToken with tokenExpiresInMinutes 60",
      async () => {
        const beforeS = nowS();
        const { user, ...token } = await client.createUserAndToken(["voip"], { tokenExpiresInMinutes: 60 });
        return checkToken(user, token, ["voip"], 60, beforeS, nowS());
      },
    ],
  ];
  for (const minutes of [60, 1440]) {
    list.push([
      `getToken with tokenExpiresInMinutes ${minutes}`,
      async () => {
        const user = await client.createUser();
        checkUser(user);
        const beforeS = nowS();
        const token = await client.getToken(user, ["chat"], { tokenExpiresInMinutes: minutes });
        return checkToken(user, token, ["chat"], minutes, beforeS, nowS());
      },
    ]);
  }
  for (const scopes of SCOPE_SETS) {
    list.push([
      `getToken [${scopes.join(", ")}]`,
      async () => {
        const user = await client.createUser();
        const beforeS = nowS();
        const token = await client.getToken(user, scopes);
        return checkToken(user, token, scopes, 1440, beforeS, nowS());
      },
    ]);
  }
  list.push(
    [
      "revokeTokens",
      async () => {
        const { user } = await client.createUserAndToken(["chat"]);
        check((await client.revokeTokens(user)) === undefined, "revokeTokens returned something");
        const beforeS = nowS();
        const token = await client.getToken(user, ["chat"]);
        return `revoked; then ${checkToken(user, token, ["chat"], 1440, beforeS, nowS())}`;
      },
    ],
    [
      "deleteUser, then getToken is 404",
      async () => {
        const { user } = await client.createUserAndToken(["chat"]);
        check((await client.deleteUser(user)) === undefined, "deleteUser returned something");
        const err = await rejection(client.getToken(user, ["chat"]));
        return checkRestError(err, 404, "IdentityNotFound");
      },
    ],
    [
      "a foreign identity is 401",
      async () => checkRestError(await rejection(client.getToken(FOREIGN_USER, ["chat"])), 401, "IdentityNotOwned"),
    ],
    [
      "getTokenForTeamsUser",
      async () => {
        const token = await client.getTokenForTeamsUser({
          teamsUserAadToken: config.teamsToken,
          clientId: config.teamsAppId,
          userObjectId: config.teamsUserId,
        });
        const payload = jwtPayload(token.token);
        const entraExp = jwtPayload(config.teamsToken).exp;
        check(payload.exp === entraExp, `exp ${payload.exp}, Entra token's ${entraExp}`);
        check(payload.skypeid === `orgid:${config.teamsUserId}`, `skypeid ${payload.skypeid}`);
        check(token.expiresOn instanceof Date, "expiresOn is not a Date");
        return payload.skypeid;
      },
    ],
  );
  return runAll(list, `${config.title}: ${list.length} cases`);
}

/** From an origin the service does not allow: the browser must refuse the answer. */
async function blocked(config) {
  const client = new CommunicationIdentityClient(config.connectionString);
  return runAll(
    [
      [
        "createUser from a disallowed origin is blocked",
        async () => {
          const err = await rejection(client.createUser());
          // The browser hides everything about a blocked answer: no status reaches the page.
          check(err.name === "RestError", `not a RestError: ${err}`);
          check(err.statusCode === undefined, `the page read status ${err.statusCode}`);
          check(err.code === "REQUEST_SEND_ERROR", `code ${err.code}: ${err.message}`);
          return `${err.code}: ${err.message}`;
        },
      ],
    ],
    `${config.title}: a disallowed origin`,
  );
}

window.acsBrowserTest = { cases, blocked };
document.getElementById("title").textContent = "ready";
