/*-------------------------------------------------------------------------
 *
 * soft_delete_admin.c
 *	  enable_soft_delete() and disable_soft_delete(), which set a table up
 *	  (columns, the <table>_active view, the guard and intercept triggers)
 *	  as its owner and record it as the extension's owner, and
 *	  set_tenant_table(), the one database-wide setting.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "soft_delete.h"

static Oid
sd_table_arg(FunctionCallInfo fcinfo, const char *example)
{
	if (PG_ARGISNULL(0))
		sd_null_error("table", example);
	return PG_GETARG_OID(0);
}

static void
sd_check_existing_column(Relation rel, const char *name, Oid want)
{
	AttrNumber	attnum = lc_attnum(rel, name);
	Oid			type;

	if (attnum == InvalidAttrNumber)
		return;
	type = TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid;
	if (getBaseType(type) != want)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of table \"%s\" has type %s, not %s",
						name, RelationGetRelationName(rel), format_type_be(type),
						format_type_be(want)),
				 errdetail("Soft delete keeps deleted_at timestamptz and deleted_by uuid."),
				 errhint("Convert it, e.g. ALTER TABLE %s ALTER COLUMN %s TYPE %s USING ..., or rename it.",
						 lc_qualified_name(rel), name, format_type_be(want))));
}

/*
 * WHEN clause of the update guard: a restore, or a changed foreign key,
 * compared with each foreign key's own equality operator.
 */
static char *
sd_guard_when(Relation rel)
{
	StringInfoData when;
	ListCell   *lc;

	initStringInfo(&when);
	appendStringInfoString(&when, "NEW.deleted_at IS NULL AND (OLD.deleted_at IS NOT NULL");
	foreach(lc, RelationGetFKeyList(rel))
	{
		ForeignKeyCacheInfo *fk = lfirst(lc);
		HeapTuple	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(fk->conoid));
		int16		conkey[INDEX_MAX_KEYS];
		int16		confkey[INDEX_MAX_KEYS];
		Oid			ff_eq[INDEX_MAX_KEYS];
		int			nkeys,
					i;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for constraint %u", fk->conoid);
		DeconstructFkConstraintRow(tup, &nkeys, conkey, confkey, NULL, NULL, ff_eq,
								   NULL, NULL);
		ReleaseSysCache(tup);
		for (i = 0; i < nkeys; i++)
		{
			const char *col = quote_identifier(get_attname(RelationGetRelid(rel), conkey[i], false));

			appendStringInfo(&when, " OR (OLD.%s IS NULL) OPERATOR(pg_catalog.<>) (NEW.%s IS NULL) OR NOT (OLD.%s %s NEW.%s)",
							 col, col, col, lc_operator_sql(ff_eq[i]), col);
		}
	}
	appendStringInfoChar(&when, ')');
	return when.data;
}

/*
 * intercept_delete keeps rows a DELETE targets; that must not break a
 * foreign key whose ON DELETE action deletes or changes them, and needs a
 * plain table whose statement trigger sees its own rows' DELETEs.
 */
static void
sd_check_intercept(Relation rel)
{
	AttrNumber	keys[INDEX_MAX_KEYS];
	ListCell   *lc;

	if (lc_primary_key(rel, keys) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("table \"%s\" has no single-column primary key", RelationGetRelationName(rel)),
				 errdetail("intercept_delete soft-deletes each deleted row by its primary key."),
				 errhint("Add a primary key, or enable soft delete without intercept_delete.")));
	if (RelationGetForm(rel)->relkind != RELKIND_RELATION || RelationGetForm(rel)->relispartition)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("intercept_delete is not supported on partitioned tables or partitions"),
				 errhint("Enable soft delete without intercept_delete and call lifecycle.soft_delete().")));
	foreach(lc, RelationGetFKeyList(rel))
	{
		ForeignKeyCacheInfo *fk = lfirst(lc);
		HeapTuple	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(fk->conoid));
		char		action;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for constraint %u", fk->conoid);
		action = ((Form_pg_constraint) GETSTRUCT(tup))->confdeltype;
		ReleaseSysCache(tup);
		if (action == FKCONSTR_ACTION_CASCADE || action == FKCONSTR_ACTION_SETNULL ||
			action == FKCONSTR_ACTION_SETDEFAULT)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("intercept_delete cannot be used on \"%s\": foreign key \"%s\" deletes or changes its rows when \"%s\" rows are deleted",
							RelationGetRelationName(rel), get_constraint_name(fk->conoid),
							get_rel_name(fk->confrelid)),
					 errdetail("Keeping the rows would leave them referencing deleted rows."),
					 errhint("Enable soft delete on \"%s\" too and soft-delete there, or change the foreign key to ON DELETE NO ACTION.",
							 get_rel_name(fk->confrelid))));
	}
}

static char *
sd_view_name(Relation rel)
{
	char	   *name = psprintf("%s_active", RelationGetRelationName(rel));
	Oid			existing;

	if (strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("view name \"%s\" would be too long", name),
				 errhint("Rename the table to at most %d characters.", NAMEDATALEN - 1 - 7)));
	existing = get_relname_relid(name, RelationGetNamespace(rel));
	if (OidIsValid(existing) && get_rel_relkind(existing) != RELKIND_VIEW)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("\"%s\" already exists and is not a view", name),
				 errdetail("enable_soft_delete creates the view %s of the live rows.", name),
				 errhint("Rename or drop \"%s\".", name)));
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)), name);
}

/* What enable_soft_delete() found on the table, before changing it. */
typedef struct SdSetup
{
	char	   *qual;
	char	   *view;
	char	   *when;
	bool		has_fks;
	bool		had_ins;
	bool		had_intercept;
	bool		has_at;
	bool		has_by;
} SdSetup;

static void
sd_read_setup(Relation rel, bool intercept, SdSetup *s)
{
	sd_check_existing_column(rel, LC_DELETED_AT, TIMESTAMPTZOID);
	sd_check_existing_column(rel, LC_DELETED_BY, UUIDOID);
	if (intercept)
		sd_check_intercept(rel);
	s->qual = lc_qualified_name(rel);
	s->view = sd_view_name(rel);
	s->has_fks = RelationGetFKeyList(rel) != NIL;
	s->when = sd_guard_when(rel);
	s->had_ins = lc_find_trigger(rel, SD_GUARD_INS) != NULL;
	s->had_intercept = lc_find_trigger(rel, SD_INTERCEPT) != NULL;
	s->has_at = lc_attnum(rel, LC_DELETED_AT) != InvalidAttrNumber;
	s->has_by = lc_attnum(rel, LC_DELETED_BY) != InvalidAttrNumber;
}

PG_FUNCTION_INFO_V1(enable_soft_delete);
Datum
enable_soft_delete(PG_FUNCTION_ARGS)
{
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.enable_soft_delete('public.projects').");
	bool		intercept = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	Relation	rel;
	SdSetup		s;
	Oid			argtypes[2] = {OIDOID, BOOLOID};
	Datum		values[2];

	rel = lc_open_owned_table(relid, ShareRowExclusiveLock, "enable_soft_delete");
	sd_read_setup(rel, intercept, &s);
	/* keep the lock, but not the relcache reference, across the DDL */
	relation_close(rel, NoLock);

	lc_enter();
	if (!s.has_at)
		lc_ddl(psprintf("ALTER TABLE %s ADD COLUMN deleted_at pg_catalog.timestamptz", s.qual));
	if (!s.has_by)
		lc_ddl(psprintf("ALTER TABLE %s ADD COLUMN deleted_by pg_catalog.uuid", s.qual));
	lc_ddl(psprintf("CREATE OR REPLACE VIEW %s WITH (security_invoker = true) AS"
					" SELECT * FROM %s WHERE deleted_at IS NULL", s.view, s.qual));
	lc_ddl(psprintf("CREATE OR REPLACE TRIGGER " SD_GUARD_UPD " AFTER UPDATE ON %s"
					" FOR EACH ROW WHEN (%s)"
					" EXECUTE FUNCTION " LIFECYCLE_SCHEMA ".soft_delete_guard()", s.qual, s.when));
	if (s.has_fks)
		lc_ddl(psprintf("CREATE OR REPLACE TRIGGER " SD_GUARD_INS " AFTER INSERT ON %s"
						" FOR EACH ROW WHEN (NEW.deleted_at IS NULL)"
						" EXECUTE FUNCTION " LIFECYCLE_SCHEMA ".soft_delete_guard()", s.qual));
	else if (s.had_ins)
		lc_ddl(psprintf("DROP TRIGGER " SD_GUARD_INS " ON %s", s.qual));
	if (intercept || s.had_intercept)
		lc_install_triggers(list_make1_oid(relid), sd_intercept_shapes, 2,
							"soft_delete_intercept", NULL, intercept);
	values[0] = ObjectIdGetDatum(relid);
	values[1] = BoolGetDatum(intercept);
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "INSERT INTO " LIFECYCLE_SCHEMA ".soft_delete_tables (relid, intercept_delete)"
					  " VALUES ($1, $2) ON CONFLICT (relid) DO UPDATE"
					  " SET intercept_delete = excluded.intercept_delete, enabled_at = pg_catalog.now()",
					  2, argtypes, values, NULL, SPI_OK_INSERT, 0);
	lc_leave();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(disable_soft_delete);
Datum
disable_soft_delete(PG_FUNCTION_ARGS)
{
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.disable_soft_delete('public.projects').");
	Relation	rel;
	char	   *qual;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	Oid			view;
	char	   *viewname;
	bool		had_ins,
				had_intercept;

	rel = lc_open_owned_table(relid, ShareRowExclusiveLock, "disable_soft_delete");
	if (lc_find_trigger(rel, SD_GUARD_UPD) == NULL)
	{
		ereport(NOTICE,
				(errmsg("table \"%s\" is not enabled for soft delete, skipping",
						RelationGetRelationName(rel))));
		relation_close(rel, NoLock);
		PG_RETURN_VOID();
	}
	qual = lc_qualified_name(rel);
	view = get_relname_relid(psprintf("%s_active", RelationGetRelationName(rel)),
							 RelationGetNamespace(rel));
	viewname = OidIsValid(view) && get_rel_relkind(view) == RELKIND_VIEW ?
		sd_view_name(rel) : NULL;
	had_ins = lc_find_trigger(rel, SD_GUARD_INS) != NULL;
	had_intercept = lc_find_trigger(rel, SD_INTERCEPT) != NULL;
	relation_close(rel, NoLock);

	lc_enter();
	if (viewname)
		lc_ddl(psprintf("DROP VIEW %s", viewname));
	lc_ddl(psprintf("DROP TRIGGER " SD_GUARD_UPD " ON %s", qual));
	if (had_ins)
		lc_ddl(psprintf("DROP TRIGGER " SD_GUARD_INS " ON %s", qual));
	if (had_intercept)
		lc_install_triggers(list_make1_oid(relid), sd_intercept_shapes, 2,
							"soft_delete_intercept", NULL, false);
	values[0] = ObjectIdGetDatum(relid);
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "DELETE FROM " LIFECYCLE_SCHEMA ".soft_delete_tables WHERE relid OPERATOR(pg_catalog.=) $1",
					  1, argtypes, values, NULL, SPI_OK_DELETE, 0);
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "DELETE FROM " LIFECYCLE_SCHEMA ".soft_delete_tenant WHERE tenant_table OPERATOR(pg_catalog.=) $1",
					  1, argtypes, values, NULL, SPI_OK_DELETE, 0);
	lc_leave();
	PG_RETURN_VOID();
}

/*
 * The tenant table is one setting for the whole database, so only members
 * of the extension owner's role (its administrators) may change it.
 */
PG_FUNCTION_INFO_V1(set_tenant_table);
Datum
set_tenant_table(PG_FUNCTION_ARGS)
{
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.set_tenant_table('public.organizations').");
	Relation	rel;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];

	if (!has_privs_of_role(GetUserId(), lc_extension_owner()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to set the tenant table"),
				 errdetail("The tenant table is a setting of the whole database."),
				 errhint("Ask the role that installed pg_lifecycle (%s) to call it.",
						 GetUserNameFromId(lc_extension_owner(), false))));
	rel = relation_open(relid, AccessShareLock);
	lc_check_table(rel, "set_tenant_table");
	relation_close(rel, AccessShareLock);
	lc_enter();
	sd_check_tenant(sd_enabled_table(relid, "set_tenant_table"));
	values[0] = ObjectIdGetDatum(relid);
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "INSERT INTO " LIFECYCLE_SCHEMA ".soft_delete_tenant (tenant_table) VALUES ($1)"
					  " ON CONFLICT (singleton) DO UPDATE SET tenant_table = excluded.tenant_table",
					  1, argtypes, values, NULL, SPI_OK_INSERT, 0);
	lc_leave();
	PG_RETURN_VOID();
}

/* sql_drop: forget the tables that are gone. */
static const char *const sd_forget_dropped[] = {
	"DELETE FROM " LIFECYCLE_SCHEMA ".soft_delete_tables s"
	" WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
	" WHERE c.oid OPERATOR(pg_catalog.=) s.relid)",
	"DELETE FROM " LIFECYCLE_SCHEMA ".soft_delete_tenant s"
	" WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
	" WHERE c.oid OPERATOR(pg_catalog.=) s.tenant_table)",
	NULL
};

static void
sd_xact_end(void)
{
	sd_cascade_xact_end();
	sd_triggers_xact_end();
	sd_api_xact_end();
}

const LcFeature lc_soft_delete_feature = {
	.name = "soft_delete",
	.xact_end = sd_xact_end,
	.subxact_end = sd_triggers_subxact_end,
	.forget_dropped = sd_forget_dropped,
	.config_table = "soft_delete_tables",
};
