-- Times are unix nanoseconds (BIGINT), as in the SQLite schema: TIMESTAMPTZ keeps only
-- microseconds, and ACS's date-times carry seven fractional digits.

-- The resource: exactly one row.
CREATE TABLE resource (
    singleton     SMALLINT PRIMARY KEY CHECK (singleton = 1),
    resource_id   TEXT     NOT NULL,
    data_location TEXT     NOT NULL,
    created_at    BIGINT   NOT NULL
);

CREATE TABLE access_keys (
    name    TEXT   PRIMARY KEY CHECK (name IN ('primary', 'secondary')),
    key     BYTEA  NOT NULL,
    version BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid        TEXT   PRIMARY KEY,
    alg        TEXT   NOT NULL,
    pkcs8      BYTEA  NOT NULL,
    created_at BIGINT NOT NULL
);

-- Deleted identities stay as tombstones so their tokens can be told apart from foreign ones.
CREATE TABLE identities (
    user_id              UUID   PRIMARY KEY,
    custom_id            TEXT,
    created_at           BIGINT NOT NULL,
    deleted_at           BIGINT,
    generation           BIGINT NOT NULL DEFAULT 0 CHECK (generation >= 0),
    last_token_issued_at BIGINT
);

-- A custom id maps to at most one live identity.
CREATE UNIQUE INDEX identities_live_custom_id ON identities (custom_id)
    WHERE custom_id IS NOT NULL AND deleted_at IS NULL;
