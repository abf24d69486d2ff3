// The web console (`/console/`) in a real browser against acs-identity.
//
// Reads one JSON line from standard input: {consoleLink, connectionString, ca, shots}
// (crates/acs_identity_cli/tests/console.rs starts the service and passes what its banner
// printed). Trusts the service's development CA through an NSS database made with
// certutil, drives Debian's Chromium with playwright-core through the console as a
// developer would, and checks every result with the API itself, signed here in Node.
// With `shots` (a directory), saves a screenshot of each main view there.
//
// Prints one line per check, `token <jwt>` and `key-fragment-seen <bool>` for the harness,
// and `N passed, M failed`; exits 1 when anything failed.

import { createHash, createHmac, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";

import { launchChromium, log, readConfig, runChecks } from "./harness.mjs";

const OVERALL_TIMEOUT_MS = 240_000;

/** A signed call to the service from Node, as the SDKs sign: `{status, json}`. */
function apiCall(config, method, path, payload) {
  const endpoint = new URL(config.connectionString.match(/endpoint=([^;]+)/i)[1]);
  const key = Buffer.from(config.connectionString.match(/accesskey=([^;]+)/i)[1], "base64");
  const body = payload === undefined ? "" : JSON.stringify(payload);
  const hash = createHash("sha256").update(body).digest("base64");
  const date = new Date().toUTCString();
  const toSign = `${method}\n${path}\n${date};${endpoint.host};${hash}`;
  const signature = createHmac("sha256", key).update(toSign).digest("base64");
  const headers = {
    "x-ms-date": date,
    "x-ms-content-sha256": hash,
    authorization: `HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=${signature}`,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  };
  return new Promise((resolve, reject) => {
    const req = request(
      { host: endpoint.hostname, port: endpoint.port, path, method, headers, ca: readFileSync(config.ca) },
      (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode, json: text ? JSON.parse(text) : null }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const validate = (config, token) => apiCall(config, "POST", "/accessTokens/:validate", { token });

runChecks(OVERALL_TIMEOUT_MS, async (check, cleanup) => {
  const config = await readConfig();
  const browser = await launchChromium(config.ca, "acs-console-home-", cleanup);
  const link = new URL(config.consoleLink);
  const shot = async (page, name) => {
    if (!config.shots) return;
    await page.evaluate(() => {
      const toast = document.getElementById("toast");
      if (toast) toast.textContent = "";
    });
    await page.screenshot({ path: join(config.shots, `${name}.png`), fullPage: true });
  };

  // A few identities made through the API beforehand, so the list has company: one with a
  // custom id and a token, one plain, one deleted.
  const made = await apiCall(config, "POST", "/identities?api-version=2025-03-02-preview", {
    customId: "alice@contoso.com",
    createTokenWithScopes: ["chat"],
  });
  check(made.status === 201, `an identity with a custom id made through the API (${made.status})`);
  await apiCall(config, "POST", "/identities?api-version=2023-10-01", {});
  const gone = await apiCall(config, "POST", "/identities?api-version=2023-10-01", {});
  await apiCall(config, "DELETE", `/identities/${encodeURIComponent(gone.json.identity.id)}?api-version=2023-10-01`);

  // ---------------------------------------------------------------- the printed link
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, colorScheme: "light" });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: link.origin });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(String(e)));
  const seenUrls = [];
  page.on("request", (r) => seenUrls.push(r.url()));
  page.on("dialog", (d) => d.accept());

  const response = await page.goto(config.consoleLink);
  const h = response.headers();
  check(h["cache-control"] === "no-store", `Cache-Control: ${h["cache-control"]}`);
  const csp = h["content-security-policy"] || "";
  check(
    csp.includes("script-src 'self'") && csp.includes("connect-src 'self'") && !csp.includes("unsafe-inline"),
    `Content-Security-Policy: ${csp}`,
  );
  check(h["x-frame-options"] === "DENY", `X-Frame-Options: ${h["x-frame-options"]}`);

  await page.getByRole("button", { name: "Generate" }).waitFor({ state: "visible", timeout: 20_000 });
  check(!page.url().includes("#"), `the key left the address bar: ${page.url().replace(/#.*/, "#…")}`);
  check(
    (await page.evaluate(() => localStorage.length)) === 0,
    "nothing in localStorage",
  );

  // Generate with Chat and VoIP.
  await page.getByLabel("Chat", { exact: true }).first().check();
  await page.getByLabel("Voice and video calling (VoIP)").first().check();
  await page.getByLabel("Token lifetime (minutes, 60–1440)").first().fill("60");
  await page.getByRole("button", { name: "Generate" }).click();
  await page.locator("#out-token").waitFor({ state: "visible" });
  await page.waitForFunction(() => document.getElementById("out-token").value.length > 0);
  const identity = await page.locator("#out-identity").inputValue();
  const token = await page.locator("#out-token").inputValue();
  log(`token ${token}`);
  check(identity.startsWith("8:acs:"), `Generate shows the identity ${identity}`);
  await page.getByRole("button", { name: "Copy token" }).click();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  check(copied === token, "Copy token puts the token on the clipboard");
  let v = await validate(config, token);
  check(
    v.status === 200 && v.json.valid === true && v.json.identity.id === identity &&
      v.json.scopes.includes("chat") && v.json.scopes.includes("voip"),
    `the API validates the token with chat and voip: ${JSON.stringify(v.json)}`,
  );
  const lifetime = (JSON.parse(Buffer.from(token.split(".")[1], "base64url")).exp -
    JSON.parse(Buffer.from(token.split(".")[1], "base64url")).iat);
  check(lifetime === 3600, `the lifetime is 60 minutes (${lifetime} s)`);
  await shot(page, "generate");

  // Decode, with the service's verdict.
  await page.getByRole("button", { name: "Decode a token" }).click();
  await page.getByRole("button", { name: "Use the last token" }).click();
  await page.getByRole("button", { name: "Decode and check" }).click();
  await page.waitForFunction(() => document.getElementById("verdict").textContent.startsWith("valid"));
  const claims = JSON.parse(await page.locator("#decode-claims").textContent());
  check(`8:${claims.skypeid}` === identity && claims.acsScope === "chat,voip", `decoded claims ${JSON.stringify(claims)}`);
  check((await page.locator("#verdict").textContent()) === "valid (chat, voip)", "the verdict is valid");
  await shot(page, "decode");

  // Issue another token for the identity, then revoke.
  await page.getByRole("button", { name: "Identities & tokens" }).click();
  check((await page.locator("#manage-id").inputValue()) === identity, "the manage form holds the new identity");
  await page.locator("#manage-form").getByLabel("VoIP join").check();
  await page.getByRole("button", { name: "Issue token" }).click();
  await page.waitForFunction(() => document.getElementById("manage-status").textContent === "Token issued.");
  const issued = await page.locator("#issued-token").inputValue();
  v = await validate(config, issued);
  check(v.json.valid === true && v.json.scopes.join(",") === "voip.join", `the issued token: ${JSON.stringify(v.json)}`);
  await page.getByRole("button", { name: "Revoke tokens" }).click();
  await page.waitForFunction(() => document.getElementById("manage-status").textContent === "Tokens revoked.");
  v = await validate(config, token);
  check(v.json.valid === false && v.json.reason === "revoked", `after revoke the API says ${JSON.stringify(v.json)}`);
  await page.getByRole("button", { name: "Decode a token" }).click();
  await page.locator("#decode-token").fill(token);
  await page.getByRole("button", { name: "Decode and check" }).click();
  await page.waitForFunction(() => document.getElementById("verdict").dataset.reason === "revoked");
  check((await page.locator("#verdict").textContent()) === "invalid: revoked", "the page's verdict changed to revoked");

  // The list shows it, revoked; then delete it and see the state change.
  await page.getByRole("button", { name: "Identity list" }).click();
  const row = page.locator(`#list-table tbody tr[data-id="${identity}"]`);
  await row.waitFor({ state: "visible" });
  check((await row.getAttribute("data-state")) === "revoked", `the list shows ${identity} revoked`);
  const firstRow = await page.locator("#list-table tbody tr").first().getAttribute("data-id");
  check(firstRow === identity, "the newest identity is listed first");
  const alice = page.locator(`#list-table tbody tr[data-id="${made.json.identity.id}"]`);
  check((await alice.textContent()).includes("alice@contoso.com"), "the list shows the custom id");
  const goneRow = page.locator(`#list-table tbody tr[data-id="${gone.json.identity.id}"]`);
  check((await goneRow.getAttribute("data-state")) === "deleted", "the list shows a deleted identity as deleted");
  await shot(page, "list");
  await row.getByRole("button", { name: `Manage ${identity}` }).click();
  await page.getByRole("button", { name: "Delete identity" }).click();
  await page.waitForFunction(() => document.getElementById("manage-status").textContent === "Identity deleted.");
  v = await validate(config, issued);
  check(v.json.valid === false && v.json.reason === "deleted", `after delete the API says ${JSON.stringify(v.json)}`);
  const get = await apiCall(config, "POST", `/identities/${encodeURIComponent(identity)}/:revokeAccessTokens?api-version=2023-10-01`);
  check(get.status === 404, `the deleted identity answers 404 (${get.status})`);
  await page.getByRole("button", { name: "Identity list" }).click();
  await page.waitForFunction((id) => document.querySelector(`#list-table tbody tr[data-id="${id}"]`)?.dataset.state === "deleted", identity);
  check(true, "the list shows the identity deleted");

  // Resource and activity.
  await page.getByRole("button", { name: "Resource" }).click();
  await page.locator("#keys-table tbody tr").first().waitFor();
  const facts = await page.locator("#resource-facts").textContent();
  check(facts.includes(claims.resourceId), `the resource page names the resource ${claims.resourceId}`);
  check((await page.locator("#connection-box").isHidden()), "the connection string is hidden until asked for");
  await page.locator("#charts figure").first().waitFor();
  const charts = await page.locator("#charts figcaption").allTextContents();
  check(charts.some((c) => c.startsWith("Requests per second")) && charts.some((c) => c.startsWith("create_identity")), `charts: ${charts.join(" | ")}`);
  await shot(page, "resource");

  // Phone width, dark.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark" });
  const small = await phone.newPage();
  await small.goto(config.consoleLink);
  await small.getByRole("button", { name: "Generate" }).waitFor({ state: "visible" });
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `no horizontal scrolling at phone width (${overflow} px over)`);
  await shot(small, "phone-dark");
  await phone.close();

  check(problems.length === 0, `no errors in the browser console ${JSON.stringify(problems)}`);
  const fragmentSent = seenUrls.some((u) => u.includes("accesskey"));
  log(`key-fragment-seen ${fragmentSent}`);
  check(!fragmentSent, "no request URL carries the key");
  await context.close();

  // ---------------------------------------------------------------- no key, wrong key
  const bare = await browser.newContext();
  const p2 = await bare.newPage();
  const signed = [];
  p2.on("request", (r) => {
    if (r.headers().authorization) signed.push(r.url());
  });
  await p2.goto(`${link.origin}/console/`);
  await p2.getByLabel("Connection string or access key").waitFor({ state: "visible" });
  check(await p2.getByRole("button", { name: "Generate" }).isHidden(), "without a key the page asks for one");
  await shot(p2, "signin");
  check(signed.length === 0, `without a key nothing is signed (${signed.length} signed requests)`);
  const wrong = randomBytes(32).toString("base64");
  await p2.getByLabel("Connection string or access key").fill(`endpoint=${link.origin}/;accesskey=${wrong}`);
  await p2.getByRole("button", { name: "Sign in" }).click();
  await p2.waitForFunction(() => document.getElementById("signin-error").textContent.length > 0);
  const message = await p2.locator("#signin-error").textContent();
  check(message === "401 Denied: Denied by the resource provider.", `a wrong key shows the service's 401: ${message}`);
  check(await p2.getByRole("button", { name: "Generate" }).isHidden(), "a wrong key does not sign in");
  await p2.getByLabel("Connection string or access key").fill("not a key!");
  await p2.getByRole("button", { name: "Sign in" }).click();
  await p2.waitForFunction(() => document.getElementById("signin-error").textContent.startsWith("That is not"));
  check(true, "a malformed key is refused in the page");
  await bare.close();
});
