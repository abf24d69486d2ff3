-- Teams Phone extensibility assignments, keyed by tenant and principal.
CREATE TABLE teams_extension_assignments (
    tenant_id      TEXT NOT NULL,
    object_id      TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    client_ids     TEXT, -- JSON array, NULL = any client
    PRIMARY KEY (tenant_id, object_id)
) WITHOUT ROWID;

-- Entra user-access assignments, keyed by principal.
CREATE TABLE entra_assignments (
    object_id      TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    client_ids     TEXT NOT NULL -- JSON array
) WITHOUT ROWID;
