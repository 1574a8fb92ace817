/*-------------------------------------------------------------------------
 *
 * retention_run.c
 *	  Running retention: CALL run_retention() and cleanup_retention_data().
 *
 *	  A run takes the database's retention lock (an advisory lock; a
 *	  second run finds it taken, records "skipped" and returns), then works
 *	  through the enabled policies, those it reached least recently first.
 *	  Each policy goes in batches of batch_size rows, each batch its own
 *	  transaction under a short lock_timeout:
 *	  - pick the oldest expired rows, as the table's owner, skipping rows
 *	    other transactions hold locked (they go next time) and rows of
 *	    owners under a legal hold, and lock them;
 *	  - remove them with one statement per partition: DELETE, or for
 *	    archive a DELETE ... RETURNING feeding an INSERT into the archive,
 *	    so that a row is always in exactly one of the two;
 *	  - a row that children still reference (ON DELETE RESTRICT or NO
 *	    ACTION) makes the statement fail: the batch is halved until the
 *	    rows that cannot go are found; they are skipped and counted;
 *	  - add the batch's counts to its lifecycle.retention_runs row, commit.
 *	  A policy that fails (a lock timeout, a changed table) is recorded and
 *	  the others still run.  At max_runtime the run stops between batches
 *	  with status "partial"; the next run goes on.  At the end: runs older
 *	  than 90 days and the pg_cron job's own run details older than 14 days
 *	  are removed, usage counter columns are brought up to date, and a
 *	  NOTIFY on channel lifecycle_retention says how it went.
 *
 *	  Rows are only ever changed as the owner of their table (the shared
 *	  run-as path); the run's caller lends them no rights.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/relation.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/extension.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "storage/itemptr.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "utils/wait_event.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "retention.h"

#define RT_LOCK_KEY1		0x4c43	/* "LC" */
#define RT_LOCK_KEY2		0x5254	/* "RT" */
#define RT_LOCK_TIMEOUT		"1s"
#define RT_FAST_LOCK_TIMEOUT "20ms"	/* the one-statement batch: then the careful way */
#define RT_MAX_SKIPPED		100000
#define RT_EQ				"OPERATOR(pg_catalog.=)"

/* A run in progress, in memory that lives across its commits. */
typedef struct RtRun
{
	MemoryContext cxt;
	int64		run_id;
	TimestampTz started;		/* rows expire relative to this */
	TimestampTz deadline;		/* 0: none */
	bool		commits;		/* a procedure: commit after each batch */
	bool		out_of_time;
	int			batches;		/* batches done by the whole run */
	StringInfoData removed;		/* jsonb text: table -> rows removed */
	int			nremoved;
	int			failed;
	int			partial;
	int64		deleted;
	int64		archived;
	int64		skipped;
} RtRun;

/* One policy's share of a run. */
typedef struct RtWork
{
	RtPolicy   *p;
	char	   *qualname;
	char	   *archive;		/* archive: its qualified name */
	char	   *columns;		/* archive: "a, b, c" */
	char	   *returning;		/* archive: "c.a, c.b, c.c" */
	Datum		holds;			/* text[] of held owner values */
	int			nskipped;		/* rows children still reference */
	Oid		   *skip_oids;
	ItemPointerData *skip_tids;
	int64		deleted;
	int64		archived;
	int64		bytes;
	int			batches;
	int			partitions;		/* whole partitions dropped */
	Oid			ts_type;		/* the timestamp column's type */
	Datum		from;			/* the latest timestamp of the last batch */
	bool		from_set;
	bool		careful_next;	/* rows were left in the last range */
	const char *status;
	char	   *error;
} RtWork;

/* ---------- the SQL of a policy ---------- */

/* The owner column's type. */
static Oid
rt_owner_type(const RtPolicy *p, Relation rel)
{
	AttrNumber	a = lc_attnum(rel, p->owner_column);

	if (a == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table \"%s\" does not exist", p->owner_column,
						RelationGetRelationName(rel)),
				 errdetail("It is the retention policy's owner_column.")));
	return TupleDescAttr(RelationGetDescr(rel), a - 1)->atttypid;
}

/* The type's own equality (its default btree opclass's), qualified. */
static const char *
rt_eq_sql(Oid type)
{
	TypeCacheEntry *tc = lookup_type_cache(type, TYPECACHE_EQ_OPR);

	if (!OidIsValid(tc->eq_opr))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("type %s has no equality operator", format_type_be(type)),
				 errdetail("Legal holds and preferences compare owner values.")));
	return lc_operator_sql(tc->eq_opr);
}

/*
 * Would counting as the caller run code the table's owner chose?  Only
 * built-in types and operators for the owner column (its input function,
 * its equality) are evaluated as the caller.
 */
static bool
rt_owner_code_free(const RtPolicy *p, Relation rel)
{
	Oid			type;
	TypeCacheEntry *tc;

	if (p->owner_column == NULL)
		return true;
	type = rt_owner_type(p, rel);
	tc = lookup_type_cache(type, TYPECACHE_EQ_OPR);
	return type < FirstNormalObjectId && OidIsValid(tc->eq_opr) && tc->eq_opr < FirstNormalObjectId;
}

/*
 * FROM and WHERE of the rows of p's table (alias c) that have expired: $1
 * the run's start, $2 keep, $3 min_keep, $4 the held owner values (text[]).
 */
char *
rt_where_sql(const RtPolicy *p, Relation rel)
{
	StringInfoData buf;
	const char *ts = quote_identifier(p->action == RT_PURGE ? LC_DELETED_AT : p->ts_column);
	Oid			otype = p->owner_column ? rt_owner_type(p, rel) : InvalidOid;
	const char *eq = OidIsValid(otype) ? rt_eq_sql(otype) : NULL;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s c", lc_qualified_name(rel));
	if (OidIsValid(p->pref_relid))
		appendStringInfo(&buf, " LEFT JOIN %s p ON p.%s %s c.%s",
						 lc_qualified_name_oid(p->pref_relid), quote_identifier(p->pref_key), eq,
						 quote_identifier(p->owner_column));
	if (OidIsValid(p->pref_relid))
		/* the first bound is the one an index on the column can use */
		appendStringInfo(&buf, " WHERE c.%s OPERATOR(pg_catalog.<) ($1 OPERATOR(pg_catalog.-) LEAST($2, $3))"
						 " AND c.%s OPERATOR(pg_catalog.<) ($1 OPERATOR(pg_catalog.-) CASE WHEN p.%s IS NULL THEN $2"
						 " ELSE GREATEST(pg_catalog.make_interval(days => p.%s::pg_catalog.int4), $3) END)",
						 ts, ts, quote_identifier(p->pref_column), quote_identifier(p->pref_column));
	else
		appendStringInfo(&buf, " WHERE c.%s OPERATOR(pg_catalog.<) ($1 OPERATOR(pg_catalog.-) $2)", ts);
	/* held owners, compared in the column's own type (42 and 42.0 are one numeric) */
	if (p->owner_column)
		appendStringInfo(&buf, " AND (c.%s IS NULL OR NOT c.%s %s ANY ($4::pg_catalog.text[]::%s[]))",
						 quote_identifier(p->owner_column), quote_identifier(p->owner_column), eq,
						 format_type_extended(otype, -1, FORMAT_TYPE_FORCE_QUALIFY));
	return buf.data;
}

/* The held owner values of relid (active holds), as a text[] datum. */
static Datum
rt_holds(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	bool		isnull;
	Datum		d;

	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "SELECT pg_catalog.array_agg(h.owner_value) FROM " LIFECYCLE_SCHEMA ".retention_holds h"
					  " WHERE h.relid OPERATOR(pg_catalog.=) $1"
					  " AND (h.held_until IS NULL OR h.held_until OPERATOR(pg_catalog.>) pg_catalog.now())",
					  1, types, values, NULL, SPI_OK_SELECT, 1);
	d = lc_result(0, 1, &isnull);
	if (isnull)
		return PointerGetDatum(construct_empty_array(TEXTOID));
	return PointerGetDatum(DatumGetArrayTypePCopy(d));
}

/* Are there active holds in w->holds (rt_holds)? */
static bool
rt_has_holds(RtWork *w)
{
	ArrayType  *a = DatumGetArrayTypeP(w->holds);

	return ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a)) > 0;
}

/* ---------- the run's own records ---------- */

static void
rt_record_start(RtRun *run, RtWork *w, const char *status)
{
	Oid			types[5] = {INT8OID, OIDOID, TEXTOID, TIMESTAMPTZOID, TEXTOID};
	Datum		values[5] = {Int64GetDatum(run->run_id), ObjectIdGetDatum(w->p->relid),
		CStringGetTextDatum(rt_action_label(w->p->action)), TimestampTzGetDatum(GetCurrentTimestamp()),
	CStringGetTextDatum(status)};

	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "INSERT INTO " LIFECYCLE_SCHEMA ".retention_runs (run_id, relid, action, started_at, finished_at, status)"
					  " VALUES ($1, $2, $3::" LIFECYCLE_SCHEMA ".retention_action, $4,"
					  " CASE WHEN $5 OPERATOR(pg_catalog.=) 'running' THEN NULL ELSE $4 END,"
					  " $5::" LIFECYCLE_SCHEMA ".retention_status)",
					  5, types, values, NULL, SPI_OK_INSERT, 0);
}

/* Add a batch's counts; with status, the policy's work is over. */
static void
rt_record(RtRun *run, RtWork *w, int64 deleted, int64 archived, int64 skipped, int64 bytes,
		  const char *status)
{
	Oid			types[9] = {INT8OID, OIDOID, INT8OID, INT8OID, INT8OID, INT8OID, INT4OID, TEXTOID, TEXTOID};
	Datum		values[9] = {Int64GetDatum(run->run_id), ObjectIdGetDatum(w->p->relid),
		Int64GetDatum(deleted), Int64GetDatum(archived), Int64GetDatum(skipped),
		Int64GetDatum(bytes), Int32GetDatum(status ? 0 : 1),
		status ? CStringGetTextDatum(status) : (Datum) 0,
	w->error ? CStringGetTextDatum(w->error) : (Datum) 0};
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', status ? ' ' : 'n', w->error ? ' ' : 'n'};

	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "UPDATE " LIFECYCLE_SCHEMA ".retention_runs r SET"
					  " rows_deleted = r.rows_deleted OPERATOR(pg_catalog.+) $3,"
					  " rows_archived = r.rows_archived OPERATOR(pg_catalog.+) $4,"
					  " rows_skipped = r.rows_skipped OPERATOR(pg_catalog.+) $5,"
					  " bytes_archived = r.bytes_archived OPERATOR(pg_catalog.+) $6,"
					  " batches = r.batches OPERATOR(pg_catalog.+) $7,"
					  " status = COALESCE($8::" LIFECYCLE_SCHEMA ".retention_status, r.status),"
					  " finished_at = CASE WHEN $8 IS NULL THEN NULL ELSE pg_catalog.clock_timestamp() END,"
					  " error = $9"
					  " WHERE r.run_id OPERATOR(pg_catalog.=) $1 AND r.relid OPERATOR(pg_catalog.=) $2",
					  9, types, values, nulls, SPI_OK_UPDATE, 0);
}

/* ---------- subtransactions ---------- */

/* The error of the failed subtransaction, copied; the subtransaction rolled back. */
static ErrorData *
rt_subxact_failed(MemoryContext cxt, ResourceOwner owner)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return edata;
}

static void
rt_subxact_done(MemoryContext cxt, ResourceOwner owner)
{
	ReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
}

/* ---------- one batch ---------- */

/* What the other features see of the statement that removes the batch's rows. */
static void
rt_batch_marker(RtRun *run, RtWork *w, LcRetentionBatch *batch)
{
	batch->relid = w->p->relid;
	batch->run_id = run->run_id;
	batch->action = rt_action_label(w->p->action);
	batch->archive = w->archive;
}

/* A batch done: its counts, in memory and in its retention_runs row. */
static void
rt_count_batch(RtRun *run, RtWork *w, int64 removed, int64 skipped, int64 bytes)
{
	w->batches++;
	run->batches++;
	if (w->p->action == RT_ARCHIVE)
	{
		w->archived += removed;
		w->bytes += bytes;
		rt_record(run, w, 0, removed, skipped, bytes, NULL);
	}
	else
	{
		w->deleted += removed;
		rt_record(run, w, removed, 0, skipped, 0, NULL);
	}
}

/*
 * Errors of a one-statement batch that mean "do it the careful way": a
 * lock met, a row that children still reference, a row changed under it.
 */
static bool
rt_careful_instead(ErrorData *edata)
{
	return edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
		edata->sqlerrcode == ERRCODE_FOREIGN_KEY_VIOLATION ||
		edata->sqlerrcode == ERRCODE_RESTRICT_VIOLATION ||
		edata->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE;
}


/*
 * Remove the rows at tids[0..n) of partition (or table) part; rows that
 * children still reference are found by halving and skipped.
 */
static int64
rt_remove(RtRun *run, RtWork *w, Oid part, ItemPointerData *tids, int n, int64 *bytes)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	Datum	   *elems = palloc(sizeof(Datum) * n);
	Oid			types[3] = {TIDARRAYOID, INT8OID, TIMESTAMPTZOID};
	Datum		values[3];
	int64		done = 0;
	int			i;
	LcRetentionBatch batch;

	for (i = 0; i < n; i++)
		elems[i] = PointerGetDatum(&tids[i]);
	values[0] = PointerGetDatum(construct_array(elems, n, TIDOID, sizeof(ItemPointerData), false,
												TYPALIGN_SHORT));
	values[1] = Int64GetDatum(run->run_id);
	values[2] = TimestampTzGetDatum(GetCurrentTimestamp());
	rt_batch_marker(run, w, &batch);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		const char *target = lc_qualified_name_oid(part);

		lc_retention_batch = &batch;

		if (w->p->action == RT_ARCHIVE)
		{
			bool		isnull;

			(void) lc_sql_run(LC_TABLE_OWNER, part,
							  psprintf("WITH d AS (DELETE FROM ONLY %s c WHERE c.ctid " RT_EQ " ANY ($1) RETURNING %s),"
									   " i AS (INSERT INTO %s AS a (%s, " RT_ARCHIVED_AT ", " RT_RUN_ID ")"
									   " SELECT %s, $3, $2 FROM d RETURNING pg_catalog.pg_column_size(a.*) AS b)"
									   " SELECT pg_catalog.count(*), COALESCE(pg_catalog.sum(i.b), 0)::pg_catalog.int8 FROM i",
									   target, w->returning, w->archive, w->columns, w->columns),
							  3, types, values, NULL, SPI_OK_SELECT, 0);
			done = DatumGetInt64(lc_result(0, 1, &isnull));
			*bytes += DatumGetInt64(lc_result(0, 2, &isnull));
		}
		else
			done = (int64) lc_sql_run(LC_TABLE_OWNER, part,
									  psprintf("DELETE FROM ONLY %s c WHERE c.ctid " RT_EQ " ANY ($1)", target),
									  3, types, values, NULL, SPI_OK_DELETE, 0);
		lc_retention_batch = NULL;
		rt_subxact_done(cxt, owner);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		lc_retention_batch = NULL;
		edata = rt_subxact_failed(cxt, owner);

		/* NO ACTION: 23503; RESTRICT: 23503 up to 17, 23001 from 18 on */
		if (edata->sqlerrcode != ERRCODE_FOREIGN_KEY_VIOLATION &&
			edata->sqlerrcode != ERRCODE_RESTRICT_VIOLATION)
			ReThrowError(edata);
		if (n == 1)
		{
			if (w->nskipped < RT_MAX_SKIPPED)
			{
				w->skip_oids[w->nskipped] = part;
				w->skip_tids[w->nskipped] = tids[0];
			}
			w->nskipped++;
			done = 0;
		}
		else
			done = rt_remove(run, w, part, tids, n / 2, bytes) +
				rt_remove(run, w, part, tids + n / 2, n - n / 2, bytes);
	}
	PG_END_TRY();
	return done;
}

typedef struct RtCand
{
	Oid			part;
	ItemPointerData tid;
} RtCand;

static int
rt_cand_cmp(const void *a, const void *b)
{
	const RtCand *x = a,
			   *y = b;

	if (x->part != y->part)
		return x->part < y->part ? -1 : 1;
	return ItemPointerCompare(unconstify(ItemPointerData *, &x->tid),
							  unconstify(ItemPointerData *, &y->tid));
}

/* The skipped rows, as (oid[], tid[]) parameters. */
static void
rt_skipped_arrays(RtWork *w, Datum *oids, Datum *tids)
{
	int			n = Min(w->nskipped, RT_MAX_SKIPPED);
	Datum	   *o = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *t = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
	{
		o[i] = ObjectIdGetDatum(w->skip_oids[i]);
		t[i] = PointerGetDatum(&w->skip_tids[i]);
	}
	*oids = PointerGetDatum(construct_array(o, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
	*tids = PointerGetDatum(construct_array(t, n, TIDOID, sizeof(ItemPointerData), false,
											TYPALIGN_SHORT));
}

/*
 * A batch as one statement, for an ordinary table: pick the oldest expired
 * rows and remove them (and archive them) at once, with no row locks taken
 * first (locking every row before deleting it doubles the heap writes).
 * It waits at most RT_FAST_LOCK_TIMEOUT for a row the application holds;
 * on that, on a row that children still reference, or when a row changed
 * under it, it changes nothing and says so: the caller then does the batch
 * the careful way (lock, skip locked rows, find the rows that cannot go).
 * Returns true when done, with *n the rows it picked.
 */
static bool
rt_fast_batch(RtRun *run, RtWork *w, Relation rel, Oid *types, Datum *values, int *n)
{
	RtPolicy   *p = w->p;
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	LcRetentionBatch batch;
	const char *ts = quote_identifier(p->ts_column);
	char	   *pick;
	char	   *sql;
	volatile bool done = false;
	volatile int64 picked = 0,
				removed = 0,
				bytes = 0;
	volatile Datum last = (Datum) 0;

	if (RelationGetForm(rel)->relkind != RELKIND_RELATION)
		return false;
	/* xmax: a row another transaction has locked or changed makes it the careful way */
	pick = psprintf("SELECT c.ctid AS t, c.%s AS ts, c.xmax AS x FROM %s%s"
					" AND NOT EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest($5), pg_catalog.unnest($6)) AS x(o, t)"
					" WHERE x.o " RT_EQ " c.tableoid AND x.t " RT_EQ " c.ctid)"
					" ORDER BY c.%s LIMIT $7",
					ts, rt_where_sql(p, rel),
					w->from_set ? psprintf(" AND c.%s OPERATOR(pg_catalog.>=) $8", ts) : "", ts);
	if (p->action == RT_ARCHIVE)
		sql = psprintf("WITH cand AS MATERIALIZED (%s),"
					   " d AS (DELETE FROM ONLY %s c WHERE c.ctid " RT_EQ " ANY (ARRAY(SELECT cand.t FROM cand))"
					   " AND NOT EXISTS (SELECT 1 FROM cand WHERE cand.x OPERATOR(pg_catalog.<>) '0'::pg_catalog.xid)"
					   " RETURNING %s),"
					   " i AS (INSERT INTO %s AS a (%s, " RT_ARCHIVED_AT ", " RT_RUN_ID ")"
					   " SELECT %s, $9, $10 FROM d RETURNING pg_catalog.pg_column_size(a.*) AS b)"
					   " SELECT (SELECT pg_catalog.count(*) FROM cand), (SELECT pg_catalog.count(*) FROM i),"
					   " (SELECT COALESCE(pg_catalog.sum(i.b), 0)::pg_catalog.int8 FROM i),"
					   " (SELECT pg_catalog.max(cand.ts) FROM cand)",
					   pick, w->qualname, w->returning, w->archive, w->columns, w->columns);
	else
	{
		/*
		 * Pick, then delete by position, with no RETURNING: a DELETE that
		 * returns rows reads each one again.
		 */
		bool		isnull;
		Datum		d;

		(void) lc_sql_run(LC_TABLE_OWNER, p->relid,
						  psprintf("SELECT pg_catalog.array_agg(s.t), pg_catalog.count(*), pg_catalog.max(s.ts),"
								   " pg_catalog.count(*) FILTER (WHERE s.x OPERATOR(pg_catalog.<>) '0'::pg_catalog.xid)"
								   " FROM (%s) s", pick),
						  8, types, values, NULL, SPI_OK_SELECT, 1);
		d = lc_result(0, 1, &isnull);
		*n = (int) DatumGetInt64(lc_result(0, 2, &isnull));
		if (*n == 0)
			return true;		/* nothing (left) to do is not a batch */
		if (DatumGetInt64(lc_result(0, 4, &isnull)) > 0)
			return false;
		last = lc_result(0, 3, &isnull);
		picked = *n;
		values[8] = PointerGetDatum(DatumGetArrayTypePCopy(d));
		sql = psprintf("DELETE FROM ONLY %s c WHERE c.ctid " RT_EQ " ANY ($9)", w->qualname);
	}
	if (p->action == RT_ARCHIVE)
	{
		types[8] = TIMESTAMPTZOID;
		values[8] = TimestampTzGetDatum(GetCurrentTimestamp());
	}
	else
		types[8] = TIDARRAYOID;
	types[9] = INT8OID;
	values[9] = Int64GetDatum(run->run_id);
	rt_batch_marker(run, w, &batch);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		bool		isnull;

		(void) set_config_option("lock_timeout", RT_FAST_LOCK_TIMEOUT, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
		lc_retention_batch = &batch;
		if (p->action == RT_ARCHIVE)
		{
			(void) lc_sql_run(LC_TABLE_OWNER, p->relid, sql, 10, types, values, NULL, SPI_OK_SELECT, 1);
			picked = DatumGetInt64(lc_result(0, 1, &isnull));
			removed = DatumGetInt64(lc_result(0, 2, &isnull));
			bytes = DatumGetInt64(lc_result(0, 3, &isnull));
			last = lc_result(0, 4, &isnull);
		}
		else
			removed = (int64) lc_sql_run(LC_TABLE_OWNER, p->relid, sql, 10, types, values, NULL,
										 SPI_OK_DELETE, 0);
		lc_retention_batch = NULL;
		if (removed == picked)
		{
			(void) set_config_option("lock_timeout", RT_LOCK_TIMEOUT, PGC_USERSET, PGC_S_SESSION,
									 GUC_ACTION_LOCAL, true, 0, false);
			rt_subxact_done(cxt, owner);
			done = true;
		}
		else
		{
			/* a row changed under the statement, or a trigger kept one: the careful way */
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		lc_retention_batch = NULL;
		edata = rt_subxact_failed(cxt, owner);
		if (!rt_careful_instead(edata))
			ReThrowError(edata);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	/* nothing (left) to do is not a batch */
	if (done && picked > 0)
	{
		w->from = last;
		w->from_set = true;
		rt_count_batch(run, w, removed, 0, bytes);
	}
	*n = (int) picked;
	return done;
}

/*
 * The fastest batch, for a policy that is a plain time range (an ordinary
 * table, no owner column, no rows skipped so far): the batch is the range
 * [last batch's end, the batch_size-th expired timestamp] (both included), found and
 * counted from the index, and removed by one DELETE of that range: each
 * row is read once, as by a hand-written DELETE.  Rows another transaction
 * has locked or changed (xmax set) are left in the range, not waited for:
 * when fewer rows went than the range holds, the range stays where it is
 * and the next batch takes the rest the careful way (locking, skipping
 * locked rows).  A lock it does wait for (taken after it looked) waits at
 * most RT_FAST_LOCK_TIMEOUT; that, or a row that children still reference,
 * undoes this batch and the caller does it the careful way.  Returns 1
 * when it did the batch, with *more whether rows may be left; 0 for the
 * careful way; -1 when the range would hold more than twice batch_size
 * rows (many rows with one timestamp): a batch by position then.
 */
static int
rt_range_batch(RtRun *run, RtWork *w, Oid *types, Datum *values, bool *more)
{
	RtPolicy   *p = w->p;
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	LcRetentionBatch batch;
	const char *ts = quote_identifier(p->ts_column);
	char	   *range;
	char	   *sql;
	bool		isnull;
	Datum		upper;
	bool		open_ended;
	int64		expected;
	volatile bool done = false;
	volatile int64 removed = 0,
				bytes = 0;

	range = psprintf("c.%s OPERATOR(pg_catalog.<) ($1 OPERATOR(pg_catalog.-) $2)%s%s", ts,
					 w->from_set ? psprintf(" AND c.%s OPERATOR(pg_catalog.>=) $8", ts) : "",
					 " AND ($11 OR c.%s OPERATOR(pg_catalog.<=) $9)");
	range = psprintf(range, ts);
	types[8] = w->ts_type;
	types[9] = INT8OID;
	types[10] = BOOLOID;
	values[9] = Int64GetDatum(run->run_id);
	/* where the batch ends: the batch_size-th expired timestamp (an index-only scan) */
	(void) lc_sql_run(LC_TABLE_OWNER, p->relid,
					  psprintf("SELECT c.%s FROM %s c WHERE c.%s OPERATOR(pg_catalog.<) ($1 OPERATOR(pg_catalog.-) $2)%s"
							   " ORDER BY c.%s OFFSET $7 OPERATOR(pg_catalog.-) 1 LIMIT 1",
							   ts, w->qualname, ts,
							   w->from_set ? psprintf(" AND c.%s OPERATOR(pg_catalog.>=) $8", ts) : "", ts),
					  8, types, values, NULL, SPI_OK_SELECT, 1);
	open_ended = SPI_processed == 0;
	upper = open_ended ? (Datum) 0 : lc_result(0, 1, &isnull);
	values[8] = upper;
	values[10] = BoolGetDatum(open_ended);
	(void) lc_sql_run(LC_TABLE_OWNER, p->relid,
					  psprintf("SELECT pg_catalog.count(*) FROM %s c WHERE %s", w->qualname, range),
					  11, types, values, NULL, SPI_OK_SELECT, 1);
	expected = DatumGetInt64(lc_result(0, 1, &isnull));
	if (expected == 0)
	{
		*more = false;
		return 1;				/* nothing (left) to do is not a batch */
	}
	if (expected > 2 * (int64) p->batch_size)
		return -1;
	if (p->action == RT_ARCHIVE)
		sql = psprintf("WITH d AS (DELETE FROM ONLY %s c WHERE %s AND c.xmax OPERATOR(pg_catalog.=) '0'::pg_catalog.xid"
					   " RETURNING %s),"
					   " i AS (INSERT INTO %s AS a (%s, " RT_ARCHIVED_AT ", " RT_RUN_ID ")"
					   " SELECT %s, pg_catalog.now(), $10 FROM d RETURNING pg_catalog.pg_column_size(a.*) AS b)"
					   " SELECT pg_catalog.count(*), COALESCE(pg_catalog.sum(i.b), 0)::pg_catalog.int8 FROM i",
					   w->qualname, range, w->returning, w->archive, w->columns, w->columns);
	else
		sql = psprintf("DELETE FROM ONLY %s c WHERE %s AND c.xmax OPERATOR(pg_catalog.=) '0'::pg_catalog.xid",
					   w->qualname, range);
	rt_batch_marker(run, w, &batch);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		(void) set_config_option("lock_timeout", RT_FAST_LOCK_TIMEOUT, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
		lc_retention_batch = &batch;
		if (p->action == RT_ARCHIVE)
		{
			(void) lc_sql_run(LC_TABLE_OWNER, p->relid, sql, 11, types, values, NULL, SPI_OK_SELECT, 1);
			removed = DatumGetInt64(lc_result(0, 1, &isnull));
			bytes = DatumGetInt64(lc_result(0, 2, &isnull));
		}
		else
			removed = (int64) lc_sql_run(LC_TABLE_OWNER, p->relid, sql, 11, types, values, NULL,
										 SPI_OK_DELETE, 0);
		lc_retention_batch = NULL;
		(void) set_config_option("lock_timeout", RT_LOCK_TIMEOUT, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
		rt_subxact_done(cxt, owner);
		done = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		lc_retention_batch = NULL;
		edata = rt_subxact_failed(cxt, owner);
		if (!rt_careful_instead(edata))
			ReThrowError(edata);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	if (!done)
		return 0;
	if (removed > 0)
	{
		rt_count_batch(run, w, removed, 0, bytes);
	}
	if (removed < expected)
	{
		/* rows left in the range (locked, or kept): the next batch, the careful way */
		w->careful_next = true;
		*more = true;
		return 1;
	}
	if (!open_ended)
	{
		w->from = upper;
		w->from_set = true;
	}
	*more = !open_ended;
	return 1;
}

/*
 * One batch of w's policy, in the current transaction: true when rows may
 * be left (a full batch).
 */
static bool
rt_batch(RtRun *run, RtWork *w, Relation rel)
{
	RtPolicy   *p = w->p;
	Oid			types[11] = {TIMESTAMPTZOID, INTERVALOID, INTERVALOID, TEXTARRAYOID, OIDARRAYOID,
	TIDARRAYOID, INT4OID, InvalidOid, InvalidOid, InvalidOid, InvalidOid};
	Datum		values[11];
	bool		isnull;
	Datum		d;
	Datum	   *oids,
			   *tids;
	int			n,
				i,
				from;
	RtCand	   *cand;
	int64		removed = 0,
				bytes = 0;
	int			skipped_before = w->nskipped;

	if (p->action == RT_PURGE)
	{
		Oid			ptypes[2] = {OIDOID, INT4OID};
		Datum		pvalues[2];
		double		days = ceil((double) (p->keep.month * DAYS_PER_MONTH + p->keep.day) +
								(double) p->keep.time / USECS_PER_DAY);

		pvalues[0] = ObjectIdGetDatum(p->relid);
		pvalues[1] = Int32GetDatum((int32) Max(days, 1));
		(void) lc_sql_run(LC_TABLE_OWNER, p->relid,
						  "SELECT " LIFECYCLE_SCHEMA ".cleanup_soft_deleted_records($1, $2)",
						  2, ptypes, pvalues, NULL, SPI_OK_SELECT, 1);
		removed = DatumGetInt32(lc_result(0, 1, &isnull));
		w->deleted += removed;
		w->batches++;
		run->batches++;
		rt_record(run, w, removed, 0, 0, 0, NULL);
		return false;
	}
	/* holds as they are now: one placed during the run counts from the next batch */
	if (p->owner_column)
		w->holds = rt_holds(p->relid);
	values[0] = TimestampTzGetDatum(run->started);
	values[1] = IntervalPGetDatum(&p->keep);
	values[2] = IntervalPGetDatum(&p->min_keep);
	values[3] = w->holds;
	rt_skipped_arrays(w, &values[4], &values[5]);
	values[6] = Int32GetDatum(p->batch_size);
	/*
	 * Each batch starts where the last one ended (its latest timestamp):
	 * the index entries of the rows already removed are not walked again,
	 * batch after batch.  Rows before it that were locked go next run.
	 */
	types[7] = w->ts_type;
	values[7] = w->from;
	if (w->careful_next)
		w->careful_next = false;
	else
	{
		int			how = -1;
		bool		more;

		if (RelationGetForm(rel)->relkind == RELKIND_RELATION && p->owner_column == NULL &&
			w->nskipped == 0)
			how = rt_range_batch(run, w, types, values, &more);
		if (how == 1)
			return more;
		if (how == -1 && rt_fast_batch(run, w, rel, types, values, &n))
			return n == p->batch_size;
	}
	(void) lc_sql_run(LC_TABLE_OWNER, p->relid,
					  psprintf("SELECT pg_catalog.array_agg(s.o), pg_catalog.array_agg(s.t), pg_catalog.max(s.ts) FROM"
							   " (SELECT c.tableoid AS o, c.ctid AS t, c.%s AS ts FROM %s%s"
							   " AND NOT EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest($5), pg_catalog.unnest($6)) AS x(o, t)"
							   " WHERE x.o " RT_EQ " c.tableoid AND x.t " RT_EQ " c.ctid)"
							   " ORDER BY c.%s LIMIT $7 FOR UPDATE OF c SKIP LOCKED) s",
							   quote_identifier(p->ts_column), rt_where_sql(p, rel),
							   w->from_set ? psprintf(" AND c.%s OPERATOR(pg_catalog.>=) $8",
													  quote_identifier(p->ts_column)) : "",
							   quote_identifier(p->ts_column)),
					  w->from_set ? 8 : 7, types, values, NULL, SPI_OK_SELECT, 1);
	d = lc_result(0, 1, &isnull);
	if (isnull)
		return false;
	w->from = lc_result(0, 3, &isnull);		/* a timestamp or date: by value */
	w->from_set = !isnull;
	deconstruct_array(DatumGetArrayTypeP(d), OIDOID, sizeof(Oid), true, TYPALIGN_INT,
					  &oids, NULL, &n);
	deconstruct_array(DatumGetArrayTypeP(lc_result(0, 2, &isnull)), TIDOID,
					  sizeof(ItemPointerData), false, TYPALIGN_SHORT, &tids, NULL, &n);
	cand = palloc(sizeof(RtCand) * n);
	for (i = 0; i < n; i++)
	{
		cand[i].part = DatumGetObjectId(oids[i]);
		cand[i].tid = *(ItemPointer) DatumGetPointer(tids[i]);
	}
	qsort(cand, n, sizeof(RtCand), rt_cand_cmp);
	for (from = 0; from < n;)
	{
		int			to = from;
		ItemPointerData *group;

		while (to < n && cand[to].part == cand[from].part)
			to++;
		group = palloc(sizeof(ItemPointerData) * (to - from));
		for (i = from; i < to; i++)
			group[i - from] = cand[i].tid;
		removed += rt_remove(run, w, cand[from].part, group, to - from, &bytes);
		from = to;
	}
	if (removed + (w->nskipped - skipped_before) < n)
		/* rows a trigger kept (BEFORE DELETE returning NULL) would come back every batch */
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("a trigger on table \"%s\" kept " INT64_FORMAT " of the %d rows retention deleted",
						RelationGetRelationName(rel), (int64) n - removed - (w->nskipped - skipped_before), n),
				 errdetail("A BEFORE DELETE trigger that returns NULL keeps rows in the table; retention would find them again and again."),
				 errhint("Drop or change the trigger; for soft-deleted rows use action => 'purge_soft_deleted'.")));
	rt_count_batch(run, w, removed, w->nskipped - skipped_before, bytes);
	return n == p->batch_size && w->nskipped < RT_MAX_SKIPPED;
}

/* ---------- whole partitions ---------- */

/*
 * The partitions of a range-partitioned table (partition key: the
 * policy's timestamp column) whose every row has expired: their upper
 * bound is at or before the cutoff.  Only where dropping them is what a
 * DELETE of their rows would do: action delete, no per-owner preference
 * and no hold (every owner's rows go at the same time), no foreign key
 * pointing at the table, neither audited nor counted (their triggers would
 * not see a DROP).  Read from those features' tables, as the data says.
 */
static List *
rt_expired_partitions(RtRun *run, RtWork *w, Relation rel)
{
	RtPolicy   *p = w->p;
	PartitionKey key;
	PartitionDesc pd;
	PartitionBoundInfo bi;
	Datum		cutoff;
	List	   *result = NIL;
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(p->relid)};
	int			i;

	if (RelationGetForm(rel)->relkind != RELKIND_PARTITIONED_TABLE || p->action == RT_PURGE ||
		OidIsValid(p->pref_relid) ||
		rt_has_holds(w))
		return NIL;
	key = RelationGetPartitionKey(rel);
	if (key->strategy != PARTITION_STRATEGY_RANGE || key->partnatts != 1 ||
		key->partattrs[0] != lc_attnum(rel, p->ts_column))
		return NIL;
	if (lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
				   "SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.confrelid OPERATOR(pg_catalog.=) ANY"
				   " (SELECT t.relid FROM pg_catalog.pg_partition_tree($1) t)"
				   " AND c.contype OPERATOR(pg_catalog.=) 'f'"
				   " UNION ALL SELECT 1 FROM " LIFECYCLE_SCHEMA ".audit_tables a WHERE a.relid OPERATOR(pg_catalog.=) $1"
				   " UNION ALL SELECT 1 FROM " LIFECYCLE_SCHEMA ".usage_resources u"
				   " WHERE u.source_table OPERATOR(pg_catalog.=) $1",
				   1, types, values, NULL, SPI_OK_SELECT, 1) > 0)
		return NIL;
	cutoff = DirectFunctionCall2(timestamptz_mi_interval, TimestampTzGetDatum(run->started),
								 IntervalPGetDatum(&p->keep));
	if (key->parttypid[0] == TIMESTAMPOID)
		cutoff = DirectFunctionCall1(timestamptz_timestamp, cutoff);
	else if (key->parttypid[0] == DATEOID)
		cutoff = DirectFunctionCall1(timestamptz_date, cutoff);
	pd = RelationGetPartitionDesc(rel, true);
	bi = pd->boundinfo;
	for (i = 0; bi && i < bi->ndatums; i++)
	{
		int			part = bi->indexes[i];

		/* datums[i] is the (exclusive) upper bound of partition indexes[i] */
		if (part < 0 || bi->kind[i][0] != PARTITION_RANGE_DATUM_VALUE)
			continue;
		if (DatumGetInt32(FunctionCall2Coll(&key->partsupfunc[0], key->partcollation[0],
											bi->datums[i][0], cutoff)) <= 0)
			result = lappend_oid(result, pd->oids[part]);
	}
	return result;
}

/*
 * Move a detached partition into the archive: into the archive schema, its
 * foreign keys dropped (archived rows reference nothing), the archive's two
 * columns added (fast defaults: no rewrite) and any column the archive has
 * that it lacks, then made an inheritance child of the archive table, so
 * that reading (and restore_archived()) of the archive sees its rows.  As
 * the owner of the policy's table, who owns the archive.
 */
static void
rt_archive_partition(RtRun *run, RtWork *w, Oid part, const char *name)
{
	Oid			relid = w->p->relid;
	char	   *moved = quote_qualified_identifier(w->p->archive_schema, get_rel_name(part));
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(part)};
	uint64		i,
				n;
	List	   *fks = NIL,
			   *cols = NIL;
	ListCell   *lc;

	(void) lc_sql_run(LC_TABLE_OWNER, relid, psprintf("ALTER TABLE %s DETACH PARTITION %s", w->qualname, name),
					  0, NULL, NULL, NULL, SPI_OK_UTILITY, 0);
	(void) lc_sql_run(LC_TABLE_OWNER, relid,
					  psprintf("ALTER TABLE %s SET SCHEMA %s", name, quote_identifier(w->p->archive_schema)),
					  0, NULL, NULL, NULL, SPI_OK_UTILITY, 0);
	n = lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
				   "SELECT c.conname::pg_catalog.text FROM pg_catalog.pg_constraint c"
				   " WHERE c.conrelid OPERATOR(pg_catalog.=) $1 AND c.contype OPERATOR(pg_catalog.=) 'f'",
				   1, types, values, NULL, SPI_OK_SELECT, 0);
	for (i = 0; i < n; i++)
		fks = lappend(fks, pstrdup(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));
	foreach(lc, fks)
		(void) lc_sql_run(LC_TABLE_OWNER, relid,
						  psprintf("ALTER TABLE %s DROP CONSTRAINT %s", moved, quote_identifier(lfirst(lc))),
						  0, NULL, NULL, NULL, SPI_OK_UTILITY, 0);
	(void) lc_sql_run(LC_TABLE_OWNER, relid,
					  psprintf("ALTER TABLE %s ADD COLUMN " RT_ARCHIVED_AT " pg_catalog.timestamptz NOT NULL"
							   " DEFAULT pg_catalog.now(), ADD COLUMN " RT_RUN_ID " pg_catalog.int8 DEFAULT "
							   INT64_FORMAT, moved, run->run_id),
					  0, NULL, NULL, NULL, SPI_OK_UTILITY, 0);
	/* columns the archive kept from the table's past */
	values[0] = ObjectIdGetDatum(rt_archive_relid(relid, w->p->archive_schema));
	n = lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
				   psprintf("SELECT pg_catalog.format('ADD COLUMN %%I %%s', a.attname,"
							" pg_catalog.format_type(a.atttypid, a.atttypmod))"
							" FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) $1"
							" AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped"
							" AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute b"
							" WHERE b.attrelid OPERATOR(pg_catalog.=) %u AND b.attname OPERATOR(pg_catalog.=) a.attname"
							" AND NOT b.attisdropped)", part),
				   1, types, values, NULL, SPI_OK_SELECT, 0);
	for (i = 0; i < n; i++)
		cols = lappend(cols, pstrdup(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));
	foreach(lc, cols)
		(void) lc_sql_run(LC_TABLE_OWNER, relid, psprintf("ALTER TABLE %s %s", moved, (char *) lfirst(lc)),
						  0, NULL, NULL, NULL, SPI_OK_UTILITY, 0);
	(void) lc_sql_run(LC_TABLE_OWNER, relid, psprintf("ALTER TABLE %s INHERIT %s", moved, w->archive),
					  0, NULL, NULL, NULL, SPI_OK_UTILITY, 0);
	/* the archive's privileges: its owner's alone (the partition may have had others) */
	values[0] = ObjectIdGetDatum(part);
	n = lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
				   "SELECT DISTINCT CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'"
				   " ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END"
				   " FROM pg_catalog.pg_class c, LATERAL (SELECT a.grantee FROM pg_catalog.aclexplode(c.relacl) a"
				   " UNION SELECT a.grantee FROM pg_catalog.pg_attribute t, pg_catalog.aclexplode(t.attacl) a"
				   " WHERE t.attrelid OPERATOR(pg_catalog.=) c.oid) g"
				   " WHERE c.oid OPERATOR(pg_catalog.=) $1 AND g.grantee OPERATOR(pg_catalog.<>) c.relowner",
				   1, types, values, NULL, SPI_OK_SELECT, 0);
	cols = NIL;
	for (i = 0; i < n; i++)
		cols = lappend(cols, pstrdup(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));
	cols = lappend(cols, "PUBLIC");
	foreach(lc, cols)
		(void) lc_sql_run(LC_TABLE_OWNER, relid, psprintf("REVOKE ALL ON %s FROM %s", moved, (char *) lfirst(lc)),
						  0, NULL, NULL, NULL, SPI_OK_UTILITY, 0);
}

/*
 * Take the expired partitions whole, counting their rows: drop them
 * (delete), or detach them and move them into the archive (archive).  A
 * lock the application holds (lock_timeout) leaves the rest to the
 * batches.  Runs in the policy's first transaction.
 */
static bool
rt_take_partitions(RtRun *run, RtWork *w, List *parts)
{
	ListCell   *lc;
	bool		any = false;

	foreach(lc, parts)
	{
		Oid			part = lfirst_oid(lc);
		MemoryContext cxt = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;
		int64		n = 0,
					bytes = 0;
		bool		taken = false;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			char	   *name = lc_qualified_name_oid(part);
			bool		isnull;

			/* no row may come in between the count and the move */
			(void) lc_sql_run(LC_TABLE_OWNER, part, psprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", name),
							  0, NULL, NULL, NULL, SPI_OK_UTILITY, 0);
			(void) lc_sql_run(LC_TABLE_OWNER, part,
							  psprintf("SELECT pg_catalog.count(*), pg_catalog.pg_relation_size(%u) FROM %s",
									   part, name),
							  0, NULL, NULL, NULL, SPI_OK_SELECT, 1);
			n = DatumGetInt64(lc_result(0, 1, &isnull));
			bytes = DatumGetInt64(lc_result(0, 2, &isnull));
			if (w->p->action == RT_ARCHIVE)
				rt_archive_partition(run, w, part, name);
			else
				(void) lc_sql_run(LC_TABLE_OWNER, part, psprintf("DROP TABLE %s", name),
								  0, NULL, NULL, NULL, SPI_OK_UTILITY, 0);
			rt_subxact_done(cxt, owner);
			taken = true;
		}
		PG_CATCH();
		{
			ErrorData  *edata = rt_subxact_failed(cxt, owner);

			if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
				ReThrowError(edata);
			FreeErrorData(edata);
		}
		PG_END_TRY();
		if (!taken)
			break;
		any = true;
		w->partitions++;
		if (w->p->action == RT_ARCHIVE)
		{
			w->archived += n;
			w->bytes += bytes;
			rt_record(run, w, 0, n, 0, bytes, NULL);
		}
		else
		{
			w->deleted += n;
			rt_record(run, w, n, 0, 0, 0, NULL);
		}
	}
	return any;
}

/* ---------- one policy ---------- */

/* Set up w for a run: the table checked again, the archive ready, the holds. */
static Relation
rt_prepare(RtRun *run, RtWork *w)
{
	MemoryContext old = MemoryContextSwitchTo(run->cxt);
	Relation	rel = try_relation_open(w->p->relid, RowExclusiveLock);
	List	   *cols = NIL;
	ListCell   *lc;
	StringInfoData c,
				r;

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", w->p->relid)));
	lc_check_table(rel, "a retention policy");
	rt_check_policy(w->p, rel);
	if (OidIsValid(w->p->pref_relid))
		lc_check_still_table(w->p->pref_relid, "the retention policy's preference table");
	w->qualname = lc_qualified_name(rel);
	w->holds = rt_holds(w->p->relid);
	w->ts_type = TupleDescAttr(RelationGetDescr(rel),
							   lc_attnum(rel, w->p->action == RT_PURGE ? LC_DELETED_AT : w->p->ts_column) - 1)->atttypid;
	if (w->p->owner_column == NULL &&
		rt_has_holds(w) &&
		w->p->action != RT_PURGE)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has legal holds, and its policy has no owner_column",
						RelationGetRelationName(rel)),
				 errdetail("Without the owner column the held rows cannot be told apart; nothing was removed."),
				 errhint("Set the policy again with the owner_column, or release the holds.")));
	if (w->p->action == RT_PURGE &&
		rt_has_holds(w))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has legal holds, and its policy purges soft-deleted rows",
						RelationGetRelationName(rel)),
				 errdetail("A purge cannot keep one owner's rows; nothing was removed."),
				 errhint("Release the holds, or set the policy with action => 'delete'.")));
	if (w->p->action == RT_ARCHIVE)
	{
		w->archive = rt_archive_prepare(w->p, rel, &cols);
		initStringInfo(&c);
		initStringInfo(&r);
		foreach(lc, cols)
		{
			appendStringInfo(&c, "%s%s", c.len ? ", " : "", (char *) lfirst(lc));
			appendStringInfo(&r, "%sc.%s", r.len ? ", " : "", (char *) lfirst(lc));
		}
		w->columns = c.data;
		w->returning = r.data;
	}
	MemoryContextSwitchTo(old);
	return rel;
}

/*
 * The batch's settings, in a GUC level of its own that the caller undoes
 * (rt_batch_settings_end): a short lock_timeout; when each batch is its own
 * transaction, deferred constraints checked at the batch's end too (a
 * failure then is the batch's, not a failed commit).  In the caller's
 * transaction (cleanup_retention_data) its constraint settings are its own.
 */
static int
rt_batch_settings(RtRun *run)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("lock_timeout", RT_LOCK_TIMEOUT, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (run->commits)
		(void) lc_sql_run(LC_CALLER, InvalidOid, "SET CONSTRAINTS ALL IMMEDIATE", 0, NULL, NULL, NULL,
						  SPI_OK_UTILITY, 0);
	return nest;
}

static void
rt_batch_settings_end(int nest)
{
	AtEOXact_GUC(false, nest);
}

/*
 * The pause after a batch (lifecycle.retention_pause): rt_pause times what
 * the batch took, so that the application gets the WAL and the CPU back;
 * a cancel ends it.
 */
static void
rt_wait(TimestampTz batch_start)
{
	long		secs;
	int			usecs;
	long		ms;

	TimestampDifference(batch_start, GetCurrentTimestamp(), &secs, &usecs);
	ms = (long) ((secs * 1000.0 + usecs / 1000.0) * rt_pause);
	if (ms <= 0)
		return;
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, Min(ms, 60000L),
					 PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * Run one policy to its end, its time, or its first error: each batch in a
 * subtransaction, committed when the run commits as it goes.
 */
static void
rt_run_policy(RtRun *run, RtWork *w)
{
	MemoryContext cxt = AllocSetContextCreate(run->cxt, "pg_lifecycle retention batch",
											  ALLOCSET_DEFAULT_SIZES);
	bool		more = true;
	bool		first = true;
	RtWork		saved;
	TimestampTz batch_start;

	w->skip_oids = MemoryContextAlloc(run->cxt, sizeof(Oid) * RT_MAX_SKIPPED);
	w->skip_tids = MemoryContextAlloc(run->cxt, sizeof(ItemPointerData) * RT_MAX_SKIPPED);
	w->status = "succeeded";
	while (more)
	{
		ResourceOwner owner = CurrentResourceOwner;

		/* every run makes progress: at least one batch before the clock counts */
		if (run->deadline != 0 && run->batches > 0 && GetCurrentTimestamp() >= run->deadline)
		{
			w->status = "partial";
			run->out_of_time = true;
			break;
		}
		batch_start = GetCurrentTimestamp();
		saved = *w;				/* a batch that fails leaves no count behind */
		MemoryContextReset(cxt);
		MemoryContextSwitchTo(cxt);
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			Relation	rel;

			int			nest;

			lc_enter();
			nest = rt_batch_settings(run);
			rel = first ? rt_prepare(run, w) : relation_open(w->p->relid, RowExclusiveLock);
			if (!first)
				lc_check_table(rel, "a retention policy");
			if (first)
			{
				/* DETACH and DROP need the table not open here */
				List	   *parts = rt_expired_partitions(run, w, rel);

				relation_close(rel, NoLock);
				rel = NULL;
				/* partitions taken whole are a transaction of their own */
				if (rt_take_partitions(run, w, parts))
					more = true;
				else
					rel = relation_open(w->p->relid, RowExclusiveLock);
			}
			if (rel)
			{
				more = rt_batch(run, w, rel);
				relation_close(rel, NoLock);
			}
			rt_batch_settings_end(nest);
			lc_leave();
			rt_subxact_done(cxt, owner);
		}
		PG_CATCH();
		{
			ErrorData  *edata = rt_subxact_failed(cxt, owner);

			/* a cancel or statement_timeout stops the run, not just the policy */
			if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
				ReThrowError(edata);
			run->batches -= w->batches - saved.batches;
			w->deleted = saved.deleted;
			w->archived = saved.archived;
			w->bytes = saved.bytes;
			w->batches = saved.batches;
			w->partitions = saved.partitions;
			w->nskipped = saved.nskipped;
			w->from = saved.from;
			w->from_set = saved.from_set;
			w->status = "failed";
			w->error = MemoryContextStrdup(run->cxt, edata->message);
			FreeErrorData(edata);
			more = false;
		}
		PG_END_TRY();
		first = false;
		if (run->commits && more)
		{
			lc_procedure_commit();
			MemoryContextSwitchTo(cxt);
		}
		if (more && rt_pause > 0)
			rt_wait(batch_start);
	}
	if (w->nskipped >= RT_MAX_SKIPPED && strcmp(w->status, "succeeded") == 0)
		w->status = "partial";
	MemoryContextSwitchTo(run->cxt);
	MemoryContextDelete(cxt);
	lc_enter();
	rt_record(run, w, 0, 0, 0, 0, w->status);
	lc_leave();
	if (strcmp(w->status, "failed") == 0)
	{
		run->failed++;
		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 errmsg("retention policy of table %s failed: %s",
						w->qualname ? w->qualname : w->p->name, w->error),
				 errdetail("Its batches before the error were kept; the other policies ran."),
				 errhint("See lifecycle.retention_runs (run " INT64_FORMAT ").", run->run_id)));
	}
	else if (strcmp(w->status, "partial") == 0)
		run->partial++;
	run->deleted += w->deleted;
	run->archived += w->archived;
	run->skipped += w->nskipped;
	if (run->nremoved++ > 0)
		appendStringInfoString(&run->removed, ", ");
	escape_json(&run->removed, w->qualname ? w->qualname : w->p->name);
	appendStringInfo(&run->removed, ": " INT64_FORMAT, w->deleted + w->archived);
}

/* ---------- the run ---------- */

static void
rt_maintenance_step(RtRun *run, const char *what, const char *sql, LcRole role, int expected)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		lc_enter();
		(void) lc_sql_run(role, InvalidOid, sql, 0, NULL, NULL, NULL, expected, 0);
		lc_leave();
		rt_subxact_done(cxt, owner);
	}
	PG_CATCH();
	{
		ErrorData  *edata = rt_subxact_failed(cxt, owner);

		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("retention run " INT64_FORMAT ": %s failed: %s", run->run_id, what,
						edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/* After the policies: bounded history, fresh counter columns, the NOTIFY. */
static void
rt_finish(RtRun *run)
{
	const char *status = run->failed ? "failed" : run->partial ? "partial" : "succeeded";

	rt_maintenance_step(run, "removing old runs",
						"DELETE FROM " LIFECYCLE_SCHEMA ".retention_runs r WHERE r.started_at"
						" OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) '90 days'::pg_catalog.interval)",
						LC_EXTENSION_OWNER, SPI_OK_DELETE);
	if (OidIsValid(get_extension_oid("pg_cron", true)))
		rt_maintenance_step(run, "removing the pg_cron jobs' old run details",
							"DELETE FROM cron.job_run_details d USING cron.job j"
							" WHERE d.jobid OPERATOR(pg_catalog.=) j.jobid"
							" AND j.jobname OPERATOR(pg_catalog.=) ANY (ARRAY['" RT_JOB_NAME "', '" RT_REFRESH_JOB_NAME "'])"
							" AND d.end_time OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) '14 days'::pg_catalog.interval)",
							LC_CALLER_PINNED, SPI_OK_DELETE);
	if (lc_compat_proc_aclcheck(LookupFuncName(list_make2(makeString(LIFECYCLE_SCHEMA),
												   makeString("refresh_usage_counters")),
										1, (Oid[]) {UUIDOID}, false),
						 GetUserId(), ACL_EXECUTE) == ACLCHECK_OK)
		rt_maintenance_step(run, "refreshing usage counter columns",
							"SELECT " LIFECYCLE_SCHEMA ".refresh_usage_counters()",
							LC_CALLER_PINNED, SPI_OK_SELECT);
	Async_Notify("lifecycle_retention",
				 psprintf("{\"run_id\": " INT64_FORMAT ", \"status\": \"%s\", \"rows_deleted\": " INT64_FORMAT
						  ", \"rows_archived\": " INT64_FORMAT ", \"rows_skipped\": " INT64_FORMAT "}",
						  run->run_id, status, run->deleted, run->archived, run->skipped));
}

/*
 * One run at a time per database: an advisory lock tag that no SQL
 * function can take (pg_advisory_* use the fourth field 1 and 2), held for
 * the session across the run's commits, or to the end of the caller's
 * transaction.
 */
static void
rt_lock_tag(LOCKTAG *tag)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, RT_LOCK_KEY1, RT_LOCK_KEY2, 7);
}

static bool
rt_try_lock(bool session)
{
	LOCKTAG		tag;

	rt_lock_tag(&tag);
	return LockAcquire(&tag, ExclusiveLock, session, true) != LOCKACQUIRE_NOT_AVAIL;
}

static void
rt_unlock(void)
{
	LOCKTAG		tag;

	rt_lock_tag(&tag);
	(void) LockRelease(&tag, ExclusiveLock, true);
}

/* The run: the policies (only's, or every enabled one), then rt_finish. */
static void
rt_run(RtRun *run, Oid only)
{
	List	   *policies;
	ListCell   *lc;
	volatile bool locked = false;
	Oid			types[1] = {OIDOID};

	run->removed.data = NULL;
	MemoryContextSwitchTo(run->cxt);
	initStringInfo(&run->removed);
	appendStringInfoChar(&run->removed, '{');
	lc_enter();
	/* what outlives this operation (and the run's commits) lives in the run's context */
	MemoryContextSwitchTo(run->cxt);
	policies = rt_policies(only);
	if (OidIsValid(only) && policies == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no retention policy", get_rel_name(only)),
				 errhint("Set one with lifecycle.set_retention().")));
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "SELECT pg_catalog.nextval('" LIFECYCLE_SCHEMA ".retention_run_id'::pg_catalog.regclass)",
					  0, types, NULL, NULL, SPI_OK_SELECT, 1);
	{
		bool		isnull;

		run->run_id = DatumGetInt64(lc_result(0, 1, &isnull));
	}
	/* from the lock on, an error or a cancel releases it (a session lock outlives the CALL) */
	PG_TRY();
	{
		locked = rt_try_lock(run->commits);
		if (locked)
			/* runs that were stopped (a crash, a cancel) before they could say so */
			(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
							  "UPDATE " LIFECYCLE_SCHEMA ".retention_runs r SET status = 'failed',"
							  " finished_at = pg_catalog.now(), error = 'the run was interrupted'"
							  " WHERE r.status OPERATOR(pg_catalog.=) 'running'",
							  0, NULL, NULL, NULL, SPI_OK_UPDATE, 0);
		foreach(lc, policies)
		{
			RtWork	   *w = palloc0(sizeof(RtWork));

			w->p = lfirst(lc);
			lfirst(lc) = w;
			if (w->p->enabled)
				rt_record_start(run, w, locked ? "running" : "skipped");
		}
		lc_leave();
		if (!locked)
			ereport(NOTICE,
					(errmsg("another retention run is in progress; this one is skipped")));
		else
		{
			if (run->commits)
			{
				lc_procedure_commit();
				MemoryContextSwitchTo(run->cxt);
			}
			foreach(lc, policies)
			{
				RtWork	   *w = lfirst(lc);

				if (!w->p->enabled)
					continue;
				if (run->out_of_time)
				{
					w->status = "partial";
					run->partial++;
					lc_enter();
					rt_record(run, w, 0, 0, 0, 0, "partial");
					lc_leave();
					continue;
				}
				rt_run_policy(run, w);
				if (run->commits)
				{
					lc_procedure_commit();
					MemoryContextSwitchTo(run->cxt);
				}
			}
			rt_finish(run);
		}
	}
	PG_FINALLY();
	{
		if (locked && run->commits)
			rt_unlock();
	}
	PG_END_TRY();
	appendStringInfoChar(&run->removed, '}');
}

static RtRun *
rt_new_run(MemoryContext parent, bool commits, const Interval *max_runtime)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "pg_lifecycle retention run",
											  ALLOCSET_DEFAULT_SIZES);
	RtRun	   *run = MemoryContextAllocZero(cxt, sizeof(RtRun));

	run->cxt = cxt;
	run->commits = commits;
	run->started = GetCurrentTransactionStartTimestamp();
	if (max_runtime)
		run->deadline = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
																TimestampTzGetDatum(GetCurrentTimestamp()),
																IntervalPGetDatum(max_runtime)));
	return run;
}

PG_FUNCTION_INFO_V1(run_retention);
Datum
run_retention(PG_FUNCTION_ARGS)
{
	Interval   *max_runtime;
	Interval	zero;
	RtRun	   *run;

	lc_procedure_enter(fcinfo, "run_retention()",
					   "In one transaction, SELECT lifecycle.cleanup_retention_data() does the same without committing.");
	if (PG_ARGISNULL(0))
		lc_null_argument("max_runtime", "Pass how long a run may take, e.g. interval '10 minutes'.");
	max_runtime = PG_GETARG_INTERVAL_P(0);
	memset(&zero, 0, sizeof(zero));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(max_runtime),
										  IntervalPGetDatum(&zero))) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_runtime must be a positive interval"),
				 errhint("e.g. interval '10 minutes'.")));
	/* PortalContext lives as long as the CALL, across its commits */
	run = rt_new_run(PortalContext, true, max_runtime);
	rt_run(run, PG_ARGISNULL(1) ? InvalidOid : PG_GETARG_OID(1));
	lc_procedure_leave();
	MemoryContextDelete(run->cxt);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(cleanup_retention_data);
Datum
cleanup_retention_data(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = CurrentMemoryContext;
	RtRun	   *run = rt_new_run(cxt, false, NULL);
	Datum		result;

	rt_run(run, InvalidOid);
	MemoryContextSwitchTo(cxt);
	result = DirectFunctionCall1(jsonb_in, CStringGetDatum(run->removed.data));
	PG_RETURN_DATUM(result);
}

/* ---------- what is waiting ---------- */

PG_FUNCTION_INFO_V1(retention_waiting);
Datum
retention_waiting(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	List	   *pols;
	RtPolicy   *p;
	Relation	rel;
	Oid			types[4] = {TIMESTAMPTZOID, INTERVALOID, INTERVALOID, TEXTARRAYOID};
	Datum		values[4];
	bool		isnull;
	int64		n;

	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		PG_RETURN_NULL();
	lc_enter();
	pols = rt_policies(relid);
	if (pols == NIL)
	{
		lc_leave();
		PG_RETURN_NULL();
	}
	p = linitial(pols);
	if (OidIsValid(p->pref_relid) &&
		pg_class_aclcheck(p->pref_relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
	{
		lc_leave();
		PG_RETURN_NULL();
	}
	lc_check_still_table(relid, "the retention policy");
	if (OidIsValid(p->pref_relid))
		lc_check_still_table(p->pref_relid, "the retention policy's preference table");
	rel = relation_open(relid, AccessShareLock);
	if (!rt_owner_code_free(p, rel))
	{
		/* its owner column's type or equality is user code: not run as the reader */
		relation_close(rel, AccessShareLock);
		lc_leave();
		PG_RETURN_NULL();
	}
	values[0] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	values[1] = IntervalPGetDatum(&p->keep);
	values[2] = IntervalPGetDatum(&p->min_keep);
	values[3] = rt_holds(relid);
	(void) lc_sql_run(LC_CALLER_PINNED, InvalidOid,
					  psprintf("SELECT pg_catalog.count(*) FROM %s", rt_where_sql(p, rel)),
					  4, types, values, NULL, SPI_OK_SELECT, 1);
	n = DatumGetInt64(lc_result(0, 1, &isnull));
	relation_close(rel, AccessShareLock);
	lc_leave();
	PG_RETURN_INT64(n);
}
