// What the browser scripts (run.mjs, console.mjs) share: the configuration line on standard
// input, Debian's Chromium trusting the service's development CA, and one line per check with
// a `N passed, M failed` summary, under an overall timeout.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

import { chromium } from "playwright-core";

const CHROMIUM = process.env.ACS_CHROMIUM || "/usr/bin/chromium";
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function log(line) {
  process.stdout.write(`${line}\n`);
}

/** The first non-empty line of standard input, as JSON. */
export async function readConfig() {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim()) {
      lines.close();
      return JSON.parse(line);
    }
  }
  throw new Error("no configuration on standard input");
}

/** A HOME whose NSS database trusts `ca` for TLS servers, as `certutil` makes it. */
function homeTrusting(ca, prefix) {
  const home = mkdtempSync(join(tmpdir(), prefix));
  const db = join(home, ".pki", "nssdb");
  mkdirSync(db, { recursive: true });
  execFileSync("certutil", ["-N", "-d", `sql:${db}`, "--empty-password"]);
  execFileSync("certutil", ["-A", "-d", `sql:${db}`, "-n", "acs-identity development CA", "-t", "C,,", "-i", ca]);
  return home;
}

/**
 * Debian's Chromium (ACS_CHROMIUM overrides /usr/bin/chromium), headless, trusting `ca` as a
 * developer would: through the NSS database of a throwaway HOME (named after `homePrefix`).
 * Certificate errors are not ignored. Closing the browser and removing the HOME join `cleanup`.
 */
export async function launchChromium(ca, homePrefix, cleanup) {
  const home = homeTrusting(ca, homePrefix);
  cleanup.push(() => rmSync(home, { recursive: true, force: true }));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    env: { ...process.env, HOME: home },
  });
  cleanup.unshift(() => browser.close());
  return browser;
}

/**
 * Runs `main(check, cleanup)` and exits: 0 when at least one check ran and none failed, 1
 * otherwise, or when `main` throws or `timeoutMs` passes. `check(ok, line)` prints
 * `pass|FAIL <line>`; the steps in `cleanup` run in order afterwards, best effort.
 */
export function runChecks(timeoutMs, main) {
  const timer = setTimeout(() => {
    log(`timed out after ${timeoutMs} ms`);
    process.exit(1);
  }, timeoutMs);
  let passed = 0;
  let failed = 0;
  const check = (ok, line) => {
    ok ? passed++ : failed++;
    log(`${ok ? "pass" : "FAIL"} ${line}`);
  };
  const cleanup = [];
  const run = async () => {
    try {
      await main(check, cleanup);
    } finally {
      for (const step of cleanup) {
        try {
          await step();
        } catch {
          // Best effort: a failed cleanup must not hide the results.
        }
      }
    }
    log(`${passed} passed, ${failed} failed`);
    return failed === 0 && passed > 0 ? 0 : 1;
  };
  run().then(
    (code) => {
      clearTimeout(timer);
      process.exit(code);
    },
    (err) => {
      clearTimeout(timer);
      log(`error: ${err?.stack ?? err}`);
      process.exit(1);
    },
  );
}
