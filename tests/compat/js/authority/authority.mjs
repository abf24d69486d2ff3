// The built-in Entra authority with the official Node libraries, offline.
//
// crates/acs_identity_cli/tests/compat.rs starts `acs-identity serve --in-memory --dev
// --output json --entra-listen 127.0.0.1:0 --entra-proxy-listen 127.0.0.1:0` and passes its
// ready line in ACSID_READY (NODE_EXTRA_CA_CERTS is its development CA). Every proxy variable
// names the service's Entra proxy, which answers for login.microsoftonline.com itself, tunnels
// to the service's own listeners and refuses anything else; msal-node, which reads no proxy
// variable, is given loopback addresses or the proxy. So nothing here can leave the machine.
// Not a `*.test.mjs` file: the harness runs it on its own, not with the SDK suite.
//
// - @azure/identity's DefaultAzureCredential configured only by AZURE_* variables, with
//   `disableInstanceDiscovery: true`, with `AZURE_TENANT_ID=adfs` and no option at all, and
//   with HTTPS_PROXY and no option at all, authenticates the official
//   @azure/communication-identity client over HTTPS;
// - msal-node's ROPC for the development user (with `knownAuthorities`, and through the proxy
//   with `system.proxyUrl`), then getTokenForTeamsUser for its oid;
// - a wrong client secret and a wrong password get Entra's errors; the proxy refuses other hosts.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import http from "node:http";
import { beforeEach, test } from "node:test";

import { CommunicationIdentityClient } from "@azure/communication-identity";
import { ClientSecretCredential, DefaultAzureCredential } from "@azure/identity";
import { PublicClientApplication } from "@azure/msal-node";

// The scopes and the AZURE_* variables, shared with the Python suite (tests/compat/authority).
const ENVIRONMENT = JSON.parse(
  readFileSync(new URL("../../authority/entra-environment.json", import.meta.url), "utf8"),
);
const API_SCOPE = ENVIRONMENT.apiScope;
const TEAMS_SCOPES = ENVIRONMENT.teamsScopes;

assert.ok(process.env.ACSID_READY, "ACSID_READY is not set (run through crates/acs_identity_cli/tests/compat.rs)");
const ready = JSON.parse(process.env.ACSID_READY);
const entra = ready.entra;
assert.ok(entra, "the ready line has no entra object");

function jwtPayload(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));
}

/** The variables a developer sets for DefaultAzureCredential, and nothing else. */
beforeEach(() => {
  for (const name of ENVIRONMENT.azureVariables) delete process.env[name];
  process.env.AZURE_AUTHORITY_HOST = entra.authority;
  process.env.AZURE_TENANT_ID = entra.tenantId;
  process.env.AZURE_CLIENT_ID = entra.clientId;
  process.env.AZURE_CLIENT_SECRET = entra.clientSecret;
});

async function createUserWith(credential) {
  const client = new CommunicationIdentityClient(ready.endpoint, credential);
  const user = await client.createUser();
  assert.match(user.communicationUserId, /^8:acs:/);
  await client.deleteUser(user);
}

test("DefaultAzureCredential without instance discovery", async () => {
  const credential = new DefaultAzureCredential({ disableInstanceDiscovery: true });
  await createUserWith(credential);
  const claims = jwtPayload((await credential.getToken(API_SCOPE)).token);
  assert.equal(claims.azp, entra.clientId);
  assert.equal(claims.iss, `${entra.authority}/${entra.tenantId}/v2.0`);
});

test("DefaultAzureCredential with the adfs tenant and no option", async () => {
  process.env.AZURE_TENANT_ID = "adfs";
  const credential = new DefaultAzureCredential();
  await createUserWith(credential);
  assert.equal(jwtPayload((await credential.getToken(API_SCOPE)).token).tid, entra.tenantId);
});

/** getTokenForTeamsUser with msal-node's ROPC `result`, for the user's oid. */
async function exchangeForTheTeamsUser(result) {
  const oid = result.idTokenClaims.oid;
  const client = new CommunicationIdentityClient(ready.connectionString);
  const token = await client.getTokenForTeamsUser({
    teamsUserAadToken: result.accessToken,
    clientId: entra.clientId,
    userObjectId: oid,
  });
  assert.equal(jwtPayload(token.token).skypeid, `orgid:${oid}`);
}

function msalApp() {
  return new PublicClientApplication({
    auth: {
      clientId: entra.clientId,
      authority: `${entra.authority}/${entra.tenantId}`,
      knownAuthorities: [new URL(entra.authority).host],
    },
  });
}

test("msal-node ROPC, then the Teams exchange for the user's oid", async () => {
  const result = await msalApp().acquireTokenByUsernamePassword({
    scopes: TEAMS_SCOPES,
    username: entra.username,
    password: entra.password,
  });
  assert.equal(result.account.username, entra.username);
  await exchangeForTheTeamsUser(result);
});

test("a wrong secret gets Entra's invalid_client", async () => {
  const credential = new ClientSecretCredential(entra.tenantId, entra.clientId, "not-the-secret", {
    authorityHost: entra.authority,
    disableInstanceDiscovery: true,
  });
  await assert.rejects(credential.getToken(API_SCOPE), (e) => {
    // @azure/identity passes on msal-node's reading of Entra's error object.
    assert.match(e.message, /^invalid_client: Error\(s\): 7000215 - .* - Description: AADSTS7000215: Invalid client secret provided\./);
    assert.ok(!String(e).includes("not-the-secret"));
    return true;
  });
});

test("a wrong password gets Entra's invalid_grant", async () => {
  await assert.rejects(
    msalApp().acquireTokenByUsernamePassword({
      scopes: TEAMS_SCOPES,
      username: entra.username,
      password: "not-the-password",
    }),
    (e) => {
      assert.equal(e.errorCode, "invalid_grant", String(e));
      assert.match(e.errorMessage, /AADSTS50126/);
      return true;
    },
  );
});

test("DefaultAzureCredential through the proxy and no option", async () => {
  // login.microsoftonline.com, instance discovery included, is answered by the proxy.
  delete process.env.AZURE_AUTHORITY_HOST;
  process.env.HTTPS_PROXY = entra.proxy;
  const credential = new DefaultAzureCredential();
  await createUserWith(credential);
  const claims = jwtPayload((await credential.getToken(API_SCOPE)).token);
  assert.equal(claims.iss, `https://login.microsoftonline.com/${entra.tenantId}/v2.0`);
  assert.equal(claims.azp, entra.clientId);
});

test("msal-node through the proxy (system.proxyUrl), then the Teams exchange", async () => {
  // msal-node reads no proxy variable: the proxy is its option; the authority is Entra's, and
  // instance discovery is on.
  const app = new PublicClientApplication({
    auth: { clientId: entra.clientId, authority: `https://login.microsoftonline.com/${entra.tenantId}` },
    system: { proxyUrl: entra.proxy },
  });
  const result = await app.acquireTokenByUsernamePassword({
    scopes: TEAMS_SCOPES,
    username: entra.username,
    password: entra.password,
  });
  // The account is cached under the discovery document's preferred cache host, as with Entra.
  assert.equal(result.account.environment, "login.windows.net");
  await exchangeForTheTeamsUser(result);
});

/** The status of `CONNECT target` sent to the proxy. */
function connectStatus(target) {
  const proxy = new URL(entra.proxy);
  return new Promise((resolve, reject) => {
    const request = http.request({ host: proxy.hostname, port: proxy.port, method: "CONNECT", path: target });
    request.on("connect", (response, socket) => {
      socket.destroy();
      resolve(response.statusCode);
    });
    request.on("error", reject);
    request.end();
  });
}

test("the proxy refuses every other host", async () => {
  for (const target of ["example.com:443", "graph.microsoft.com:443", "login.microsoftonline.com:80"]) {
    assert.equal(await connectStatus(target), 403, target);
  }
  assert.equal(await connectStatus("login.microsoftonline.com:443"), 200);
});
