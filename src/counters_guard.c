/*-------------------------------------------------------------------------
 *
 * counters_guard.c
 *	  The guard track_usage() puts on a counter table (the accounts): an
 *	  AFTER INSERT OR UPDATE row trigger, so it sees the row as written,
 *	  after every BEFORE trigger.  Counter columns are written only by
 *	  pg_lifecycle; a new row or a changed limit empties the caps of the
 *	  account, so the next increase checks the limit as it is now.  Which
 *	  columns it watches comes from lifecycle.usage_resources (the counter
 *	  table's cache entry), never from its trigger's arguments.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "counters.h"

const LcTriggerShape uc_guard_trigger[1] = {
	{"lifecycle_usage_guard", TRIGGER_TYPE_ROW | TRIGGER_TYPE_INSERT | TRIGGER_TYPE_UPDATE,
	NULL, NULL, 0, "AFTER INSERT OR UPDATE ON %s FOR EACH ROW"},
};

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

/* A write of a counter column that pg_lifecycle did not make. */
static void
uc_refuse_write(TriggerData *td, UcCounter *c)
{
	bool		insert = TRIGGER_FIRED_BY_INSERT(td->tg_event);

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("column \"%s\" of \"%s\" is kept by pg_lifecycle",
					c->column_name, RelationGetRelationName(td->tg_relation)),
			 insert ?
			 errdetail("It counts usage resource \"%s\"; a new row starts at 0.", c->resource) :
			 errdetail("It counts usage resource \"%s\".", c->resource),
			 insert ?
			 errhint("Leave the column out of the INSERT.") :
			 errhint("Counts change with the data; to repair drift run lifecycle.sync_usage_counters().")));
}

PG_FUNCTION_INFO_V1(usage_guard);
Datum
usage_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	newtup;
	UcAccounts *a;
	bool		insert;
	int			i;

	(void) lc_verify_trigger(fcinfo, uc_guard_trigger, 1, UC_HINT);
	insert = TRIGGER_FIRED_BY_INSERT(td->tg_event);
	newtup = insert ? td->tg_trigtuple : td->tg_newtuple;
	desc = RelationGetDescr(td->tg_relation);
	lc_enter();
	a = uc_accounts(RelationGetRelid(td->tg_relation));
	if (a->n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("usage_guard: table \"%s\" keeps no usage counter",
						RelationGetRelationName(td->tg_relation)),
				 errdetail("lifecycle.usage_resources names no resource counted into it."),
				 errhint("%s", UC_HINT)));
	for (i = 0; i < a->n; i++)
	{
		UcCounter  *c = &a->counters[i];
		bool		isnull;
		Datum		v;

		if (c->column_attnum == InvalidAttrNumber)
			continue;			/* renamed away: track_usage() again says so */
		v = heap_getattr(newtup, c->column_attnum, desc, &isnull);
		/* our own writes set counters; a limit changed meanwhile is still seen */
		if (!uc_own_write() &&
			(insert ?
			 (!isnull && uc_int_value(v, TupleDescAttr(desc, c->column_attnum - 1)->atttypid) != 0) :
			 !uc_same(td->tg_trigtuple, newtup, c->column_attnum, desc)))
			uc_refuse_write(td, c);
		if (c->limit_attnum == InvalidAttrNumber || a->key == InvalidAttrNumber)
			continue;
		(void) heap_getattr(newtup, c->limit_attnum, desc, &isnull);
		if (insert ? !isnull : !uc_same(td->tg_trigtuple, newtup, c->limit_attnum, desc))
		{
			bool		knull;
			Datum		key = heap_getattr(newtup, a->key, desc, &knull);

			if (!knull)
				uc_limit_changed(c->resource, key, isnull);
		}
	}
	lc_leave();
	return PointerGetDatum(NULL);
}
