// The official JS SDK in a real browser against acs-identity.
//
// 1. Bundles page/app.mjs (which imports @azure/communication-identity) with esbuild for
//    the browser, twice: with @azure/communication-common 2.3.1, whose browser build signs
//    `host:port:port` (what the SDK resolved to when 1.3.1 shipped), and with 2.4.2, which
//    signs `host:port`.
// 2. Serves the page from a small static server on two loopback ports: two origins, one the
//    service allows and one it does not.
// 3. Prints `origins <allowed> <other>` and reads one JSON line from standard input:
//    {connectionString, ca, teamsToken, teamsAppId, teamsUserId}. The harness
//    (crates/acs_identity_cli/tests/browser.rs) starts the service in between, allowing
//    only the first origin.
// 4. Trusts the service's development CA as a developer would: an NSS database made with
//    certutil in a throwaway HOME, which Chromium reads. Certificate errors are not ignored.
// 5. Drives Debian's Chromium with playwright-core: every case from the allowed origin with
//    each bundle, the disallowed origin once, and checks with the DevTools protocol that
//    the browser sent the preflights (the Teams exchange's among them) and got 204.
//
// Prints one line per case and `N passed, M failed`; exits 1 when anything failed.
// ACS_CHROMIUM overrides /usr/bin/chromium; ACS_BROWSER_SCREENSHOT=<file.png> saves the page.

import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

import { launchChromium, log, readConfig, runChecks } from "./harness.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const OVERALL_TIMEOUT_MS = 300_000;

/** The two bundles: which communication-common each uses, and how it signs the host. */
const VARIANTS = [
  { name: "common-2.3.1", title: "@azure/communication-common 2.3.1 (signs host:port:port)", alias: {} },
  {
    name: "common-2.4.2",
    title: "@azure/communication-common 2.4.2 (signs host:port)",
    alias: { "@azure/communication-common": "communication-common-2.4.2" },
  },
];

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8" };

async function bundle(out) {
  for (const variant of VARIANTS) {
    await esbuild.build({
      entryPoints: [join(HERE, "page/app.mjs")],
      bundle: true,
      platform: "browser",
      format: "esm",
      target: "es2020",
      alias: variant.alias,
      outfile: join(out, variant.name, "app.js"),
      logLevel: "warning",
    });
    copyFileSync(join(HERE, "page/index.html"), join(out, variant.name, "index.html"));
  }
}

/** A static server for `root` on a free loopback port; resolves to `{server, port}`. */
function serveStatic(root) {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
    const file = join(root, path.endsWith("/") ? `${path}index.html` : path);
    if (req.method !== "GET" || !file.startsWith(root)) {
      res.writeHead(405).end();
      return;
    }
    try {
      const body = readFileSync(file);
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, port: server.address().port })));
}

/** Preflights the page's browser sent, with their statuses, from the DevTools protocol. */
async function watchPreflights(page) {
  const cdp = await page.context().newCDPSession(page);
  const seen = new Map();
  // Chromium reports a preflight as an OPTIONS request carrying Access-Control-Request-Method,
  // and its response with the resource type "Preflight".
  cdp.on("Network.requestWillBeSent", (e) => {
    const asks = Object.keys(e.request.headers).some((h) => h.toLowerCase() === "access-control-request-method");
    if (e.request.method === "OPTIONS" && asks) {
      seen.set(e.requestId, { url: e.request.url, method: e.request.method, status: undefined });
    }
  });
  cdp.on("Network.responseReceived", (e) => {
    if (e.type === "Preflight" && seen.has(e.requestId)) {
      seen.get(e.requestId).status = e.response.status;
    }
  });
  await cdp.send("Network.enable");
  return seen;
}

runChecks(OVERALL_TIMEOUT_MS, async (record, cleanup) => {
  const work = mkdtempSync(join(tmpdir(), "acs-browser-"));
  cleanup.push(() => rmSync(work, { recursive: true, force: true }));
  const site = join(work, "site");
  await bundle(site);
  const allowed = await serveStatic(site);
  const other = await serveStatic(site);
  cleanup.push(() => allowed.server.close(), () => other.server.close());
  const allowedOrigin = `http://localhost:${allowed.port}`;
  const otherOrigin = `http://127.0.0.1:${other.port}`;
  log(`origins ${allowedOrigin} ${otherOrigin}`);

  const config = await readConfig();
  const browser = await launchChromium(config.ca, "acs-browser-home-", cleanup);
  const endpoint = new URL(config.connectionString.match(/endpoint=([^;]+)/i)[1]);

  for (const [i, variant] of VARIANTS.entries()) {
    // A context of its own: a fresh preflight cache, so the Teams exchange's is sent.
    const context = await browser.newContext();
    const page = await context.newPage();
    const preflights = await watchPreflights(page);
    const consoleLines = [];
    page.on("console", (m) => consoleLines.push(m.text()));
    await page.goto(`${allowedOrigin}/${variant.name}/`);
    await page.waitForFunction(() => window.acsBrowserTest !== undefined);
    const results = await page.evaluate((c) => window.acsBrowserTest.cases(c), { ...config, title: variant.title });
    for (const r of results) {
      record(r.ok, `${variant.name}: ${r.name}: ${r.detail}`);
    }
    if (i === 0 && process.env.ACS_BROWSER_SCREENSHOT) {
      await page.screenshot({ path: process.env.ACS_BROWSER_SCREENSHOT, fullPage: true });
    }
    // The browser asked before each signed call, the Teams exchange included, and went on.
    const all = [...preflights.values()].filter((p) => new URL(p.url).host === endpoint.host);
    const teams = all.filter((p) => new URL(p.url).pathname === "/teamsUser/:exchangeAccessToken");
    record(
      teams.length >= 1 && teams.every((p) => p.status === 204),
      `${variant.name}: the Teams exchange preflight: ${JSON.stringify(teams)}`,
    );
    record(
      all.length >= 1 && all.every((p) => p.status === 204),
      `${variant.name}: ${all.length} preflights, all 204: ${JSON.stringify(all.filter((p) => p.status !== 204))}`,
    );
    const corsErrors = consoleLines.filter((l) => l.includes("CORS"));
    record(corsErrors.length === 0, `${variant.name}: no CORS errors in the console ${JSON.stringify(corsErrors)}`);
    await context.close();
  }

  const page = await (await browser.newContext()).newPage();
  const consoleLines = [];
  page.on("console", (m) => consoleLines.push(m.text()));
  await page.goto(`${otherOrigin}/${VARIANTS[0].name}/`);
  await page.waitForFunction(() => window.acsBrowserTest !== undefined);
  const results = await page.evaluate((c) => window.acsBrowserTest.blocked(c), { ...config, title: VARIANTS[0].title });
  for (const r of results) {
    record(r.ok, `${otherOrigin}: ${r.name}: ${r.detail}`);
  }
  const blockedLines = consoleLines.filter((l) => l.includes("blocked by CORS policy"));
  record(blockedLines.length >= 1, `${otherOrigin}: the console says why: ${blockedLines[0] ?? JSON.stringify(consoleLines)}`);
  await page.close();
});
