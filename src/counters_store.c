/*-------------------------------------------------------------------------
 *
 * counters_store.c
 *	  The store of counts: lifecycle.usage_counts, one row per (resource,
 *	  account, slot).  Each backend adds to its own slot without waiting;
 *	  with a limit each slot may grow up to its cap, the caps of one count
 *	  staying within the limit together; a writer whose slot is full runs
 *	  lifecycle.usage_rebalance(), which locks all slots of the count,
 *	  checks the limit against the exact total and shares out what is
 *	  left.  Also the mirror of a count into the account's counter column.
 *
 *	  The counts are written as the extension's owner; the accounts table
 *	  (its limits and counter columns) is read and written as its owner.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "counters.h"

static bool uc_writing = false; /* the guard lets our own writes through */

/* While pg_lifecycle itself writes counter columns (the mirror, a sync). */
bool
uc_own_write(void)
{
	return uc_writing;
}

bool
uc_begin_own_write(void)
{
	bool		saved = uc_writing;

	uc_writing = true;
	return saved;
}

void
uc_end_own_write(bool saved)
{
	uc_writing = saved;
}

/* The slot of this backend: backends with different slots never wait on each other. */
static int16
uc_my_slot(void)
{
	return (int16) (lc_compat_my_proc_number() % UC_NSLOTS);
}

/* The limit of an account, read as the counter table's owner; -1: none. */
int64
uc_read_limit(UcCounter *c, pg_uuid_t *account)
{
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1] = {UUIDPGetDatum(account)};
	bool		isnull = true;
	int64		result = -1;

	if (c->limit == NULL)
		return -1;
	if (!lc_plan_ready(&c->limit_plan))
		lc_plan_prepare(&c->limit_plan, c->keeper, LC_TABLE_OWNER, c->counter_relid,
						psprintf("SELECT %s::pg_catalog.int8 FROM %s WHERE %s OPERATOR(pg_catalog.=) $1",
								 c->limit, c->counter, c->key),
						1, argtypes);
	if (lc_plan_run(&c->limit_plan, values, NULL, SPI_OK_SELECT, 1) == 1)
	{
		Datum		d = lc_result(0, 1, &isnull);

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
	static LcPlan plan;
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool done = false;

	if (!lc_plan_ready(&plan))
		lc_plan_prepare(&plan, NULL, LC_EXTENSION_OWNER, InvalidOid,
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
		done = lc_plan_run(&plan, values, nulls, SPI_OK_UPDATE, 0) == 1;
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
int64
uc_apply(UcCounter *c, pg_uuid_t *account, int64 delta, bool strict, int64 *limit_out)
{
	static LcPlan fast;
	static LcPlan rebalance;
	static LcPlan lockall;
	Oid			lock_types[3] = {TEXTOID, UUIDOID, INT4OID};
	Datum		lock_values[3];
	Oid			types[7] = {TEXTOID, UUIDOID, INT2OID, INT8OID, INT8OID, INT4OID, BOOLOID};
	Datum		values[7];
	char		nulls[7] = "       ";
	int64		lim;
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
		if (!lc_plan_ready(&fast))
			lc_plan_prepare(&fast, NULL, LC_EXTENSION_OWNER, InvalidOid,
							"UPDATE " LIFECYCLE_SCHEMA ".usage_counts u SET n = u.n OPERATOR(pg_catalog.+) $4"
							" WHERE u.ctid OPERATOR(pg_catalog.=) (SELECT c.ctid FROM " LIFECYCLE_SCHEMA ".usage_counts c"
							" WHERE c.resource_type OPERATOR(pg_catalog.=) $1"
							" AND c.account_id OPERATOR(pg_catalog.=) $2 AND c.slot OPERATOR(pg_catalog.=) $3"
							" AND (c.cap IS NULL OR $4 OPERATOR(pg_catalog.<=) 0"
							" OR c.n OPERATOR(pg_catalog.+) $4 OPERATOR(pg_catalog.<=) c.cap)"
							" FOR UPDATE SKIP LOCKED)",
							4, types);
		if (lc_plan_run(&fast, values, nulls, SPI_OK_UPDATE, 0) == 1)
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
	lock_values[0] = values[0];
	lock_values[1] = values[1];
	lock_values[2] = Int32GetDatum(UC_NSLOTS);
	if (!lc_plan_ready(&lockall))
		lc_plan_prepare(&lockall, NULL, LC_EXTENSION_OWNER, InvalidOid,
						"SELECT " LIFECYCLE_SCHEMA ".usage_lock_slots($1, $2, $3)", 3, lock_types);
	(void) lc_plan_run(&lockall, lock_values, NULL, SPI_OK_SELECT, 0);
	lim = uc_read_limit(c, account);
	*limit_out = lim;
	values[4] = Int64GetDatum(lim);
	nulls[4] = lim < 0 ? 'n' : ' ';
	values[5] = Int32GetDatum(UC_NSLOTS);
	values[6] = BoolGetDatum(strict);	/* only metered decrements stop at zero */
	if (!lc_plan_ready(&rebalance))
		lc_plan_prepare(&rebalance, NULL, LC_EXTENSION_OWNER, InvalidOid,
						"SELECT " LIFECYCLE_SCHEMA ".usage_rebalance($1, $2, $3, $4, $5, $6, $7)",
						7, types);
	(void) lc_plan_run(&rebalance, values, nulls, SPI_OK_SELECT, 0);
	blocked = lc_result(0, 1, &isnull);
	return isnull ? -1 : DatumGetInt64(blocked);
}

/* The exact count of (resource, account). */
int64
uc_total(const char *resource, pg_uuid_t *account)
{
	static LcPlan plan;
	Oid			types[2] = {TEXTOID, UUIDOID};
	Datum		values[2];
	bool		isnull;
	Datum		d;

	values[0] = CStringGetTextDatum(resource);
	values[1] = UUIDPGetDatum(account);
	if (!lc_plan_ready(&plan))
		lc_plan_prepare(&plan, NULL, LC_EXTENSION_OWNER, InvalidOid,
						"SELECT pg_catalog.sum(n)::pg_catalog.int8 FROM " LIFECYCLE_SCHEMA ".usage_counts"
						" WHERE resource_type OPERATOR(pg_catalog.=) $1 AND account_id OPERATOR(pg_catalog.=) $2",
						2, types);
	(void) lc_plan_run(&plan, values, NULL, SPI_OK_SELECT, 1);
	d = lc_result(0, 1, &isnull);
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
	bool		saved;
	bool		isnull;

	values[0] = UUIDPGetDatum(account);
	values[1] = Int64GetDatum(total);
	if (!lc_plan_ready(&c->mirror_plan))
		lc_plan_prepare(&c->mirror_plan, c->keeper, LC_TABLE_OWNER, c->counter_relid,
						psprintf("WITH l AS (SELECT %s AS k, %s AS v FROM %s WHERE %s OPERATOR(pg_catalog.=) $1"
								 " FOR NO KEY UPDATE SKIP LOCKED),"
								 " u AS (UPDATE %s t SET %s = $2 FROM l WHERE t.%s OPERATOR(pg_catalog.=) l.k"
								 " AND (l.v IS NULL OR l.v::pg_catalog.int8 OPERATOR(pg_catalog.<>) $2) RETURNING 1)"
								 " SELECT pg_catalog.count(*)::pg_catalog.int8 FROM l",
								 c->key, c->column, c->counter, c->key,
								 c->counter, c->column, c->key),
						2, types);
	saved = uc_begin_own_write();
	PG_TRY();
	{
		(void) lc_plan_run(&c->mirror_plan, values, NULL, SPI_OK_SELECT, 0);
	}
	PG_FINALLY();
	{
		uc_end_own_write(saved);
	}
	PG_END_TRY();
	return DatumGetInt64(lc_result(0, 1, &isnull)) > 0;
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
}			uc_last;

void
uc_forget_mirrors(void)
{
	memset(&uc_last, 0, sizeof(uc_last));
}

void
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

/*
 * Can the caller (LC_CALLER), or the session's role (LC_INVOKER), see the
 * account with its privileges and RLS?  to_write: could it also update
 * the row (FOR KEY SHARE needs the UPDATE privilege and passes the UPDATE
 * policies; the weakest lock, taken by foreign keys too, so concurrent
 * writers of the account do not wait for it).  The counter table is
 * another owner's: it must still be a table.
 */
bool
uc_account_visible(UcCounter *c, pg_uuid_t *account, LcRole role, bool to_write)
{
	Oid			types[1] = {UUIDOID};
	Datum		values[1] = {UUIDPGetDatum(account)};
	LcPlan	   *plan = to_write ? &c->touch_plan :
		role == LC_INVOKER ? &c->invoker_plan : &c->sees_plan;

	lc_check_still_table(c->counter_relid, "track_usage");
	if (!lc_plan_ready(plan))
		lc_plan_prepare(plan, c->keeper, role, InvalidOid,
						psprintf("SELECT 1 FROM %s WHERE %s OPERATOR(pg_catalog.=) $1%s",
								 c->counter, c->key, to_write ? " FOR KEY SHARE" : ""),
						1, types);
	return lc_plan_run(plan, values, NULL, SPI_OK_SELECT, 1) == 1;
}

/*
 * A change would pass the account's limit.  The account, its limit and
 * its count are said only to a session that may see the account: a
 * cascade may reach accounts the session cannot see.
 */
void
uc_limit_error(UcCounter *c, pg_uuid_t *account, int64 count, int64 delta, int64 lim)
{
	if (!uc_account_visible(c, account, LC_INVOKER, false))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("usage limit of \"%s\" reached", c->resource),
				 errdetail("The change would pass the limit of an account the current role cannot see."),
				 errhint("Ask the account's administrators to raise its limit.")));
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("usage limit of \"%s\" reached for account %s", c->resource,
					DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(account)))),
			 errdetail("The limit is %lld (%s.%s); the count is %lld and this change adds %lld.",
					   (long long) lim, c->counter, c->limit ? c->limit : "?",
					   (long long) count, (long long) delta),
			 errhint("Raise the account's limit, or remove rows first.")));
}

/* The account's limit changed (or its row came): the next increase checks it. */
void
uc_limit_changed(const char *resource, Datum account, bool unlimited)
{
	static LcPlan plan;
	Oid			types[4] = {TEXTOID, UUIDOID, BOOLOID, INT4OID};
	Datum		values[4];

	values[0] = CStringGetTextDatum(resource);
	values[1] = account;
	values[2] = BoolGetDatum(unlimited);
	values[3] = Int32GetDatum(UC_NSLOTS - 1);

	/*
	 * Every slot, made if missing: a rebalance of the account in progress
	 * (which locks all slots) is waited for, and one that starts later
	 * waits for us and then reads the new limit.
	 */
	if (!lc_plan_ready(&plan))
		lc_plan_prepare(&plan, NULL, LC_EXTENSION_OWNER, InvalidOid,
						"INSERT INTO " LIFECYCLE_SCHEMA ".usage_counts (resource_type, account_id, slot, n, cap)"
						" SELECT $1, $2, s::pg_catalog.int2, 0, CASE WHEN $3 THEN NULL ELSE " UC_NO_ROOM " END"
						" FROM pg_catalog.generate_series(0, $4) s"
						" ON CONFLICT (resource_type, account_id, slot) DO UPDATE SET cap = excluded.cap",
						4, types);
	(void) lc_plan_run(&plan, values, NULL, SPI_OK_INSERT, 0);
}
