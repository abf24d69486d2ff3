"""Helpers shared by the Python suites (not a test file: pytest collects test_*.py)."""

import base64
import json
import os
import time
from datetime import datetime

import pytest
from azure.communication.identity import CommunicationUserIdentifier

# Slack between the test's clock reading and the service's issue time.
CLOCK_SLACK_S = 60


def env(name):
    """The value of a variable the harness (crates/acs_identity_cli/tests/compat.rs) sets."""
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set (run through crates/acs_identity_cli/tests/compat.rs)")
    return value


def timed(call, *args, **kwargs):
    """`call(*args, **kwargs)`, and the epoch seconds just before and just after it."""
    before = time.time()
    result = call(*args, **kwargs)
    after = time.time()
    return result, before, after


async def timed_async(call, *args, **kwargs):
    """`await call(*args, **kwargs)`, and the epoch seconds just before and just after it."""
    before = time.time()
    result = await call(*args, **kwargs)
    after = time.time()
    return result, before, after


def jwt_part(token, index):
    """The decoded header (0) or payload (1) of a JWT."""
    parts = token.split(".")
    assert len(parts) == 3, f"not a JWS compact token: {token!r}"
    segment = parts[index]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def jwt_payload(token):
    return jwt_part(token, 1)


def parse_expires_on(value):
    # The Python SDK hands back the service's string unchanged (an SDK quirk).
    assert isinstance(value, str), f"expires_on is {type(value).__name__}: {value!r}"
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"expires_on has no UTC offset: {value!r}"
    return parsed.timestamp()


def assert_user(user):
    """An ACS user as the SDK returns it."""
    assert isinstance(user, CommunicationUserIdentifier)
    assert user.raw_id.startswith("8:acs:"), user.raw_id
    assert user.properties["id"] == user.raw_id
