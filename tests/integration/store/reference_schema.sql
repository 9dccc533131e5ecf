-- The schema tenement 0.2.2 creates, as its SQLite database records it (sqlite_master of a
-- database made by the reference `ten token-gen`). Used to build a reference database without
-- the binary.
CREATE TABLE logs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp TEXT NOT NULL,
            level TEXT NOT NULL,
            process TEXT NOT NULL,
            instance_id TEXT NOT NULL,
            message TEXT NOT NULL
        );
CREATE INDEX idx_logs_process ON logs(process);
CREATE INDEX idx_logs_instance ON logs(instance_id);
CREATE INDEX idx_logs_timestamp ON logs(timestamp DESC);
CREATE VIRTUAL TABLE logs_fts USING fts5(
            message,
            content='logs',
            content_rowid='id'
        );
CREATE TRIGGER logs_ai AFTER INSERT ON logs BEGIN
            INSERT INTO logs_fts(rowid, message) VALUES (new.id, new.message);
        END;
CREATE TRIGGER logs_ad AFTER DELETE ON logs BEGIN
            INSERT INTO logs_fts(logs_fts, rowid, message) VALUES('delete', old.id, old.message);
        END;
CREATE TABLE config (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
CREATE TABLE instance_state (
            instance_id TEXT PRIMARY KEY,
            process_name TEXT NOT NULL,
            id TEXT NOT NULL,
            pid INTEGER NOT NULL,
            port INTEGER,
            started_at TEXT NOT NULL
        );
CREATE TABLE tenant_tokens (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            token_hash TEXT NOT NULL,
            token_prefix TEXT NOT NULL,
            tenant_id TEXT NOT NULL,
            description TEXT,
            created_at TEXT NOT NULL
        );
CREATE INDEX idx_tenant_tokens_tenant ON tenant_tokens(tenant_id);
CREATE INDEX idx_tenant_tokens_prefix ON tenant_tokens(token_prefix);
CREATE TABLE deploy_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp TEXT NOT NULL,
            action TEXT NOT NULL,
            process TEXT NOT NULL,
            instance_id TEXT NOT NULL,
            details TEXT,
            success INTEGER NOT NULL DEFAULT 1
        );
CREATE INDEX idx_deploy_log_timestamp ON deploy_log(timestamp DESC);
