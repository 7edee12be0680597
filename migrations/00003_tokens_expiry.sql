-- +goose Up
-- The purge of expired tokens (api's TOKEN_PURGE_INTERVAL) deletes by
-- expires_at: without an index each round scanned the whole table.
CREATE INDEX tokens_expires_at_idx ON tokens (expires_at);

-- +goose Down
DROP INDEX tokens_expires_at_idx;
