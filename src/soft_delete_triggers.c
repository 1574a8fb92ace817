/*-------------------------------------------------------------------------
 *
 * soft_delete_triggers.c
 *	  The row triggers enable_soft_delete() puts on a table.
 *
 *	  The guard (AFTER INSERT, and AFTER UPDATE of a restore or of a
 *	  foreign key) refuses a live row that references a soft-deleted row of
 *	  an enabled table.  It locks the parent FOR SHARE as the parent's
 *	  owner (so RLS cannot hide it), like a foreign-key check: a cascade
 *	  deleting it concurrently either waits for us, and then sees and
 *	  soft-deletes our row, or commits first, and then we see it deleted.
 *
 *	  The intercept (intercept_delete => true) turns a DELETE into a soft
 *	  delete with cascade: the BEFORE ROW trigger keeps the rows and
 *	  remembers their keys, the AFTER STATEMENT trigger soft-deletes them
 *	  together, once the statement's scan is over.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "soft_delete.h"

const LcTriggerShape sd_guard_shapes[2] = {
	{SD_GUARD_UPD, TRIGGER_TYPE_ROW | TRIGGER_TYPE_UPDATE, NULL, NULL, 0, NULL},
	{SD_GUARD_INS, TRIGGER_TYPE_ROW | TRIGGER_TYPE_INSERT, NULL, NULL, 0, NULL},
};

const LcTriggerShape sd_intercept_shapes[2] = {
	{SD_INTERCEPT, TRIGGER_TYPE_ROW | TRIGGER_TYPE_BEFORE | TRIGGER_TYPE_DELETE, NULL, NULL, 0,
	"BEFORE DELETE ON %s FOR EACH ROW"},
	{SD_INTERCEPT_END, TRIGGER_TYPE_DELETE, NULL, NULL, 0, "AFTER DELETE ON %s FOR EACH STATEMENT"},
};

/* The entry of the table a trigger of ours fired on, which must be set up for it. */
static SdTable *
sd_trigger_table(TriggerData *td, bool intercept)
{
	SdTable    *t = sd_table(RelationGetRelid(td->tg_relation));

	if (intercept ? !t->intercept : !t->registered)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s: trigger \"%s\" on table \"%s\" was not created by pg_lifecycle",
						intercept ? "soft_delete_intercept" : "soft_delete_guard",
						td->tg_trigger->tgname, RelationGetRelationName(td->tg_relation)),
				 errdetail(intercept ?
						   "The table is not enabled for soft delete with intercept_delete." :
						   "The table is not enabled for soft delete."),
				 errhint("%s", SD_HINT)));
	if (t->deleted_at == InvalidAttrNumber || (intercept && t->key_attnum == InvalidAttrNumber))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("table \"%s\" no longer has what soft delete needs",
						RelationGetRelationName(td->tg_relation)),
				 errdetail(t->deleted_at == InvalidAttrNumber ?
						   "Its column deleted_at is gone." :
						   "Its single-column primary key is gone."),
				 errhint("Run lifecycle.enable_soft_delete('%s') again.", t->qualname)));
	return t;
}

/* ---------- the guard ---------- */

static char *sd_key_values(SdFk *fk, Datum *values);

/*
 * "Key (a, b)=(1, 2)", as a foreign-key error shows them; only "Key" when
 * the current user may not read them (row-level security on the child, or
 * no SELECT on its key columns), as PostgreSQL's own does.
 */
static char *
sd_key_text(SdFk *fk, Datum *values)
{
	Oid			user = GetUserId();
	bool		may_read = check_enable_rls(fk->child, InvalidOid, true) != RLS_ENABLED;
	int			k;

	if (may_read && pg_class_aclcheck(fk->child, user, ACL_SELECT) != ACLCHECK_OK)
		for (k = 0; k < fk->nkeys && may_read; k++)
			may_read = pg_attribute_aclcheck(fk->child, fk->child_cols[k], user,
											 ACL_SELECT) == ACLCHECK_OK;
	if (!may_read)
		return "Key";
	return psprintf("Key %s", sd_key_values(fk, values));
}

/* "(a, b)=(1, 2)" */
static char *
sd_key_values(SdFk *fk, Datum *values)
{
	StringInfoData cols,
				vals;
	int			i;

	initStringInfo(&cols);
	initStringInfo(&vals);
	for (i = 0; i < fk->nkeys; i++)
	{
		Oid			out;
		bool		varlena;

		getTypeOutputInfo(get_atttype(fk->child, fk->child_cols[i]), &out, &varlena);
		appendStringInfo(&cols, "%s%s", i ? ", " : "", get_attname(fk->child, fk->child_cols[i], false));
		appendStringInfo(&vals, "%s%s", i ? ", " : "", OidOutputFunctionCall(out, values[i]));
	}
	return psprintf("(%s)=(%s)", cols.data, vals.data);
}

/* May the session's role see the parent row these values reference? */
static bool
sd_parent_visible(SdFk *fk, Datum *values)
{
	Oid			invoker = lc_invoker();
	Oid			types[INDEX_MAX_KEYS];
	StringInfoData sql;
	int			i;

	if (pg_class_aclcheck(fk->parent, invoker, ACL_SELECT) != ACLCHECK_OK)
		for (i = 0; i < fk->nkeys; i++)
			if (pg_attribute_aclcheck(fk->parent, fk->parent_cols[i], invoker,
									  ACL_SELECT) != ACLCHECK_OK)
				return false;
	lc_check_still_table(fk->parent, "enable_soft_delete");
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT 1 FROM %s p WHERE ", lc_qualified_name_oid(fk->parent));
	for (i = 0; i < fk->nkeys; i++)
	{
		appendStringInfo(&sql, "%sp.%s %s $%d", i ? " AND " : "",
						 quote_identifier(get_attname(fk->parent, fk->parent_cols[i], false)),
						 lc_operator_sql(fk->pf_eq[i]), i + 1);
		types[i] = get_atttype(fk->child, fk->child_cols[i]);
	}
	return lc_sql_run(LC_INVOKER, InvalidOid, sql.data, fk->nkeys, types, values, NULL,
					  SPI_OK_SELECT, 1) == 1;
}

/*
 * A live row would reference a soft-deleted one.  What the message says
 * depends on whether the session may see that row: if it may not, the
 * error is the one a foreign key gives for a row that is not there, so
 * that nobody learns whether another tenant's row exists and is deleted.
 */
void
sd_parent_deleted_error(Relation child, SdFk *fk, Datum *values, bool restore)
{
	char	   *key = sd_key_text(fk, values);

	if (!sd_parent_visible(fk, values))
	{
		if (restore)
			ereport(ERROR,
					(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
					 errmsg("cannot restore a row of table \"%s\": a row it references in \"%s\" is not available",
							RelationGetRelationName(child), get_rel_name(fk->parent)),
					 errhint("Restore the referenced row first, as a role that may see it.")));
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("insert or update on table \"%s\" violates foreign key constraint \"%s\"",
						RelationGetRelationName(child), get_constraint_name(fk->conoid)),
				 errdetail("%s is not present in table \"%s\".", key, get_rel_name(fk->parent))));
	}
	ereport(ERROR,
			(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
			 restore ?
			 errmsg("cannot restore a row of table \"%s\": it references a soft-deleted row of \"%s\"",
					RelationGetRelationName(child), get_rel_name(fk->parent)) :
			 errmsg("a live row of table \"%s\" cannot reference a soft-deleted row of \"%s\"",
					RelationGetRelationName(child), get_rel_name(fk->parent)),
			 errdetail("%s is soft-deleted in \"%s\".", key, get_rel_name(fk->parent)),
			 errhint("Restore the referenced row first with lifecycle.restore_deleted(), or reference a live row.")));
}

/* Is the parent of these values soft-deleted?  Locked FOR SHARE as its owner. */
static bool
sd_parent_deleted(SdTable *t, SdFk *fk, Datum *values)
{
	Oid			types[INDEX_MAX_KEYS];
	bool		isnull;
	int			i;

	if (!lc_plan_ready(&fk->guard_plan))
	{
		StringInfoData sql;

		initStringInfo(&sql);
		appendStringInfo(&sql, "SELECT p.deleted_at IS NOT NULL FROM %s p WHERE ",
						 sd_table(fk->parent)->qualname);
		for (i = 0; i < fk->nkeys; i++)
		{
			appendStringInfo(&sql, "%sp.%s %s $%d", i ? " AND " : "",
							 quote_identifier(get_attname(fk->parent, fk->parent_cols[i], false)),
							 lc_operator_sql(fk->pf_eq[i]), i + 1);
			types[i] = get_atttype(fk->child, fk->child_cols[i]);
		}
		appendStringInfoString(&sql, " FOR SHARE OF p");
		lc_plan_prepare(&fk->guard_plan, &t->entry, LC_TABLE_OWNER, fk->parent, sql.data,
						fk->nkeys, types);
	}
	return lc_plan_run(&fk->guard_plan, values, NULL, SPI_OK_SELECT, 1) == 1 &&
		DatumGetBool(lc_result(0, 1, &isnull));
}

static bool
sd_fk_changed(TriggerData *td, SdFk *fk)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	int			i;

	for (i = 0; i < fk->nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, fk->child_cols[i] - 1);
		bool		n1,
					n2;
		Datum		v1 = heap_getattr(td->tg_trigtuple, fk->child_cols[i], desc, &n1);
		Datum		v2 = heap_getattr(td->tg_newtuple, fk->child_cols[i], desc, &n2);

		if (n1 != n2 || (!n1 && !datumIsEqual(v1, v2, att->attbyval, att->attlen)))
			return true;
	}
	return false;
}

static void
sd_guard_row(TriggerData *td, SdTable *t, HeapTuple row, bool restored)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	ListCell   *lc;

	foreach(lc, t->parents)
	{
		SdFk	   *fk = lfirst(lc);
		Datum		values[INDEX_MAX_KEYS];
		bool		isnull = false;
		int			i;

		if (TRIGGER_FIRED_BY_UPDATE(td->tg_event) && !restored && !sd_fk_changed(td, fk))
			continue;
		for (i = 0; i < fk->nkeys && !isnull; i++)
			values[i] = heap_getattr(row, fk->child_cols[i], desc, &isnull);
		if (isnull)
			continue;			/* MATCH SIMPLE: references nothing */
		if (sd_parent_deleted(t, fk, values))
			sd_parent_deleted_error(td->tg_relation, fk, values, restored);
	}
}

PG_FUNCTION_INFO_V1(soft_delete_guard);
Datum
soft_delete_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	SdTable    *t;
	HeapTuple	row;
	bool		restored = false;
	bool		isnull;

	(void) lc_verify_trigger(fcinfo, sd_guard_shapes, 2, SD_HINT);
	/* a cascade's own statement keeps the rule itself, set-based */
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event) && sd_cascading(RelationGetRelid(td->tg_relation)))
		return PointerGetDatum(NULL);
	lc_enter();
	t = sd_trigger_table(td, false);
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event) && t->root != t->entry.relid && sd_cascading(t->root))
	{
		lc_leave();				/* a cascade's statement on the partitioned table */
		return PointerGetDatum(NULL);
	}
	row = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	if (t->deleted_at != InvalidAttrNumber &&
		heap_attisnull(row, t->deleted_at, RelationGetDescr(td->tg_relation)))
	{
		if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		{
			(void) heap_getattr(td->tg_trigtuple, t->deleted_at,
								RelationGetDescr(td->tg_relation), &isnull);
			restored = !isnull;
		}
		sd_guard_row(td, t, row, restored);
	}
	lc_leave();
	return PointerGetDatum(NULL);
}

/* ---------- the intercepted DELETE ---------- */

/* Keys a DELETE on an intercepting table asked to remove, until its end. */
typedef struct SdPending
{
	LcXactItem	item;			/* first: a transaction-lifetime list's item */
	Oid			relid;
	List	   *keys;			/* Datums in TopTransactionContext */
} SdPending;

static List *sd_pending = NIL;	/* SdPending, in TopTransactionContext */

void
sd_triggers_xact_end(void)
{
	sd_pending = NIL;			/* its memory goes with the transaction */
}

/*
 * A rolled-back subtransaction takes its intercepted DELETEs with it; a
 * committed one hands them to its parent.
 */
void
sd_triggers_subxact_end(bool commit, SubTransactionId mine, SubTransactionId parent)
{
	sd_pending = lc_xact_items_subxact_end(sd_pending, commit, mine, parent);
}

/* BEFORE DELETE row: remember the row's key and keep the row. */
static void
sd_intercept_row(TriggerData *td, SdTable *t)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	Oid			relid = RelationGetRelid(td->tg_relation);
	SubTransactionId subxid = GetCurrentSubTransactionId();
	SdPending  *pending = NULL;
	MemoryContext old;
	Datum		key;
	bool		isnull;
	int16		typlen;
	bool		typbyval;
	ListCell   *lc;

	sd_require_key(t, "intercept_delete");
	key = heap_getattr(td->tg_trigtuple, t->key_attnum, desc, &isnull);
	get_typlenbyval(t->key_type, &typlen, &typbyval);
	old = MemoryContextSwitchTo(TopTransactionContext);
	foreach(lc, sd_pending)
	{
		SdPending  *p = lfirst(lc);

		if (p->relid == relid && p->item.subxid == subxid)
			pending = p;
	}
	if (pending == NULL)
	{
		pending = palloc0(sizeof(SdPending));
		pending->relid = relid;
		lc_xact_item_init(&pending->item);
		sd_pending = lappend(sd_pending, pending);
	}
	pending->keys = lappend(pending->keys, DatumGetPointer(datumCopy(key, typbyval, typlen)));
	MemoryContextSwitchTo(old);
}

static LcPlan *
sd_intercept_plan(SdTable *t)
{
	Oid			types[3] = {get_array_type(t->key_type), TIMESTAMPTZOID, UUIDOID};

	if (!OidIsValid(types[0]))
		elog(ERROR, "no array type for %s", format_type_be(t->key_type));
	if (!lc_plan_ready(&t->intercept_plan))
		lc_plan_prepare(&t->intercept_plan, &t->entry, LC_TABLE_OWNER, t->entry.relid,
						psprintf("WITH u AS (UPDATE %s c SET deleted_at = $2, deleted_by = $3"
								 " WHERE c.%s %s ANY ($1) AND c.deleted_at IS NULL"
								 " RETURNING c.tableoid%s)"
								 " SELECT pg_catalog.count(*)::pg_catalog.int8%s FROM u",
								 t->qualname, t->key_name, t->key_eq,
								 sd_column_list(t, "c", "%s"),
								 sd_column_list(t, "u", "pg_catalog.array_agg(%s)")),
						3, types);
	return &t->intercept_plan;
}

/*
 * AFTER DELETE statement: soft-delete, as one cascade, every row the
 * statement asked to delete.  Done once the statement's scan is over, so
 * that the cascade cannot change rows the DELETE has yet to reach.
 */
static void
sd_intercept_statement(TriggerData *td, SdTable *t)
{
	Oid			relid = RelationGetRelid(td->tg_relation);
	List	   *mine = NIL;
	ListCell   *lc;

	/* take this table's keys first: the cascade may add others' */
	foreach(lc, sd_pending)
	{
		if (((SdPending *) lfirst(lc))->relid != relid)
			continue;
		mine = lappend(mine, lfirst(lc));
		sd_pending = foreach_delete_current(sd_pending, lc);
	}
	foreach(lc, mine)
	{
		SdPending  *p = lfirst(lc);
		Datum	   *keys = palloc(sizeof(Datum) * Max(list_length(p->keys), 1));
		int			n = 0;
		ListCell   *k;
		int16		typlen;
		bool		typbyval;
		char		typalign;
		Datum		values[3];
		char		nulls[3] = {' ', ' ', ' '};
		pg_uuid_t  *actor = palloc(sizeof(pg_uuid_t));
		bool		actor_known = lifecycle_current_actor(actor);
		uint64		rows;
		Datum	   *out;

		foreach(k, p->keys)
			keys[n++] = PointerGetDatum(lfirst(k));
		get_typlenbyvalalign(t->key_type, &typlen, &typbyval, &typalign);
		values[0] = PointerGetDatum(construct_array(keys, n, t->key_type, typlen, typbyval, typalign));
		values[1] = TimestampTzGetDatum(sd_next_stamp());
		values[2] = actor_known ? UUIDPGetDatum(actor) : (Datum) 0;
		nulls[2] = actor_known ? ' ' : 'n';
		/* the DELETE passed the caller's privileges and policies on these rows */
		out = sd_delete_rows(t, sd_intercept_plan(t), values, nulls, &rows);
		sd_cascade_delete(t, out, rows, values[1], values[2], !actor_known, NULL);
	}
}

/* DELETE on an intercepting table: soft-delete the rows with cascade instead. */
PG_FUNCTION_INFO_V1(soft_delete_intercept);
Datum
soft_delete_intercept(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	SdTable    *t;
	HeapTuple	kept = NULL;

	(void) lc_verify_trigger(fcinfo, sd_intercept_shapes, 2, SD_HINT);
	if (TRIGGER_FIRED_FOR_ROW(td->tg_event) && sd_hard_deleting())
		return PointerGetDatum(td->tg_trigtuple);
	lc_enter();
	t = sd_trigger_table(td, true);
	if (TRIGGER_FIRED_FOR_ROW(td->tg_event))
	{
		/* an already soft-deleted row: deleting it again changes nothing */
		if (heap_attisnull(td->tg_trigtuple, t->deleted_at, RelationGetDescr(td->tg_relation)))
			sd_intercept_row(td, t);
	}
	else
		sd_intercept_statement(td, t);
	lc_leave();
	return PointerGetDatum(kept);
}
