-- Embeddings for semantic similar-ticket and KB search (hybrid with full-text).
--
-- pgvector: vectors are stored as real[] so these tables, the importers and full-text search
-- work on any PostgreSQL; nearest-neighbour search (cast to pgvector's `vector`, HNSW index)
-- needs the `vector` extension. The embedded server (pgserver wheel) ships it. On an
-- external PostgreSQL install it (Debian/Ubuntu: `apt-get install postgresql-<major>-pgvector`)
-- and, because pgvector is not a trusted extension, create it as a SUPERUSER:
--     CREATE EXTENSION vector;
-- then run `ai-agents migrate` again: it creates the HNSW indexes whenever the extension
-- exists. Until then the service searches full-text only and says so (log warning, metric
-- ai_agents_vector_search_available 0, a `vector_search` detail in /api/v1/ready).
--
-- Each vector records its model and dimension and a hash of the text it was computed from,
-- so a model change or an edited ticket/article is detected and `ai-agents reindex` redoes it.

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS vector;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'pgvector is installed but this role may not create it. As a '
                'superuser run CREATE EXTENSION vector; then ai-agents migrate again. Until '
                'then similar-ticket and KB search are full-text only.';
        END;
    ELSE
        RAISE WARNING 'pgvector (extension "vector") is not installed on this server; '
            'similar-ticket and KB search stay full-text only until it is (see 0007).';
    END IF;
END
$$;

CREATE TABLE ticket_embeddings (
    tenant_id     text NOT NULL,
    ticket_id     text NOT NULL,
    model         text NOT NULL,
    dimensions    integer NOT NULL CHECK (dimensions > 0),
    content_hash  text NOT NULL,
    embedding     real[] NOT NULL CHECK (cardinality(embedding) = dimensions),
    embedded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, ticket_id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES ticket_history (tenant_id, ticket_id)
        ON DELETE CASCADE
);

-- KB articles are embedded in chunks (~120 words): one vector for a long article would be a
-- blur of all its sections. Every chunk of a document carries the hash of the whole document.
CREATE TABLE kb_chunks (
    tenant_id     text NOT NULL,
    doc_id        text NOT NULL,
    chunk_no      integer NOT NULL CHECK (chunk_no >= 0),
    chunk_text    text NOT NULL,
    model         text NOT NULL,
    dimensions    integer NOT NULL CHECK (dimensions > 0),
    content_hash  text NOT NULL,
    embedding     real[] NOT NULL CHECK (cardinality(embedding) = dimensions),
    embedded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, doc_id, chunk_no),
    FOREIGN KEY (tenant_id, doc_id) REFERENCES kb_documents (tenant_id, doc_id)
        ON DELETE CASCADE
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ticket_embeddings', 'kb_chunks']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING '
            '(tenant_id = current_setting(''app.current_tenant_id'', true)) WITH CHECK '
            '(tenant_id = current_setting(''app.current_tenant_id'', true))', t);
        EXECUTE format('CREATE POLICY owner_access ON %I TO %I USING (true) WITH CHECK (true)',
                       t, current_user);
    END LOOP;
END
$$;
