-- The resource: exactly one row.
CREATE TABLE resource (
    singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
    resource_id   TEXT    NOT NULL,
    data_location TEXT    NOT NULL,
    created_at    INTEGER NOT NULL -- unix nanoseconds
);

CREATE TABLE access_keys (
    name    TEXT    PRIMARY KEY CHECK (name IN ('primary', 'secondary')),
    key     BLOB    NOT NULL,
    version INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    kid        TEXT    PRIMARY KEY,
    alg        TEXT    NOT NULL,
    pkcs8      BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Deleted identities stay as tombstones so their tokens can be told apart from foreign ones.
CREATE TABLE identities (
    user_id              BLOB    PRIMARY KEY, -- 16-byte UUID
    custom_id            TEXT,
    created_at           INTEGER NOT NULL,
    deleted_at           INTEGER,
    generation           INTEGER NOT NULL DEFAULT 0,
    last_token_issued_at INTEGER
) WITHOUT ROWID;

-- A custom id maps to at most one live identity.
CREATE UNIQUE INDEX identities_live_custom_id ON identities (custom_id)
    WHERE custom_id IS NOT NULL AND deleted_at IS NULL;
