// The installed npm package with the official JS SDK, as the README shows: no TLS code,
// only `startAcsIdentity()` and the connection string.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { CommunicationIdentityClient } from "@azure/communication-identity";
import { startAcsIdentity } from "acs-identity";

let service;
before(async () => {
  service = await startAcsIdentity();
});
after(() => service.stop());

test("create a user and a token, revoke, delete", async () => {
  const client = new CommunicationIdentityClient(service.connectionString);
  const { user, token } = await client.createUserAndToken(["chat"]);
  assert.match(user.communicationUserId, /^8:acs:/);
  assert.equal(token.split(".").length, 3);
  const voip = await client.getToken(user, ["voip"]);
  assert.notEqual(voip.token, token);
  await client.revokeTokens(user);
  await client.deleteUser(user);
  await assert.rejects(client.getToken(user, ["chat"]), (e) => e.statusCode >= 400 && e.statusCode < 500);
});

test("the access key stays out of logs", () => {
  assert.ok(service.connectionString.includes("accesskey="));
  assert.ok(!inspect(service).includes("accesskey"));
});

test("stop() ends the service", async () => {
  assert.equal(await service.stop(), 0);
  assert.throws(() => process.kill(service.pid, 0), { code: "ESRCH" });
});
