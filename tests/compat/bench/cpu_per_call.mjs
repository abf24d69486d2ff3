// CPU time per createUser + getToken(["chat"]) pair of the official JS SDK.
//
// Same protocol as crates/acs_identity/examples/cpu_per_call.rs: --warmup pairs, then
// --pairs sequential pairs; prints one JSON line with the CPU the process used during
// the measured loop only (process.cpuUsage(), user + system of the whole process, so
// module loading and the warm-up are excluded):
//
//   {"client":"js","pairs":N,"cpu_us_per_pair":…,"user_us":…,"sys_us":…,"wall_s":…}
//
// The SDK is the one `cargo xtask compat-setup` installs in tests/compat/js/node_modules.
// Run by `cargo xtask client-bench`, or by hand:
//
//   node tests/compat/bench/cpu_per_call.mjs --endpoint http://127.0.0.1:8080 \
//       --connection-string "endpoint=…;accesskey=…"
//
// Over plain HTTP the client needs { allowInsecureConnection: true }.

import { createRequire } from "node:module";
import { parseArgs } from "node:util";

// Resolve the SDK from tests/compat/js, where compat-setup installs it.
const require = createRequire(new URL("../js/package.json", import.meta.url));
const { CommunicationIdentityClient } = require("@azure/communication-identity");

const { values } = parseArgs({
  options: {
    endpoint: { type: "string" },
    "connection-string": { type: "string" },
    pairs: { type: "string", default: "2000" },
    warmup: { type: "string", default: "100" },
  },
});
let connectionString =
  values["connection-string"] ?? process.env.COMMUNICATION_SERVICES_CONNECTION_STRING;
if (!connectionString) {
  console.error("pass --connection-string or set COMMUNICATION_SERVICES_CONNECTION_STRING");
  process.exit(2);
}
if (values.endpoint) {
  // Keep the access key, replace the endpoint.
  const key = connectionString
    .split(";")
    .map((part) => part.split(/=(.*)/s))
    .find(([name]) => name.trim().toLowerCase() === "accesskey");
  if (!key) {
    console.error("the connection string has no accesskey");
    process.exit(2);
  }
  connectionString = `endpoint=${values.endpoint};accesskey=${key[1].trim()}`;
}
const pairs = Number.parseInt(values.pairs, 10);
const warmup = Number.parseInt(values.warmup, 10);

const client = new CommunicationIdentityClient(connectionString, {
  allowInsecureConnection: connectionString.toLowerCase().includes("endpoint=http://"),
});

async function pair() {
  const user = await client.createUser();
  const token = await client.getToken(user, ["chat"]);
  if (!token.token) {
    throw new Error("the service returned an empty token");
  }
}

for (let i = 0; i < warmup; i++) {
  await pair();
}
const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
for (let i = 0; i < pairs; i++) {
  await pair();
}
const cpu = process.cpuUsage(c0);
const wall = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(
  JSON.stringify({
    client: "js",
    pairs,
    cpu_us_per_pair: Math.round(((cpu.user + cpu.system) / pairs) * 10) / 10,
    user_us: cpu.user,
    sys_us: cpu.system,
    wall_s: Math.round(wall * 1000) / 1000,
  }),
);
