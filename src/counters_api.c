/*-------------------------------------------------------------------------
 *
 * counters_api.c
 *	  The SQL API of usage counters besides track/untrack: metering
 *	  (increment, decrement, reset), reading (calculate_account_usage), and
 *	  recounting (sync_usage_counters, refresh_usage_counters, and the
 *	  recount a TRUNCATE of a source table makes).
 *
 *	  Authority: metering needs the right to update the account's row;
 *	  lowering, resetting and repairing counts belong to the counter
 *	  table's owner and to roles that bypass row-level security.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/uuid.h"

#include "counters.h"

/* Lowering or repairing counts: the counter table's owner, or a role that bypasses RLS. */
static bool
uc_is_admin(Oid counter_relid)
{
	return has_privs_of_role(GetUserId(), lc_table_owner(counter_relid)) ||
		has_bypassrls_privilege(GetUserId());
}

/* Recounting needs a snapshot taken after the source tables are locked. */
void
uc_check_snapshot(const char *funcname)
{
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("%s cannot run in a REPEATABLE READ or SERIALIZABLE transaction", funcname),
				 errdetail("It counts rows after locking the tables against writers; the transaction's snapshot is older than the lock."),
				 errhint("Run it in a READ COMMITTED transaction (the default).")));
}

static void
uc_check_admin(Oid counter_relid, const char *funcname)
{
	if (uc_is_admin(counter_relid))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for %s on the counters of \"%s\"", funcname,
					get_rel_name(counter_relid)),
			 errdetail("Only the table's owner or a role that bypasses row-level security (such as service_role) may lower, reset or repair counts."),
			 errhint("Call it from a trusted context: the service role, pg_cron, or the table's owner.")));
}

static void
uc_account_not_found(UcCounter *c, pg_uuid_t *account)
{
	ereport(ERROR,
			(errcode(ERRCODE_NO_DATA_FOUND),
			 errmsg("account %s not found in %s",
					DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(account))), c->counter),
			 errhint("Pass the key of a row of %s that you can see.", c->counter)));
}

/* ---------- recounting ---------- */

/* The live rows per account of d's source table, as its owner: (uuid[], int8[]). */
static void
uc_actual_counts(UcDef *d, Datum account, char account_null, Datum *accounts, Datum *counts)
{
	Relation	src;
	AttrNumber	deleted_at;
	const char *col = quote_identifier(d->source_column);
	Oid			types[1] = {UUIDOID};
	Datum		values[1] = {account};
	char		nulls[1] = {account_null};
	bool		isnull;

	/*
	 * The table and its partitions, locked against writers (a write
	 * straight into a partition does not lock the root's rows), then
	 * counted with a snapshot taken after the lock.
	 */
	(void) find_all_inheritors(d->source_relid, ShareLock, NULL);
	src = relation_open(d->source_relid, NoLock);
	deleted_at = lc_attnum(src, LC_DELETED_AT);
	if (lc_attnum(src, d->source_column) == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of usage resource \"%s\" no longer exists in \"%s\"",
						d->source_column, d->resource, RelationGetRelationName(src)),
				 errhint("Run lifecycle.untrack_usage() and lifecycle.track_usage() again with the column's new name.")));
	(void) lc_sql_run(LC_TABLE_OWNER, d->source_relid,
					  psprintf("SELECT pg_catalog.array_agg(x.a), pg_catalog.array_agg(x.n) FROM"
							   " (SELECT t.%s AS a, pg_catalog.count(*) AS n FROM %s t"
							   " WHERE t.%s IS NOT NULL%s AND ($1 IS NULL OR t.%s OPERATOR(pg_catalog.=) $1)"
							   " GROUP BY 1) x",
							   col, lc_qualified_name(src), col,
							   deleted_at > 0 ? " AND t.deleted_at IS NULL" : "", col),
					  1, types, values, nulls, SPI_OK_SELECT, 1);
	relation_close(src, NoLock);
	*accounts = lc_result(0, 1, &isnull);
	*counts = lc_result(0, 2, &isnull);
	if (isnull)
	{
		*accounts = PointerGetDatum(construct_empty_array(UUIDOID));
		*counts = PointerGetDatum(construct_empty_array(INT8OID));
	}
}

/*
 * Recount resource d from its source table (locked against writers while
 * it is counted) for one account or all, rewrite the counts that differ,
 * and bring the counter columns up to date (waiting for their rows).
 * Metered resources only get their columns brought up to date.  Returns how
 * many counters (resource, account) were corrected.
 */
int
uc_sync_one(UcDef *d, pg_uuid_t *account, bool recount)
{
	UcCounter  *c = uc_counter_of(d);
	Oid			types[5] = {TEXTOID, UUIDARRAYOID, INT8ARRAYOID, UUIDOID, BOOLOID};
	Datum		values[5];
	char		nulls[5] = "     ";
	Datum		wrong = (Datum) 0;
	bool		isnull,
				saved;

	values[0] = CStringGetTextDatum(d->resource);
	values[3] = account ? UUIDPGetDatum(account) : (Datum) 0;
	nulls[3] = account ? ' ' : 'n';
	values[4] = BoolGetDatum(d->limit != NULL);
	if (recount && OidIsValid(d->source_relid))
	{
		uc_actual_counts(d, values[3], nulls[3], &values[1], &values[2]);
		/* the counts that differ, rewritten as the extension's owner */
		(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
						  "WITH actual AS (SELECT * FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS x(a, n)),"
						  " stored AS (SELECT u.account_id AS a, pg_catalog.sum(u.n) AS n"
						  " FROM " LIFECYCLE_SCHEMA ".usage_counts u WHERE u.resource_type OPERATOR(pg_catalog.=) $1"
						  " AND ($4 IS NULL OR u.account_id OPERATOR(pg_catalog.=) $4) GROUP BY 1)"
						  " SELECT pg_catalog.array_agg(COALESCE(actual.a, stored.a)),"
						  " pg_catalog.array_agg(COALESCE(actual.n, 0))"
						  " FROM actual FULL JOIN stored ON actual.a OPERATOR(pg_catalog.=) stored.a"
						  " WHERE COALESCE(actual.n, 0) OPERATOR(pg_catalog.<>) COALESCE(stored.n, 0)",
						  5, types, values, nulls, SPI_OK_SELECT, 1);
		wrong = lc_result(0, 1, &isnull);
		if (!isnull)
		{
			values[1] = wrong;
			values[2] = lc_result(0, 2, &isnull);
			(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
							  "DELETE FROM " LIFECYCLE_SCHEMA ".usage_counts"
							  " WHERE resource_type OPERATOR(pg_catalog.=) $1"
							  " AND account_id OPERATOR(pg_catalog.=) ANY ($2)",
							  5, types, values, nulls, SPI_OK_DELETE, 0);
			(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
							  "INSERT INTO " LIFECYCLE_SCHEMA ".usage_counts (resource_type, account_id, slot, n, cap)"
							  " SELECT $1, x.a, 0, x.n, CASE WHEN $5 THEN " UC_NO_ROOM " END"
							  " FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS x(a, n) WHERE x.n OPERATOR(pg_catalog.<>) 0",
							  5, types, values, nulls, SPI_OK_INSERT, 0);
		}
		else
			wrong = (Datum) 0;
	}

	/* every account's count, to mirror */
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "SELECT pg_catalog.array_agg(x.a), pg_catalog.array_agg(x.n) FROM"
					  " (SELECT u.account_id AS a, pg_catalog.sum(u.n)::pg_catalog.int8 AS n"
					  " FROM " LIFECYCLE_SCHEMA ".usage_counts u WHERE u.resource_type OPERATOR(pg_catalog.=) $1"
					  " AND ($4 IS NULL OR u.account_id OPERATOR(pg_catalog.=) $4) GROUP BY 1) x",
					  5, types, values, nulls, SPI_OK_SELECT, 1);
	values[1] = lc_result(0, 1, &isnull);
	values[2] = lc_result(0, 2, &isnull);
	if (isnull)
	{
		values[1] = PointerGetDatum(construct_empty_array(UUIDOID));
		values[2] = PointerGetDatum(construct_empty_array(INT8OID));
	}
	types[4] = UUIDARRAYOID;
	values[4] = wrong ? wrong : PointerGetDatum(construct_empty_array(UUIDOID));
	nulls[4] = ' ';
	saved = uc_begin_own_write();
	PG_TRY();
	{
		(void) lc_sql_run(LC_TABLE_OWNER, c->counter_relid,
						  psprintf("WITH m AS (UPDATE %s t SET %s = v.n FROM"
								   " (SELECT c.%s AS k, COALESCE(x.n, 0) AS n FROM %s c"
								   " LEFT JOIN ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS x(a, n) ON x.a OPERATOR(pg_catalog.=) c.%s"
								   " WHERE $4 IS NULL OR c.%s OPERATOR(pg_catalog.=) $4) v"
								   " WHERE t.%s OPERATOR(pg_catalog.=) v.k"
								   " AND (t.%s IS NULL OR t.%s::pg_catalog.int8 OPERATOR(pg_catalog.<>) v.n)"
								   " RETURNING t.%s AS k)"
								   " SELECT pg_catalog.count(*)::pg_catalog.int8 FROM"
								   " (SELECT m.k FROM m UNION SELECT pg_catalog.unnest($5)) z",
								   c->counter, c->column, c->key, c->counter, c->key, c->key,
								   c->key, c->column, c->column, c->key),
						  5, types, values, nulls, SPI_OK_SELECT, 0);
	}
	PG_FINALLY();
	{
		uc_end_own_write(saved);
	}
	PG_END_TRY();
	return (int) DatumGetInt64(lc_result(0, 1, &isnull));
}

/* TRUNCATE of a source table: recount its resources. */
void
uc_truncated(Oid relid)
{
	List	   *defs = uc_defs(NULL);
	ListCell   *lc;
	Oid			root = lc_partition_root(relid);

	foreach(lc, defs)
	{
		UcDef	   *d = lfirst(lc);

		if (d->source_relid == root)
			(void) uc_sync_one(d, NULL, true);
	}
	uc_forget_mirrors();		/* counts changed behind the mirror's back */
}

static Datum
uc_sync(FunctionCallInfo fcinfo, bool recount)
{
	const char *funcname = recount ? "sync_usage_counters" : "refresh_usage_counters";
	pg_uuid_t  *account = PG_ARGISNULL(0) ? NULL : PG_GETARG_UUID_P(0);
	List	   *defs;
	List	   *mine = NIL;
	ListCell   *lc;
	int			corrected = 0;

	uc_check_snapshot(funcname);
	lc_enter();
	defs = uc_defs(NULL);
	/* the resources whose counter tables the caller administers */
	foreach(lc, defs)
		if (uc_is_admin(((UcDef *) lfirst(lc))->counter_relid))
			mine = lappend(mine, lfirst(lc));
	if (defs != NIL && mine == NIL)
		uc_check_admin(((UcDef *) linitial(defs))->counter_relid, funcname);
	foreach(lc, mine)
		corrected += uc_sync_one(lfirst(lc), account, recount);
	uc_forget_mirrors();		/* counts changed behind the mirror's back */
	lc_leave();
	PG_RETURN_INT32(corrected);
}

PG_FUNCTION_INFO_V1(sync_usage_counters);
Datum
sync_usage_counters(PG_FUNCTION_ARGS)
{
	return uc_sync(fcinfo, true);
}

PG_FUNCTION_INFO_V1(refresh_usage_counters);
Datum
refresh_usage_counters(PG_FUNCTION_ARGS)
{
	return uc_sync(fcinfo, false);
}

/* ---------- metering ---------- */

/* Metered resources only: tracked ones change with their rows. */
static void
uc_check_metered(UcDef *d, const char *funcname)
{
	if (OidIsValid(d->source_relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("usage resource \"%s\" counts the rows of \"%s\"", d->resource,
						get_rel_name(d->source_relid)),
				 errdetail("%s changes only metered resources (tracked with source_table => NULL).", funcname),
				 errhint("Its count follows inserts and deletes; to repair drift run lifecycle.sync_usage_counters().")));
}

static int32
uc_amount_arg(FunctionCallInfo fcinfo)
{
	int32		amount = PG_GETARG_INT32(2);

	if (amount <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("amount must be positive, not %d", amount),
				 errhint("Use increment_usage_counter() and decrement_usage_counter() for the two directions.")));
	return amount;
}

static void
uc_ledger(pg_uuid_t *account, const char *resource, int32 quantity)
{
	static LcPlan plan;
	Oid			types[4] = {UUIDOID, TEXTOID, INT4OID, UUIDOID};
	Datum		values[4];
	char		nulls[4] = "    ";
	pg_uuid_t  *actor = palloc(sizeof(pg_uuid_t));

	values[0] = UUIDPGetDatum(account);
	values[1] = CStringGetTextDatum(resource);
	values[2] = Int32GetDatum(quantity);
	values[3] = UUIDPGetDatum(actor);
	if (!lifecycle_current_actor(actor))
		nulls[3] = 'n';
	if (!lc_plan_ready(&plan))
		lc_plan_prepare(&plan, NULL, LC_EXTENSION_OWNER, InvalidOid,
						"INSERT INTO " LIFECYCLE_SCHEMA ".usage_events (account_id, resource_type, quantity, actor_id)"
						" VALUES ($1, $2, $3, $4)", 4, types);
	(void) lc_plan_run(&plan, values, nulls, SPI_OK_INSERT, 0);
}

static void
uc_null_args(FunctionCallInfo fcinfo, int nargs, const char *example)
{
	int			i;

	for (i = 0; i < nargs; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s: arguments must not be NULL", get_func_name(fcinfo->flinfo->fn_oid)),
					 errhint("For example: %s", example)));
}

/* increment_usage_counter / decrement_usage_counter */
static Datum
uc_change(FunctionCallInfo fcinfo, bool up)
{
	pg_uuid_t  *account;
	char	   *resource;
	int32		amount;
	UcDef	   *d;
	UcCounter  *c;
	int64		lim;
	int64		blocked;

	uc_null_args(fcinfo, 3, up ? "lifecycle.increment_usage_counter(account_id, 'ai_requests', 1)" :
				 "lifecycle.decrement_usage_counter(account_id, 'ai_requests', 1)");
	account = PG_GETARG_UUID_P(0);
	resource = text_to_cstring(PG_GETARG_TEXT_PP(1));
	amount = uc_amount_arg(fcinfo);
	lc_enter();
	d = uc_def(resource);
	uc_check_metered(d, up ? "increment_usage_counter()" : "decrement_usage_counter()");
	c = uc_counter_of(d);
	if (!up)
		uc_check_admin(d->counter_relid, "decrement_usage_counter");
	if (pg_class_aclcheck(d->counter_relid, GetUserId(), ACL_UPDATE) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(d->counter_relid, GetUserId(), ACL_UPDATE, ACLMASK_ANY) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to meter usage of accounts in %s", c->counter),
				 errdetail("Metering usage needs the right to update the account's row (UPDATE privilege and policies); reading it is not enough."),
				 errhint("Meter from a role that may update %s, such as service_role.", c->counter)));
	if (!uc_account_visible(c, account, LC_CALLER, true))
		uc_account_not_found(c, account);
	blocked = uc_apply(c, account, up ? amount : -(int64) amount, !up, &lim);
	if (blocked >= 0)
	{
		lc_leave();
		PG_RETURN_BOOL(false);
	}
	uc_ledger(account, resource, up ? amount : -amount);
	uc_mirror_soon(c, account, up ? amount : -(int64) amount);
	lc_leave();
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(increment_usage_counter);
Datum
increment_usage_counter(PG_FUNCTION_ARGS)
{
	return uc_change(fcinfo, true);
}

PG_FUNCTION_INFO_V1(decrement_usage_counter);
Datum
decrement_usage_counter(PG_FUNCTION_ARGS)
{
	return uc_change(fcinfo, false);
}

PG_FUNCTION_INFO_V1(reset_usage_counter);
Datum
reset_usage_counter(PG_FUNCTION_ARGS)
{
	char	   *resource;
	pg_uuid_t  *account = PG_ARGISNULL(1) ? NULL : PG_GETARG_UUID_P(1);
	Oid			types[3] = {TEXTOID, UUIDOID, BOOLOID};
	Datum		values[3];
	char		nulls[3] = "   ";
	UcDef	   *d;
	bool		isnull;
	int64		nonzero;

	uc_null_args(fcinfo, 1, "lifecycle.reset_usage_counter('ai_requests')");
	resource = text_to_cstring(PG_GETARG_TEXT_PP(0));
	lc_enter();
	d = uc_def(resource);
	uc_check_metered(d, "reset_usage_counter()");
	uc_check_admin(d->counter_relid, "reset_usage_counter");
	values[0] = CStringGetTextDatum(resource);
	values[1] = account ? UUIDPGetDatum(account) : (Datum) 0;
	nulls[1] = account ? ' ' : 'n';
	values[2] = BoolGetDatum(d->limit != NULL);
	/* lock the slots first: in-flight increments finish before the reset */
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "SELECT pg_catalog.count(*)::pg_catalog.int8 FROM (SELECT x.account_id FROM"
					  " (SELECT u.account_id, u.n FROM " LIFECYCLE_SCHEMA ".usage_counts u"
					  " WHERE u.resource_type OPERATOR(pg_catalog.=) $1"
					  " AND ($2 IS NULL OR u.account_id OPERATOR(pg_catalog.=) $2)"
					  " ORDER BY u.account_id, u.slot FOR UPDATE) x"
					  " GROUP BY 1 HAVING pg_catalog.sum(x.n) OPERATOR(pg_catalog.<>) 0) z",
					  3, types, values, nulls, SPI_OK_SELECT, 0);
	nonzero = DatumGetInt64(lc_result(0, 1, &isnull));
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "UPDATE " LIFECYCLE_SCHEMA ".usage_counts SET n = 0,"
					  " cap = CASE WHEN $3 THEN " UC_NO_ROOM " END"
					  " WHERE resource_type OPERATOR(pg_catalog.=) $1"
					  " AND ($2 IS NULL OR account_id OPERATOR(pg_catalog.=) $2)",
					  3, types, values, nulls, SPI_OK_UPDATE, 0);
	(void) uc_sync_one(d, account, false);
	uc_forget_mirrors();
	lc_leave();
	PG_RETURN_INT32((int32) nonzero);
}

/* ---------- reading ---------- */

/* The live rows of d's source table for one account, as the table's owner. */
static Datum
uc_actual_count(UcDef *d, pg_uuid_t *account)
{
	Relation	src = relation_open(d->source_relid, AccessShareLock);
	AttrNumber	deleted_at = lc_attnum(src, LC_DELETED_AT);
	Oid			types[1] = {UUIDOID};
	Datum		args[1] = {UUIDPGetDatum(account)};
	bool		isnull;

	(void) lc_sql_run(LC_TABLE_OWNER, d->source_relid,
					  psprintf("SELECT pg_catalog.count(*)::pg_catalog.int8 FROM %s t"
							   " WHERE t.%s OPERATOR(pg_catalog.=) $1%s",
							   lc_qualified_name(src), quote_identifier(d->source_column),
							   deleted_at > 0 ? " AND t.deleted_at IS NULL" : ""),
					  1, types, args, NULL, SPI_OK_SELECT, 1);
	relation_close(src, AccessShareLock);
	return lc_result(0, 1, &isnull);
}

PG_FUNCTION_INFO_V1(calculate_account_usage);
Datum
calculate_account_usage(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	pg_uuid_t  *account;
	List	   *defs;
	ListCell   *lc;
	bool		seen = false;
	UcCounter  *last = NULL;

	uc_null_args(fcinfo, 1, "lifecycle.calculate_account_usage(account_id)");
	account = PG_GETARG_UUID_P(0);
	InitMaterializedSRF(fcinfo, 0);
	lc_enter();
	defs = uc_defs(NULL);
	foreach(lc, defs)
	{
		UcDef	   *d = lfirst(lc);
		UcCounter  *c = uc_counter_of(d);
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		int64		lim;

		last = c;
		if (!uc_account_visible(c, account, LC_CALLER, false))
			continue;
		seen = true;
		values[0] = CStringGetTextDatum(d->resource);
		values[1] = Int64GetDatum(uc_total(d->resource, account));
		nulls[2] = !OidIsValid(d->source_relid);
		if (!nulls[2])
			values[2] = uc_actual_count(d, account);
		lim = uc_read_limit(c, account);
		values[3] = Int64GetDatum(lim);
		nulls[3] = lim < 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	if (!seen && last != NULL)
		uc_account_not_found(last, account);
	lc_leave();
	return (Datum) 0;
}
