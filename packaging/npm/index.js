// A local Azure Communication Services Identity service for tests: starts this package's
// `acs-identity` binary as `serve --in-memory --output json` on a free loopback port.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createInterface } from "node:readline";
import tls from "node:tls";
import { fileURLToPath } from "node:url";

export class AcsIdentityError extends Error {
  constructor(message) {
    super(message);
    this.name = "AcsIdentityError";
  }
}

/** Path of this package's `acs-identity` binary (or `$ACS_IDENTITY_BINARY`). */
export function binaryPath() {
  if (process.env.ACS_IDENTITY_BINARY) return process.env.ACS_IDENTITY_BINARY;
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new AcsIdentityError(
      `the acs-identity package carries the acs-identity binary for linux x64 only; this is ` +
        `${process.platform} ${process.arch}. Build the service from source (cargo install ` +
        `--path crates/acs_identity_cli --locked) and set ACS_IDENTITY_BINARY to it.`,
    );
  }
  return fileURLToPath(new URL("./native/acs-identity", import.meta.url));
}

// Trust of the development CAs of running services. Node reads NODE_EXTRA_CA_CERTS only at
// start-up, so instead every secure context created without its own `ca` (https.Agent,
// fetch, the Azure SDKs' pipeline) gets the trusted CAs added to Node's default roots.
const trusted = new Map();
let originalCreateSecureContext = null;

function trustCa(pem) {
  trusted.set(pem, (trusted.get(pem) ?? 0) + 1);
  if (originalCreateSecureContext) return;
  const original = tls.createSecureContext;
  originalCreateSecureContext = original;
  tls.createSecureContext = function createSecureContext(options, ...rest) {
    const context = original.call(this, options, ...rest);
    if (options?.ca === undefined) {
      for (const ca of trusted.keys()) context.context.addCACert(ca);
    }
    return context;
  };
}

function untrustCa(pem) {
  const count = (trusted.get(pem) ?? 0) - 1;
  if (count > 0) trusted.set(pem, count);
  else trusted.delete(pem);
  if (trusted.size === 0 && originalCreateSecureContext) {
    tls.createSecureContext = originalCreateSecureContext;
    originalCreateSecureContext = null;
  }
}

const running = new Set();
process.once("exit", () => {
  for (const child of running) child.kill("SIGTERM");
});

/**
 * Starts an in-memory service and resolves once it is ready.
 * @param {import("./index.d.ts").AcsIdentityOptions} [options]
 * @returns {Promise<import("./index.d.ts").AcsIdentity>}
 */
export async function startAcsIdentity(options = {}) {
  const args = ["serve", "--in-memory", "--output", "json", "--listen", "127.0.0.1:0"];
  if (options.http) args.push("--http-listen", "127.0.0.1:0");
  if (options.dev) args.push("--dev");
  if (options.skipApiVersionCheck) args.push("--skip-api-version-check");
  args.push(...(options.args ?? []));
  const child = spawn(options.binary ?? binaryPath(), args, {
    cwd: tmpdir(),
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  const exited = new Promise((resolve) => {
    child.once("exit", (code) => {
      running.delete(child);
      resolve(code);
    });
  });
  // Keep the last lines of the log for errors; keep reading so the service never blocks.
  const log = [];
  child.stderr.setEncoding("utf8");
  createInterface({ input: child.stderr }).on("line", (line) => {
    log.push(line);
    if (log.length > 50) log.shift();
  });
  const fail = (why) => {
    child.kill("SIGKILL");
    const tail = log.length ? `; its log:\n${log.join("\n")}` : "";
    return new AcsIdentityError(`acs-identity serve ${why}${tail}`);
  };

  const lines = createInterface({ input: child.stdout });
  const timeoutMs = options.timeoutMs ?? 30_000;
  let timer;
  const line = await new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(fail(`printed no ready line within ${timeoutMs} ms`)), timeoutMs);
    lines.once("line", resolve);
    child.once("error", (e) => reject(fail(`cannot start: ${e.message}`)));
    child.once("exit", (code) =>
      // Let the last log lines arrive before reporting.
      setImmediate(() => reject(fail(`exited with code ${code} before it was ready`))),
    );
  }).finally(() => clearTimeout(timer));

  let ready;
  try {
    ready = JSON.parse(line);
  } catch {
    throw fail(`printed ${JSON.stringify(line.slice(0, 200))} instead of its JSON ready line`);
  }
  if (ready?.event !== "ready") throw fail(`printed ${line.slice(0, 200)} instead of a ready event`);

  const ca = options.trustCa !== false && ready.caFile ? readFileSync(ready.caFile, "utf8") : null;
  if (ca) trustCa(ca);
  // A test runner may end without calling stop(): do not keep the event loop alive for it.
  child.unref();
  child.stdout.unref?.();
  child.stderr.unref?.();

  let stopped = null;
  return Object.freeze({
    connectionString: ready.connectionString,
    endpoint: ready.endpoint,
    httpEndpoint: ready.httpEndpoint ?? null,
    caFile: ready.caFile ?? null,
    pid: ready.pid ?? child.pid,
    stop() {
      stopped ??= (async () => {
        if (ca) untrustCa(ca);
        child.ref();
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
        const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
        try {
          return await exited;
        } finally {
          clearTimeout(kill);
        }
      })();
      return stopped;
    },
    // The connection string holds the access key: keep it out of util.inspect and logs.
    [Symbol.for("nodejs.util.inspect.custom")]() {
      return `AcsIdentity { endpoint: '${ready.endpoint}', pid: ${ready.pid ?? child.pid} }`;
    },
  });
}
