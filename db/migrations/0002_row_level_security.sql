-- Tenant isolation enforced by the database. Policies key on a transaction-scoped setting;
-- unset (NULL or '') matches nothing. FORCE applies the policies to the table owner too; the
-- owner gets a separate permissive policy so SECURITY DEFINER functions (0003) can work across
-- tenants, while the service role, which owns nothing, never can.

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['enhancements', 'enhancement_feedback', 'audit_log',
                             'ticket_history', 'kb_documents', 'assets']
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

    ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
    ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
    CREATE POLICY tenant_isolation ON tenants
        USING (id = current_setting('app.current_tenant_id', true))
        WITH CHECK (id = current_setting('app.current_tenant_id', true));
    EXECUTE format('CREATE POLICY owner_access ON tenants TO %I USING (true) WITH CHECK (true)',
                   current_user);
END
$$;
