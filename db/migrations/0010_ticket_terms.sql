-- Similar-ticket full-text search that an index can serve under row-level security.
--
-- The GIN index on ticket_history.search cannot be used by the service role: under RLS a
-- condition may run as an index condition ahead of the policy only if its operator is
-- LEAKPROOF, and `@@` is not. So every search tested `@@` on every one of the tenant's
-- tickets (~20 ms at 10,000). Text equality *is* leakproof: this table lists each ticket's
-- lexemes (from the same `search` tsvector), and its primary key, led by tenant_id, finds the
-- tickets holding any of a query's lexemes by reading only those index entries. The search
-- takes its best candidates from here and ranks them with ts_rank_cd on ticket_history.
--
-- weight: the lexeme's best field in the ticket, as ts_rank weighs them by default
--   (subject A 1.0, description B 0.4, resolution C 0.2).
-- Kept in step by a trigger on ticket_history (insert, and updates that change the text);
-- deleting a ticket deletes its terms (foreign key).

CREATE TABLE ticket_terms (
    tenant_id  text NOT NULL,
    lexeme     text NOT NULL,
    ticket_id  text NOT NULL,
    weight     real NOT NULL,
    PRIMARY KEY (tenant_id, lexeme, ticket_id) INCLUDE (weight),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES ticket_history (tenant_id, ticket_id)
        ON DELETE CASCADE
);

ALTER TABLE ticket_terms ENABLE ROW LEVEL SECURITY;
ALTER TABLE ticket_terms FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ticket_terms
    USING (tenant_id = current_setting('app.current_tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id', true));
DO $$
BEGIN
    EXECUTE format('CREATE POLICY owner_access ON ticket_terms TO %I USING (true) '
                   'WITH CHECK (true)', current_user);
END
$$;

-- Runs as the writer (the service role inside a tenant transaction, or the owner), so the
-- policy checks every term row it writes exactly like the ticket row itself.
CREATE FUNCTION ticket_terms_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM ticket_terms WHERE tenant_id = OLD.tenant_id AND ticket_id = OLD.ticket_id;
    END IF;
    INSERT INTO ticket_terms (tenant_id, lexeme, ticket_id, weight)
    SELECT NEW.tenant_id, t.lexeme, NEW.ticket_id,
           CASE WHEN 'A' = ANY (t.weights) THEN 1.0
                WHEN 'B' = ANY (t.weights) THEN 0.4
                WHEN 'C' = ANY (t.weights) THEN 0.2
                ELSE 0.1 END
    FROM unnest(NEW.search) AS t;
    RETURN NULL;
END
$$;

CREATE TRIGGER ticket_terms_on_insert AFTER INSERT ON ticket_history
    FOR EACH ROW EXECUTE FUNCTION ticket_terms_sync();
CREATE TRIGGER ticket_terms_on_update AFTER UPDATE ON ticket_history
    FOR EACH ROW WHEN (OLD.search IS DISTINCT FROM NEW.search)
    EXECUTE FUNCTION ticket_terms_sync();

INSERT INTO ticket_terms (tenant_id, lexeme, ticket_id, weight)
SELECT h.tenant_id, t.lexeme, h.ticket_id,
       CASE WHEN 'A' = ANY (t.weights) THEN 1.0
            WHEN 'B' = ANY (t.weights) THEN 0.4
            WHEN 'C' = ANY (t.weights) THEN 0.2
            ELSE 0.1 END
FROM ticket_history h, unnest(h.search) AS t;
