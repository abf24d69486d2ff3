-- Keys compare byte-wise (COLLATE "C"), as in SQLite, so listings page in the same order
-- whatever the database's locale.

-- Teams Phone extensibility assignments, keyed by tenant and principal.
CREATE TABLE teams_extension_assignments (
    tenant_id      TEXT COLLATE "C" NOT NULL,
    object_id      TEXT COLLATE "C" NOT NULL,
    principal_type TEXT NOT NULL,
    client_ids     TEXT[], -- NULL = any client
    PRIMARY KEY (tenant_id, object_id)
);

-- Entra user-access assignments, keyed by principal.
CREATE TABLE entra_assignments (
    object_id      TEXT COLLATE "C" PRIMARY KEY,
    tenant_id      TEXT COLLATE "C" NOT NULL,
    principal_type TEXT NOT NULL,
    client_ids     TEXT[] NOT NULL
);
