/*-------------------------------------------------------------------------
 *
 * soft_delete_api.c
 *	  The SQL-callable functions of soft delete: soft_delete(),
 *	  restore_deleted() and their _cascade and _account forms,
 *	  permanent_delete(), cleanup_soft_deleted_records(), and the counts
 *	  behind lifecycle.soft_delete_stats.
 *
 *	  The root row is the caller's business: it is locked through a cursor
 *	  as the caller (SELECT ... FOR UPDATE applies the SELECT and UPDATE
 *	  policies' USING clauses) and changed with UPDATE ... WHERE CURRENT OF
 *	  as the caller (the UPDATE policies' WITH CHECK and the table's
 *	  triggers apply; the SELECT policies are not applied to the new row).
 *	  A row the caller's policies hide is, for it, not there.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_cast.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_coerce.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "soft_delete.h"

#define SD_CURSOR		"lifecycle_soft_delete_root_%d"

static int	sd_roots = 0;		/* root operations in progress (cursor names) */

void
sd_api_xact_end(void)
{
	sd_roots = 0;
}

/* ---------- arguments ---------- */

static Oid
sd_table_arg(FunctionCallInfo fcinfo, const char *example)
{
	if (PG_ARGISNULL(0))
		sd_null_error("table", example);
	return PG_GETARG_OID(0);
}

static bool
sd_integer_type(Oid typid)
{
	return typid == INT2OID || typid == INT4OID || typid == INT8OID;
}

/*
 * Argument argno as a value of the key column's type.  It may come in the
 * key's own type, in a type that converts without loss (1 for a bigint
 * key, a bigint for an integer one), or as text (an untyped literal);
 * anything else, an array of keys or 2.5 for an integer key say, is
 * refused rather than read by its text or rounded.
 */
static Datum
sd_key_datum(FunctionCallInfo fcinfo, int argno, SdTable *t)
{
	Oid			argtype = get_fn_expr_argtype(fcinfo->flinfo, argno);
	Oid			keybase = getBaseType(t->key_type);
	Oid			argbase;
	Oid			funcid;
	Datum		value;
	CoercionPathType path;

	if (PG_ARGISNULL(argno))
		sd_null_error(argno == 0 ? "account_id" : "record_id",
					  "Pass the primary key value of the row.");
	value = PG_GETARG_DATUM(argno);
	argbase = getBaseType(argtype);
	if (argbase == keybase)
		return value;
	if (argbase == TEXTOID)
	{
		Oid			infunc,
					ioparam;

		getTypeInputInfo(t->key_type, &infunc, &ioparam);
		return OidInputFunctionCall(infunc, TextDatumGetCString(value), ioparam, -1);
	}
	/*
	 * Implicit casts keep the value (int to bigint); of the assignment-only
	 * ones, only those between integer types, which fail rather than change
	 * a value that does not fit.  numeric 2.5 would round to another row.
	 */
	path = find_coercion_pathway(keybase, argbase,
								 sd_integer_type(keybase) && sd_integer_type(argbase) ?
								 COERCION_ASSIGNMENT : COERCION_IMPLICIT,
								 &funcid);
	if (path == COERCION_PATH_RELABELTYPE)
		return value;
	if (path == COERCION_PATH_FUNC)
		return OidFunctionCall3(funcid, value, Int32GetDatum(-1), BoolGetDatum(false));
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("record_id of type %s does not fit the primary key of \"%s\"",
					format_type_be(argtype), get_rel_name(t->entry.relid)),
			 errdetail("The key \"%s\" is of type %s.", get_attname(t->entry.relid, t->key_attnum, false),
					   format_type_be(t->key_type)),
			 errhint("Pass one key value, as %s or as text.", format_type_be(t->key_type))));
	return (Datum) 0;			/* keep compiler quiet */
}

/* ---------- the root row, locked and changed as the caller ---------- */

typedef struct SdRoot
{
	bool		deleted;
	Datum		stamp;			/* its deleted_at and deleted_by, if deleted */
	Datum		actor;
	bool		actor_null;
	Portal		portal;			/* cursor holding the row */
} SdRoot;

static void
sd_check_column_privilege(SdTable *t, AclMode mode, const char *what)
{
	Oid			user = GetUserId();

	if (pg_class_aclcheck(t->entry.relid, user, mode) == ACLCHECK_OK)
		return;
	if (mode == ACL_UPDATE &&
		pg_attribute_aclcheck(t->entry.relid, t->deleted_at, user, mode) == ACLCHECK_OK &&
		pg_attribute_aclcheck(t->entry.relid, t->deleted_by, user, mode) == ACLCHECK_OK)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to %s rows of table \"%s\"", what,
					get_rel_name(t->entry.relid)),
			 errhint("Grant %s on the table (or on deleted_at and deleted_by) to the role.",
					 mode == ACL_UPDATE ? "UPDATE" : "DELETE")));
}

/*
 * WHERE CURRENT OF on a partitioned table needs the cursor to have scanned
 * every partition: with pruning, the UPDATE's scan of the others finds no
 * row mark and fails.  So the root's cursor is planned and opened without
 * pruning (one index probe per partition).
 */
static int
sd_pruning_off(SdTable *t)
{
	int			nest;

	if (!t->partitioned)
		return 0;
	nest = NewGUCNestLevel();
	(void) set_config_option("enable_partition_pruning", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

static void
sd_pruning_on(int nest)
{
	if (nest > 0)
		AtEOXact_GUC(true, nest);
}

/* A plan of t with the key as its only parameter, as the caller. */
static LcPlan *
sd_key_plan(SdTable *t, LcPlan *plan, const char *sql)
{
	Oid			argtypes[1] = {t->key_type};

	if (!lc_plan_ready(plan))
	{
		int			nest = sd_pruning_off(t);

		lc_plan_prepare(plan, &t->entry, LC_CALLER, InvalidOid, sql, 1, argtypes);
		sd_pruning_on(nest);
	}
	return plan;
}

/*
 * Is the row there for the caller, and deleted?  As the caller, so a row its
 * policies hide is simply not there: nothing tells it the row exists.
 */
static bool
sd_visible_row(SdTable *t, Datum key, bool *deleted)
{
	Datum		values[1] = {key};
	bool		isnull;
	LcPlan	   *plan = sd_key_plan(t, &t->visible_plan,
								   psprintf("SELECT deleted_at IS NOT NULL FROM %s WHERE %s %s $1",
											t->qualname, t->key_name, t->key_eq));

	if (lc_plan_run(plan, values, NULL, SPI_OK_SELECT, 1) == 0)
		return false;
	*deleted = DatumGetBool(lc_result(0, 1, &isnull));
	return true;
}

/*
 * Lock the root row as the caller through a cursor (SELECT ... FOR UPDATE):
 * its privileges and the USING clauses of its SELECT and UPDATE policies
 * apply.  False when the caller cannot see the row; permission denied when
 * it can see it but not update it.
 */
static bool
sd_lock_root(SdTable *t, Datum key, const char *what, SdRoot *root)
{
	Datum		values[1] = {key};
	bool		isnull,
				deleted;
	LcPlan	   *plan = sd_key_plan(t, &t->lock_plan,
								   psprintf("SELECT deleted_at, deleted_by FROM %s"
											" WHERE %s %s $1 FOR UPDATE",
											t->qualname, t->key_name, t->key_eq));
	int			nest = sd_pruning_off(t);

	root->portal = lc_plan_cursor(plan, psprintf(SD_CURSOR, sd_roots), values, NULL);
	sd_pruning_on(nest);
	SPI_cursor_fetch(root->portal, true, 1);
	if (SPI_processed == 1)
	{
		HeapTuple	row = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		root->stamp = SPI_getbinval(row, desc, 1, &isnull);
		root->deleted = !isnull;
		root->actor = SPI_getbinval(row, desc, 2, &root->actor_null);
		if (!root->actor_null)
			root->actor = datumCopy(root->actor, false, UUID_LEN);
		return true;
	}
	SPI_cursor_close(root->portal);
	root->portal = NULL;
	if (!sd_visible_row(t, key, &deleted))
		return false;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to %s this row of table \"%s\"", what,
					get_rel_name(t->entry.relid)),
			 errdetail("The row-level security policies of the current role let it see the row, not update it."),
			 errhint("Act as a role whose policies allow updating the row, such as its owner or service_role.")));
	return false;				/* keep compiler quiet */
}

/*
 * UPDATE the row under the root cursor, as the caller.  WHERE CURRENT OF
 * reads no column, so PostgreSQL checks the new row against the UPDATE
 * policies' WITH CHECK but not against the SELECT policies that hide deleted
 * rows.  The plan names the cursor, so it is kept only for the outermost
 * operation, whose cursor name never changes.
 */
static uint64
sd_update_root(SdTable *t, LcPlan *kept, const char *set, Datum *values,
			   const char *nulls, int nargs, Oid *argtypes, SdRoot *root)
{
	char	   *sql = psprintf("UPDATE %s SET %s WHERE CURRENT OF %s", t->qualname, set,
							   quote_identifier(root->portal->name));
	uint64		n;

	if (sd_roots == 1)
	{
		if (!lc_plan_ready(kept))
			lc_plan_prepare(kept, &t->entry, LC_CALLER, InvalidOid, sql, nargs, argtypes);
		n = lc_plan_run(kept, values, nulls, SPI_OK_UPDATE, 0);
	}
	else
		n = lc_sql_run(LC_CALLER, InvalidOid, sql, nargs, argtypes, values, nulls,
					   SPI_OK_UPDATE, 0);
	SPI_cursor_close(root->portal);
	root->portal = NULL;
	return n;
}

/* The out columns of the row of key just soft-deleted, as its table's owner. */
static Datum *
sd_deleted_root(SdTable *t, Datum key, Datum stamp, uint64 *n)
{
	Oid			types[2] = {t->key_type, TIMESTAMPTZOID};
	Datum		values[2] = {key, stamp};

	if (!lc_plan_ready(&t->keyed_plan))
		lc_plan_prepare(&t->keyed_plan, &t->entry, LC_TABLE_OWNER, t->entry.relid,
						psprintf("SELECT pg_catalog.count(*)::pg_catalog.int8%s FROM %s c"
								 " WHERE c.%s %s $1 AND c.deleted_at OPERATOR(pg_catalog.=) $2",
								 sd_column_list(t, "c", "pg_catalog.array_agg(%s)"),
								 t->qualname, t->key_name, t->key_eq),
						2, types);
	(void) lc_plan_run(&t->keyed_plan, values, NULL, SPI_OK_SELECT, 0);
	return sd_step_arrays(t, n);
}

/* Soft-delete the root row and its descendants; false when nothing was live. */
static bool
sd_delete_root(SdTable *t, Datum key, Datum actor, bool actor_null, SdReport *rep)
{
	Oid			argtypes[2] = {TIMESTAMPTZOID, UUIDOID};
	Datum		values[2];
	char		nulls[2] = {' ', actor_null ? 'n' : ' '};
	SdRoot		root;
	uint64		n;

	sd_check_column_privilege(t, ACL_UPDATE, "soft-delete");
	if (!sd_lock_root(t, key, "soft-delete", &root))
		return false;
	if (root.deleted)
	{
		SPI_cursor_close(root.portal);
		return false;
	}
	values[0] = TimestampTzGetDatum(sd_next_stamp());
	values[1] = actor;
	n = sd_update_root(t, &t->delete_plan, "deleted_at = $1, deleted_by = $2",
					   values, nulls, 2, argtypes, &root);
	sd_report_add(rep, t->entry.relid, n);
	if (n > 0 && t->children != NIL)
	{
		uint64		rows;
		Datum	   *out = sd_deleted_root(t, key, values[0], &rows);

		sd_cascade_delete(t, out, rows, values[0], actor, actor_null, rep);
	}
	return n > 0;
}

/* Restore the root row and exactly what its cascade deleted. */
static bool
sd_restore_root(SdTable *t, Datum key, SdReport *rep)
{
	SdRoot		root;
	uint64		n;

	sd_check_column_privilege(t, ACL_UPDATE, "restore");
	if (!sd_lock_root(t, key, "restore", &root))
		return false;
	if (!root.deleted)
	{
		SPI_cursor_close(root.portal);
		return false;
	}
	/*
	 * The rows below it first, the root last, so that its parents in the
	 * cascade are back when its guard checks them.  A root that must stay
	 * deleted is restored right away, so that its guard says why.
	 */
	if (sd_cascade_restore(t, key, root.stamp, root.actor, root.actor_null, rep))
	{
		n = sd_update_root(t, &t->restore_plan, "deleted_at = NULL, deleted_by = NULL",
						   NULL, NULL, 0, NULL, &root);
		sd_report_add(rep, t->entry.relid, n);
		return n > 0;
	}
	(void) sd_update_root(t, &t->restore_plan, "deleted_at = NULL, deleted_by = NULL",
						  NULL, NULL, 0, NULL, &root);
	ereport(ERROR,
			(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
			 errmsg("cannot restore a row of table \"%s\": a row it references stays soft-deleted",
					get_rel_name(t->entry.relid)),
			 errhint("Restore the referenced row first.")));
	return false;				/* keep compiler quiet */
}

/*
 * One soft delete or restore of a root row.  keyarg is the argument holding
 * the record id; actorarg the deleted_by argument (soft delete only).
 */
static Datum
sd_root_operation(FunctionCallInfo fcinfo, Oid relid, int keyarg, int actorarg,
				  bool restore, bool report, const char *funcname)
{
	MemoryContext callercxt = CurrentMemoryContext;
	SdReport	rep = {NIL, NIL};
	SdTable    *t;
	Datum		key;
	bool		done;
	char	   *json = NULL;

	lc_enter();
	sd_roots++;
	t = sd_enabled_table(relid, funcname);
	sd_require_key(t, funcname);
	key = sd_key_datum(fcinfo, keyarg, t);
	if (restore)
		done = sd_restore_root(t, key, &rep);
	else
		done = sd_delete_root(t, key, PG_GETARG_DATUM(actorarg), PG_ARGISNULL(actorarg), &rep);
	if (report)
	{
		MemoryContext old = MemoryContextSwitchTo(callercxt);

		json = sd_report_text(&rep);
		MemoryContextSwitchTo(old);
	}
	sd_roots--;
	lc_leave();
	if (report)
		return DirectFunctionCall1(jsonb_in, CStringGetDatum(json));
	return BoolGetDatum(done);
}

PG_FUNCTION_INFO_V1(soft_delete);
Datum
soft_delete(PG_FUNCTION_ARGS)
{
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.soft_delete('public.projects', id).");

	return sd_root_operation(fcinfo, relid, 1, 2, false, false, "soft_delete");
}

PG_FUNCTION_INFO_V1(soft_delete_cascade);
Datum
soft_delete_cascade(PG_FUNCTION_ARGS)
{
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.soft_delete_cascade('public.projects', id).");

	return sd_root_operation(fcinfo, relid, 1, 2, false, true, "soft_delete_cascade");
}

PG_FUNCTION_INFO_V1(restore_deleted);
Datum
restore_deleted(PG_FUNCTION_ARGS)
{
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.restore_deleted('public.projects', id).");

	return sd_root_operation(fcinfo, relid, 1, -1, true, false, "restore_deleted");
}

PG_FUNCTION_INFO_V1(restore_cascade);
Datum
restore_cascade(PG_FUNCTION_ARGS)
{
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.restore_cascade('public.projects', id).");

	return sd_root_operation(fcinfo, relid, 1, -1, true, true, "restore_cascade");
}

/* ---------- the tenant table ---------- */

/* set_tenant_table()'s choice, else public.accounts. */
static Oid
sd_tenant_table(void)
{
	Oid			relid;
	bool		isnull;

	if (lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
				   "SELECT tenant_table::pg_catalog.oid FROM " LIFECYCLE_SCHEMA ".soft_delete_tenant",
				   0, NULL, NULL, NULL, SPI_OK_SELECT, 1) == 1)
		return DatumGetObjectId(lc_result(0, 1, &isnull));
	relid = RangeVarGetRelid(makeRangeVar("public", "accounts", -1), NoLock, true);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("tenant table public.accounts does not exist"),
				 errdetail("soft_delete_account() and restore_account() work on the tenant table, public.accounts unless set otherwise."),
				 errhint("Name your tenant table: SELECT lifecycle.set_tenant_table('myschema.tenants');")));
	return relid;
}

static void
sd_require_uuid_key(SdTable *t, const char *funcname)
{
	if (getBaseType(t->key_type) != UUIDOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("primary key of tenant table \"%s\" has type %s, not uuid",
						get_rel_name(t->entry.relid), format_type_be(t->key_type)),
				 errdetail("%s takes the account id as uuid.", funcname),
				 errhint("Use soft_delete_cascade()/restore_cascade() on tenant tables with other key types.")));
}

static Datum
sd_run_account(FunctionCallInfo fcinfo, bool restore)
{
	const char *funcname = restore ? "restore_account" : "soft_delete_account";
	Oid			relid;
	SdTable    *t;

	if (PG_ARGISNULL(0))
		sd_null_error("account_id", "Pass the id of the account.");
	lc_enter();
	relid = sd_tenant_table();
	t = sd_enabled_table(relid, funcname);
	sd_require_key(t, funcname);
	sd_require_uuid_key(t, funcname);
	lc_leave();
	return sd_root_operation(fcinfo, relid, 0, 1, restore, true, funcname);
}

PG_FUNCTION_INFO_V1(soft_delete_account);
Datum
soft_delete_account(PG_FUNCTION_ARGS)
{
	return sd_run_account(fcinfo, false);
}

PG_FUNCTION_INFO_V1(restore_account);
Datum
restore_account(PG_FUNCTION_ARGS)
{
	return sd_run_account(fcinfo, true);
}

/* What set_tenant_table() requires of the tenant table. */
void
sd_check_tenant(SdTable *t)
{
	sd_require_key(t, "set_tenant_table");
	sd_require_uuid_key(t, "soft_delete_account()");
}

/* ---------- permanent delete and cleanup ---------- */

/*
 * Delete for good a row that is already soft-deleted, as the caller (its
 * privileges and DELETE policies apply); foreign keys decide what happens to
 * rows that reference it.
 */
PG_FUNCTION_INFO_V1(permanent_delete);
Datum
permanent_delete(PG_FUNCTION_ARGS)
{
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.permanent_delete('public.projects', id).");
	SdTable    *t;
	Datum		values[1];
	bool		deleted;
	LcPlan	   *plan;
	uint64		removed = 0;

	lc_enter();
	t = sd_enabled_table(relid, "permanent_delete");
	sd_require_key(t, "permanent_delete");
	values[0] = sd_key_datum(fcinfo, 1, t);
	sd_check_column_privilege(t, ACL_DELETE, "permanently delete");
	if (!sd_visible_row(t, values[0], &deleted))
	{
		lc_leave();
		PG_RETURN_BOOL(false);
	}
	if (!deleted)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("row of table \"%s\" is not soft-deleted", get_rel_name(relid)),
				 errdetail("permanent_delete only removes rows that are already soft-deleted."),
				 errhint("Soft-delete it first with lifecycle.soft_delete(), or use DELETE.")));
	plan = sd_key_plan(t, &t->purge_plan,
					   psprintf("DELETE FROM %s WHERE %s %s $1 AND deleted_at IS NOT NULL",
								t->qualname, t->key_name, t->key_eq));
	removed = sd_hard_delete_run(plan, values);
	if (removed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to permanently delete this row of table \"%s\"",
						get_rel_name(relid)),
				 errdetail("The row-level security policies of the current role let it see the row, not delete it."),
				 errhint("Act as a role whose policies allow deleting soft-deleted rows, such as service_role.")));
	lc_leave();
	PG_RETURN_BOOL(true);
}

/*
 * Rows soft-deleted before the cutoff and, through foreign keys between
 * enabled tables, their soft-deleted descendants, children first; for the
 * root table's owner.
 */
PG_FUNCTION_INFO_V1(cleanup_soft_deleted_records);
Datum
cleanup_soft_deleted_records(PG_FUNCTION_ARGS)
{
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.cleanup_soft_deleted_records('public.projects', 90).");
	int32		days;
	Relation	rel;
	Datum		cutoff;
	uint64		removed;

	if (PG_ARGISNULL(1))
		sd_null_error("days_old", "Pass the age in days, e.g. 90.");
	days = PG_GETARG_INT32(1);
	if (days < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("days_old must not be negative"),
				 errhint("Pass 0 to remove every soft-deleted row.")));
	rel = lc_open_owned_table(relid, AccessShareLock, "cleanup_soft_deleted_records");
	relation_close(rel, AccessShareLock);
	cutoff = DirectFunctionCall2(timestamptz_mi_interval,
								 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
								 DirectFunctionCall7(make_interval, 0, 0, 0, Int32GetDatum(days),
													 0, 0, Float8GetDatum(0)));
	lc_enter();
	removed = sd_cascade_purge(sd_enabled_table(relid, "cleanup_soft_deleted_records"), cutoff);
	lc_leave();
	PG_RETURN_INT32((int32) Min(removed, PG_INT32_MAX));
}

/* ---------- stats ---------- */

/*
 * soft_delete_counts(tbl): live and soft-deleted rows as the caller may see
 * them (its privileges and policies apply); NULLs for a table it may not
 * read.  The table is another owner's: it must still be a table, or an
 * owner could make it a view whose functions run with the reader's rights.
 */
PG_FUNCTION_INFO_V1(soft_delete_counts);
Datum
soft_delete_counts(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {true, true};
	Oid			relid;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "soft_delete_counts must return a record");
	desc = BlessTupleDesc(desc);
	if (PG_ARGISNULL(0))
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
	relid = PG_GETARG_OID(0);
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK)
	{
		lc_enter();
		lc_check_still_table(relid, "enable_soft_delete");
		(void) lc_sql_run(LC_CALLER, InvalidOid,
						  psprintf("SELECT pg_catalog.count(*) FILTER (WHERE deleted_at IS NULL),"
								   " pg_catalog.count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM %s",
								   lc_qualified_name_oid(relid)),
						  0, NULL, NULL, NULL, SPI_OK_SELECT, 1);
		values[0] = lc_result(0, 1, &nulls[0]);
		values[1] = lc_result(0, 2, &nulls[1]);
		lc_leave();
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
