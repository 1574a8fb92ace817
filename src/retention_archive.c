/*-------------------------------------------------------------------------
 *
 * retention_archive.c
 *	  Archive tables and restore_archived().
 *
 *	  The archive of schema.t is <archive schema>.t: an ordinary table,
 *	  not a member of the extension (DROP EXTENSION leaves archived data
 *	  alone, pg_dump keeps it), owned by t's owner and made by it, with
 *	  t's columns and two more: archived_at and retention_run_id.  Nobody
 *	  else gets access (anon and authenticated are revoked explicitly, in
 *	  case default privileges granted them some).  Before each run a column
 *	  added to t since is added to the archive; a column whose type changed
 *	  stops the policy with an error rather than archiving converted data.
 *
 *	  restore_archived() runs as the caller: it deletes from the archive
 *	  and inserts into the table with the caller's own rights, so only who
 *	  may read and delete archived rows and insert into the table may.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "retention.h"

Oid
rt_archive_relid(Oid relid, const char *schema)
{
	Oid			nsp = get_namespace_oid(schema, true);
	char	   *name = get_rel_name(relid);

	if (!OidIsValid(nsp) || name == NULL)
		return InvalidOid;
	return get_relname_relid(name, nsp);
}

static void
rt_owner_ddl(Oid relid, const char *sql)
{
	(void) lc_sql_run(LC_TABLE_OWNER, relid, sql, 0, NULL, NULL, NULL, SPI_OK_UTILITY, 0);
}

/*
 * A type of the extension itself (lifecycle.audit_operation): its archive
 * column is text, so that DROP EXTENSION does not take the column along.
 */
static bool
rt_extension_type(Oid type)
{
	HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(type));
	Oid			nsp;

	if (!HeapTupleIsValid(tup))
		return false;
	nsp = ((Form_pg_type) GETSTRUCT(tup))->typnamespace;
	ReleaseSysCache(tup);
	return nsp == get_namespace_oid(LIFECYCLE_SCHEMA, false);
}

/* The archive schema: made for the table's owner, or already the owner's. */
static Oid
rt_archive_schema(const char *schema, Relation rel)
{
	Oid			owner = RelationGetForm(rel)->relowner;
	Oid			nsp = get_namespace_oid(schema, true);
	HeapTuple	tup;
	Oid			nspowner;

	if (!OidIsValid(nsp))
	{
		/* as the owner: it needs CREATE on the database, as for any schema */
		if (lc_compat_database_aclcheck(MyDatabaseId, owner, ACL_CREATE) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("archive schema \"%s\" does not exist, and the owner of table \"%s\" may not create it",
							schema, RelationGetRelationName(rel)),
					 errdetail("Archive tables are made in a schema of the owner of the table they archive."),
					 errhint("CREATE SCHEMA %s AUTHORIZATION %s, then set the policy again.",
							 quote_identifier(schema), quote_identifier(GetUserNameFromId(owner, false)))));
		rt_owner_ddl(RelationGetRelid(rel), psprintf("CREATE SCHEMA %s", quote_identifier(schema)));
		return get_namespace_oid(schema, false);
	}
	if (nsp == RelationGetNamespace(rel))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_SCHEMA_NAME),
				 errmsg("the archive of table \"%s\" cannot be in its own schema \"%s\"",
						RelationGetRelationName(rel), schema),
				 errdetail("The archive table has the table's name."),
				 errhint("Pass archive_schema => another schema, e.g. 'archive'.")));
	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for schema %u", nsp);
	nspowner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	if (nspowner != owner)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("archive schema \"%s\" is owned by role \"%s\", not by the owner of table \"%s\"",
						schema, GetUserNameFromId(nspowner, false), RelationGetRelationName(rel)),
				 errdetail("Archive tables belong to the owner of the table they archive, in a schema of that owner."),
				 errhint("Pass archive_schema => a schema owned by \"%s\" (one that does not exist yet is made).",
						 GetUserNameFromId(owner, false))));
	if (isAnyTempNamespace(nsp) || nsp == get_namespace_oid(LIFECYCLE_SCHEMA, false))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_SCHEMA_NAME),
				 errmsg("schema \"%s\" cannot hold archive tables", schema),
				 errhint("Pass archive_schema => 'archive'.")));
	return nsp;
}

static void
rt_revoke_api_roles(Oid relid, const char *archive)
{
	static const char *const roles[] = {"anon", "authenticated"};
	int			i;

	rt_owner_ddl(relid, psprintf("REVOKE ALL ON %s FROM PUBLIC", archive));
	for (i = 0; i < lengthof(roles); i++)
		if (OidIsValid(get_role_oid(roles[i], true)))
			rt_owner_ddl(relid, psprintf("REVOKE ALL ON %s FROM %s", archive, roles[i]));
}

/*
 * Make sure the archive of rel exists and has every column rel has;
 * return its qualified name and, in *columns, rel's column names (quoted)
 * in the order the runner copies them.  Runs inside lc_enter().
 */
char *
rt_archive_prepare(const RtPolicy *p, Relation rel, List **columns)
{
	Oid			relid = RelationGetRelid(rel);
	Oid			nsp = rt_archive_schema(p->archive_schema, rel);
	char	   *archive = quote_qualified_identifier(p->archive_schema, RelationGetRelationName(rel));
	Oid			arch = get_relname_relid(RelationGetRelationName(rel), nsp);
	TupleDesc	desc = RelationGetDescr(rel);
	Relation	arel;
	List	   *missing = NIL;
	ListCell   *lc;
	int			i;

	if (!OidIsValid(arch))
	{
		AttrNumber	keys[INDEX_MAX_KEYS];
		int			nkeys = lc_primary_key(rel, keys);
		StringInfoData idx;

		rt_owner_ddl(relid, psprintf("CREATE TABLE %s (LIKE %s)", archive, lc_qualified_name(rel)));
		rt_owner_ddl(relid, psprintf("ALTER TABLE %s ADD COLUMN %s pg_catalog.timestamptz NOT NULL"
									 " DEFAULT pg_catalog.now(), ADD COLUMN %s pg_catalog.int8",
									 archive, RT_ARCHIVED_AT, RT_RUN_ID));
		initStringInfo(&idx);
		for (i = 0; i < nkeys; i++)
			appendStringInfo(&idx, "%s%s", i ? ", " : "",
							 quote_identifier(NameStr(TupleDescAttr(desc, keys[i] - 1)->attname)));
		if (nkeys > 0)
			rt_owner_ddl(relid, psprintf("CREATE INDEX ON %s (%s)", archive, idx.data));
		rt_owner_ddl(relid, psprintf("CREATE INDEX ON %s (%s)", archive, RT_ARCHIVED_AT));
		rt_owner_ddl(relid, psprintf("COMMENT ON TABLE %s IS %s", archive,
									 quote_literal_cstr(psprintf("pg_lifecycle archive of %s",
																 lc_qualified_name(rel)))));
		rt_revoke_api_roles(relid, archive);
		for (i = 0; i < desc->natts; i++)
			if (!TupleDescAttr(desc, i)->attisdropped && rt_extension_type(TupleDescAttr(desc, i)->atttypid))
				rt_owner_ddl(relid, psprintf("ALTER TABLE %s ALTER COLUMN %s TYPE pg_catalog.text", archive,
											 quote_identifier(NameStr(TupleDescAttr(desc, i)->attname))));
		if (rt_is_audit_log(relid))
		{
			/*
			 * The log's archive is append-only too, for everyone, by a
			 * function of its own (not the extension's: DROP EXTENSION
			 * leaves the archive whole).
			 */
			char	   *func = quote_qualified_identifier(p->archive_schema, "audit_log_append_only");

			rt_owner_ddl(relid, psprintf("CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql"
										 " SET search_path = pg_catalog AS $f$BEGIN"
										 " RAISE EXCEPTION '%%.%% is append-only', TG_TABLE_SCHEMA, TG_TABLE_NAME"
										 " USING ERRCODE = 'insufficient_privilege',"
										 " DETAIL = 'The archive of the audit log keeps what left the log; nobody changes or removes it.';"
										 " END$f$", func));
			rt_owner_ddl(relid, psprintf("CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON %s"
										 " FOR EACH ROW EXECUTE FUNCTION %s()", archive, func));
			rt_owner_ddl(relid, psprintf("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON %s"
										 " FOR EACH STATEMENT EXECUTE FUNCTION %s()", archive, func));
			rt_owner_ddl(relid, psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER audit_log_append_only", archive));
			rt_owner_ddl(relid, psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER audit_log_no_truncate", archive));
		}
		arch = get_relname_relid(RelationGetRelationName(rel), nsp);
	}
	arel = relation_open(arch, AccessShareLock);
	if (RelationGetForm(arel)->relkind != RELKIND_RELATION ||
		RelationGetForm(arel)->relowner != RelationGetForm(rel)->relowner ||
		lc_attnum(arel, RT_ARCHIVED_AT) == InvalidAttrNumber ||
		lc_attnum(arel, RT_RUN_ID) == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("%s exists and is not the archive of table \"%s\"",
						archive, RelationGetRelationName(rel)),
				 errdetail("An archive table is an ordinary table of the same owner with columns %s and %s.",
						   RT_ARCHIVED_AT, RT_RUN_ID),
				 errhint("Pass another archive_schema, or rename that table.")));
	if (columns)
		*columns = NIL;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *name = NameStr(att->attname);
		AttrNumber	a;

		if (att->attisdropped)
			continue;
		a = lc_attnum(arel, name);
		if (a == InvalidAttrNumber)
			missing = lappend(missing,
							  psprintf("ADD COLUMN %s %s", quote_identifier(name),
									   rt_extension_type(att->atttypid) ? "pg_catalog.text" :
									   format_type_extended(att->atttypid, att->atttypmod,
															FORMAT_TYPE_TYPEMOD_GIVEN |
															FORMAT_TYPE_FORCE_QUALIFY)));
		else if (TupleDescAttr(RelationGetDescr(arel), a - 1)->atttypid !=
				 (rt_extension_type(att->atttypid) ? TEXTOID : att->atttypid))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of %s is of type %s, but in table \"%s\" it is of type %s",
							name, archive,
							format_type_be(TupleDescAttr(RelationGetDescr(arel), a - 1)->atttypid),
							RelationGetRelationName(rel), format_type_be(att->atttypid)),
					 errdetail("Archiving would convert the values."),
					 errhint("ALTER the archive's column to the same type, then run again.")));
		if (columns)
			*columns = lappend(*columns, pstrdup(quote_identifier(name)));
	}
	/* a column added to the table since: ALTER once the archive is closed */
	relation_close(arel, AccessShareLock);
	foreach(lc, missing)
		rt_owner_ddl(relid, psprintf("ALTER TABLE %s %s", archive, (char *) lfirst(lc)));
	return archive;
}

/* ---------- restore_archived ---------- */

/*
 * The caller may insert into the table: checked before any lock is taken,
 * so that a role that may not write it cannot make its writers queue.
 */
static void
rt_check_insert(Oid relid)
{
	char	   *name;

	if (pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) == ACLCHECK_OK)
		return;
	if ((name = get_rel_name(relid)) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, name);
}

/* The columns both tables have that an INSERT may write, as "a, b, c". */
static char *
rt_restore_columns(Relation rel, Relation arel, const char *alias)
{
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData buf;
	int			i,
				n = 0;

	initStringInfo(&buf);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->attgenerated ||
			lc_attnum(arel, NameStr(att->attname)) == InvalidAttrNumber)
			continue;
		appendStringInfo(&buf, "%s%s%s%s", n++ ? ", " : "", alias ? alias : "", alias ? "." : "",
						 quote_identifier(NameStr(att->attname)));
	}
	return buf.data;
}

/*
 * Move archived rows back into the table, as the caller; how many.  With
 * key, the latest archived copy of the row whose key is $1 (a key can be
 * archived again after a restore); else the rows archived in [$1, $2).
 */
static uint64
rt_restore(Oid relid, const char *key, int nargs, Oid *types, Datum *values)
{
	char	   *where;
	Relation	rel;
	Relation	arel;
	List	   *pols;
	const char *schema = "archive";
	Oid			arch;
	uint64		n;
	char	   *cols,
			   *acols;

	if (rt_is_audit_log(relid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("archived rows of the audit log cannot be restored"),
				 errdetail("The audit log and its archive are append-only."),
				 errhint("Read them where they are, in the archive table.")));
	/* no lock on a table the caller may not write: it could make others queue */
	rt_check_insert(relid);
	rel = relation_open(relid, RowExclusiveLock);
	lc_check_table(rel, "restore_archived");
	lc_enter();
	pols = rt_policies(relid);
	if (pols != NIL && ((RtPolicy *) linitial(pols))->archive_schema)
		schema = ((RtPolicy *) linitial(pols))->archive_schema;
	arch = rt_archive_relid(relid, schema);
	if (!OidIsValid(arch))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table \"%s\" has no archive", RelationGetRelationName(rel)),
				 errdetail("No table %s.%s exists.", quote_identifier(schema),
						   quote_identifier(RelationGetRelationName(rel))),
				 errhint("Archives are made by retention policies with action => 'archive'.")));
	/* the caller's own rights, checked before anything is read */
	if (lc_compat_namespace_aclcheck(get_rel_namespace(arch), GetUserId(), ACL_USAGE) != ACLCHECK_OK ||
		pg_class_aclcheck(arch, GetUserId(), ACL_SELECT | ACL_DELETE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to restore archived rows of table \"%s\"",
						RelationGetRelationName(rel)),
				 errdetail("Restoring reads and deletes rows of %s.%s and inserts them into the table.",
						   quote_identifier(schema), quote_identifier(RelationGetRelationName(rel))),
				 errhint("The table's owner restores, or grants SELECT and DELETE on the archive and INSERT on the table.")));
	lc_check_still_table(arch, "the archive");
	arel = relation_open(arch, RowExclusiveLock);
	/* (tableoid, ctid): partitions moved whole are the archive's inheritance children */
	where = key ?
		psprintf("EXISTS (SELECT 1 FROM (SELECT y.tableoid AS o, y.ctid AS t FROM %s y"
				 " WHERE y.%s OPERATOR(pg_catalog.=) $1 ORDER BY y." RT_ARCHIVED_AT " DESC LIMIT 1) l"
				 " WHERE l.o OPERATOR(pg_catalog.=) x.tableoid AND l.t OPERATOR(pg_catalog.=) x.ctid)",
				 lc_qualified_name(arel), key) :
		"x." RT_ARCHIVED_AT " OPERATOR(pg_catalog.>=) $1 AND x." RT_ARCHIVED_AT " OPERATOR(pg_catalog.<) $2";
	cols = rt_restore_columns(rel, arel, NULL);
	acols = rt_restore_columns(rel, arel, "a");
	n = lc_sql_run(LC_CALLER_PINNED, InvalidOid,
				   psprintf("WITH a AS (DELETE FROM %s x WHERE %s RETURNING x.*)"
							" INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM a",
							lc_qualified_name(arel), where, lc_qualified_name(rel), cols, acols),
				   nargs, types, values, NULL, SPI_OK_INSERT, 0);
	lc_leave();
	relation_close(arel, NoLock);
	relation_close(rel, NoLock);
	return n;
}

PG_FUNCTION_INFO_V1(restore_archived_row);
Datum
restore_archived_row(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Relation	rel;
	AttrNumber	keys[INDEX_MAX_KEYS];
	Oid			keytype;
	Oid			infunc,
				ioparam;
	Oid			types[1];
	Datum		values[1];
	const char *key;

	if (PG_ARGISNULL(0))
		lc_null_argument("tbl", "Pass the table, e.g. lifecycle.restore_archived('public.events', '42').");
	if (PG_ARGISNULL(1))
		lc_null_argument("record_id", "Pass the primary key of the archived row.");
	relid = PG_GETARG_OID(0);
	rt_check_insert(relid);
	rel = relation_open(relid, AccessShareLock);
	if (lc_primary_key(rel, keys) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("table \"%s\" has no single-column primary key", RelationGetRelationName(rel)),
				 errhint("Restore by time instead: lifecycle.restore_archived(tbl, since, until).")));
	keytype = TupleDescAttr(RelationGetDescr(rel), keys[0] - 1)->atttypid;
	key = quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(rel), keys[0] - 1)->attname));
	relation_close(rel, AccessShareLock);
	getTypeInputInfo(keytype, &infunc, &ioparam);
	types[0] = keytype;
	values[0] = OidInputFunctionCall(infunc, text_to_cstring(PG_GETARG_TEXT_PP(1)), ioparam, -1);
	PG_RETURN_BOOL(rt_restore(relid, key, 1, types, values) > 0);
}

PG_FUNCTION_INFO_V1(restore_archived_range);
Datum
restore_archived_range(PG_FUNCTION_ARGS)
{
	Oid			types[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[2];

	if (PG_ARGISNULL(0))
		lc_null_argument("tbl", "Pass the table, e.g. lifecycle.restore_archived('public.events', since, until).");
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		lc_null_argument(PG_ARGISNULL(1) ? "since" : "until",
						 "Pass the range of archived_at to restore, e.g. now() - interval '1 day', now().");
	values[0] = PG_GETARG_DATUM(1);
	values[1] = PG_GETARG_DATUM(2);
	PG_RETURN_INT64((int64) rt_restore(PG_GETARG_OID(0), NULL, 2, types, values));
}
