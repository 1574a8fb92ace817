/*-------------------------------------------------------------------------
 *
 * updated_at.c
 *	  set_updated_at(): a BEFORE INSERT/UPDATE row trigger that stamps a
 *	  timestamp column with now() and, optionally, an actor column with
 *	  current_actor(); and enable_updated_at()/disable_updated_at(), which
 *	  install it and record the table in lifecycle.updated_at_tables.
 *
 *	  An UPDATE that changes nothing but the stamped columns keeps their old
 *	  values (Rails semantics) unless the trigger has the argument 'always'.
 *	  Column lookups are cached per trigger and dropped on relcache
 *	  invalidation, so a bulk UPDATE resolves its arguments once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "pg_lifecycle.h"

#define UA_DEFAULT_COLUMN	"updated_at"
#define UA_TRIGGER_NAME		"lifecycle_updated_at"

/* What one trigger's arguments resolve to on its table. */
typedef struct UaTrigger
{
	Oid			tgoid;
	bool		always;
	AttrNumber	ts_attnum;
	Oid			ts_type;		/* TIMESTAMPTZOID or TIMESTAMPOID */
	AttrNumber	actor_attnum;	/* InvalidAttrNumber when none */
} UaTrigger;

/* A table's entry in the shared cache: its set_updated_at triggers. */
typedef struct UaTable
{
	LcEntry		entry;
	AttrNumber	deleted_at;		/* soft-delete columns, not an edit */
	AttrNumber	deleted_by;
	List	   *triggers;		/* UaTrigger *, resolved on first use */
} UaTable;

static LcCache *ua_cache = NULL;

static void
ua_build(LcEntry *entry, Relation rel)
{
	UaTable    *t = (UaTable *) entry;

	t->deleted_at = lc_attnum(rel, LC_DELETED_AT);
	t->deleted_by = lc_attnum(rel, LC_DELETED_BY);
}

/*
 * Find a column by name and check its type; shared by the trigger and by
 * enable_updated_at() so that both give the same errors.
 */
static AttrNumber
ua_resolve_column(Relation rel, const char *colname, bool is_actor, Oid *typid)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		Oid			base;

		if (att->attisdropped || strcmp(NameStr(att->attname), colname) != 0)
			continue;
		base = getBaseType(att->atttypid);
		if (att->attgenerated)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_DEFINITION),
					 errmsg("column \"%s\" of table \"%s\" is a generated column",
							colname, RelationGetRelationName(rel)),
					 errhint("Stamp an ordinary column.")));
		if (is_actor && base != UUIDOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("actor column \"%s\" of table \"%s\" has type %s, not uuid",
							colname, RelationGetRelationName(rel),
							format_type_be(att->atttypid)),
					 errdetail("The actor column is stamped with lifecycle.current_actor(), which returns uuid."),
					 errhint("Use a uuid column, e.g. ALTER TABLE %s ADD COLUMN updated_by uuid.",
							 lc_qualified_name(rel))));
		if (!is_actor && base != TIMESTAMPTZOID && base != TIMESTAMPOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of table \"%s\" has type %s, not timestamptz or timestamp",
							colname, RelationGetRelationName(rel),
							format_type_be(att->atttypid)),
					 errhint("Stamp a timestamptz (recommended) or timestamp column.")));
		*typid = base;
		return att->attnum;
	}

	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column \"%s\" of table \"%s\" does not exist",
					colname, RelationGetRelationName(rel)),
			 is_actor ?
			 errhint("Add it with ALTER TABLE %s ADD COLUMN %s uuid, or name another actor column.",
					 lc_qualified_name(rel), quote_identifier(colname)) :
			 errhint("Add it with ALTER TABLE %s ADD COLUMN %s timestamptz NOT NULL DEFAULT now(), or name another column.",
					 lc_qualified_name(rel), quote_identifier(colname))));
	return InvalidAttrNumber;	/* keep compiler quiet */
}

/*
 * Trigger arguments: [timestamp_column [, actor_column]] and, anywhere, the
 * word 'always'.  No argument means 'updated_at' and no actor.
 */
static void
ua_parse_args(Relation rel, Trigger *trigger, UaTrigger *info)
{
	const char *colnames[2] = {UA_DEFAULT_COLUMN, NULL};
	int			ncols = 0;
	int			i;
	Oid			ignored;

	info->always = false;
	for (i = 0; i < trigger->tgnargs; i++)
	{
		const char *arg = trigger->tgargs[i];

		if (pg_strcasecmp(arg, "always") == 0)
			info->always = true;
		else if (*arg == '\0' || ncols >= 2)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown argument \"%s\" for trigger \"%s\" on table \"%s\"",
							arg, trigger->tgname, RelationGetRelationName(rel)),
					 errdetail("set_updated_at takes a timestamp column, an actor column and the word 'always', in that order, all optional."),
					 errhint("Recreate the trigger, e.g. EXECUTE FUNCTION lifecycle.set_updated_at('updated_at', 'updated_by').")));
		else
			colnames[ncols++] = arg;
	}

	info->ts_attnum = ua_resolve_column(rel, colnames[0], false, &info->ts_type);
	info->actor_attnum = colnames[1] ?
		ua_resolve_column(rel, colnames[1], true, &ignored) : InvalidAttrNumber;
}

/* The trigger's resolved arguments, from the table's cache entry. */
static UaTrigger *
ua_get_info(TriggerData *trigdata, UaTable **table)
{
	Trigger    *trigger = trigdata->tg_trigger;
	UaTable    *t;
	UaTrigger  *info;
	ListCell   *lc;
	MemoryContext old;

	if (ua_cache == NULL)
		ua_cache = lc_cache_create("pg_lifecycle updated_at", sizeof(UaTable), ua_build);
	t = (UaTable *) lc_cache_lookup(ua_cache, trigdata->tg_relation);
	*table = t;
	foreach(lc, t->triggers)
		if (((UaTrigger *) lfirst(lc))->tgoid == trigger->tgoid)
			return lfirst(lc);
	old = MemoryContextSwitchTo(t->entry.cxt);
	info = palloc0(sizeof(UaTrigger));
	info->tgoid = trigger->tgoid;
	ua_parse_args(trigdata->tg_relation, trigger, info);
	t->triggers = lappend(t->triggers, info);
	MemoryContextSwitchTo(old);
	return info;
}

/*
 * set_updated_at is made to be attached by hand too (CREATE TRIGGER ...
 * EXECUTE FUNCTION lifecycle.set_updated_at()): it runs no SQL and never
 * changes role, so only the level, timing and events are checked.
 */
static void
ua_misuse(FunctionCallInfo fcinfo, const char *what)
{
	lc_trigger_misuse(fcinfo, what,
					  "Use it as CREATE TRIGGER ... BEFORE INSERT OR UPDATE ON <table> FOR EACH ROW EXECUTE FUNCTION lifecycle.set_updated_at(), or call lifecycle.enable_updated_at('<table>').");
}

static bool
ua_column_differs(TriggerData *trigdata, AttrNumber attnum)
{
	TupleTableSlot *oldslot = trigdata->tg_trigslot;
	TupleTableSlot *newslot = trigdata->tg_newslot;
	Form_pg_attribute att = TupleDescAttr(oldslot->tts_tupleDescriptor, attnum - 1);
	int			i = attnum - 1;

	if (oldslot->tts_isnull[i] || newslot->tts_isnull[i])
		return oldslot->tts_isnull[i] != newslot->tts_isnull[i];
	return !datum_image_eq(oldslot->tts_values[i], newslot->tts_values[i],
						   att->attbyval, att->attlen);
}

static bool
ua_stamps_differ(TriggerData *trigdata, UaTrigger *info)
{
	return ua_column_differs(trigdata, info->ts_attnum) ||
		(info->actor_attnum != InvalidAttrNumber &&
		 ua_column_differs(trigdata, info->actor_attnum));
}

/*
 * True when some column other than the stamped ones differs.  deleted_at and
 * deleted_by do not count: soft delete and restore are not edits, and a
 * restored row must come back exactly as it was, updated_at included.
 */
static bool
ua_row_changed(TriggerData *trigdata, UaTable *t, UaTrigger *info)
{
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	int			i;

	slot_getallattrs(trigdata->tg_trigslot);
	slot_getallattrs(trigdata->tg_newslot);
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		if (att->attisdropped || att->attnum == info->ts_attnum ||
			att->attnum == info->actor_attnum || att->attnum == t->deleted_at ||
			att->attnum == t->deleted_by)
			continue;
		if (ua_column_differs(trigdata, att->attnum))
			return true;
	}
	return false;
}

static Datum
ua_now(UaTrigger *info)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	if (info->ts_type == TIMESTAMPOID)
		return DirectFunctionCall1(timestamptz_timestamp, TimestampTzGetDatum(now));
	return TimestampTzGetDatum(now);
}

/*
 * Where column attnum's bytes are in the tuple, or NULL when it is null or
 * not stored (added later with a default); the walk heap_deform_tuple does.
 */
static char *
ua_column_bytes(HeapTuple tuple, TupleDesc tupdesc, AttrNumber attnum)
{
	HeapTupleHeader tup = tuple->t_data;
	bool		hasnulls = HeapTupleHasNulls(tuple);
	char	   *tp = (char *) tup + tup->t_hoff;
	long		off = 0;
	int			i;

	if (attnum > HeapTupleHeaderGetNatts(tup))
		return NULL;
	for (i = 0; i < attnum; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		if (hasnulls && att_isnull(i, tup->t_bits))
		{
			if (i == attnum - 1)
				return NULL;
			continue;
		}
		off = att_align_pointer(off, att->attalign, att->attlen, tp + off);
		if (i == attnum - 1)
			return tp + off;
		off = att_addlength_pointer(off, att->attlen, tp + off);
	}
	return NULL;
}

/*
 * Overwrite fixed-width, non-null stamped columns inside the row itself when
 * the row is the slot's own materialized copy, keeping the slot's deformed
 * values in step.  This saves forming and storing a second copy of every
 * row, most of this trigger's own cost on bulk UPDATEs.  False when any
 * condition fails; the caller then builds a modified copy.
 */
static bool
ua_write_in_place(TupleTableSlot *slot, HeapTuple tuple, TupleDesc tupdesc,
				  int n, int *cols, Datum *values, bool *nulls)
{
	char	   *bytes[2];
	int			k;

	if ((slot->tts_ops != &TTSOpsBufferHeapTuple && slot->tts_ops != &TTSOpsHeapTuple) ||
		((HeapTupleTableSlot *) slot)->tuple != tuple || !TTS_SHOULDFREE(slot))
		return false;
	for (k = 0; k < n; k++)
	{
		if (nulls[k] || TupleDescAttr(tupdesc, cols[k] - 1)->attlen <= 0)
			return false;
		bytes[k] = ua_column_bytes(tuple, tupdesc, cols[k]);
		if (bytes[k] == NULL)
			return false;
	}
	for (k = 0; k < n; k++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, cols[k] - 1);

		if (att->attbyval)
			store_att_byval(bytes[k], values[k], att->attlen);
		else
			memcpy(bytes[k], DatumGetPointer(values[k]), att->attlen);
		if (slot->tts_nvalid >= cols[k])
			slot->tts_values[cols[k] - 1] =
				att->attbyval ? values[k] : PointerGetDatum(bytes[k]);
	}
	return true;
}

/* Put the stamps into the row the trigger returns. */
static HeapTuple
ua_apply(TriggerData *trigdata, HeapTuple tuple, int n, int *cols,
		 Datum *values, bool *nulls)
{
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	TupleTableSlot *slot = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newslot : trigdata->tg_trigslot;

	if (n == 0 || ua_write_in_place(slot, tuple, tupdesc, n, cols, values, nulls))
		return tuple;
	return heap_modify_tuple_by_cols(tuple, tupdesc, n, cols, values, nulls);
}

/*
 * Stamp now() and the actor into the new row.  On INSERT only NULLs are
 * filled in (explicit values, e.g. from an import, are kept) unless 'always'.
 */
static HeapTuple
ua_stamp(TriggerData *trigdata, UaTrigger *info, HeapTuple tuple,
		 bool only_nulls)
{
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	int			cols[2];
	Datum		values[2];
	bool		nulls[2];
	int			n = 0;

	if (!only_nulls || heap_attisnull(tuple, info->ts_attnum, tupdesc))
	{
		cols[n] = info->ts_attnum;
		values[n] = ua_now(info);
		nulls[n++] = false;
	}
	if (info->actor_attnum != InvalidAttrNumber &&
		(!only_nulls || heap_attisnull(tuple, info->actor_attnum, tupdesc)))
	{
		pg_uuid_t  *actor = palloc(sizeof(pg_uuid_t));
		bool		known = lifecycle_current_actor(actor);

		cols[n] = info->actor_attnum;
		values[n] = known ? UUIDPGetDatum(actor) : (Datum) 0;
		nulls[n++] = !known;
	}
	return ua_apply(trigdata, tuple, n, cols, values, nulls);
}

/* A no-op UPDATE: put the old stamps back over whatever the new row says. */
static HeapTuple
ua_keep_old_stamps(TriggerData *trigdata, UaTrigger *info)
{
	TupleTableSlot *oldslot = trigdata->tg_trigslot;
	int			cols[2];
	Datum		values[2];
	bool		nulls[2];
	int			n = 0;

	/* ua_row_changed() has deformed both slots */
	if (!ua_stamps_differ(trigdata, info))
		return trigdata->tg_newtuple;
	cols[n] = info->ts_attnum;
	values[n] = oldslot->tts_values[info->ts_attnum - 1];
	nulls[n++] = oldslot->tts_isnull[info->ts_attnum - 1];
	if (info->actor_attnum != InvalidAttrNumber)
	{
		cols[n] = info->actor_attnum;
		values[n] = oldslot->tts_values[info->actor_attnum - 1];
		nulls[n++] = oldslot->tts_isnull[info->actor_attnum - 1];
	}
	return ua_apply(trigdata, trigdata->tg_newtuple, n, cols, values, nulls);
}

PG_FUNCTION_INFO_V1(set_updated_at);
Datum
set_updated_at(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	UaTable    *t;
	UaTrigger  *info;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ua_misuse(fcinfo, "not called by trigger manager");
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ua_misuse(fcinfo, "must be fired for each row");
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		ua_misuse(fcinfo, "must be fired BEFORE the row is written");
	if (!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) &&
		!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		ua_misuse(fcinfo, "must be fired for INSERT or UPDATE");

	info = ua_get_info(trigdata, &t);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		return PointerGetDatum(ua_stamp(trigdata, info, trigdata->tg_trigtuple,
										!info->always));
	if (info->always || ua_row_changed(trigdata, t, info))
		return PointerGetDatum(ua_stamp(trigdata, info, trigdata->tg_newtuple,
										false));
	return PointerGetDatum(ua_keep_old_stamps(trigdata, info));
}

/*
 * enable_updated_at(tbl, timestamp_column, actor_column): check as the
 * caller, install the trigger as the caller, record it as the owner.
 */
PG_FUNCTION_INFO_V1(enable_updated_at);
Datum
enable_updated_at(PG_FUNCTION_ARGS)
{
	Oid			relid;
	const char *tscol = UA_DEFAULT_COLUMN;
	const char *actorcol = NULL;
	Relation	rel;
	Oid			typid;
	char	   *sql;
	Oid			argtypes[3] = {OIDOID, NAMEOID, NAMEOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};

	if (PG_ARGISNULL(0))
		lc_null_argument("table", "Pass the table, e.g. lifecycle.enable_updated_at('public.projects').");
	relid = PG_GETARG_OID(0);
	if (!PG_ARGISNULL(1))
		tscol = NameStr(*PG_GETARG_NAME(1));
	if (!PG_ARGISNULL(2))
		actorcol = NameStr(*PG_GETARG_NAME(2));

	rel = lc_open_owned_table(relid, ShareRowExclusiveLock, "enable_updated_at");
	ua_resolve_column(rel, tscol, false, &typid);
	if (actorcol)
		ua_resolve_column(rel, actorcol, true, &typid);
	sql = psprintf("CREATE OR REPLACE TRIGGER " UA_TRIGGER_NAME
				   " BEFORE INSERT OR UPDATE ON %s FOR EACH ROW"
				   " EXECUTE FUNCTION " LIFECYCLE_SCHEMA ".set_updated_at(%s%s%s)",
				   lc_qualified_name(rel), quote_literal_cstr(tscol),
				   actorcol ? ", " : "", actorcol ? quote_literal_cstr(actorcol) : "");
	relation_close(rel, NoLock);

	lc_enter();
	lc_ddl(sql);
	values[0] = ObjectIdGetDatum(relid);
	values[1] = DirectFunctionCall1(namein, CStringGetDatum(tscol));
	values[2] = actorcol ? DirectFunctionCall1(namein, CStringGetDatum(actorcol)) : (Datum) 0;
	nulls[2] = actorcol ? ' ' : 'n';
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "INSERT INTO " LIFECYCLE_SCHEMA ".updated_at_tables"
					  " (relid, timestamp_column, actor_column) VALUES ($1, $2, $3)"
					  " ON CONFLICT (relid) DO UPDATE"
					  " SET timestamp_column = excluded.timestamp_column,"
					  " actor_column = excluded.actor_column,"
					  " enabled_at = pg_catalog.now()",
					  3, argtypes, values, nulls, SPI_OK_INSERT, 0);
	lc_leave();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(disable_updated_at);
Datum
disable_updated_at(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Relation	rel;
	char	   *sql;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	bool		had_trigger;

	if (PG_ARGISNULL(0))
		lc_null_argument("table", "Pass the table, e.g. lifecycle.disable_updated_at('public.projects').");
	relid = PG_GETARG_OID(0);

	rel = lc_open_owned_table(relid, ShareRowExclusiveLock, "disable_updated_at");
	had_trigger = lc_find_trigger(rel, UA_TRIGGER_NAME) != NULL;
	sql = psprintf("DROP TRIGGER " UA_TRIGGER_NAME " ON %s", lc_qualified_name(rel));
	relation_close(rel, NoLock);

	if (!had_trigger)
		ereport(NOTICE,
				(errmsg("table \"%s\" has no lifecycle updated_at trigger, skipping",
						get_rel_name(relid))));
	lc_enter();
	if (had_trigger)
		lc_ddl(sql);
	values[0] = ObjectIdGetDatum(relid);
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "DELETE FROM " LIFECYCLE_SCHEMA ".updated_at_tables"
					  " WHERE relid OPERATOR(pg_catalog.=) $1",
					  1, argtypes, values, NULL, SPI_OK_DELETE, 0);
	lc_leave();
	PG_RETURN_VOID();
}

/* sql_drop: forget tables, or their trigger, that are gone. */
static const char *const ua_forget_dropped[] = {
	"DELETE FROM " LIFECYCLE_SCHEMA ".updated_at_tables u"
	" WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t"
	" WHERE t.tgrelid OPERATOR(pg_catalog.=) u.relid"
	" AND t.tgname OPERATOR(pg_catalog.=) '" UA_TRIGGER_NAME "')",
	NULL
};

const LcFeature lc_updated_at_feature = {
	.name = "updated_at",
	.forget_dropped = ua_forget_dropped,
	.config_table = "updated_at_tables",
};
