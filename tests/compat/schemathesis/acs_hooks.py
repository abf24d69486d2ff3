"""schemathesis hooks for acs-identity: sign every request with the resource's access key.

Loaded with SCHEMATHESIS_HOOKS=acs_hooks (this directory on PYTHONPATH); driven by
`crates/acs_identity_cli/tests/compat.rs` (`schemathesis_openapi`). Reads:
- ACS_CONNECTION_STRING: `endpoint=https://...;accesskey=<base64>`, the key that signs;
- ACS_API_VERSION: the api-version of the document under test;
- ACS_SIGN: `0` sends requests unsigned;
- ACS_ST_RESPONSES, ACS_ST_ACCEPTED: files that get one line per response and one line per
  failure dropped as a known, documented discrepancy.

Signing follows WIRE.md section 7 and is done as a `requests` auth handler, which runs after
`requests` has prepared the request: the signature covers exactly the path, query, host and
body bytes that go on the wire, whatever schemathesis generated (non-ASCII or
percent-encoded query parameters included).
"""

import base64
import hashlib
import hmac
import json
import os
from email.utils import formatdate
from urllib.parse import urlsplit

import requests
import schemathesis

API_VERSION = os.environ["ACS_API_VERSION"]


def _access_key() -> bytes:
    parts = dict(
        p.split("=", 1) for p in os.environ["ACS_CONNECTION_STRING"].split(";") if "=" in p
    )
    return base64.b64decode({k.lower(): v for k, v in parts.items()}["accesskey"])


class HmacAuth(requests.auth.AuthBase):
    """ACS HMAC-SHA256 request signing over the prepared request."""

    def __init__(self, key: bytes):
        self.key = key

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        content_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
        date = formatdate(usegmt=True)
        host = urlsplit(r.url).netloc
        string_to_sign = f"{r.method.upper()}\n{r.path_url}\n{date};{host};{content_hash}"
        signature = base64.b64encode(
            hmac.new(self.key, string_to_sign.encode("utf-8"), hashlib.sha256).digest()
        ).decode()
        r.headers["x-ms-date"] = date
        r.headers["x-ms-content-sha256"] = content_hash
        r.headers["Authorization"] = (
            f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
        )
        return r


AUTH = HmacAuth(_access_key())


def _parameters(raw_schema):
    """Every parameter object of the document (shared, per path and per operation)."""
    params = list(raw_schema.get("parameters", {}).values())
    for item in raw_schema.get("paths", {}).values():
        params.extend(item.get("parameters", []))
        for operation in item.values():
            if isinstance(operation, dict):
                params.extend(operation.get("parameters", []))
    return [p for p in params if isinstance(p, dict)]


# What the documents leave open but ACS validates, so a "schema-valid" request the service
# refuses is not a service fault. Each is also written down in docs/RELIABILITY.md.
GUID = {"type": "string", "format": "uuid"}


@schemathesis.hook
def before_load_schema(context, raw_schema):
    definitions = raw_schema.get("definitions", {})
    for p in _parameters(raw_schema):
        # One api-version per document: the documents declare any string, the service
        # answers other values 400 UnsupportedApiVersion (negative cases still send them).
        if p.get("name") == "api-version" and p.get("in") == "query":
            p["enum"] = [API_VERSION]
        # Tenant and object ids are Entra GUIDs; the service refuses anything else with 400
        # ValidationError, as ACS does for a malformed GUID.
        if p.get("in") == "path" and p.get("name") in ("tenantId", "objectId"):
            p["format"] = "uuid"
        # An optional body may be JSON `null`: ASP.NET binds it as "no body", and so does
        # the service.
        if p.get("in") == "body" and not p.get("required", False) and "schema" in p:
            p["schema"] = {**p["schema"], "x-nullable": True}
    for definition in definitions.values():
        props = definition.get("properties", {})
        required = set(definition.get("required", []))
        for name, prop in props.items():
            # `null` for an optional property means "absent" (ASP.NET binds nullable types).
            if name not in required and "$ref" not in prop:
                prop["x-nullable"] = True
        # ACS refuses `scopes: []` with 400 "Invalid scopes - Scopes field is required."
        # (recorded from the live service in the JS SDK's test recordings).
        if "scopes" in required and "scopes" in props:
            props["scopes"]["minItems"] = 1
        # ASP.NET's [Required] refuses empty and blank strings ("The AppId field is
        # required."); the Teams user exchange requires appId and userId.
        for name in ("appId", "userId"):
            if name in required and name in props:
                props[name]["pattern"] = "\\S"
        # Client ids are Entra application GUIDs.
        if name_is_client_ids(props):
            props["clientIds"]["items"] = dict(GUID)


def name_is_client_ids(props):
    return props.get("clientIds", {}).get("type") == "array"


# Paths whose `Allow` names more methods than the document at hand: exactly these, and why.
_WIDER_ALLOW = {
    "/identities/{id}": (
        {"DELETE", "GET", "HEAD"},
        "Allow on /identities/{id} lists GET (and HEAD), which 2025-03-02-preview "
        "serves on the same route; other versions answer it 400 UnsupportedApiVersion",
    ),
    "/identities": (
        {"POST", "GET", "HEAD"},
        "Allow on /identities lists GET (and HEAD): the identity list, an extension of "
        "this service described in /openapi/extensions.json",
    ),
}


# Failures that are the check's strictness or the document's, not the service's; each is
# dropped only in exactly this shape and counted (ACS_ST_ACCEPTED names a file that gets
# one line per dropped failure, for the Rust test to report).
def _accepted(failure, case, response):
    code = type(failure).__name__
    status = response.status_code
    if code == "MissingContentType" and status == 204 and not response.content:
        return "204 without Content-Type: a response without content has no media type"
    if code == "AllowHeaderMismatch" and case.operation.path in _WIDER_ALLOW:
        allowed, reason = _WIDER_ALLOW[case.operation.path]
        allow = {m.strip().upper() for m in response.headers.get("allow", [""])[0].split(",")}
        if allow == allowed:
            return reason
    if (
        code == "UnsupportedMethodResponse"
        and case.operation.path == "/identities"
        and getattr(failure, "method", "").upper() in ("GET", "HEAD")
        and status == 200
    ):
        return "GET /identities is the identity list, an extension in /openapi/extensions.json"
    if (
        code == "UnsupportedMethodResponse"
        and case.operation.path == "/identities/{id}"
        and getattr(failure, "method", "").upper() in ("GET", "HEAD")
        and status == 400
        and (failure.method.upper() == "HEAD" or b'"UnsupportedApiVersion"' in response.content)
    ):
        return (
            "GET /identities/{id} exists in 2025-03-02-preview; for other versions the service, "
            "like ACS's ASP.NET API versioning, answers 400 UnsupportedApiVersion, not 405"
        )
    return None


@schemathesis.hook
def filter_failure(context, failure, case, response):
    reason = _accepted(failure, case, response)
    if reason is None:
        return True
    path = os.environ.get("ACS_ST_ACCEPTED")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{type(failure).__name__}\t{case.method} {case.operation.path}\t{reason}\n")
    return False


@schemathesis.hook
def before_call(context, case, kwargs):
    # ACS_SIGN=0: send requests unsigned, to check that every operation refuses them.
    if os.environ.get("ACS_SIGN", "1") != "0":
        kwargs["auth"] = AUTH


@schemathesis.hook
def after_call(context, case, response):
    """Appends `<status>\t<ACS error code>` per response to ACS_ST_RESPONSES, if set."""
    path = os.environ.get("ACS_ST_RESPONSES")
    if not path:
        return
    code = ""
    try:
        error = json.loads(response.content or b"null")
        if isinstance(error, dict) and isinstance(error.get("error"), dict):
            code = str(error["error"].get("code", ""))
    except ValueError:
        pass
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{response.status_code}\t{code}\t{case.method} {case.operation.path}\n")
