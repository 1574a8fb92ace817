/*-------------------------------------------------------------------------
 *
 * counters.c
 *	  Usage counters and plan limits.  A counted resource is the live rows of
 *	  a source table per account (or metered usage without a table); its
 *	  count lives in lifecycle.usage_counts, split over slots so concurrent
 *	  writers of one account do not queue on one row, and is mirrored into
 *	  the counter column of the account's row (accounts.current_project_count)
 *	  whenever that row can be locked without waiting.
 *
 *	  Statement-level AFTER triggers with transition tables turn each
 *	  statement into one change per account: live rows are those whose
 *	  deleted_at (if the table has one) is NULL, so soft delete, restore,
 *	  moves between accounts and the permanent delete of a soft-deleted row
 *	  are counted from the data, however the row was changed.
 *
 *	  Limits: each slot may grow up to its cap without looking at the others,
 *	  the caps of one count together staying within the limit; a writer
 *	  whose slot is full runs lifecycle.usage_rebalance(), which locks all
 *	  slots of the count, checks the limit against the exact total and
 *	  shares out what is left.  The guard trigger on the counter table
 *	  refuses direct writes of counter columns and empties the caps when a
 *	  limit changes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/partition.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "pg_lifecycle.h"

#define UC_NSLOTS		16
#define UC_TRIGGER_INS	"lifecycle_usage_insert"
#define UC_TRIGGER_UPD	"lifecycle_usage_update"
#define UC_TRIGGER_DEL	"lifecycle_usage_delete"
#define UC_TRIGGER_TRUNC "lifecycle_usage_truncate"
#define UC_GUARD		"lifecycle_usage_guard"
#define UC_NO_ROOM		"-4611686018427387904"	/* cap: every increase rebalances */

/* Where a resource's counts are mirrored and its limits read. */
typedef struct UcCounter
{
	char	   *resource;
	Oid			counter_relid;
	char	   *counter;		/* the counter table, quoted */
	char	   *key;			/* its key column, quoted */
	char	   *column;			/* the counter column, quoted */
	char	   *limit;			/* the limit column, quoted; NULL without */
	bool		keep;			/* keep the plans below (cached entries) */
	SPIPlanPtr	mirror_plan;
	SPIPlanPtr	limit_plan;
} UcCounter;

/* One resource counted from a source table. */
typedef struct UcResource
{
	UcCounter	c;
	AttrNumber	source_attnum;	/* the account column of the source table */
	SPIPlanPtr	delta[3];		/* INSERT, UPDATE, DELETE: (account, delta) rows */
} UcResource;

/* The resources of one source table; keyed by relid. */
typedef struct UcTable
{
	Oid			relid;
	bool		valid;
	int			busy;			/* statements using it right now */
	bool		scratch;		/* built for one nested use, not cached */
	MemoryContext cxt;
	AttrNumber	deleted_at;		/* 0: every row is live */
	int			nres;
	UcResource *res;
} UcTable;

enum
{
	UC_INS, UC_UPD, UC_DEL
};

/* One change of one count. */
typedef struct UcDelta
{
	pg_uuid_t	account;
	int64		delta;
} UcDelta;

static HTAB *uc_cache = NULL;
static void uc_truncated(Oid relid);
static bool uc_writing = false;	/* the guard lets our own writes through */

/* ---------- cache of source tables ---------- */

static void
uc_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	UcTable    *t;

	hash_seq_init(&status, uc_cache);
	while ((t = hash_seq_search(&status)) != NULL)
	{
		int			i;

		if (relid == InvalidOid || t->relid == relid)
			t->valid = false;
		for (i = 0; t->valid && i < t->nres; i++)
			if (t->res[i].c.counter_relid == relid)
				t->valid = false;
	}
}

static void
uc_free(UcTable *t)
{
	int			i,
				j;

	for (i = 0; i < t->nres; i++)
	{
		for (j = 0; j < 3; j++)
			if (t->res[i].delta[j])
				SPI_freeplan(t->res[i].delta[j]);
		if (t->res[i].c.mirror_plan)
			SPI_freeplan(t->res[i].c.mirror_plan);
		if (t->res[i].c.limit_plan)
			SPI_freeplan(t->res[i].c.limit_plan);
	}
	if (t->cxt)
		MemoryContextDelete(t->cxt);
	t->cxt = NULL;
	t->nres = 0;
	t->res = NULL;
}

/* The one-column key of a counter table (checked by track_usage). */
static AttrNumber
uc_key_attnum(Relation rel)
{
	Oid			pk = RelationGetPrimaryKeyIndex(rel);
	Relation	idx;
	AttrNumber	attnum = 0;

	if (!OidIsValid(pk))
		return 0;
	idx = index_open(pk, AccessShareLock);
	if (idx->rd_index->indnkeyatts == 1)
		attnum = idx->rd_index->indkey.values[0];
	index_close(idx, AccessShareLock);
	return attnum;
}

/* The SQL of one operation's changes per account, read as the table's owner. */
static char *
uc_delta_sql(UcTable *t, const char *srccol, int op)
{
	const char *live = t->deleted_at ? " AND t.deleted_at IS NULL" : "";

	switch (op)
	{
		case UC_INS:
		case UC_DEL:
			return psprintf("SELECT t.%s, %spg_catalog.count(*) FROM %s t WHERE t.%s IS NOT NULL%s"
							" GROUP BY 1 ORDER BY 1", srccol, op == UC_DEL ? "OPERATOR(pg_catalog.-) " : "",
							op == UC_DEL ? "lifecycle_old" : "lifecycle_new", srccol, live);
		default:
			return psprintf("SELECT x.a, pg_catalog.sum(x.d)::pg_catalog.int8 FROM ("
							"SELECT t.%s AS a, -1 AS d FROM lifecycle_old t WHERE t.%s IS NOT NULL%s"
							" UNION ALL SELECT t.%s, 1 FROM lifecycle_new t WHERE t.%s IS NOT NULL%s) x"
							" GROUP BY 1 HAVING pg_catalog.sum(x.d) OPERATOR(pg_catalog.<>) 0 ORDER BY 1",
							srccol, srccol, live, srccol, srccol, live);
	}
}

/* Fill in c, in the current memory context. */
static void
uc_counter_init(UcCounter *c, const char *resource, Oid counter_relid, const char *column,
				const char *limit, bool keep)
{
	Relation	counter = relation_open(counter_relid, AccessShareLock);
	AttrNumber	key = uc_key_attnum(counter);

	memset(c, 0, sizeof(UcCounter));
	c->resource = pstrdup(resource);
	c->counter_relid = counter_relid;
	c->counter = lifecycle_qualified_name(counter);
	relation_close(counter, AccessShareLock);
	if (key == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("counter table of usage resource \"%s\" no longer has a one-column primary key",
						resource),
				 errhint("Restore the key, or run lifecycle.untrack_usage('%s').", resource)));
	c->key = pstrdup(quote_identifier(get_attname(counter_relid, key, false)));
	if (get_attnum(counter_relid, column) == InvalidAttrNumber ||
		(limit && get_attnum(counter_relid, limit) == InvalidAttrNumber))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of usage resource \"%s\" no longer exists in \"%s\"",
						get_attnum(counter_relid, column) == InvalidAttrNumber ? column : limit,
						resource, get_rel_name(counter_relid)),
				 errhint("Run lifecycle.untrack_usage('%s') and lifecycle.track_usage() again with the column's new name.",
						 resource)));
	c->column = pstrdup(quote_identifier(column));
	c->limit = limit ? pstrdup(quote_identifier(limit)) : NULL;
	c->keep = keep;
}

static void
uc_build(UcTable *t, Relation rel)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	LifecycleUserSave save;
	MemoryContext old;
	uint64		i;
	int			rc;

	t->cxt = AllocSetContextCreate(t->scratch ? CurrentMemoryContext : CacheMemoryContext,
								   "pg_lifecycle counted table", ALLOCSET_SMALL_SIZES);
	/* the root's resources count the rows of its partitions too */
	values[0] = ObjectIdGetDatum(RelationGetForm(rel)->relispartition ?
								 llast_oid(get_partition_ancestors(t->relid)) : t->relid);
	lifecycle_become_owner(&save);
	rc = SPI_execute_with_args("SELECT resource_type, counter_table::pg_catalog.oid, counter_column,"
							   " source_column, limit_column FROM " LIFECYCLE_SCHEMA ".usage_resources"
							   " WHERE source_table OPERATOR(pg_catalog.=) $1 ORDER BY 1",
							   1, argtypes, values, NULL, false, 0);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading lifecycle.usage_resources failed: %s", SPI_result_code_string(rc));
	old = MemoryContextSwitchTo(t->cxt);
	t->deleted_at = get_attnum(t->relid, "deleted_at");
	if (t->deleted_at == InvalidAttrNumber)
		t->deleted_at = 0;
	t->nres = (int) SPI_processed;
	t->res = palloc0(sizeof(UcResource) * Max(t->nres, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		UcResource *r = &t->res[i];
		char	   *srccol = SPI_getvalue(tup, desc, 4);
		char	   *limit = SPI_getvalue(tup, desc, 5);
		bool		isnull;

		uc_counter_init(&r->c, SPI_getvalue(tup, desc, 1),
						DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull)),
						SPI_getvalue(tup, desc, 3), limit, !t->scratch);
		r->source_attnum = get_attnum(t->relid, srccol);
		if (r->source_attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of usage resource \"%s\" no longer exists in \"%s\"",
							srccol, r->c.resource, RelationGetRelationName(rel)),
					 errhint("Run lifecycle.untrack_usage() and lifecycle.track_usage() again with the column's new name.")));
	}
	MemoryContextSwitchTo(old);
}

/* A per-relation cache in TopMemoryContext, flagged stale by relcache invalidation. */
static HTAB *
uc_relation_cache(const char *name, Size entrysize, RelcacheCallbackFunction invalidate)
{
	HASHCTL		ctl;
	HTAB	   *cache;

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = entrysize;
	ctl.hcxt = TopMemoryContext;
	cache = hash_create(name, 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(invalidate, (Datum) 0);
	return cache;
}

static UcTable *
uc_lookup(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	UcTable    *t;
	bool		found;

	if (uc_cache == NULL)
		uc_cache = uc_relation_cache("pg_lifecycle counted tables", sizeof(UcTable), uc_invalidate);
	t = hash_search(uc_cache, &relid, HASH_ENTER, &found);
	if (!found)
		memset(t, 0, sizeof(UcTable));
	t->relid = relid;
	if (!t->valid && t->busy > 0)
	{
		/* a nested statement of the table: never free what the outer one uses */
		UcTable    *scratch = palloc0(sizeof(UcTable));

		scratch->relid = relid;
		scratch->scratch = true;
		scratch->valid = true;
		uc_build(scratch, rel);
		return scratch;
	}
	while (!t->valid)
	{
		uc_free(t);
		t->valid = true;
		PG_TRY();
		{
			uc_build(t, rel);
		}
		PG_CATCH();
		{
			t->valid = false;
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return t;
}

/* ---------- applying changes ---------- */

static SPIPlanPtr
uc_keep(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types)
{
	/* a kept plan re-plans itself when invalidated: never free one that may be running */
	if (*slot != NULL)
		return *slot;
	*slot = SPI_prepare(sql, nargs, types);
	if (*slot == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(*slot) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return *slot;
}

/* The slot of this backend: backends with different slots never wait on each other. */
static int16
uc_my_slot(void)
{
	return (int16) (MyProc->pgprocno % UC_NSLOTS);
}

/* A plan of c's, kept with it when c is cached, else for this call only. */
static SPIPlanPtr
uc_counter_plan(UcCounter *c, SPIPlanPtr *slot, const char *sql, int nargs, Oid *types)
{
	SPIPlanPtr	plan;

	if (c->keep)
		return uc_keep(slot, sql, nargs, types);
	plan = SPI_prepare(sql, nargs, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	return plan;
}

/* The limit of an account, read as the counter table's owner; -1: none. */
static int64
uc_read_limit(UcCounter *c, pg_uuid_t *account)
{
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1] = {UUIDPGetDatum(account)};
	LifecycleUserSave save;
	bool		isnull = true;
	int64		result = -1;
	int			rc;

	if (c->limit == NULL)
		return -1;
	lifecycle_become_table_owner(c->counter_relid, &save);
	rc = SPI_execute_plan(uc_counter_plan(c, &c->limit_plan,
										  psprintf("SELECT %s::pg_catalog.int8 FROM %s WHERE %s OPERATOR(pg_catalog.=) $1",
												   c->limit, c->counter, c->key),
										  1, argtypes),
						  values, NULL, false, 1);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the usage limit failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			result = Max(DatumGetInt64(d), 0);	/* a negative limit allows nothing */
	}
	return result;
}

/*
 * The slot was locked, full or missing.  Wait for it, in a subtransaction:
 * when a rebalance held it, it now has room and the change is made; when
 * it has none, rolling the subtransaction back lets go of the slot (the
 * wait locked it) before the rebalance locks every slot in order, so two
 * writers never hold slots out of order.
 */
static bool
uc_wait_for_slot(Datum *values, char *nulls, Oid *types)
{
	static SPIPlanPtr plan = NULL;
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	LifecycleUserSave save;
	SPIPlanPtr	p;
	volatile bool done = false;
	int			rc;

	p = uc_keep(&plan,
				"UPDATE " LIFECYCLE_SCHEMA ".usage_counts SET n = n OPERATOR(pg_catalog.+) $4"
				" WHERE resource_type OPERATOR(pg_catalog.=) $1"
				" AND account_id OPERATOR(pg_catalog.=) $2 AND slot OPERATOR(pg_catalog.=) $3"
				" AND (cap IS NULL OR $4 OPERATOR(pg_catalog.<=) 0"
				" OR n OPERATOR(pg_catalog.+) $4 OPERATOR(pg_catalog.<=) cap)",
				4, types);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		lifecycle_become_owner(&save);
		rc = SPI_execute_plan(p, values, nulls, false, 0);
		lifecycle_restore_user(&save);
		if (rc != SPI_OK_UPDATE)
			elog(ERROR, "updating lifecycle.usage_counts failed: %s", SPI_result_code_string(rc));
		done = SPI_processed == 1;
		if (done)
			ReleaseCurrentSubTransaction();
		else
			RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		/* a lock timeout, a deadlock...: close our subtransaction, then raise it */
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		ReThrowError(edata);
	}
	PG_END_TRY();
	return done;
}

/*
 * Add delta to the count of (resource, account).  Returns -1 when done;
 * otherwise the count that stopped it (the limit would be passed, or a
 * decrement would go below zero) and nothing changed.  strict: take the
 * slow path, which sees every slot (decrements that must not go below
 * zero).  *limit_out: the limit read, -1 if none was read.
 */
static int64
uc_apply(UcCounter *c, pg_uuid_t *account, int64 delta, bool strict, int64 *limit_out)
{
	static SPIPlanPtr fast = NULL;
	static SPIPlanPtr rebalance = NULL;
	static SPIPlanPtr lockall = NULL;
	Oid			lock_types[3] = {TEXTOID, UUIDOID, INT4OID};
	Datum		lock_values[3];
	Oid			types[7] = {TEXTOID, UUIDOID, INT2OID, INT8OID, INT8OID, INT4OID, BOOLOID};
	Datum		values[7];
	char		nulls[7] = "       ";
	LifecycleUserSave save;
	int64		lim;
	int			rc;
	bool		isnull;
	Datum		blocked;

	values[0] = CStringGetTextDatum(c->resource);
	values[1] = UUIDPGetDatum(account);
	values[2] = Int16GetDatum(uc_my_slot());
	values[3] = Int64GetDatum(delta);
	*limit_out = -1;
	if (!strict)
	{
		/*
		 * First without waiting: a slot that is locked (by a rebalance, or by
		 * a backend sharing it), full or missing is not touched.
		 */
		lifecycle_become_owner(&save);
		rc = SPI_execute_plan(uc_keep(&fast,
									  "UPDATE " LIFECYCLE_SCHEMA ".usage_counts u SET n = u.n OPERATOR(pg_catalog.+) $4"
									  " WHERE u.ctid OPERATOR(pg_catalog.=) (SELECT c.ctid FROM " LIFECYCLE_SCHEMA ".usage_counts c"
									  " WHERE c.resource_type OPERATOR(pg_catalog.=) $1"
									  " AND c.account_id OPERATOR(pg_catalog.=) $2 AND c.slot OPERATOR(pg_catalog.=) $3"
									  " AND (c.cap IS NULL OR $4 OPERATOR(pg_catalog.<=) 0"
									  " OR c.n OPERATOR(pg_catalog.+) $4 OPERATOR(pg_catalog.<=) c.cap)"
									  " FOR UPDATE SKIP LOCKED)",
									  4, types),
							  values, nulls, false, 0);
		lifecycle_restore_user(&save);
		if (rc != SPI_OK_UPDATE)
			elog(ERROR, "updating lifecycle.usage_counts failed: %s", SPI_result_code_string(rc));
		if (SPI_processed == 1)
			return -1;			/* the total is read only if it is mirrored */
		if (uc_wait_for_slot(values, nulls, types))
			return -1;
	}
	/*
	 * Lock every slot of the count (in order) before reading the limit: a
	 * change of the limit in progress has locked them too (its guard), so
	 * it is waited for and its new limit read; one that starts later waits
	 * for us and empties the caps we set.
	 */
	lifecycle_become_owner(&save);
	lock_values[0] = values[0];
	lock_values[1] = values[1];
	lock_values[2] = Int32GetDatum(UC_NSLOTS);
	rc = SPI_execute_plan(uc_keep(&lockall,
								  "SELECT " LIFECYCLE_SCHEMA ".usage_lock_slots($1, $2, $3)", 3, lock_types),
						  lock_values, NULL, false, 0);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "locking lifecycle.usage_counts failed: %s", SPI_result_code_string(rc));
	lim = uc_read_limit(c, account);
	*limit_out = lim;
	values[4] = Int64GetDatum(lim);
	nulls[4] = lim < 0 ? 'n' : ' ';
	values[5] = Int32GetDatum(UC_NSLOTS);
	values[6] = BoolGetDatum(strict);	/* only metered decrements stop at zero */
	lifecycle_become_owner(&save);
	rc = SPI_execute_plan(uc_keep(&rebalance,
								  "SELECT " LIFECYCLE_SCHEMA ".usage_rebalance($1, $2, $3, $4, $5, $6, $7)",
								  7, types),
						  values, nulls, false, 0);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "lifecycle.usage_rebalance failed: %s", SPI_result_code_string(rc));
	blocked = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? -1 : DatumGetInt64(blocked);
}

/* The exact count of (resource, account). */
static int64
uc_total(const char *resource, pg_uuid_t *account)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[2] = {TEXTOID, UUIDOID};
	Datum		values[2];
	LifecycleUserSave save;
	bool		isnull;
	Datum		d;
	int			rc;

	values[0] = CStringGetTextDatum(resource);
	values[1] = UUIDPGetDatum(account);
	lifecycle_become_owner(&save);
	rc = SPI_execute_plan(uc_keep(&plan,
								  "SELECT pg_catalog.sum(n)::pg_catalog.int8 FROM " LIFECYCLE_SCHEMA ".usage_counts"
								  " WHERE resource_type OPERATOR(pg_catalog.=) $1 AND account_id OPERATOR(pg_catalog.=) $2",
								  2, types),
						  values, NULL, false, 1);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "reading lifecycle.usage_counts failed: %s", SPI_result_code_string(rc));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * Mirror the count into the account's counter column, as the counter
 * table's owner, if the row can be locked at once: a busy account's writers
 * do not queue on it.  Returns false if it was locked by another writer.
 */
static bool
uc_mirror(UcCounter *c, pg_uuid_t *account, int64 total)
{
	Oid			types[2] = {UUIDOID, INT8OID};
	Datum		values[2];
	LifecycleUserSave save;
	bool		saved = uc_writing;
	bool		isnull;
	int			rc = 0;
	SPIPlanPtr	plan;

	values[0] = UUIDPGetDatum(account);
	values[1] = Int64GetDatum(total);
	plan = uc_counter_plan(c, &c->mirror_plan,
						   psprintf("WITH l AS (SELECT %s AS k, %s AS v FROM %s WHERE %s OPERATOR(pg_catalog.=) $1"
									" FOR NO KEY UPDATE SKIP LOCKED),"
									" u AS (UPDATE %s t SET %s = $2 FROM l WHERE t.%s OPERATOR(pg_catalog.=) l.k"
									" AND (l.v IS NULL OR l.v::pg_catalog.int8 OPERATOR(pg_catalog.<>) $2) RETURNING 1)"
									" SELECT pg_catalog.count(*)::pg_catalog.int8 FROM l",
									c->key, c->column, c->counter, c->key,
									c->counter, c->column, c->key),
						   2, types);
	lifecycle_become_table_owner(c->counter_relid, &save);
	uc_writing = true;
	PG_TRY();
	{
		rc = SPI_execute_plan(plan, values, NULL, false, 0);
	}
	PG_FINALLY();
	{
		uc_writing = saved;
	}
	PG_END_TRY();
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "updating the counter column failed: %s", SPI_result_code_string(rc));
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) > 0;
}

/*
 * When to mirror.  A write mirrors the count, unless it is part of a burst
 * of concurrent writes to one account: then each backend mirrors it once
 * per UC_BURST_MS instead of at every statement (each mirror writes a new
 * version of the account's row, which the writers' foreign-key checks must
 * then walk).  A backend is in a burst when, at its last mirror, others had
 * changed the count since its previous one, or held the account's row.
 */
#define UC_BURST_MS	1000
static struct
{
	char		resource[NAMEDATALEN];
	pg_uuid_t	account;
	TimestampTz at;				/* when this backend last mirrored it */
	int64		total;			/* what it wrote */
	int64		mine;			/* this backend's changes since */
	bool		burst;
} uc_last;

static void
uc_mirror_soon(UcCounter *c, pg_uuid_t *account, int64 delta)
{
	int64		total;
	TimestampTz now = GetCurrentTimestamp();
	bool		same = strncmp(uc_last.resource, c->resource, NAMEDATALEN) == 0 &&
		memcmp(&uc_last.account, account, sizeof(pg_uuid_t)) == 0;
	bool		recent = same && now < TimestampTzPlusMilliseconds(uc_last.at, UC_BURST_MS);

	if (same)
		uc_last.mine += delta;
	if (recent && uc_last.burst)
		return;
	/* a transaction snapshot cannot lock a row others changed since: leave it to them */
	if (IsolationUsesXactSnapshot())
		return;
	total = uc_total(c->resource, account);
	uc_last.burst = same && total != uc_last.total + uc_last.mine;
	if (!recent)
		uc_last.at = now;		/* a burst is judged per period */
	strlcpy(uc_last.resource, c->resource, NAMEDATALEN);
	memcpy(&uc_last.account, account, sizeof(pg_uuid_t));
	uc_last.total = total;
	uc_last.mine = 0;
	if (!uc_mirror(c, account, total))
		uc_last.burst = true;	/* locked by another writer */
}

static void
uc_limit_error(UcCounter *c, pg_uuid_t *account, int64 count, int64 delta, int64 lim)
{
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("usage limit of \"%s\" reached for account %s", c->resource,
					DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(account)))),
			 errdetail("The limit is %lld (%s.%s); the count is %lld and this change adds %lld.",
					   (long long) lim, c->counter, c->limit ? c->limit : "?",
					   (long long) count, (long long) delta),
			 errhint("Raise the account's limit, or remove rows first.")));
}

/* The changes of one statement, as the table's owner, sorted by account. */
static UcDelta *
uc_statement_deltas(UcTable *t, UcResource *r, TriggerData *td, int op, int *n)
{
	LifecycleUserSave save;
	UcDelta    *d;
	uint64		i;
	int			rc;

	if (r->delta[op] == NULL)
	{
		/* made on first use: the transition tables must be registered */
		const char *srccol = quote_identifier(get_attname(t->relid, r->source_attnum, false));

		r->delta[op] = SPI_prepare(uc_delta_sql(t, srccol, op), 0, NULL);
		if (r->delta[op] == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (!t->scratch)
			SPI_keepplan(r->delta[op]);
	}
	lifecycle_become_table_owner(t->relid, &save);
	rc = SPI_execute_plan(r->delta[op], NULL, NULL, true, 0);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the changed rows failed: %s", SPI_result_code_string(rc));
	d = palloc(sizeof(UcDelta) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		memcpy(&d[i].account,
			   DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)),
			   sizeof(pg_uuid_t));
		d[i].delta = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	*n = (int) SPI_processed;
	return d;
}

/* Is the row counted, and for which account? */
static bool
uc_row_account(UcTable *t, UcResource *r, TupleTableSlot *slot, pg_uuid_t *account)
{
	if (slot->tts_isnull[r->source_attnum - 1])
		return false;
	if (t->deleted_at && !slot->tts_isnull[t->deleted_at - 1])
		return false;
	memcpy(account, DatumGetUUIDP(slot->tts_values[r->source_attnum - 1]), sizeof(pg_uuid_t));
	return true;
}

/* The changes of a one-row statement, made in C: at most two accounts. */
static UcDelta *
uc_row_deltas(UcTable *t, UcResource *r, TupleTableSlot *o, TupleTableSlot *nw, int *n)
{
	UcDelta    *d = palloc(sizeof(UcDelta) * 2);
	pg_uuid_t	a;
	int			k = 0;

	if (o && uc_row_account(t, r, o, &a))
	{
		d[k].account = a;
		d[k++].delta = -1;
	}
	if (nw && uc_row_account(t, r, nw, &a))
	{
		if (k == 1 && memcmp(&d[0].account, &a, sizeof(pg_uuid_t)) == 0)
			k = 0;				/* same account, still counted */
		else
		{
			d[k].account = a;
			d[k++].delta = 1;
		}
	}
	if (k == 2 && memcmp(&d[0].account, &d[1].account, sizeof(pg_uuid_t)) > 0)
	{
		UcDelta		x = d[0];

		d[0] = d[1];
		d[1] = x;
	}
	*n = k;
	return d;
}

PG_FUNCTION_INFO_V1(usage_trigger);
Datum
usage_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	UcTable    *t;
	int			op,
				i;
	int64		nold,
				nnew;
	TupleTableSlot *o = NULL,
			   *nw = NULL;

	if (!CALLED_AS_TRIGGER(fcinfo) || TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("usage_trigger: must be fired AFTER ... FOR EACH STATEMENT"),
				 errhint("This trigger is installed by lifecycle.track_usage(); do not create it by hand.")));
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		/* recount every resource of the table */
		SPI_connect();
		uc_truncated(RelationGetRelid(td->tg_relation));
		SPI_finish();
		return PointerGetDatum(NULL);
	}
	nold = td->tg_oldtable ? tuplestore_tuple_count(td->tg_oldtable) : 0;
	nnew = td->tg_newtable ? tuplestore_tuple_count(td->tg_newtable) : 0;
	if (nold == 0 && nnew == 0)
		return PointerGetDatum(NULL);
	op = TRIGGER_FIRED_BY_INSERT(td->tg_event) ? UC_INS :
		TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? UC_UPD : UC_DEL;

	SPI_connect();
	t = uc_lookup(td->tg_relation);
	if (nold <= 1 && nnew <= 1)
	{
		if (td->tg_oldtable && nold == 1)
			o = lifecycle_only_row(td->tg_oldtable, RelationGetDescr(td->tg_relation));
		if (td->tg_newtable && nnew == 1)
			nw = lifecycle_only_row(td->tg_newtable, RelationGetDescr(td->tg_relation));
	}
	else if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "could not register the transition tables");

	t->busy++;
	PG_TRY();
	{
	for (i = 0; i < t->nres; i++)
	{
		UcResource *r = &t->res[i];
		UcDelta    *d;
		int			n,
					k;

		d = (o || nw) ? uc_row_deltas(t, r, o, nw, &n) : uc_statement_deltas(t, r, td, op, &n);
		for (k = 0; k < n; k++)
		{
			int64		lim;
			int64		blocked = uc_apply(&r->c, &d[k].account, d[k].delta, false, &lim);

			if (blocked >= 0)
				uc_limit_error(&r->c, &d[k].account, blocked, d[k].delta, lim);
		}
		for (k = 0; k < n; k++)
			uc_mirror_soon(&r->c, &d[k].account, d[k].delta);
	}
	}
	PG_FINALLY();
	{
		t->busy--;
	}
	PG_END_TRY();
	if (o)
		ExecDropSingleTupleTableSlot(o);
	if (nw)
		ExecDropSingleTupleTableSlot(nw);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* The value of an integer column (int2, int4, int8; checked by track_usage). */
static int64
uc_int_value(Datum d, Oid type)
{
	switch (getBaseType(type))
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		default:
			return DatumGetInt64(d);
	}
}

/*
 * What the guard of a counter table watches, from lifecycle.usage_resources
 * (not from its trigger's arguments, which anyone could write), resolved by
 * column name; cached per table until the table or the configuration
 * changes (both invalidate the table's relcache entry).
 */
typedef struct UcGuardCol
{
	char	   *resource;
	AttrNumber	counter;
	AttrNumber	limit;			/* 0: none */
} UcGuardCol;

typedef struct UcGuard
{
	Oid			relid;
	bool		valid;
	MemoryContext cxt;
	AttrNumber	key;
	int			n;
	UcGuardCol *cols;
} UcGuard;

static HTAB *uc_guard_cache = NULL;

static void
uc_guard_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	UcGuard    *g;

	hash_seq_init(&status, uc_guard_cache);
	while ((g = hash_seq_search(&status)) != NULL)
		if (relid == InvalidOid || g->relid == relid)
			g->valid = false;
}

static UcGuard *
uc_guard_lookup(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	LifecycleUserSave save;
	MemoryContext old;
	UcGuard    *g;
	bool		found;
	uint64		i;
	int			rc;

	if (uc_guard_cache == NULL)
		uc_guard_cache = uc_relation_cache("pg_lifecycle counter tables", sizeof(UcGuard),
										   uc_guard_invalidate);
	g = hash_search(uc_guard_cache, &relid, HASH_ENTER, &found);
	if (!found)
		memset(g, 0, sizeof(UcGuard));
	g->relid = relid;
	if (g->valid)
		return g;
	if (g->cxt)
		MemoryContextDelete(g->cxt);
	g->cxt = NULL;
	g->n = 0;
	lifecycle_become_owner(&save);
	rc = SPI_execute_with_args("SELECT resource_type, counter_column, limit_column FROM "
							   LIFECYCLE_SCHEMA ".usage_resources"
							   " WHERE counter_table OPERATOR(pg_catalog.=) $1 ORDER BY 1",
							   1, types, values, NULL, false, 0);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading lifecycle.usage_resources failed: %s", SPI_result_code_string(rc));
	g->cxt = AllocSetContextCreate(CacheMemoryContext, "pg_lifecycle counter table",
								   ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(g->cxt);
	g->key = uc_key_attnum(rel);
	g->cols = palloc0(sizeof(UcGuardCol) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		char	   *limit = SPI_getvalue(tup, SPI_tuptable->tupdesc, 3);
		UcGuardCol *c = &g->cols[g->n];

		c->resource = pstrdup(SPI_getvalue(tup, SPI_tuptable->tupdesc, 1));
		c->counter = get_attnum(relid, SPI_getvalue(tup, SPI_tuptable->tupdesc, 2));
		c->limit = limit ? get_attnum(relid, limit) : 0;
		if (c->limit == InvalidAttrNumber)
			c->limit = 0;
		if (c->counter != InvalidAttrNumber)
			g->n++;
	}
	MemoryContextSwitchTo(old);
	g->valid = true;
	return g;
}

static bool
uc_same(HeapTuple a, HeapTuple b, AttrNumber attnum, TupleDesc desc)
{
	bool		anull,
				bnull;
	Datum		av = heap_getattr(a, attnum, desc, &anull);
	Datum		bv = heap_getattr(b, attnum, desc, &bnull);
	Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);

	if (anull || bnull)
		return anull == bnull;
	return datum_image_eq(av, bv, att->attbyval, att->attlen);
}

/* The account's limit changed (or its row came): the next increase checks it. */
static void
uc_limit_changed(const char *resource, Datum account, bool unlimited)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[3] = {TEXTOID, UUIDOID, BOOLOID};
	Datum		values[3];
	LifecycleUserSave save;
	int			rc;

	values[0] = CStringGetTextDatum(resource);
	values[1] = account;
	values[2] = BoolGetDatum(unlimited);
	lifecycle_become_owner(&save);
	/*
	 * Every slot, made if missing: a rebalance of the account in progress
	 * (which locks all slots) is waited for, and one that starts later
	 * waits for us and then reads the new limit.
	 */
	rc = SPI_execute_plan(uc_keep(&plan,
								  "INSERT INTO " LIFECYCLE_SCHEMA ".usage_counts (resource_type, account_id, slot, n, cap)"
								  " SELECT $1, $2, s::pg_catalog.int2, 0, CASE WHEN $3 THEN NULL ELSE " UC_NO_ROOM " END"
								  " FROM pg_catalog.generate_series(0, " CppAsString2(UC_NSLOTS) " - 1) s"
								  " ON CONFLICT (resource_type, account_id, slot) DO UPDATE SET cap = excluded.cap",
								  3, types),
						  values, NULL, false, 0);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "updating lifecycle.usage_counts failed: %s", SPI_result_code_string(rc));
}

/*
 * AFTER INSERT OR UPDATE of a counter table, FOR EACH ROW: it sees the row
 * as written, after every BEFORE trigger.  Counter columns are written only
 * by pg_lifecycle; a new row or a changed limit empties the caps of the
 * account, so the next increase checks the limit as it is now.
 */
PG_FUNCTION_INFO_V1(usage_guard);
Datum
usage_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	newtup;
	UcGuard    *g;
	int			i;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_AFTER(td->tg_event) || TRIGGER_FIRED_BY_DELETE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("usage_guard: must be fired AFTER INSERT OR UPDATE ... FOR EACH ROW"),
				 errhint("This trigger is installed by lifecycle.track_usage(); do not create it by hand.")));
	newtup = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	desc = RelationGetDescr(td->tg_relation);
	SPI_connect();
	g = uc_guard_lookup(td->tg_relation);
	for (i = 0; i < g->n; i++)
	{
		UcGuardCol *c = &g->cols[i];
		Form_pg_attribute att = TupleDescAttr(desc, c->counter - 1);
		bool		isnull;
		Datum		v = heap_getattr(newtup, c->counter, desc, &isnull);
		bool		limit_changed;

		/* our own writes set counters; a limit changed meanwhile is still seen */
		if (!uc_writing &&
			(TRIGGER_FIRED_BY_INSERT(td->tg_event) ?
			 (!isnull && uc_int_value(v, att->atttypid) != 0) :
			 !uc_same(td->tg_trigtuple, newtup, c->counter, desc)))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("column \"%s\" of \"%s\" is kept by pg_lifecycle",
							NameStr(att->attname), RelationGetRelationName(td->tg_relation)),
					 TRIGGER_FIRED_BY_INSERT(td->tg_event) ?
					 errdetail("It counts usage resource \"%s\"; a new row starts at 0.", c->resource) :
					 errdetail("It counts usage resource \"%s\".", c->resource),
					 TRIGGER_FIRED_BY_INSERT(td->tg_event) ?
					 errhint("Leave the column out of the INSERT.") :
					 errhint("Counts change with the data; to repair drift run lifecycle.sync_usage_counters().")));
		if (c->limit == 0 || g->key <= 0)
			continue;
		heap_getattr(newtup, c->limit, desc, &isnull);
		limit_changed = TRIGGER_FIRED_BY_INSERT(td->tg_event) ? !isnull :
			!uc_same(td->tg_trigtuple, newtup, c->limit, desc);
		if (limit_changed)
		{
			bool		knull;
			Datum		key = heap_getattr(newtup, g->key, desc, &knull);

			if (!knull)
				uc_limit_changed(c->resource, key, isnull);
		}
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* ---------- configuration and the SQL-callable functions ---------- */

/* A resource's definition, from lifecycle.usage_resources. */
typedef struct UcDef
{
	char	   *resource;
	Oid			counter_relid;
	char	   *column;
	Oid			source_relid;	/* InvalidOid: metered */
	char	   *source_column;
	char	   *limit;
} UcDef;

/* The definitions of one resource (name), or of all; as the extension's owner. */
static List *
uc_defs(const char *resource)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	char		nulls[1] = {resource ? ' ' : 'n'};
	LifecycleUserSave save;
	List	   *defs = NIL;
	uint64		i;
	int			rc;

	values[0] = resource ? CStringGetTextDatum(resource) : (Datum) 0;
	lifecycle_become_owner(&save);
	rc = SPI_execute_with_args("SELECT resource_type, counter_table::pg_catalog.oid, counter_column,"
							   " source_table::pg_catalog.oid, source_column, limit_column"
							   " FROM " LIFECYCLE_SCHEMA ".usage_resources"
							   " WHERE $1 IS NULL OR resource_type OPERATOR(pg_catalog.=) $1 ORDER BY 1",
							   1, types, values, nulls, false, 0);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading lifecycle.usage_resources failed: %s", SPI_result_code_string(rc));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		UcDef	   *d = palloc0(sizeof(UcDef));
		bool		isnull;
		Datum		src;

		d->resource = SPI_getvalue(tup, desc, 1);
		d->counter_relid = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		d->column = SPI_getvalue(tup, desc, 3);
		src = SPI_getbinval(tup, desc, 4, &isnull);
		d->source_relid = isnull ? InvalidOid : DatumGetObjectId(src);
		d->source_column = SPI_getvalue(tup, desc, 5);
		d->limit = SPI_getvalue(tup, desc, 6);
		defs = lappend(defs, d);
	}
	return defs;
}

static UcDef *
uc_def(const char *resource)
{
	List	   *defs = uc_defs(resource);

	if (defs == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("usage resource \"%s\" is not tracked", resource),
				 errhint("Declare it with lifecycle.track_usage(); lifecycle.usage_resources lists those tracked.")));
	return linitial(defs);
}

static UcCounter *
uc_counter_of(UcDef *d)
{
	UcCounter  *c = palloc(sizeof(UcCounter));

	uc_counter_init(c, d->resource, d->counter_relid, d->column, d->limit, false);
	return c;
}

/* Lowering or repairing counts: the counter table's owner, or a role that bypasses RLS. */
static bool
uc_is_admin(Oid counter_relid)
{
	return has_privs_of_role(GetUserId(), lifecycle_table_owner(counter_relid)) ||
		has_bypassrls_privilege(GetUserId());
}

/* Recounting needs a snapshot taken after the source tables are locked. */
static void
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

/*
 * Can the caller see the account, with its privileges and RLS?  to_write:
 * could it also update the row (FOR KEY SHARE needs the UPDATE privilege
 * and passes the UPDATE policies; the weakest lock, taken by foreign keys
 * too, so concurrent writers of the account do not wait for it).
 */
static bool
uc_caller_sees(UcCounter *c, pg_uuid_t *account, bool to_write)
{
	Oid			types[1] = {UUIDOID};
	Datum		values[1] = {UUIDPGetDatum(account)};
	int			rc;

	rc = SPI_execute_with_args(psprintf("SELECT 1 FROM %s WHERE %s OPERATOR(pg_catalog.=) $1%s",
										c->counter, c->key, to_write ? " FOR KEY SHARE" : ""),
							   1, types, values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the account failed: %s", SPI_result_code_string(rc));
	return SPI_processed == 1;
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

/*
 * Recount resource d from its source table (locked against writers while
 * it is counted) for one account or all, rewrite the counts that differ,
 * and bring the counter columns up to date (waiting for their rows).
 * Metered resources only get their columns brought up to date.  Returns how
 * many counters (resource, account) were corrected.
 */
static int
uc_sync_one(UcDef *d, pg_uuid_t *account, bool recount)
{
	UcCounter  *c = uc_counter_of(d);
	Oid			types[5] = {TEXTOID, UUIDARRAYOID, INT8ARRAYOID, UUIDOID, BOOLOID};
	Datum		values[5];
	char		nulls[5] = "     ";
	Datum		wrong = (Datum) 0;
	LifecycleUserSave save;
	bool		isnull,
				saved = uc_writing;
	int			rc;
	int64		corrected;

	values[0] = CStringGetTextDatum(d->resource);
	values[3] = account ? UUIDPGetDatum(account) : (Datum) 0;
	nulls[3] = account ? ' ' : 'n';
	values[4] = BoolGetDatum(d->limit != NULL);
	if (recount && OidIsValid(d->source_relid))
	{
		Relation	src;
		AttrNumber	deleted_at = get_attnum(d->source_relid, "deleted_at");
		const char *col = quote_identifier(d->source_column);
		Datum		actual[2];

		/*
		 * The table and its partitions, locked against writers (a write
		 * straight into a partition does not lock the root's rows), then
		 * counted with a snapshot taken after the lock.
		 */
		(void) find_all_inheritors(d->source_relid, ShareLock, NULL);
		src = relation_open(d->source_relid, NoLock);

		if (get_attnum(d->source_relid, d->source_column) == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of usage resource \"%s\" no longer exists in \"%s\"",
							d->source_column, d->resource, RelationGetRelationName(src)),
					 errhint("Run lifecycle.untrack_usage() and lifecycle.track_usage() again with the column's new name.")));
		/* the actual counts, as the source table's owner */
		lifecycle_become_table_owner(d->source_relid, &save);
		rc = SPI_execute_with_args(psprintf("SELECT pg_catalog.array_agg(x.a), pg_catalog.array_agg(x.n) FROM"
											" (SELECT t.%s AS a, pg_catalog.count(*) AS n FROM %s t"
											" WHERE t.%s IS NOT NULL%s AND ($1 IS NULL OR t.%s OPERATOR(pg_catalog.=) $1)"
											" GROUP BY 1) x",
											col, lifecycle_qualified_name(src), col,
											deleted_at > 0 ? " AND t.deleted_at IS NULL" : "", col),
								   1, types + 3, values + 3, nulls + 3, false, 1);
		lifecycle_restore_user(&save);
		relation_close(src, NoLock);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "counting the rows failed: %s", SPI_result_code_string(rc));
		actual[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		actual[1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		values[1] = isnull ? PointerGetDatum(construct_empty_array(UUIDOID)) : actual[0];
		values[2] = isnull ? PointerGetDatum(construct_empty_array(INT8OID)) : actual[1];

		/* the counts that differ, rewritten as the extension's owner */
		lifecycle_become_owner(&save);
		rc = SPI_execute_with_args("WITH actual AS (SELECT * FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS x(a, n)),"
								   " stored AS (SELECT u.account_id AS a, pg_catalog.sum(u.n) AS n"
								   " FROM " LIFECYCLE_SCHEMA ".usage_counts u WHERE u.resource_type OPERATOR(pg_catalog.=) $1"
								   " AND ($4 IS NULL OR u.account_id OPERATOR(pg_catalog.=) $4) GROUP BY 1)"
								   " SELECT pg_catalog.array_agg(COALESCE(actual.a, stored.a)),"
								   " pg_catalog.array_agg(COALESCE(actual.n, 0))"
								   " FROM actual FULL JOIN stored ON actual.a OPERATOR(pg_catalog.=) stored.a"
								   " WHERE COALESCE(actual.n, 0) OPERATOR(pg_catalog.<>) COALESCE(stored.n, 0)",
								   5, types, values, nulls, false, 1);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "comparing the counts failed: %s", SPI_result_code_string(rc));
		wrong = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
		{
			values[1] = wrong;
			values[2] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
			lifecycle_spi_exec("DELETE FROM " LIFECYCLE_SCHEMA ".usage_counts"
							   " WHERE resource_type OPERATOR(pg_catalog.=) $1"
							   " AND account_id OPERATOR(pg_catalog.=) ANY ($2)",
							   SPI_OK_DELETE, 5, types, values, nulls);
			lifecycle_spi_exec("INSERT INTO " LIFECYCLE_SCHEMA ".usage_counts (resource_type, account_id, slot, n, cap)"
							   " SELECT $1, x.a, 0, x.n, CASE WHEN $5 THEN " UC_NO_ROOM " END"
							   " FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS x(a, n) WHERE x.n OPERATOR(pg_catalog.<>) 0",
							   SPI_OK_INSERT, 5, types, values, nulls);
		}
		else
			wrong = (Datum) 0;
		lifecycle_restore_user(&save);
	}

	/* every account's count, to mirror */
	lifecycle_become_owner(&save);
	rc = SPI_execute_with_args("SELECT pg_catalog.array_agg(x.a), pg_catalog.array_agg(x.n) FROM"
							   " (SELECT u.account_id AS a, pg_catalog.sum(u.n)::pg_catalog.int8 AS n"
							   " FROM " LIFECYCLE_SCHEMA ".usage_counts u WHERE u.resource_type OPERATOR(pg_catalog.=) $1"
							   " AND ($4 IS NULL OR u.account_id OPERATOR(pg_catalog.=) $4) GROUP BY 1) x",
							   5, types, values, nulls, false, 1);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "reading the counts failed: %s", SPI_result_code_string(rc));
	values[1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	values[2] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (isnull)
	{
		values[1] = PointerGetDatum(construct_empty_array(UUIDOID));
		values[2] = PointerGetDatum(construct_empty_array(INT8OID));
	}
	types[4] = UUIDARRAYOID;
	values[4] = wrong ? wrong : PointerGetDatum(construct_empty_array(UUIDOID));
	nulls[4] = ' ';
	lifecycle_become_table_owner(c->counter_relid, &save);
	uc_writing = true;
	PG_TRY();
	{
		rc = SPI_execute_with_args(psprintf("WITH m AS (UPDATE %s t SET %s = v.n FROM"
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
								   5, types, values, nulls, false, 0);
	}
	PG_FINALLY();
	{
		uc_writing = saved;
	}
	PG_END_TRY();
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "updating the counter columns failed: %s", SPI_result_code_string(rc));
	corrected = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	return (int) corrected;
}

/* TRUNCATE of a source table: recount its resources. */
static void
uc_truncated(Oid relid)
{
	List	   *defs = uc_defs(NULL);
	ListCell   *lc;
	Oid			root = get_rel_relispartition(relid) ?
		llast_oid(get_partition_ancestors(relid)) : relid;

	foreach(lc, defs)
	{
		UcDef	   *d = lfirst(lc);

		if (d->source_relid == root)
			(void) uc_sync_one(d, NULL, true);
	}
	memset(&uc_last, 0, sizeof(uc_last));	/* counts changed behind the mirror's back */
}

static Datum
uc_sync(FunctionCallInfo fcinfo, bool recount)
{
	pg_uuid_t  *account = PG_ARGISNULL(0) ? NULL : PG_GETARG_UUID_P(0);
	List	   *defs;
	ListCell   *lc;
	int			corrected = 0;

	List	   *mine = NIL;
	int			nest;

	uc_check_snapshot(recount ? "sync_usage_counters" : "refresh_usage_counters");
	SPI_connect();
	nest = lifecycle_pin_search_path();
	defs = uc_defs(NULL);
	/* the resources whose counter tables the caller administers */
	foreach(lc, defs)
		if (uc_is_admin(((UcDef *) lfirst(lc))->counter_relid))
			mine = lappend(mine, lfirst(lc));
	if (defs != NIL && mine == NIL)
		uc_check_admin(((UcDef *) linitial(defs))->counter_relid,
					   recount ? "sync_usage_counters" : "refresh_usage_counters");
	foreach(lc, mine)
		corrected += uc_sync_one(lfirst(lc), account, recount);
	memset(&uc_last, 0, sizeof(uc_last));	/* counts changed behind the mirror's back */
	lifecycle_unpin_search_path(nest);
	SPI_finish();
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
	static SPIPlanPtr plan = NULL;
	Oid			types[4] = {UUIDOID, TEXTOID, INT4OID, UUIDOID};
	Datum		values[4];
	char		nulls[4] = "    ";
	pg_uuid_t  *actor = palloc(sizeof(pg_uuid_t));
	LifecycleUserSave save;
	int			rc;

	values[0] = UUIDPGetDatum(account);
	values[1] = CStringGetTextDatum(resource);
	values[2] = Int32GetDatum(quantity);
	values[3] = UUIDPGetDatum(actor);
	if (!lifecycle_current_actor(actor))
		nulls[3] = 'n';
	lifecycle_become_owner(&save);
	rc = SPI_execute_plan(uc_keep(&plan,
								  "INSERT INTO " LIFECYCLE_SCHEMA ".usage_events (account_id, resource_type, quantity, actor_id)"
								  " VALUES ($1, $2, $3, $4)", 4, types),
						  values, nulls, false, 0);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "writing lifecycle.usage_events failed: %s", SPI_result_code_string(rc));
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
	int			nest;

	uc_null_args(fcinfo, 3, up ? "lifecycle.increment_usage_counter(account_id, 'ai_requests', 1)" :
				 "lifecycle.decrement_usage_counter(account_id, 'ai_requests', 1)");
	account = PG_GETARG_UUID_P(0);
	resource = text_to_cstring(PG_GETARG_TEXT_PP(1));
	amount = uc_amount_arg(fcinfo);
	SPI_connect();
	nest = lifecycle_pin_search_path();
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
	if (!uc_caller_sees(c, account, true))
		uc_account_not_found(c, account);
	blocked = uc_apply(c, account, up ? amount : -(int64) amount, !up, &lim);
	if (blocked >= 0)
	{
		lifecycle_unpin_search_path(nest);
		SPI_finish();
		PG_RETURN_BOOL(false);
	}
	uc_ledger(account, resource, up ? amount : -amount);
	uc_mirror_soon(c, account, up ? amount : -(int64) amount);
	lifecycle_unpin_search_path(nest);
	SPI_finish();
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
	LifecycleUserSave save;
	bool		isnull;
	int			rc;
	int			nest;
	int64		nonzero;

	uc_null_args(fcinfo, 1, "lifecycle.reset_usage_counter('ai_requests')");
	resource = text_to_cstring(PG_GETARG_TEXT_PP(0));
	SPI_connect();
	nest = lifecycle_pin_search_path();
	d = uc_def(resource);
	uc_check_metered(d, "reset_usage_counter()");
	uc_check_admin(d->counter_relid, "reset_usage_counter");
	values[0] = CStringGetTextDatum(resource);
	values[1] = account ? UUIDPGetDatum(account) : (Datum) 0;
	nulls[1] = account ? ' ' : 'n';
	values[2] = BoolGetDatum(d->limit != NULL);
	lifecycle_become_owner(&save);
	/* lock the slots first: in-flight increments finish before the reset */
	rc = SPI_execute_with_args("SELECT pg_catalog.count(*)::pg_catalog.int8 FROM (SELECT x.account_id FROM"
							   " (SELECT u.account_id, u.n FROM " LIFECYCLE_SCHEMA ".usage_counts u"
							   " WHERE u.resource_type OPERATOR(pg_catalog.=) $1"
							   " AND ($2 IS NULL OR u.account_id OPERATOR(pg_catalog.=) $2)"
							   " ORDER BY u.account_id, u.slot FOR UPDATE) x"
							   " GROUP BY 1 HAVING pg_catalog.sum(x.n) OPERATOR(pg_catalog.<>) 0) z",
							   3, types, values, nulls, false, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "reading lifecycle.usage_counts failed: %s", SPI_result_code_string(rc));
	nonzero = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	lifecycle_spi_exec("UPDATE " LIFECYCLE_SCHEMA ".usage_counts SET n = 0,"
					   " cap = CASE WHEN $3 THEN " UC_NO_ROOM " END"
					   " WHERE resource_type OPERATOR(pg_catalog.=) $1"
					   " AND ($2 IS NULL OR account_id OPERATOR(pg_catalog.=) $2)",
					   SPI_OK_UPDATE, 3, types, values, nulls);
	lifecycle_restore_user(&save);
	(void) uc_sync_one(d, account, false);
	memset(&uc_last, 0, sizeof(uc_last));
	lifecycle_unpin_search_path(nest);
	SPI_finish();
	PG_RETURN_INT32((int32) nonzero);
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
	int			nest;

	uc_null_args(fcinfo, 1, "lifecycle.calculate_account_usage(account_id)");
	account = PG_GETARG_UUID_P(0);
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	nest = lifecycle_pin_search_path();
	defs = uc_defs(NULL);
	foreach(lc, defs)
	{
		UcDef	   *d = lfirst(lc);
		UcCounter  *c = uc_counter_of(d);
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		int64		lim;

		last = c;
		if (!uc_caller_sees(c, account, false))
			continue;
		seen = true;
		values[0] = CStringGetTextDatum(d->resource);
		values[1] = Int64GetDatum(uc_total(d->resource, account));
		nulls[2] = true;
		if (OidIsValid(d->source_relid))
		{
			Relation	src = relation_open(d->source_relid, AccessShareLock);
			AttrNumber	deleted_at = get_attnum(d->source_relid, "deleted_at");
			const char *col = quote_identifier(d->source_column);
			Oid			types[1] = {UUIDOID};
			Datum		args[1] = {UUIDPGetDatum(account)};
			LifecycleUserSave save;
			bool		isnull;
			int			rc;

			lifecycle_become_table_owner(d->source_relid, &save);
			rc = SPI_execute_with_args(psprintf("SELECT pg_catalog.count(*)::pg_catalog.int8 FROM %s t"
												" WHERE t.%s OPERATOR(pg_catalog.=) $1%s",
												lifecycle_qualified_name(src), col,
												deleted_at > 0 ? " AND t.deleted_at IS NULL" : ""),
									   1, types, args, NULL, false, 1);
			lifecycle_restore_user(&save);
			relation_close(src, AccessShareLock);
			if (rc != SPI_OK_SELECT || SPI_processed != 1)
				elog(ERROR, "counting the rows failed: %s", SPI_result_code_string(rc));
			values[2] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			nulls[2] = false;
		}
		lim = uc_read_limit(c, account);
		values[3] = Int64GetDatum(lim);
		nulls[3] = lim < 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	if (!seen && last != NULL)
		uc_account_not_found(last, account);
	lifecycle_unpin_search_path(nest);
	SPI_finish();
	return (Datum) 0;
}

/* ---------- track_usage / untrack_usage ---------- */

static bool
uc_is_integer(Oid type)
{
	type = getBaseType(type);
	return type == INT2OID || type == INT4OID || type == INT8OID;
}

/* A column of rel that must exist; its type. */
static Oid
uc_column_type(Relation rel, const char *column, const char *argname)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), column);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist", column,
						RelationGetRelationName(rel)),
				 errdetail("%s names a column of %s.", argname, RelationGetRelationName(rel))));
	return get_atttype(RelationGetRelid(rel), attnum);
}

/* Install (or drop) the guard of a counter table, as the configuration says. */
static void
uc_install_guard(Oid counter_relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(counter_relid)};
	LifecycleUserSave save;
	char	   *qual;
	int			rc;

	lifecycle_become_owner(&save);
	rc = SPI_execute_with_args("SELECT 1 FROM " LIFECYCLE_SCHEMA ".usage_resources"
							   " WHERE counter_table OPERATOR(pg_catalog.=) $1",
							   1, types, values, NULL, false, 1);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading lifecycle.usage_resources failed: %s", SPI_result_code_string(rc));
	qual = quote_qualified_identifier(get_namespace_name(get_rel_namespace(counter_relid)),
									  get_rel_name(counter_relid));
	if (SPI_processed == 0)
	{
		if (OidIsValid(get_trigger_oid(counter_relid, UC_GUARD, true)))
			lifecycle_spi_exec(psprintf("DROP TRIGGER " UC_GUARD " ON %s", qual),
							   SPI_OK_UTILITY, 0, NULL, NULL, NULL);
	}
	else
		lifecycle_spi_exec(psprintf("CREATE OR REPLACE TRIGGER " UC_GUARD " AFTER INSERT OR UPDATE ON %s"
									" FOR EACH ROW EXECUTE FUNCTION " LIFECYCLE_SCHEMA ".usage_guard()",
									qual),
						   SPI_OK_UTILITY, 0, NULL, NULL, NULL);
	/* the configuration changed: guards read it again */
	CacheInvalidateRelcacheByRelid(counter_relid);
}

/* Install or drop the triggers of a source table (and its partitions). */
static void
uc_install_source_triggers(Oid source_relid)
{
	static const char *const events[4][2] = {
		{UC_TRIGGER_INS, "INSERT ON %s REFERENCING NEW TABLE AS lifecycle_new FOR EACH STATEMENT"},
		{UC_TRIGGER_UPD, "UPDATE ON %s REFERENCING OLD TABLE AS lifecycle_old NEW TABLE AS lifecycle_new FOR EACH STATEMENT"},
		{UC_TRIGGER_DEL, "DELETE ON %s REFERENCING OLD TABLE AS lifecycle_old FOR EACH STATEMENT"},
		{UC_TRIGGER_TRUNC, "TRUNCATE ON %s FOR EACH STATEMENT"}};
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(source_relid)};
	LifecycleUserSave save;
	bool		used;
	List	   *tables = find_all_inheritors(source_relid, NoLock, NULL);
	ListCell   *lc;
	int			rc;

	lifecycle_become_owner(&save);
	rc = SPI_execute_with_args("SELECT 1 FROM " LIFECYCLE_SCHEMA ".usage_resources"
							   " WHERE source_table OPERATOR(pg_catalog.=) $1",
							   1, types, values, NULL, false, 1);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading lifecycle.usage_resources failed: %s", SPI_result_code_string(rc));
	used = SPI_processed > 0;
	foreach(lc, tables)
	{
		Oid			relid = lfirst_oid(lc);
		char	   *qual = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
													  get_rel_name(relid));
		int			i;

		for (i = 0; i < 4; i++)
		{
			if (used)
				lifecycle_spi_exec(psprintf("CREATE OR REPLACE TRIGGER %s AFTER %s EXECUTE FUNCTION "
											LIFECYCLE_SCHEMA ".usage_trigger()",
											events[i][0], psprintf(events[i][1], qual)),
								   SPI_OK_UTILITY, 0, NULL, NULL, NULL);
			else if (OidIsValid(get_trigger_oid(relid, events[i][0], true)))
				lifecycle_spi_exec(psprintf("DROP TRIGGER %s ON %s", events[i][0], qual),
								   SPI_OK_UTILITY, 0, NULL, NULL, NULL);
		}
		CacheInvalidateRelcacheByRelid(relid);
	}
}

PG_FUNCTION_INFO_V1(track_usage);
Datum
track_usage(PG_FUNCTION_ARGS)
{
	char	   *resource;
	Oid			counter_relid;
	char	   *column;
	Oid			source_relid = PG_ARGISNULL(3) ? InvalidOid : PG_GETARG_OID(3);
	char	   *source_column = PG_ARGISNULL(4) ? NULL : NameStr(*PG_GETARG_NAME(4));
	char	   *limit = PG_ARGISNULL(5) ? NULL : NameStr(*PG_GETARG_NAME(5));
	Relation	counter,
				source = NULL;
	AttrNumber	key;
	Oid			keytype;
	Oid			lifecycle_nsp = get_namespace_oid(LIFECYCLE_SCHEMA, false);
	List	   *existing;
	Oid			types[6] = {TEXTOID, OIDOID, NAMEOID, OIDOID, NAMEOID, NAMEOID};
	Datum		values[6];
	char		nulls[6] = "      ";
	LifecycleUserSave save;
	int			nest;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("resource_type, counter_table and counter_column must not be NULL"),
				 errhint("For example: lifecycle.track_usage('projects', 'public.accounts', 'current_project_count', 'public.projects', 'account_id', 'max_projects').")));
	resource = text_to_cstring(PG_GETARG_TEXT_PP(0));
	counter_relid = PG_GETARG_OID(1);
	column = NameStr(*PG_GETARG_NAME(2));
	if (resource[0] == '\0' || strlen(resource) > 200)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("resource_type must be 1 to 200 characters long"),
				 errhint("Name the resource as the application does, e.g. 'projects' or 'ai_requests'.")));
	if ((source_relid == InvalidOid) != (source_column == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source_table and source_column go together"),
				 errhint("Give both to count a table's rows, or neither (source_table => NULL) for metered usage.")));

	uc_check_snapshot("track_usage");
	counter = lifecycle_open_owned_table(counter_relid, ShareRowExclusiveLock, "track_usage");
	if (RelationGetNamespace(counter) == lifecycle_nsp)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot keep counters in \"%s\", a table of pg_lifecycle itself",
						RelationGetRelationName(counter))));
	key = uc_key_attnum(counter);
	if (key == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("counter table \"%s\" needs a one-column primary key",
						RelationGetRelationName(counter)),
				 errdetail(OidIsValid(RelationGetPrimaryKeyIndex(counter)) ?
						   "Its primary key has more than one column." : "It has no primary key."),
				 errhint("Counters are kept per account: use the accounts table, keyed by its uuid id.")));
	keytype = getBaseType(TupleDescAttr(RelationGetDescr(counter), key - 1)->atttypid);
	if (keytype != UUIDOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the primary key of counter table \"%s\" is of type %s, not uuid",
						RelationGetRelationName(counter), format_type_be(keytype)),
				 errhint("Accounts are identified by uuid, as the usage functions take account_id uuid.")));
	if (!uc_is_integer(uc_column_type(counter, column, "counter_column")))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("counter column \"%s\" must be of an integer type, not %s", column,
						format_type_be(uc_column_type(counter, column, "counter_column"))),
				 errhint("Use integer or bigint.")));
	if (get_attnum(counter_relid, column) == key)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("counter column \"%s\" is the key of \"%s\"", column,
						RelationGetRelationName(counter))));
	if (limit && !uc_is_integer(uc_column_type(counter, limit, "limit_column")))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("limit column \"%s\" must be of an integer type, not %s", limit,
						format_type_be(uc_column_type(counter, limit, "limit_column"))),
				 errhint("Use integer or bigint; NULL means unlimited.")));
	if (limit && strcmp(limit, column) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the counter and the limit cannot be the same column \"%s\"", column)));
	if (OidIsValid(source_relid))
	{
		Oid			srctype;

		source = lifecycle_open_owned_table(source_relid, ShareRowExclusiveLock, "track_usage");
		if (RelationGetForm(source)->relispartition)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s\" is a partition", RelationGetRelationName(source)),
					 errhint("Track the partitioned table; its partitions are counted with it.")));
		if (RelationGetNamespace(source) == lifecycle_nsp)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot count the rows of \"%s\", a table of pg_lifecycle itself",
							RelationGetRelationName(source))));
		if (RelationGetForm(source)->relkind != RELKIND_PARTITIONED_TABLE &&
			has_subclass(source_relid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("\"%s\" has inheritance children", RelationGetRelationName(source)),
					 errdetail("Rows written straight into a child table would not be counted."),
					 errhint("Use declarative partitioning, or count each table as its own resource.")));
		srctype = getBaseType(uc_column_type(source, source_column, "source_column"));
		if (srctype != keytype)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("source column \"%s\" is of type %s, but the key of \"%s\" is %s",
							source_column, format_type_be(srctype),
							RelationGetRelationName(counter), format_type_be(keytype)),
					 errhint("The source column must hold the account's key.")));
	}

	SPI_connect();
	existing = uc_defs(resource);
	if (existing != NIL)
	{
		UcDef	   *d = linitial(existing);

		if (d->counter_relid != counter_relid || strcmp(d->column, column) != 0 ||
			d->source_relid != source_relid ||
			(source_column == NULL) != (d->source_column == NULL) ||
			(source_column && strcmp(source_column, d->source_column) != 0) ||
			(limit == NULL) != (d->limit == NULL) || (limit && strcmp(limit, d->limit) != 0))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("usage resource \"%s\" is already tracked with a different definition", resource),
					 errdetail("It counts into %s.%s%s%s.", get_rel_name(d->counter_relid), d->column,
							   d->source_column ? " the rows of " : " (metered)",
							   d->source_column ? get_rel_name(d->source_relid) : ""),
					 errhint("Run lifecycle.untrack_usage('%s') first to change it.", resource)));
	}
	{
		/* one counter column, one resource */
		List	   *all = uc_defs(NULL);
		ListCell   *lc;

		foreach(lc, all)
		{
			UcDef	   *d = lfirst(lc);

			if (d->counter_relid == counter_relid && strcmp(d->column, column) == 0 &&
				strcmp(d->resource, resource) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_OBJECT),
						 errmsg("column \"%s\" of \"%s\" already counts usage resource \"%s\"",
								column, RelationGetRelationName(counter), d->resource),
						 errhint("Give each resource its own counter column.")));
		}
	}
	values[0] = CStringGetTextDatum(resource);
	values[1] = ObjectIdGetDatum(counter_relid);
	values[2] = PointerGetDatum(PG_GETARG_NAME(2));
	values[3] = ObjectIdGetDatum(source_relid);
	nulls[3] = source_column ? ' ' : 'n';
	values[4] = source_column ? PointerGetDatum(PG_GETARG_NAME(4)) : (Datum) 0;
	nulls[4] = source_column ? ' ' : 'n';
	values[5] = limit ? PointerGetDatum(PG_GETARG_NAME(5)) : (Datum) 0;
	nulls[5] = limit ? ' ' : 'n';
	nest = lifecycle_pin_search_path();
	lifecycle_become_owner(&save);
	lifecycle_spi_exec("INSERT INTO " LIFECYCLE_SCHEMA ".usage_resources (resource_type, counter_table,"
					   " counter_column, source_table, source_column, limit_column)"
					   " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (resource_type) DO NOTHING",
					   SPI_OK_INSERT, 6, types, values, nulls);
	lifecycle_restore_user(&save);
	uc_install_guard(counter_relid);
	if (OidIsValid(source_relid))
		uc_install_source_triggers(source_relid);
	else if (existing == NIL)
	{
		/* metered: the column's present values are the usage so far */
		Datum		arrays[2];
		bool		isnull;
		int			rc;

		lifecycle_become_table_owner(counter_relid, &save);
		rc = SPI_execute(psprintf("SELECT pg_catalog.array_agg(t.%s), pg_catalog.array_agg(t.%s::pg_catalog.int8)"
								  " FROM %s t WHERE t.%s IS NOT NULL AND t.%s OPERATOR(pg_catalog.<>) 0",
								  quote_identifier(get_attname(counter_relid, key, false)),
								  quote_identifier(column), lifecycle_qualified_name(counter),
								  quote_identifier(column), quote_identifier(column)),
						 false, 1);
		lifecycle_restore_user(&save);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "reading the counter column failed: %s", SPI_result_code_string(rc));
		arrays[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		arrays[1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		if (!isnull)
		{
			Oid			t4[4] = {TEXTOID, UUIDARRAYOID, INT8ARRAYOID, BOOLOID};
			Datum		v4[4] = {values[0], arrays[0], arrays[1], BoolGetDatum(limit != NULL)};

			/* with a limit, no room yet: the first increase checks it */
			lifecycle_become_owner(&save);
			lifecycle_spi_exec("INSERT INTO " LIFECYCLE_SCHEMA ".usage_counts (resource_type, account_id, slot, n, cap)"
							   " SELECT $1, x.a, 0, x.n, CASE WHEN $4 THEN " UC_NO_ROOM " END"
							   " FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS x(a, n)",
							   SPI_OK_INSERT, 4, t4, v4, NULL);
			lifecycle_restore_user(&save);
		}
	}
	/* backfill: counts from the data, and the columns from the counts */
	(void) uc_sync_one(linitial(uc_defs(resource)), NULL, true);
	lifecycle_unpin_search_path(nest);
	SPI_finish();
	if (source)
		relation_close(source, NoLock);
	relation_close(counter, NoLock);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(untrack_usage);
Datum
untrack_usage(PG_FUNCTION_ARGS)
{
	char	   *resource;
	UcDef	   *d;
	Relation	counter;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	LifecycleUserSave save;
	int			nest;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("resource_type must not be NULL")));
	resource = text_to_cstring(PG_GETARG_TEXT_PP(0));
	SPI_connect();
	d = uc_def(resource);
	counter = lifecycle_open_owned_table(d->counter_relid, ShareRowExclusiveLock, "untrack_usage");
	if (OidIsValid(d->source_relid))
		relation_close(lifecycle_open_owned_table(d->source_relid, ShareRowExclusiveLock,
												  "untrack_usage"), NoLock);
	values[0] = CStringGetTextDatum(resource);
	nest = lifecycle_pin_search_path();
	lifecycle_become_owner(&save);
	lifecycle_spi_exec("DELETE FROM " LIFECYCLE_SCHEMA ".usage_resources WHERE resource_type OPERATOR(pg_catalog.=) $1",
					   SPI_OK_DELETE, 1, types, values, NULL);
	lifecycle_spi_exec("DELETE FROM " LIFECYCLE_SCHEMA ".usage_counts WHERE resource_type OPERATOR(pg_catalog.=) $1",
					   SPI_OK_DELETE, 1, types, values, NULL);
	lifecycle_restore_user(&save);
	uc_install_guard(d->counter_relid);
	if (OidIsValid(d->source_relid))
		uc_install_source_triggers(d->source_relid);
	lifecycle_unpin_search_path(nest);
	SPI_finish();
	relation_close(counter, NoLock);
	PG_RETURN_VOID();
}
