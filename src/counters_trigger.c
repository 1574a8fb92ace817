/*-------------------------------------------------------------------------
 *
 * counters_trigger.c
 *	  The statement-level AFTER triggers track_usage() puts on a source
 *	  table (and its partitions).  Each statement becomes one change per
 *	  account, read from its transition tables as the table's owner
 *	  (one-row statements in C, without a query): live rows are those
 *	  whose deleted_at (if the table has one) is NULL, so soft delete,
 *	  restore, moves between accounts and the permanent delete of a
 *	  soft-deleted row are counted from the data, however the row was
 *	  changed.  A TRUNCATE recounts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_trigger.h"
#include "executor/executor.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "counters.h"

#define UC_OLD_TABLE	"lifecycle_old"
#define UC_NEW_TABLE	"lifecycle_new"

const LcTriggerShape uc_source_triggers[UC_NSOURCE_TRIGGERS] = {
	{"lifecycle_usage_insert", TRIGGER_TYPE_INSERT, NULL, UC_NEW_TABLE, 0,
	"AFTER INSERT ON %s REFERENCING NEW TABLE AS " UC_NEW_TABLE " FOR EACH STATEMENT"},
	{"lifecycle_usage_update", TRIGGER_TYPE_UPDATE, UC_OLD_TABLE, UC_NEW_TABLE, 0,
		"AFTER UPDATE ON %s REFERENCING OLD TABLE AS " UC_OLD_TABLE " NEW TABLE AS "
	UC_NEW_TABLE " FOR EACH STATEMENT"},
	{"lifecycle_usage_delete", TRIGGER_TYPE_DELETE, UC_OLD_TABLE, NULL, 0,
	"AFTER DELETE ON %s REFERENCING OLD TABLE AS " UC_OLD_TABLE " FOR EACH STATEMENT"},
	{"lifecycle_usage_truncate", TRIGGER_TYPE_TRUNCATE, NULL, NULL, 0,
	"AFTER TRUNCATE ON %s FOR EACH STATEMENT"},
};

/* One change of one count. */
typedef struct UcDelta
{
	pg_uuid_t	account;
	int64		delta;
} UcDelta;

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

/* The changes of one statement, as the table's owner, sorted by account. */
static UcDelta *
uc_statement_deltas(UcTable *t, UcResource *r, int op, int *n)
{
	LcPlan	   *plan = &r->delta[op];
	UcDelta    *d;
	uint64		i,
				rows;

	if (!lc_plan_ready(plan))
	{
		/* made on first use: the transition tables must be registered */
		const char *srccol = quote_identifier(get_attname(t->entry.relid, r->source_attnum, false));

		lc_plan_prepare(plan, &t->entry, LC_TABLE_OWNER, t->entry.relid,
						uc_delta_sql(t, srccol, op), 0, NULL);
	}
	rows = lc_plan_run(plan, NULL, NULL, SPI_OK_SELECT, 0);
	d = palloc(sizeof(UcDelta) * Max(rows, 1));
	for (i = 0; i < rows; i++)
	{
		bool		isnull;

		memcpy(&d[i].account, DatumGetUUIDP(lc_result(i, 1, &isnull)), sizeof(pg_uuid_t));
		d[i].delta = DatumGetInt64(lc_result(i, 2, &isnull));
	}
	*n = (int) rows;
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

/* Apply the changes to the counts (under their limits), then mirror them. */
static void
uc_count(UcResource *r, UcDelta *d, int n)
{
	int			k;

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

	(void) lc_verify_trigger(fcinfo, uc_source_triggers, UC_NSOURCE_TRIGGERS, UC_HINT);
	nold = td->tg_oldtable ? tuplestore_tuple_count(td->tg_oldtable) : 0;
	nnew = td->tg_newtable ? tuplestore_tuple_count(td->tg_newtable) : 0;
	if (!TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) && nold == 0 && nnew == 0)
		return PointerGetDatum(NULL);
	lc_enter();
	t = uc_source_table(td->tg_relation);
	if (t->nres == 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("usage_trigger: table \"%s\" is not the source of any usage resource",
						RelationGetRelationName(td->tg_relation)),
				 errdetail("lifecycle.usage_resources names no resource counted from it."),
				 errhint("%s", UC_HINT)));
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		/* recount every resource of the table */
		uc_truncated(RelationGetRelid(td->tg_relation));
		lc_leave();
		return PointerGetDatum(NULL);
	}
	op = TRIGGER_FIRED_BY_INSERT(td->tg_event) ? UC_INS :
		TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? UC_UPD : UC_DEL;
	if (nold <= 1 && nnew <= 1)
	{
		if (nold == 1)
			o = lc_only_row(td->tg_oldtable, RelationGetDescr(td->tg_relation));
		if (nnew == 1)
			nw = lc_only_row(td->tg_newtable, RelationGetDescr(td->tg_relation));
	}
	else if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "could not register the transition tables");

	for (i = 0; i < t->nres; i++)
	{
		UcResource *r = &t->res[i];
		UcDelta    *d;
		int			n;

		d = (o || nw) ? uc_row_deltas(t, r, o, nw, &n) : uc_statement_deltas(t, r, op, &n);
		uc_count(r, d, n);
	}
	if (o)
		ExecDropSingleTupleTableSlot(o);
	if (nw)
		ExecDropSingleTupleTableSlot(nw);
	lc_leave();
	return PointerGetDatum(NULL);
}
