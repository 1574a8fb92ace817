/*-------------------------------------------------------------------------
 *
 * retention_admin.c
 *	  Retention policies: set_retention() and drop_retention(), legal
 *	  holds, and the pg_cron jobs that run them.
 *
 *	  A policy is the table owner's decision: set_retention() needs
 *	  ownership of the table, checks everything a run will rely on
 *	  (columns and their types, the preference table, the archive), and
 *	  writes lifecycle.retention_policies as the extension's owner.  Runs
 *	  later act on the table as its owner, so a policy never lends anyone
 *	  else's rights to anything.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/genam.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "retention.h"

#define RT_POLICY_COLUMNS \
	"relid, keep, timestamp_column::pg_catalog.text, action::pg_catalog.text, batch_size," \
	" owner_column::pg_catalog.text, preference_table, preference_key::pg_catalog.text," \
	" preference_column::pg_catalog.text, min_keep, archive_schema::pg_catalog.text, enabled"

/* ---------- policies ---------- */

RtAction
rt_action(const char *label)
{
	if (strcmp(label, "archive") == 0)
		return RT_ARCHIVE;
	if (strcmp(label, "purge_soft_deleted") == 0)
		return RT_PURGE;
	return RT_DELETE;
}

const char *
rt_action_label(RtAction action)
{
	return action == RT_ARCHIVE ? "archive" : action == RT_PURGE ? "purge_soft_deleted" : "delete";
}

/*
 * The policies (all, or only's), oldest last run first, so that a run cut
 * short by its max_runtime starts the next time with those it did not
 * reach; palloc'd in the caller's context.  Runs inside lc_enter().
 */
List *
rt_policies(Oid only)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(only)};
	char		nulls[1] = {OidIsValid(only) ? ' ' : 'n'};
	List	   *result = NIL;
	uint64		n,
				i;

	n = lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
				   "SELECT " RT_POLICY_COLUMNS " FROM " LIFECYCLE_SCHEMA ".retention_policies p"
				   " WHERE $1 IS NULL OR p.relid OPERATOR(pg_catalog.=) $1"
				   " ORDER BY (SELECT pg_catalog.max(r.started_at) FROM " LIFECYCLE_SCHEMA ".retention_runs r"
				   " WHERE r.relid OPERATOR(pg_catalog.=) p.relid) NULLS FIRST, p.relid",
				   1, types, values, nulls, SPI_OK_SELECT, 0);
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		RtPolicy   *p = palloc0(sizeof(RtPolicy));
		bool		isnull;
		char	   *s;

#define RT_COL(k) SPI_getbinval(tup, desc, (k), &isnull)
#define RT_STR(k) ((s = SPI_getvalue(tup, desc, (k))) ? pstrdup(s) : NULL)
		p->relid = DatumGetObjectId(RT_COL(1));
		p->name = RT_STR(1);
		p->keep = *DatumGetIntervalP(RT_COL(2));
		p->ts_column = RT_STR(3);
		p->action = rt_action(RT_STR(4));
		p->batch_size = DatumGetInt32(RT_COL(5));
		p->owner_column = RT_STR(6);
		p->pref_relid = DatumGetObjectId(RT_COL(7));
		if (isnull)
			p->pref_relid = InvalidOid;
		p->pref_key = RT_STR(8);
		p->pref_column = RT_STR(9);
		p->min_keep = *DatumGetIntervalP(RT_COL(10));
		p->archive_schema = RT_STR(11);
		p->enabled = DatumGetBool(RT_COL(12));
#undef RT_COL
#undef RT_STR
		result = lappend(result, p);
	}
	return result;
}

/* ---------- checks ---------- */

static int
rt_interval_cmp(const Interval *a, const Interval *b)
{
	return DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(a),
											 IntervalPGetDatum(b)));
}

static Oid
rt_column_type(Relation rel, const char *column, const char *what, const char *hint)
{
	AttrNumber	attnum = lc_attnum(rel, column);

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table \"%s\" does not exist",
						column, RelationGetRelationName(rel)),
				 errdetail("It was given as the %s.", what),
				 hint ? errhint("%s", hint) : 0));
	return TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid;
}

/* Has rel a unique index (or primary key) on exactly this one column? */
static bool
rt_unique_column(Relation rel, AttrNumber attnum)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	bool		found = false;

	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);

		if (idx->rd_index->indisunique && idx->rd_index->indnkeyatts == 1 &&
			idx->rd_index->indkey.values[0] == attnum && RelationGetIndexPredicate(idx) == NIL)
			found = true;
		index_close(idx, AccessShareLock);
	}
	return found;
}

/* Foreign keys whose ON DELETE would change other tables' rows. */
static char *
rt_cascading_fk(Oid relid)
{
	Relation	conrel = table_open(ConstraintRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(conrel, InvalidOid, false, NULL, 0, NULL);
	HeapTuple	tup;
	char	   *found = NULL;
	/* the table and its partitions: a foreign key may point at one partition */
	List	   *tree = find_all_inheritors(relid, NoLock, NULL);

	while (found == NULL && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);

		if (con->contype == CONSTRAINT_FOREIGN && list_member_oid(tree, con->confrelid) &&
			(con->confdeltype == FKCONSTR_ACTION_CASCADE ||
			 con->confdeltype == FKCONSTR_ACTION_SETNULL ||
			 con->confdeltype == FKCONSTR_ACTION_SETDEFAULT))
			found = psprintf("%s on table %s", NameStr(con->conname),
							 lc_qualified_name_oid(con->conrelid));
	}
	systable_endscan(scan);
	table_close(conrel, AccessShareLock);
	return found;
}

/* Does soft delete turn DELETEs on relid into soft deletes?  (read from its table) */
static bool
rt_intercepts_delete(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	bool		result;

	lc_enter();
	result = lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
						"SELECT 1 FROM " LIFECYCLE_SCHEMA ".soft_delete_tables s"
						" WHERE s.relid OPERATOR(pg_catalog.=) $1 AND s.intercept_delete",
						1, types, values, NULL, SPI_OK_SELECT, 1) > 0;
	lc_leave();
	return result;
}

/*
 * Everything a run relies on, checked when the policy is set and again
 * when a run starts (the table may have changed since): errors name the
 * table and the argument.
 */
void
rt_check_policy(const RtPolicy *p, Relation rel)
{
	Interval	zero;
	Oid			tstype;
	char	   *fk;

	memset(&zero, 0, sizeof(zero));
	if (RelationGetForm(rel)->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is a temporary table", RelationGetRelationName(rel)),
				 errdetail("Retention runs in sessions of its own, which cannot see another session's temporary tables."),
				 errhint("Set retention on permanent tables.")));
	if (RelationGetForm(rel)->relispartition)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is a partition", RelationGetRelationName(rel)),
				 errdetail("A retention policy covers a whole partitioned table."),
				 errhint("Set it on the partitioned table \"%s\".",
						 get_rel_name(lc_partition_root(RelationGetRelid(rel))))));
	if (rt_interval_cmp(&p->keep, &zero) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("keep must be a positive interval"),
				 errhint("Pass how long rows stay, e.g. interval '90 days'.")));
	if (rt_interval_cmp(&p->min_keep, &zero) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_keep must not be negative"),
				 errhint("It is the shortest time an owner's preference may keep rows, e.g. interval '1 day'.")));
	if (p->batch_size < 1 || p->batch_size > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be between 1 and 1000000"),
				 errhint("The default, 5000, keeps each batch well under a second.")));
	tstype = rt_column_type(rel, p->action == RT_PURGE ? LC_DELETED_AT : p->ts_column,
							p->action == RT_PURGE ? "soft-delete column" : "timestamp_column",
							p->action == RT_PURGE ? "purge_soft_deleted needs lifecycle.enable_soft_delete() on the table." :
							"Pass the column that holds each row's time, e.g. timestamp_column => 'occurred_at'.");
	if (tstype != TIMESTAMPTZOID && tstype != TIMESTAMPOID && tstype != DATEOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of table \"%s\" is of type %s, not a timestamp",
						p->action == RT_PURGE ? LC_DELETED_AT : p->ts_column,
						RelationGetRelationName(rel), format_type_be(tstype)),
				 errhint("Retention compares it with now() - keep: use timestamptz, timestamp or date.")));
	if (p->action == RT_PURGE && rt_is_audit_log(RelationGetRelid(rel)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the audit log has no soft-deleted rows to purge"),
				 errhint("Use action => 'delete' or 'archive', with timestamp_column => 'occurred_at'.")));
	if (p->action != RT_PURGE && rt_intercepts_delete(RelationGetRelid(rel)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" turns DELETE into a soft delete", RelationGetRelationName(rel)),
				 errdetail("It was set up with lifecycle.enable_soft_delete(intercept_delete => true): retention's DELETE would only soft-delete its rows, again and again."),
				 errhint("Use action => 'purge_soft_deleted' to remove rows soft-deleted long enough ago, or enable soft delete again with intercept_delete => false.")));
	if (p->owner_column)
	{
		Oid			otype = rt_column_type(rel, p->owner_column, "owner_column", NULL);

		if (OidIsValid(p->pref_relid))
		{
			Relation	pref = relation_open(p->pref_relid, AccessShareLock);
			Oid			ktype,
						ctype;
			Oid			owner = RelationGetForm(rel)->relowner;

			lc_check_table(pref, "set_retention");
			ktype = rt_column_type(pref, p->pref_key, "preference_key", NULL);
			ctype = rt_column_type(pref, p->pref_column, "preference_column", NULL);
			if (ktype != otype)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("preference_key \"%s\" is of type %s, but owner_column \"%s\" is of type %s",
								p->pref_key, format_type_be(ktype), p->owner_column,
								format_type_be(otype)),
						 errhint("Each row's owner is looked up in the preference table by this key; the types must match.")));
			if (!rt_unique_column(pref, lc_attnum(pref, p->pref_key)))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
						 errmsg("preference_key \"%s\" of table \"%s\" is not unique",
								p->pref_key, RelationGetRelationName(pref)),
						 errdetail("Each owner must have one preference: two would make which one applies a matter of chance."),
						 errhint("Make it the primary key, or add a unique index on it.")));
			if (ctype != INT2OID && ctype != INT4OID && ctype != INT8OID)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("preference_column \"%s\" is of type %s, not an integer",
								p->pref_column, format_type_be(ctype)),
						 errhint("It holds each owner's retention in days, e.g. data_retention_days integer.")));
			if (pg_class_aclcheck(p->pref_relid, owner, ACL_SELECT) != ACLCHECK_OK &&
				(pg_attribute_aclcheck(p->pref_relid, lc_attnum(pref, p->pref_key), owner,
									  ACL_SELECT) != ACLCHECK_OK ||
				 pg_attribute_aclcheck(p->pref_relid, lc_attnum(pref, p->pref_column), owner,
									   ACL_SELECT) != ACLCHECK_OK))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("the owner of table \"%s\" may not read the preference table \"%s\"",
								RelationGetRelationName(rel), RelationGetRelationName(pref)),
						 errdetail("Runs read the preferences as the owner of the table they remove rows from."),
						 errhint("GRANT SELECT (%s, %s) ON %s TO %s.", quote_identifier(p->pref_key),
								 quote_identifier(p->pref_column), lc_qualified_name(pref),
								 quote_identifier(GetUserNameFromId(owner, false)))));
			relation_close(pref, NoLock);
		}
	}
	if (p->action == RT_ARCHIVE)
	{
		AttrNumber	keys[INDEX_MAX_KEYS];

		if (lc_primary_key(rel, keys) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("table \"%s\" has no primary key", RelationGetRelationName(rel)),
					 errdetail("restore_archived() finds archived rows by their primary key."),
					 errhint("Add a primary key, or use action => 'delete'.")));
		if ((fk = rt_cascading_fk(RelationGetRelid(rel))) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("archiving rows of table \"%s\" would change rows of other tables",
							RelationGetRelationName(rel)),
					 errdetail("Foreign key %s deletes or changes the rows that reference an archived row, and they would not be archived.",
							   fk),
					 errhint("Set an archive policy on the referencing table with a shorter keep, make the foreign key ON DELETE RESTRICT or NO ACTION (referenced rows then wait), or use action => 'delete'.")));
		if (lc_attnum(rel, RT_ARCHIVED_AT) != InvalidAttrNumber ||
			lc_attnum(rel, RT_RUN_ID) != InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("table \"%s\" has a column named \"%s\" or \"%s\"",
							RelationGetRelationName(rel), RT_ARCHIVED_AT, RT_RUN_ID),
					 errdetail("The archive table adds these two columns to the table's own.")));
	}
}

/* ---------- set_retention / drop_retention ---------- */

/* Batches find the oldest rows by the timestamp column: say so when no index leads with it. */
static void
rt_suggest_index(const RtPolicy *p, Relation rel)
{
	AttrNumber	attnum = lc_attnum(rel, p->action == RT_PURGE ? LC_DELETED_AT : p->ts_column);
	List	   *indexes;
	ListCell   *lc;

	if (rt_is_audit_log(RelationGetRelid(rel)))
		return;					/* its BRIN index on occurred_at serves the range */
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
		bool		leads = idx->rd_index->indnatts > 0 && idx->rd_index->indkey.values[0] == attnum &&
			idx->rd_rel->relam == BTREE_AM_OID;

		index_close(idx, AccessShareLock);
		if (leads)
			return;
	}
	ereport(NOTICE,
			(errmsg("table \"%s\" has no index on column \"%s\"", RelationGetRelationName(rel),
					get_attname(RelationGetRelid(rel), attnum, false)),
			 errdetail("Each retention batch looks for the oldest rows by that column; without an index it reads the whole table every batch."),
			 errhint("CREATE INDEX ON %s (%s);", lc_qualified_name(rel),
					 quote_identifier(get_attname(RelationGetRelid(rel), attnum, false)))));
}

/* lifecycle.audit_log: the one table of the extension a policy may name */
bool
rt_is_audit_log(Oid relid)
{
	return relid == get_relname_relid("audit_log", get_namespace_oid(LIFECYCLE_SCHEMA, false));
}

/* The policy's table, which the caller must own (the audit log: its owner, the extension's). */
static Relation
rt_open_table(Oid relid, const char *funcname)
{
	Relation	rel;

	if (!rt_is_audit_log(relid))
		return lc_open_owned_table(relid, ShareUpdateExclusiveLock, funcname);
	if (!lc_compat_relation_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, "audit_log");
	rel = relation_open(relid, ShareUpdateExclusiveLock);
	return rel;
}

static char *
rt_name_arg(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : pstrdup(NameStr(*PG_GETARG_NAME(n)));
}

static Oid
rt_table_arg(FunctionCallInfo fcinfo, const char *hint)
{
	if (PG_ARGISNULL(0))
		lc_null_argument("tbl", hint);
	return PG_GETARG_OID(0);
}

/* A policy may not change its owner column under holds: they would stop holding. */
static void
rt_check_holds_kept(const RtPolicy *p)
{
	List	   *old = rt_policies(p->relid);
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(p->relid)};
	const char *was;

	if (old == NIL)
		return;
	was = ((RtPolicy *) linitial(old))->owner_column;
	if ((was == NULL && p->owner_column == NULL) ||
		(was && p->owner_column && strcmp(was, p->owner_column) == 0))
		return;
	if (lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
				   "SELECT 1 FROM " LIFECYCLE_SCHEMA ".retention_holds h WHERE h.relid OPERATOR(pg_catalog.=) $1"
				   " AND (h.held_until IS NULL OR h.held_until OPERATOR(pg_catalog.>) pg_catalog.now())",
				   1, types, values, NULL, SPI_OK_SELECT, 1) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the retention policy of table \"%s\" has legal holds on owner_column \"%s\"",
						get_rel_name(p->relid), was ? was : ""),
				 errdetail("Another owner column would make the holds hold nothing."),
				 errhint("Pass owner_column => '%s', or release the holds first.", was ? was : "")));
}

PG_FUNCTION_INFO_V1(set_retention);
Datum
set_retention(PG_FUNCTION_ARGS)
{
	RtPolicy	p;
	Relation	rel;
	Oid			types[12] = {OIDOID, INTERVALOID, NAMEOID, TEXTOID, INT4OID, NAMEOID,
	OIDOID, NAMEOID, NAMEOID, INTERVALOID, BOOLOID, NAMEOID};
	Datum		values[12];
	char		nulls[12];
	int			i;

	memset(&p, 0, sizeof(p));
	p.relid = rt_table_arg(fcinfo, "Pass the table, e.g. lifecycle.set_retention('public.events', interval '90 days').");
	for (i = 1; i <= 4; i++)
		if (PG_ARGISNULL(i))
			lc_null_argument(i == 1 ? "keep" : i == 2 ? "timestamp_column" : i == 3 ? "action" : "batch_size",
							 NULL);
	if (PG_ARGISNULL(9))
		lc_null_argument("min_keep", "Pass interval '0' for no lower bound.");
	if (PG_ARGISNULL(10))
		lc_null_argument("enabled", NULL);
	p.keep = *PG_GETARG_INTERVAL_P(1);
	p.ts_column = rt_name_arg(fcinfo, 2);
	p.action = rt_action(DatumGetCString(DirectFunctionCall1(enum_out, PG_GETARG_DATUM(3))));
	p.batch_size = PG_GETARG_INT32(4);
	p.owner_column = rt_name_arg(fcinfo, 5);
	p.pref_relid = PG_ARGISNULL(6) ? InvalidOid : PG_GETARG_OID(6);
	p.pref_key = rt_name_arg(fcinfo, 7);
	p.pref_column = rt_name_arg(fcinfo, 8);
	p.min_keep = *PG_GETARG_INTERVAL_P(9);
	p.enabled = PG_GETARG_BOOL(10);
	p.archive_schema = rt_name_arg(fcinfo, 11);
	if ((OidIsValid(p.pref_relid) || p.pref_key || p.pref_column) &&
		!(OidIsValid(p.pref_relid) && p.pref_key && p.pref_column && p.owner_column))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("per-owner retention needs owner_column, preference_table, preference_key and preference_column"),
				 errhint("e.g. owner_column => 'user_id', preference_table => 'public.privacy_prefs', preference_key => 'user_id', preference_column => 'data_retention_days'.")));
	if (p.action == RT_ARCHIVE && p.archive_schema == NULL)
		lc_null_argument("archive_schema", "Pass the schema of the archive table, e.g. 'archive'.");

	rel = rt_open_table(p.relid, "set_retention");
	rt_check_policy(&p, rel);
	rt_suggest_index(&p, rel);
	lc_enter();
	rt_check_holds_kept(&p);
	if (p.action == RT_ARCHIVE)
		(void) rt_archive_prepare(&p, rel, NULL);
	values[0] = ObjectIdGetDatum(p.relid);
	values[1] = IntervalPGetDatum(&p.keep);
	values[2] = PG_GETARG_DATUM(2);
	values[3] = CStringGetTextDatum(rt_action_label(p.action));
	values[4] = Int32GetDatum(p.batch_size);
	values[5] = PG_ARGISNULL(5) ? (Datum) 0 : PG_GETARG_DATUM(5);
	values[6] = ObjectIdGetDatum(p.pref_relid);
	values[7] = PG_ARGISNULL(7) ? (Datum) 0 : PG_GETARG_DATUM(7);
	values[8] = PG_ARGISNULL(8) ? (Datum) 0 : PG_GETARG_DATUM(8);
	values[9] = IntervalPGetDatum(&p.min_keep);
	values[10] = BoolGetDatum(p.enabled);
	values[11] = PG_ARGISNULL(11) ? (Datum) 0 : PG_GETARG_DATUM(11);
	for (i = 0; i < 12; i++)
		nulls[i] = ' ';
	nulls[5] = PG_ARGISNULL(5) ? 'n' : ' ';
	nulls[6] = OidIsValid(p.pref_relid) ? ' ' : 'n';
	nulls[7] = PG_ARGISNULL(7) ? 'n' : ' ';
	nulls[8] = PG_ARGISNULL(8) ? 'n' : ' ';
	nulls[11] = PG_ARGISNULL(11) ? 'n' : ' ';
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "INSERT INTO " LIFECYCLE_SCHEMA ".retention_policies AS p"
					  " (relid, keep, timestamp_column, action, batch_size, owner_column,"
					  " preference_table, preference_key, preference_column, min_keep, enabled,"
					  " archive_schema)"
					  " VALUES ($1, $2, $3, $4::" LIFECYCLE_SCHEMA ".retention_action, $5, $6, $7, $8, $9,"
					  " $10, $11, $12)"
					  " ON CONFLICT (relid) DO UPDATE SET keep = EXCLUDED.keep,"
					  " timestamp_column = EXCLUDED.timestamp_column, action = EXCLUDED.action,"
					  " batch_size = EXCLUDED.batch_size, owner_column = EXCLUDED.owner_column,"
					  " preference_table = EXCLUDED.preference_table,"
					  " preference_key = EXCLUDED.preference_key,"
					  " preference_column = EXCLUDED.preference_column, min_keep = EXCLUDED.min_keep,"
					  " enabled = EXCLUDED.enabled, archive_schema = EXCLUDED.archive_schema,"
					  " updated_at = pg_catalog.now()",
					  12, types, values, nulls, SPI_OK_INSERT, 0);
	lc_leave();
	relation_close(rel, NoLock);
	PG_RETURN_VOID();
}

/* The policy of relid, or a clear error. */
static RtPolicy *
rt_policy(Oid relid, const char *funcname)
{
	List	   *l = rt_policies(relid);

	if (l == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no retention policy", get_rel_name(relid)),
				 errhint("%s works on tables set up with lifecycle.set_retention().", funcname)));
	return linitial(l);
}

PG_FUNCTION_INFO_V1(drop_retention);
Datum
drop_retention(PG_FUNCTION_ARGS)
{
	Oid			relid = rt_table_arg(fcinfo, "Pass the table, e.g. lifecycle.drop_retention('public.events').");
	Relation	rel = rt_open_table(relid, "drop_retention");
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};

	lc_enter();
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "DELETE FROM " LIFECYCLE_SCHEMA ".retention_policies WHERE relid OPERATOR(pg_catalog.=) $1",
					  1, types, values, NULL, SPI_OK_DELETE, 0);
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "DELETE FROM " LIFECYCLE_SCHEMA ".retention_holds WHERE relid OPERATOR(pg_catalog.=) $1",
					  1, types, values, NULL, SPI_OK_DELETE, 0);
	lc_leave();
	relation_close(rel, NoLock);
	PG_RETURN_VOID();
}

/* ---------- legal holds ---------- */

/*
 * A hold is the table owner's to place and release.  The value is stored
 * as the owner column's own text form (read by its type's input
 * function), so that '0A...' and '0a...' are one uuid.
 */
static Datum
rt_hold_value(RtPolicy *p, Relation rel, FunctionCallInfo fcinfo)
{
	Oid			otype;
	Oid			infunc,
				ioparam,
				outfunc;
	bool		varlena;
	Datum		v;

	if (p->owner_column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the retention policy of table \"%s\" has no owner_column",
						RelationGetRelationName(rel)),
				 errhint("A hold keeps one owner's rows: set the policy again with owner_column => '...'.")));
	if (p->action == RT_PURGE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("legal holds are not supported on purge_soft_deleted policies"),
				 errdetail("A purge removes soft-deleted rows with their soft-deleted descendants, which a hold on one table could not keep."),
				 errhint("Restore the owner's rows (lifecycle.restore_deleted()) or use action => 'delete'.")));
	if (PG_ARGISNULL(1))
		lc_null_argument("owner_value", NULL);
	otype = rt_column_type(rel, p->owner_column, "owner_column", NULL);
	getTypeInputInfo(otype, &infunc, &ioparam);
	getTypeOutputInfo(otype, &outfunc, &varlena);
	v = OidInputFunctionCall(infunc, text_to_cstring(PG_GETARG_TEXT_PP(1)), ioparam, -1);
	return CStringGetTextDatum(OidOutputFunctionCall(outfunc, v));
}

PG_FUNCTION_INFO_V1(hold_retention);
Datum
hold_retention(PG_FUNCTION_ARGS)
{
	Oid			relid = rt_table_arg(fcinfo, "Pass the table, e.g. lifecycle.hold_retention('public.events', '<owner>', 'litigation').");
	Relation	rel = lc_open_owned_table(relid, ShareUpdateExclusiveLock, "hold_retention");
	Oid			types[4] = {OIDOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', PG_ARGISNULL(3) ? 'n' : ' '};
	RtPolicy   *p;

	if (PG_ARGISNULL(2) || VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(2)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a legal hold needs a reason"),
				 errhint("Say why, e.g. 'litigation hold, case 2026-14'.")));
	lc_enter();
	p = rt_policy(relid, "hold_retention");
	values[0] = ObjectIdGetDatum(relid);
	values[1] = rt_hold_value(p, rel, fcinfo);
	values[2] = PG_GETARG_DATUM(2);
	values[3] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "INSERT INTO " LIFECYCLE_SCHEMA ".retention_holds AS h"
					  " (relid, owner_value, reason, held_until, held_by)"
					  " VALUES ($1, $2, $3, $4, pg_catalog.session_user())"
					  " ON CONFLICT (relid, owner_value) DO UPDATE SET reason = EXCLUDED.reason,"
					  " held_until = EXCLUDED.held_until, held_by = EXCLUDED.held_by,"
					  " held_at = pg_catalog.now()",
					  4, types, values, nulls, SPI_OK_INSERT, 0);
	lc_leave();
	relation_close(rel, NoLock);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(release_retention_hold);
Datum
release_retention_hold(PG_FUNCTION_ARGS)
{
	Oid			relid = rt_table_arg(fcinfo, "Pass the table, e.g. lifecycle.release_retention_hold('public.events', '<owner>').");
	Relation	rel = lc_open_owned_table(relid, ShareUpdateExclusiveLock, "release_retention_hold");
	Oid			types[2] = {OIDOID, TEXTOID};
	Datum		values[2];
	uint64		n;

	lc_enter();
	values[0] = ObjectIdGetDatum(relid);
	values[1] = rt_hold_value(rt_policy(relid, "release_retention_hold"), rel, fcinfo);
	n = lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
				   "DELETE FROM " LIFECYCLE_SCHEMA ".retention_holds WHERE relid OPERATOR(pg_catalog.=) $1"
				   " AND owner_value OPERATOR(pg_catalog.=) $2",
				   2, types, values, NULL, SPI_OK_DELETE, 0);
	lc_leave();
	relation_close(rel, NoLock);
	PG_RETURN_BOOL(n > 0);
}

/* ---------- pg_cron ---------- */

static void
rt_require_cron(void)
{
	const char *crondb = GetConfigOption("cron.database_name", true, false);
	const char *here = get_database_name(MyDatabaseId);

	if (OidIsValid(get_extension_oid("pg_cron", true)))
		return;
	if (crondb && strcmp(crondb, here) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("pg_cron is not installed in this database"),
				 errdetail("pg_cron runs in database \"%s\" (cron.database_name).", crondb),
				 errhint("In database \"%s\", run: SELECT cron.schedule_in_database('%s', '17 3 * * *', 'CALL lifecycle.run_retention()', '%s');",
						 crondb, RT_JOB_NAME, here)));
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("pg_cron is not installed in this database"),
			 errdetail("Scheduling uses the pg_cron extension."),
			 errhint("Add pg_cron to shared_preload_libraries, set cron.database_name, restart, then CREATE EXTENSION pg_cron; or call CALL lifecycle.run_retention() from your own scheduler.")));
}

/*
 * A 5-field cron schedule (minute hour day-of-month month day-of-week), as
 * pg_cron 1.4 reads it; each field's allowed values as a bit set.
 */
typedef struct RtCron
{
	uint64		minute;
	uint32		hour;
	uint32		dom;
	uint32		month;
	uint32		dow;
	bool		dom_star;
	bool		dow_star;
} RtCron;

static bool
rt_cron_field(const char *field, int lo, int hi, uint64 *bits, bool *star)
{
	char	   *copy = pstrdup(field);
	char	   *save = NULL;
	char	   *part;

	*bits = 0;
	*star = strcmp(field, "*") == 0;
	for (part = strtok_r(copy, ",", &save); part; part = strtok_r(NULL, ",", &save))
	{
		int			from = lo,
					to = hi,
					step = 1;
		char	   *slash = strchr(part, '/');
		char	   *end;
		int			v;

		if (slash)
		{
			*slash = '\0';
			step = (int) strtol(slash + 1, &end, 10);
			if (*end || step <= 0)
				return false;
		}
		if (strcmp(part, "*") != 0)
		{
			char	   *dash = strchr(part, '-');

			from = (int) strtol(part, &end, 10);
			if (end == part || (dash ? end != dash : *end != '\0'))
				return false;
			to = slash && !dash ? hi : from;
			if (dash)
			{
				to = (int) strtol(dash + 1, &end, 10);
				if (*end || end == dash + 1)
					return false;
			}
		}
		if (from < lo || to > hi || from > to)
			return false;
		for (v = from; v <= to; v += step)
			*bits |= UINT64CONST(1) << v;
	}
	return *bits != 0;
}

static bool
rt_cron_parse(const char *schedule, RtCron *c)
{
	char	   *copy = pstrdup(schedule);
	char	   *fields[6];
	int			n = 0;
	char	   *save = NULL;
	char	   *f;
	uint64		b;
	bool		star;

	for (f = strtok_r(copy, " \t", &save); f && n < 6; f = strtok_r(NULL, " \t", &save))
		fields[n++] = f;
	if (n != 5)
		return false;
	if (!rt_cron_field(fields[0], 0, 59, &c->minute, &star))
		return false;
	if (!rt_cron_field(fields[1], 0, 23, &b, &star))
		return false;
	c->hour = (uint32) b;
	if (!rt_cron_field(fields[2], 1, 31, &b, &c->dom_star))
		return false;
	c->dom = (uint32) b;
	if (!rt_cron_field(fields[3], 1, 12, &b, &star))
		return false;
	c->month = (uint32) b;
	if (!rt_cron_field(fields[4], 0, 7, &b, &c->dow_star))
		return false;
	if (b & (UINT64CONST(1) << 7))
		b |= 1;					/* 7 is Sunday too */
	c->dow = (uint32) b;
	return true;
}

static void
rt_check_schedule(const char *schedule)
{
	RtCron		c;

	if (!rt_cron_parse(schedule, &c))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid cron schedule \"%s\"", schedule),
				 errdetail("A schedule has five fields: minute hour day-of-month month day-of-week, each *, a number, a range a-b, a list, or a step */n."),
				 errhint("e.g. '17 3 * * *' (every day at 03:17 UTC) or '*/5 * * * *'.")));
}

/* The next minute after from (UTC) that the schedule matches; 0 if none in 5 years. */
static TimestampTz
rt_cron_next(const RtCron *c, TimestampTz from)
{
	struct pg_tm tm;
	fsec_t		fsec;
	TimestampTz t = from - from % USECS_PER_MINUTE + USECS_PER_MINUTE;
	int			days;

	for (days = 0; days < 5 * 366; days++)
	{
		bool		day_ok;
		int			dow;

		if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
			return 0;
		dow = j2day(date2j(tm.tm_year, tm.tm_mon, tm.tm_mday));
		day_ok = (c->month & (1U << tm.tm_mon)) &&
			((c->dom_star || c->dow_star) ?
			 ((c->dom & (1U << tm.tm_mday)) && (c->dow & (1U << dow))) :
			 ((c->dom & (1U << tm.tm_mday)) || (c->dow & (1U << dow))));
		if (day_ok)
		{
			for (; tm.tm_hour < 24; tm.tm_hour++, tm.tm_min = 0)
			{
				if (!(c->hour & (1U << tm.tm_hour)))
					continue;
				for (; tm.tm_min < 60; tm.tm_min++)
					if (c->minute & (UINT64CONST(1) << tm.tm_min))
					{
						TimestampTz r;

						tm.tm_sec = 0;
						if (tm2timestamp(&tm, 0, NULL, &r) != 0)
							return 0;
						return r;
					}
			}
		}
		/* the next day, at midnight */
		tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		if (tm2timestamp(&tm, 0, NULL, &t) != 0)
			return 0;
		t += USECS_PER_DAY;
	}
	return 0;
}

/* The job's schedule, as the caller may read cron.job; NULL if none. */
static char *
rt_job_schedule(const char *jobname)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(jobname)};
	char	   *result = NULL;

	if (!OidIsValid(get_extension_oid("pg_cron", true)))
		return NULL;
	lc_enter();
	if (lc_sql_run(LC_CALLER_PINNED, InvalidOid,
				   "SELECT j.schedule FROM cron.job j WHERE j.jobname OPERATOR(pg_catalog.=) $1"
				   " AND j.database OPERATOR(pg_catalog.=) pg_catalog.current_database()"
				   " ORDER BY j.jobid LIMIT 1",
				   1, types, values, NULL, SPI_OK_SELECT, 1) == 1)
		result = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	lc_leave();
	return result;
}

PG_FUNCTION_INFO_V1(retention_next_due);
Datum
retention_next_due(PG_FUNCTION_ARGS)
{
	char	   *schedule = rt_job_schedule(RT_JOB_NAME);
	RtCron		c;
	TimestampTz next;

	if (schedule == NULL || !rt_cron_parse(schedule, &c) ||
		(next = rt_cron_next(&c, GetCurrentTimestamp())) == 0)
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(next);
}

/*
 * Schedule command as job jobname in the current database.  cron.schedule()
 * replaces a job of the same name and user, so calling again changes the
 * schedule.
 */
static int64
rt_schedule(const char *jobname, const char *schedule, const char *command)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3] = {CStringGetTextDatum(jobname), CStringGetTextDatum(schedule),
	CStringGetTextDatum(command)};
	bool		isnull;
	int64		jobid;

	rt_require_cron();
	rt_check_schedule(schedule);
	lc_enter();
	(void) lc_sql_run(LC_CALLER_PINNED, InvalidOid, "SELECT cron.schedule($1, $2, $3)",
					  3, types, values, NULL, SPI_OK_SELECT, 1);
	jobid = DatumGetInt64(lc_result(0, 1, &isnull));
	lc_leave();
	return jobid;
}

static bool
rt_unschedule(const char *jobname)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(jobname)};
	bool		found;

	rt_require_cron();
	lc_enter();
	found = lc_sql_run(LC_CALLER_PINNED, InvalidOid,
					   "SELECT cron.unschedule(j.jobid) FROM cron.job j"
					   " WHERE j.jobname OPERATOR(pg_catalog.=) $1"
					   " AND j.database OPERATOR(pg_catalog.=) pg_catalog.current_database()",
					   1, types, values, NULL, SPI_OK_SELECT, 0) > 0;
	lc_leave();
	return found;
}

static const char *
rt_schedule_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		lc_null_argument("schedule", "Pass a 5-field cron schedule, e.g. '17 3 * * *'.");
	return text_to_cstring(PG_GETARG_TEXT_PP(0));
}

PG_FUNCTION_INFO_V1(schedule_retention);
Datum
schedule_retention(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(rt_schedule(RT_JOB_NAME, rt_schedule_arg(fcinfo),
								"CALL lifecycle.run_retention()"));
}

PG_FUNCTION_INFO_V1(unschedule_retention);
Datum
unschedule_retention(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(rt_unschedule(RT_JOB_NAME));
}

PG_FUNCTION_INFO_V1(schedule_usage_refresh);
Datum
schedule_usage_refresh(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(rt_schedule(RT_REFRESH_JOB_NAME, rt_schedule_arg(fcinfo),
								"SELECT lifecycle.refresh_usage_counters()"));
}

PG_FUNCTION_INFO_V1(unschedule_usage_refresh);
Datum
unschedule_usage_refresh(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(rt_unschedule(RT_REFRESH_JOB_NAME));
}

/* ---------- the feature ---------- */

/* sql_drop: forget policies and holds of dropped tables (runs stay: history). */
static const char *const rt_forget_dropped[] = {
	"DELETE FROM " LIFECYCLE_SCHEMA ".retention_policies p"
	" WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) p.relid)",
	"DELETE FROM " LIFECYCLE_SCHEMA ".retention_holds h"
	" WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) h.relid)",
	NULL
};

/* lifecycle.retention_pause: after each batch, wait this many times its own duration */
double		rt_pause = 0.0;

static void
rt_init(void)
{
	DefineCustomRealVariable("lifecycle.retention_pause",
							 "After each retention batch, wait this many times the batch's own duration.",
							 "0 (the default) runs batches back to back; 4 leaves the application four fifths of the time.",
							 &rt_pause, 0.0, 0.0, 100.0, PGC_USERSET, 0, NULL, NULL, NULL);
}

const LcFeature lc_retention_feature = {
	.name = "retention",
	.init = rt_init,
	.forget_dropped = rt_forget_dropped,
	.config_table = "retention_policies",
};
