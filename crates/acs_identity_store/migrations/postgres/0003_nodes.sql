-- The nodes serving this database and the version of the resource's keys each holds
-- (`ResourceStore::keys_version`). A node writes its row after every key reload and every
-- second; `acs-identity keys regenerate` and `signing-keys rotate` wait until every node
-- seen recently holds the new version.
CREATE TABLE nodes (
    node_id      UUID        PRIMARY KEY,
    keys_version BIGINT      NOT NULL,
    seen_at      TIMESTAMPTZ NOT NULL
);
