// The acs-identity console: a client of the service's public API, in the browser.
//
// Every request is signed with HMAC-SHA256 (WebCrypto) exactly as the official SDKs sign:
//   VERB \n path?query \n x-ms-date;host;x-ms-content-sha256
// The access key comes from the URL fragment (#accesskey=…, never sent to any server) or a
// pasted connection string, and lives only in this tab's sessionStorage.

const API_VERSION = "2026-09-23";
const KEY_SLOT = "acs-identity-console-key";
const EMPTY_SHA256 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

const $ = (id) => document.getElementById(id);
const encoder = new TextEncoder();

// ---------------------------------------------------------------- key and signing

let hmacKey = null; // a non-extractable CryptoKey

function bytesToBase64(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s);
}

function base64ToBytes(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The access key in a connection string (`endpoint=…;accesskey=…`) or a bare key. */
export function keyFrom(text) {
  const value = text.trim();
  if (value.includes("=") && /(^|;)\s*accesskey\s*=/i.test(value)) {
    for (const part of value.split(";")) {
      const at = part.indexOf("=");
      if (at > 0 && part.slice(0, at).trim().toLowerCase() === "accesskey") {
        return part.slice(at + 1).trim();
      }
    }
  }
  return value;
}

async function useKey(encoded) {
  let raw;
  try {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) throw new Error("not base64");
    raw = base64ToBytes(encoded);
  } catch {
    throw new Error("That is not an access key: expected base64, or a connection string with accesskey=.");
  }
  if (raw.length < 16) throw new Error("That access key is too short.");
  if (!crypto.subtle) {
    throw new Error("This browser offers no WebCrypto here: open the console over HTTPS or on localhost.");
  }
  hmacKey = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  sessionStorage.setItem(KEY_SLOT, encoded);
}

function forgetKey() {
  hmacKey = null;
  sessionStorage.removeItem(KEY_SLOT);
}

/** `{status, body}` of a signed request to this origin; `body` is parsed JSON or null. */
async function api(method, pathAndQuery, payload) {
  if (!hmacKey) throw new Error("Sign in first.");
  const body = payload === undefined ? "" : JSON.stringify(payload);
  const bytes = encoder.encode(body);
  const hash = body === "" ? EMPTY_SHA256 : bytesToBase64(await crypto.subtle.digest("SHA-256", bytes));
  const date = new Date().toUTCString();
  const toSign = `${method}\n${pathAndQuery}\n${date};${location.host};${hash}`;
  const signature = bytesToBase64(await crypto.subtle.sign("HMAC", hmacKey, encoder.encode(toSign)));
  const headers = {
    "x-ms-date": date,
    "x-ms-content-sha256": hash,
    Authorization: `HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=${signature}`,
    Accept: "application/json",
  };
  if (body !== "") headers["Content-Type"] = "application/json";
  const res = await fetch(pathAndQuery, {
    method,
    headers,
    body: body === "" ? undefined : bytes,
    cache: "no-store",
    credentials: "omit",
    referrerPolicy: "no-referrer",
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, body: json };
}

/** The service's error message, as ACS's envelope carries it. */
function failure(res) {
  const e = res.body && res.body.error;
  if (e && e.message) return `${res.status} ${e.code}: ${e.message}`;
  return `The service answered ${res.status}.`;
}

async function call(method, path, payload, okStatuses) {
  const res = await api(method, path, payload);
  if (!okStatuses.includes(res.status)) throw new Error(failure(res));
  return res.body;
}

const versioned = (path) => `${path}${path.includes("?") ? "&" : "?"}api-version=${API_VERSION}`;
const idPath = (id) => `/identities/${encodeURIComponent(id.trim())}`;

// ---------------------------------------------------------------- views

function show(view) {
  for (const section of document.querySelectorAll("main > section")) {
    section.hidden = section.id !== `view-${view}`;
  }
  for (const button of document.querySelectorAll("#nav button")) {
    if (button.dataset.view === view) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  document.body.dataset.view = view;
  if (view === "list") loadList(true);
  if (view === "resource") loadResource();
  if (view !== "resource") stopCharts();
}

function signedIn(yes) {
  $("nav").hidden = !yes;
  $("sign-out").hidden = !yes;
  $("who").textContent = yes ? `Signed in to ${location.host} with an access key (kept in this tab only).` : "";
  show(yes ? "generate" : "signin");
}

function setError(id, error) {
  $(id).textContent = error ? (error.message || String(error)) : "";
}

function toast(text) {
  $("toast").textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => ($("toast").textContent = ""), 3000);
}

function busy(form, yes) {
  for (const b of form.querySelectorAll("button")) b.disabled = yes;
}

/** Runs `action` with the form's buttons disabled; its failure is shown in `errorId`. */
async function whileBusy(form, errorId, action) {
  setError(errorId, null);
  busy(form, true);
  try {
    await action();
  } catch (err) {
    setError(errorId, err);
  } finally {
    busy(form, false);
  }
}

const localTime = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

function scopesOf(form) {
  return [...form.querySelectorAll('input[name="scope"]:checked')].map((c) => c.value);
}

function lifetimeOf(input) {
  const n = Number(input.value);
  if (!Number.isInteger(n) || n < 60 || n > 1440) {
    throw new Error("The lifetime must be a whole number of minutes between 60 and 1440.");
  }
  return n;
}

let lastToken = "";

// ---------------------------------------------------------------- sign-in

async function signIn(encoded) {
  await useKey(encoded);
  // A harmless signed call: a wrong key gets the service's 401 here.
  const res = await api("POST", "/accessTokens/:validate", { token: "-" });
  if (res.status !== 200) {
    forgetKey();
    throw new Error(failure(res));
  }
  signedIn(true);
}

$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  await whileBusy(e.target, "signin-error", async () => {
    await signIn(keyFrom($("signin-key").value));
    $("signin-key").value = "";
  });
});

$("sign-out").addEventListener("click", () => {
  forgetKey();
  signedIn(false);
});

// ---------------------------------------------------------------- generate, issue, revoke, delete

$("generate-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  await whileBusy(e.target, "generate-error", async () => {
    const scopes = scopesOf(e.target);
    const request = scopes.length
      ? { createTokenWithScopes: scopes, expiresInMinutes: lifetimeOf($("generate-lifetime")) }
      : {};
    const created = await call("POST", versioned("/identities"), request, [201]);
    $("out-identity").value = created.identity.id;
    $("out-token").value = created.accessToken ? created.accessToken.token : "";
    $("out-expires").textContent = created.accessToken ? localTime(created.accessToken.expiresOn) : "— (no scopes, no token)";
    $("out-expires").dateTime = created.accessToken ? created.accessToken.expiresOn : "";
    $("generate-result").hidden = false;
    $("manage-id").value = created.identity.id;
    if (created.accessToken) lastToken = created.accessToken.token;
    toast("Identity created.");
  });
});

async function manage(action) {
  const form = $("manage-form");
  setError("manage-error", null);
  $("manage-status").textContent = "";
  const id = $("manage-id").value.trim();
  if (!id) {
    setError("manage-error", new Error("Enter an identity id."));
    return;
  }
  await whileBusy(form, "manage-error", () => action(id));
}

$("manage-form").addEventListener("submit", (e) => {
  e.preventDefault();
  manage(async (id) => {
    const scopes = scopesOf(e.target);
    if (!scopes.length) throw new Error("Tick at least one scope.");
    const issued = await call("POST", versioned(`${idPath(id)}/:issueAccessToken`),
      { scopes, expiresInMinutes: lifetimeOf($("manage-lifetime")) }, [200]);
    $("issued-token").value = issued.token;
    $("issued-expires").textContent = localTime(issued.expiresOn);
    $("issued-expires").dateTime = issued.expiresOn;
    $("issue-result").hidden = false;
    lastToken = issued.token;
    $("manage-status").textContent = "Token issued.";
  });
});

$("revoke").addEventListener("click", () =>
  manage(async (id) => {
    if (!confirm(`Revoke every token of ${id}? Tokens issued so far stop validating.`)) return;
    await call("POST", versioned(`${idPath(id)}/:revokeAccessTokens`), undefined, [204]);
    $("manage-status").textContent = "Tokens revoked.";
  }),
);

$("delete").addEventListener("click", () =>
  manage(async (id) => {
    if (!confirm(`Delete ${id}? Its tokens stop validating and the identity cannot come back.`)) return;
    await call("DELETE", versioned(idPath(id)), undefined, [204]);
    $("manage-status").textContent = "Identity deleted.";
  }),
);

// ---------------------------------------------------------------- copy buttons

document.addEventListener("click", async (e) => {
  const target = e.target.closest("[data-copy]");
  if (!target) return;
  const field = $(target.dataset.copy);
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    field.select();
    document.execCommand("copy");
  }
  toast("Copied.");
});

// ---------------------------------------------------------------- decode

function base64UrlJson(part) {
  const padded = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
  return JSON.parse(new TextDecoder().decode(base64ToBytes(padded)));
}

export function decodeToken(token) {
  const parts = token.trim().split(".");
  if (parts.length !== 3) throw new Error("A token has three parts separated by dots.");
  try {
    return { header: base64UrlJson(parts[0]), claims: base64UrlJson(parts[1]) };
  } catch {
    throw new Error("This is not a JWT: its header or claims are not base64url JSON.");
  }
}

const VERDICTS = {
  malformed: "invalid: malformed",
  signature: "invalid: bad signature",
  foreign: "invalid: not issued by this resource",
  expired: "invalid: expired",
  revoked: "invalid: revoked",
  deleted: "invalid: identity deleted",
};

function fact(dl, name, value) {
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = value;
  dl.append(dt, dd);
}

$("decode-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  setError("decode-error", null);
  $("decode-result").hidden = true;
  const token = $("decode-token").value.trim();
  let decoded;
  try {
    decoded = decodeToken(token);
  } catch (err) {
    setError("decode-error", err);
    return;
  }
  $("decode-header").textContent = JSON.stringify(decoded.header, null, 2);
  $("decode-claims").textContent = JSON.stringify(decoded.claims, null, 2);
  const summary = $("decode-summary");
  summary.replaceChildren();
  const c = decoded.claims;
  if (c.skypeid) fact(summary, "Identity", `8:${c.skypeid}`);
  if (c.acsScope !== undefined) fact(summary, "Scopes", c.acsScope || "—");
  if (c.iat) fact(summary, "Issued", new Date(c.iat * 1000).toLocaleString());
  if (c.exp) {
    const left = c.exp * 1000 - Date.now();
    fact(summary, "Expires", `${new Date(c.exp * 1000).toLocaleString()} (${left > 0 ? `in ${Math.round(left / 60000)} min` : "expired"})`);
  }
  if (c.resourceId) fact(summary, "Resource", c.resourceId);
  if (decoded.header.kid) fact(summary, "Key id", `${decoded.header.kid} (${decoded.header.alg})`);
  $("verdict").textContent = "checking…";
  $("decode-result").hidden = false;
  busy(e.target, true);
  try {
    const v = await call("POST", "/accessTokens/:validate", { token }, [200]);
    $("verdict").textContent = v.valid ? `valid (${v.scopes.join(", ")})` : VERDICTS[v.reason] || `invalid: ${v.reason}`;
    $("verdict").dataset.valid = String(v.valid);
    $("verdict").dataset.reason = v.valid ? "" : v.reason;
  } catch (err) {
    $("verdict").textContent = "unknown";
    setError("decode-error", err);
  } finally {
    busy(e.target, false);
  }
});

$("decode-last").addEventListener("click", () => {
  $("decode-token").value = lastToken;
});

// ---------------------------------------------------------------- identity list

let nextPage = null;

function stateLabel(item) {
  if (item.state === "deleted") return "deleted";
  if (item.state === "revoked") return `tokens revoked (generation ${item.generation})`;
  return "active";
}

async function loadList(first) {
  setError("list-error", null);
  const tbody = $("list-table").querySelector("tbody");
  let path = "/identities?maxpagesize=20";
  if (!first && nextPage) {
    const next = new URL(nextPage, location.origin);
    path = next.pathname + next.search;
  }
  try {
    const page = await call("GET", path, undefined, [200]);
    if (first) tbody.replaceChildren();
    for (const item of page.value) {
      const tr = document.createElement("tr");
      tr.dataset.id = item.id;
      tr.dataset.state = item.state;
      const cells = [item.id, item.customId || "—", localTime(item.createdAt), localTime(item.lastTokenIssuedAt), stateLabel(item)];
      for (const text of cells) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      const td = document.createElement("td");
      if (item.state !== "deleted") {
        const open = document.createElement("button");
        open.type = "button";
        open.textContent = "Manage";
        open.setAttribute("aria-label", `Manage ${item.id}`);
        open.addEventListener("click", () => {
          $("manage-id").value = item.id;
          show("generate");
          $("manage-id").focus();
        });
        td.append(open);
      }
      tr.append(td);
      tbody.append(tr);
    }
    nextPage = page.nextLink || null;
    $("list-more").hidden = !nextPage;
  } catch (err) {
    setError("list-error", err);
  }
}

$("list-refresh").addEventListener("click", () => loadList(true));
$("list-more").addEventListener("click", () => loadList(false));

// ---------------------------------------------------------------- resource and activity

let chartTimer = null;

async function loadResource() {
  setError("resource-error", null);
  try {
    const r = await call("GET", "/resource", undefined, [200]);
    const facts = $("resource-facts");
    facts.replaceChildren();
    fact(facts, "Endpoint", location.origin);
    fact(facts, "Resource id", r.resourceId);
    fact(facts, "Data location", r.dataLocation);
    fact(facts, "Identities", String(r.identities));
    const tbody = $("keys-table").querySelector("tbody");
    tbody.replaceChildren();
    for (const k of r.signingKeys) {
      const tr = document.createElement("tr");
      for (const text of [k.kid, k.alg, localTime(k.createdAt)]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      tbody.append(tr);
    }
  } catch (err) {
    setError("resource-error", err);
  }
  startCharts();
}

$("show-connection").addEventListener("click", () => {
  const box = $("connection-box");
  box.hidden = !box.hidden;
  $("connection-string").value = box.hidden ? "" : `endpoint=${location.origin}/;accesskey=${sessionStorage.getItem(KEY_SLOT) || ""}`;
  $("show-connection").textContent = box.hidden ? "Show connection string" : "Hide connection string";
});

function stopCharts() {
  clearInterval(chartTimer);
  chartTimer = null;
}

function startCharts() {
  if (chartTimer) return;
  drawCharts();
  chartTimer = setInterval(drawCharts, 5000);
}

const SVG = "http://www.w3.org/2000/svg";

function chart(title, points, unit) {
  const figure = document.createElement("figure");
  figure.className = "chart";
  const caption = document.createElement("figcaption");
  const latest = points.length ? points[points.length - 1] : 0;
  caption.textContent = `${title}: ${formatNumber(latest)}${unit}`;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 240 60");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${title}, last ${points.length * 5} seconds, now ${formatNumber(latest)}${unit}`);
  const max = Math.max(1e-9, ...points);
  const step = points.length > 1 ? 240 / (points.length - 1) : 240;
  const line = points.map((p, i) => `${(i * step).toFixed(1)},${(58 - (p / max) * 54).toFixed(1)}`).join(" ");
  const poly = document.createElementNS(SVG, "polyline");
  poly.setAttribute("points", line || "0,58 240,58");
  svg.append(poly);
  figure.append(caption, svg);
  return figure;
}

function formatNumber(n) {
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}

async function drawCharts() {
  let a;
  try {
    a = await call("GET", "/activity", undefined, [200]);
  } catch (err) {
    setError("resource-error", err);
    stopCharts();
    return;
  }
  const secs = a.intervalSeconds;
  const charts = [];
  charts.push(chart("Requests per second", a.samples.map((s) => s.requests / secs), "/s"));
  charts.push(chart("Tokens issued per second", a.samples.map((s) => s.tokensIssued / secs), "/s"));
  charts.push(chart("Error rate", a.samples.map((s) => (s.requests ? (100 * s.errors) / s.requests : 0)), " %"));
  charts.push(chart("p99 latency", a.samples.map((s) => s.p99Millis), " ms"));
  for (const [name, series] of Object.entries(a.byOperation || {})) {
    charts.push(chart(`${name} per second`, series.map((n) => n / secs), "/s"));
  }
  $("charts").replaceChildren(...charts);
}

// ---------------------------------------------------------------- start

for (const button of document.querySelectorAll("#nav button")) {
  button.addEventListener("click", () => show(button.dataset.view));
}

async function start() {
  // The fragment is read once and removed from the address bar (and from history).
  const fragment = new URLSearchParams(location.hash.slice(1).replace(/\+/g, "%2B"));
  const fromLink = fragment.get("accesskey");
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  const encoded = fromLink || sessionStorage.getItem(KEY_SLOT);
  if (!encoded) {
    signedIn(false);
    return;
  }
  try {
    await signIn(encoded);
  } catch (err) {
    signedIn(false);
    setError("signin-error", err);
  }
}

start();
