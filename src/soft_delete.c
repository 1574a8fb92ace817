/*-------------------------------------------------------------------------
 *
 * soft_delete.c
 *	  Soft delete with cascades along foreign keys and exact restore.
 *
 *	  A soft delete is an UPDATE that sets deleted_at and deleted_by.  The
 *	  functions here check the caller's authority on the root row as the
 *	  caller (privileges and RLS apply), then update the root and walk the
 *	  foreign keys between enabled tables as the extension's owner, one
 *	  set-based UPDATE per foreign key per level.  Every row of one cascade
 *	  gets the same deleted_at, unique to that cascade in this backend, and
 *	  the same deleted_by, which is how restore finds exactly those rows.
 *
 *	  Per table we cache the columns, the key and the foreign-key graph
 *	  with prepared plans; entries are rebuilt after relcache invalidation
 *	  and the old ones freed only when no operation can still be using them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/backendid.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "pg_lifecycle.h"

#define SD_GUARD_UPD	"lifecycle_soft_delete_guard_upd"
#define SD_GUARD_INS	"lifecycle_soft_delete_guard_ins"
#define SD_INTERCEPT	"lifecycle_soft_delete_intercept"
#define SD_DEFAULT_TENANT	"public.accounts"

/* A foreign key from one enabled table (child) to another (parent). */
typedef struct SdFk
{
	Oid			child;
	Oid			parent;
	int			nkeys;
	AttrNumber	child_cols[INDEX_MAX_KEYS];
	AttrNumber	parent_cols[INDEX_MAX_KEYS];
	SPIPlanPtr	delete_plan;	/* children of parents deleted at $1 by $2 */
	SPIPlanPtr	restore_plan;	/* children deleted at $1 by $2 under live parents */
	SPIPlanPtr	guard_plan;		/* lock the parent of these key values */
} SdFk;

/* What we know about one table; keyed by relid. */
typedef struct SdTable
{
	Oid			relid;
	bool		valid;
	bool		enabled;		/* has the guard trigger of enable_soft_delete */
	MemoryContext cxt;			/* everything below */
	char	   *qualname;		/* quoted schema.table */
	char	   *jsonname;		/* schema.table as the reports name it */
	AttrNumber	deleted_at;
	AttrNumber	deleted_by;
	AttrNumber	key_attnum;		/* single-column primary key, else 0 */
	Oid			key_type;
	char	   *key_name;		/* quoted */
	List	   *children;		/* SdFk where this table is the parent */
	List	   *parents;		/* SdFk where this table is the child */
	SPIPlanPtr	check_plan;		/* as the caller: lock the row, is it deleted */
	SPIPlanPtr	state_plan;		/* as owner: deleted_at, deleted_by of the row */
	SPIPlanPtr	delete_plan;	/* as owner: soft-delete the root row */
	SPIPlanPtr	restore_plan;	/* as owner: restore the root row */
	SPIPlanPtr	purge_plan;		/* as owner: delete a soft-deleted row */
	List	   *plans;			/* every plan above and in the SdFks, to free */
} SdTable;

static HTAB *sd_cache = NULL;
static List *sd_graveyard = NIL;	/* replaced entries (copies), to free */
static int	sd_depth = 0;		/* operations in progress in this backend */
static int	sd_cascading = 0;	/* cascade or purge statements running */
static int	sd_hard_delete = 0;	/* permanent deletes in progress: no intercept */
static TimestampTz sd_last_stamp = 0;

/* Rows changed per table by one operation, for the jsonb report. */
typedef struct SdReport
{
	List	   *relids;
	List	   *counts;
} SdReport;

/* ---------- cache ---------- */

static void
sd_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	SdTable    *t;

	hash_seq_init(&status, sd_cache);
	while ((t = hash_seq_search(&status)) != NULL)
		if (relid == InvalidOid || t->relid == relid)
			t->valid = false;
}

static void
sd_free_graveyard(void)
{
	ListCell   *lc;

	foreach(lc, sd_graveyard)
	{
		SdTable    *old = lfirst(lc);
		ListCell   *p;

		foreach(p, old->plans)
			SPI_freeplan((SPIPlanPtr) lfirst(p));
		MemoryContextDelete(old->cxt);
	}
	list_free(sd_graveyard);
	sd_graveyard = NIL;
}

/*
 * A transaction ended: no operation runs any more.  Replaced entries are not
 * freed here: on abort the failed statement's resource owner still holds
 * their plans; the next operation frees them.
 */
static void
sd_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE)
	{
		sd_depth = 0;
		sd_cascading = 0;
		sd_hard_delete = 0;
	}
}

static void
sd_cache_init(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(SdTable);
	ctl.hcxt = TopMemoryContext;
	sd_cache = hash_create("pg_lifecycle soft delete tables", 64, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(sd_invalidate, (Datum) 0);
	RegisterXactCallback(sd_xact_callback, NULL);
}

/*
 * An operation starts / ends: connect to SPI and pin search_path.  Replaced
 * entries are freed when an operation starts and none is running, so that
 * no plan being executed is freed.  An operation that fails leaves the depth
 * raised until the transaction ends, which only delays the freeing.
 */
static int
sd_enter(void)
{
	SPI_connect();
	if (sd_depth == 0)
		sd_free_graveyard();
	sd_depth++;
	return lifecycle_pin_search_path();
}

static void
sd_leave(int nestlevel)
{
	lifecycle_unpin_search_path(nestlevel);
	sd_depth--;
	SPI_finish();
}

static bool
sd_has_trigger(Relation rel, const char *name)
{
	int			i;

	for (i = 0; rel->trigdesc && i < rel->trigdesc->numtriggers; i++)
		if (strcmp(rel->trigdesc->triggers[i].tgname, name) == 0)
			return true;
	return false;
}

static bool
sd_rel_enabled(Oid relid)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);
	bool		enabled;

	if (rel == NULL)
		return false;
	enabled = sd_has_trigger(rel, SD_GUARD_UPD);
	relation_close(rel, AccessShareLock);
	return enabled;
}

static AttrNumber
sd_attnum(Relation rel, const char *name)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), name);

	return attnum > 0 ? attnum : InvalidAttrNumber;
}

static SdFk *
sd_make_fk(Oid child, Oid parent, int nkeys, const int16 *ccols, const int16 *pcols)
{
	SdFk	   *fk = palloc0(sizeof(SdFk));
	int			i;

	fk->child = child;
	fk->parent = parent;
	fk->nkeys = nkeys;
	for (i = 0; i < nkeys; i++)
	{
		fk->child_cols[i] = ccols[i];
		fk->parent_cols[i] = pcols[i];
	}
	return fk;
}

/* Foreign keys from enabled tables that reference this one. */
static List *
sd_find_children(Oid relid)
{
	Relation	conrel = table_open(ConstraintRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(conrel, InvalidOid, false, NULL, 0, NULL);
	HeapTuple	tup;
	List	   *result = NIL;

	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
		int16		ccols[INDEX_MAX_KEYS];
		int16		pcols[INDEX_MAX_KEYS];
		int			nkeys;

		if (con->contype != CONSTRAINT_FOREIGN || con->confrelid != relid ||
			OidIsValid(con->conparentid) || !sd_rel_enabled(con->conrelid))
			continue;
		DeconstructFkConstraintRow(tup, &nkeys, ccols, pcols, NULL, NULL, NULL,
								   NULL, NULL);
		result = lappend(result, sd_make_fk(con->conrelid, relid, nkeys, ccols, pcols));
	}
	systable_endscan(scan);
	table_close(conrel, AccessShareLock);
	return result;
}

/* Foreign keys from this table to enabled tables. */
static List *
sd_find_parents(Relation rel)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, RelationGetFKeyList(rel))
	{
		ForeignKeyCacheInfo *fk = lfirst(lc);

		if (sd_rel_enabled(fk->confrelid))
			result = lappend(result, sd_make_fk(RelationGetRelid(rel), fk->confrelid,
												fk->nkeys, fk->conkey, fk->confkey));
	}
	return result;
}

static void
sd_build(SdTable *t, Relation rel)
{
	MemoryContext old;
	Oid			pkoid;
	char	   *nsp = get_namespace_name(RelationGetNamespace(rel));

	t->cxt = AllocSetContextCreate(CacheMemoryContext, "pg_lifecycle soft delete table",
								   ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(t->cxt);
	t->enabled = sd_has_trigger(rel, SD_GUARD_UPD);
	t->qualname = quote_qualified_identifier(nsp, RelationGetRelationName(rel));
	t->jsonname = psprintf("%s.%s", nsp, RelationGetRelationName(rel));
	t->deleted_at = sd_attnum(rel, "deleted_at");
	t->deleted_by = sd_attnum(rel, "deleted_by");
	t->key_attnum = InvalidAttrNumber;
	pkoid = RelationGetPrimaryKeyIndex(rel);
	if (OidIsValid(pkoid))
	{
		Relation	idx = index_open(pkoid, AccessShareLock);

		if (idx->rd_index->indnkeyatts == 1 && idx->rd_index->indkey.values[0] > 0)
		{
			t->key_attnum = idx->rd_index->indkey.values[0];
			t->key_type = TupleDescAttr(RelationGetDescr(rel), t->key_attnum - 1)->atttypid;
			t->key_name = pstrdup(quote_identifier(get_attname(t->relid, t->key_attnum, false)));
		}
		index_close(idx, AccessShareLock);
	}
	t->children = t->enabled ? sd_find_children(t->relid) : NIL;
	t->parents = t->enabled ? sd_find_parents(rel) : NIL;
	MemoryContextSwitchTo(old);
}

/* The cache entry of a table, rebuilt when the table (or a neighbour) changed. */
static SdTable *
sd_lookup(Oid relid)
{
	SdTable    *t;
	bool		found;
	Relation	rel;

	if (sd_cache == NULL)
		sd_cache_init();
	t = hash_search(sd_cache, &relid, HASH_ENTER, &found);
	if (found && t->valid)
		return t;
	if (found && t->cxt)
	{
		SdTable    *old = MemoryContextAlloc(t->cxt, sizeof(SdTable));

		MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);

		memcpy(old, t, sizeof(SdTable));
		sd_graveyard = lappend(sd_graveyard, old);
		MemoryContextSwitchTo(oldcxt);
	}
	memset(t, 0, sizeof(SdTable));
	t->relid = relid;
	rel = relation_open(relid, AccessShareLock);
	PG_TRY();
	{
		sd_build(t, rel);
	}
	PG_CATCH();
	{
		hash_search(sd_cache, &relid, HASH_REMOVE, NULL);
		PG_RE_THROW();
	}
	PG_END_TRY();
	relation_close(rel, AccessShareLock);
	t->valid = true;
	return t;
}

/* Keep a plan for the entry's life: freed with the entry. */
static SPIPlanPtr
sd_prepare(SdTable *t, const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);
	MemoryContext old;

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed (%s) for: %s",
			 SPI_result_code_string(SPI_result), sql);
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	old = MemoryContextSwitchTo(t->cxt);
	t->plans = lappend(t->plans, plan);
	MemoryContextSwitchTo(old);
	return plan;
}

/* ---------- checks on the arguments ---------- */

static void
sd_null_error(const char *what, const char *example)
{
	ereport(ERROR,
			(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
			 errmsg("%s must not be NULL", what),
			 errhint("%s", example)));
}

/* The enabled table of tbl, or an error that says what to do. */
static SdTable *
sd_enabled_table(Oid relid, const char *funcname)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	SdTable    *t;

	lifecycle_check_table(rel, funcname);
	relation_close(rel, AccessShareLock);
	t = sd_lookup(relid);
	if (!t->enabled)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is not enabled for soft delete", get_rel_name(relid)),
				 errhint("Enable it first: SELECT lifecycle.enable_soft_delete('%s');",
						 t->qualname)));
	return t;
}

static void
sd_require_key(SdTable *t, const char *funcname)
{
	if (t->key_attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("table \"%s\" has no single-column primary key", get_rel_name(t->relid)),
				 errdetail("%s finds the row by its primary key, which must be one column.",
						   funcname),
				 errhint("Add a primary key such as id, or soft-delete by UPDATE ... SET deleted_at = now().")));
}

/* record_id, given in any type, as a value of the key column's type. */
static Datum
sd_key_datum(FunctionCallInfo fcinfo, SdTable *t)
{
	Oid			argtype = get_fn_expr_argtype(fcinfo->flinfo, 1);
	Oid			outfunc,
				infunc,
				ioparam;
	bool		isvarlena;
	char	   *text;

	if (PG_ARGISNULL(1))
		sd_null_error("record_id", "Pass the primary key value of the row.");
	if (argtype == t->key_type)
		return PG_GETARG_DATUM(1);
	getTypeOutputInfo(argtype, &outfunc, &isvarlena);
	text = OidOutputFunctionCall(outfunc, PG_GETARG_DATUM(1));
	getTypeInputInfo(t->key_type, &infunc, &ioparam);
	return OidInputFunctionCall(infunc, text, ioparam, -1);
}

static Oid
sd_table_arg(FunctionCallInfo fcinfo, const char *example)
{
	if (PG_ARGISNULL(0))
		sd_null_error("table", example);
	return PG_GETARG_OID(0);
}

/* ---------- the cascade ---------- */

static void
sd_report_add(SdReport *rep, Oid relid, uint64 n)
{
	ListCell   *r,
			   *c;

	if (rep == NULL || n == 0)
		return;
	forboth(r, rep->relids, c, rep->counts)
	{
		if (lfirst_oid(r) == relid)
		{
			lfirst(c) = (void *) ((uintptr_t) lfirst(c) + n);
			return;
		}
	}
	rep->relids = lappend_oid(rep->relids, relid);
	rep->counts = lappend(rep->counts, (void *) (uintptr_t) n);
}

static char *
sd_report_text(SdReport *rep)
{
	StringInfoData buf;
	ListCell   *r,
			   *c;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	forboth(r, rep->relids, c, rep->counts)
	{
		if (!first)
			appendStringInfoString(&buf, ", ");
		first = false;
		escape_json(&buf, sd_lookup(lfirst_oid(r))->jsonname);
		appendStringInfo(&buf, ": " UINT64_FORMAT, (uint64) (uintptr_t) lfirst(c));
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* "c.a = p.x AND c.b = p.y" for a foreign key */
static void
sd_append_join(StringInfo sql, SdFk *fk)
{
	int			i;

	for (i = 0; i < fk->nkeys; i++)
		appendStringInfo(sql, "%sc.%s = p.%s", i > 0 ? " AND " : "",
						 quote_identifier(get_attname(fk->child, fk->child_cols[i], false)),
						 quote_identifier(get_attname(fk->parent, fk->parent_cols[i], false)));
}

/*
 * Conditions that the child's other enabled parents are live or part of
 * this same cascade, so that a restore never leaves a live row under a
 * parent that another cascade deleted.
 */
static void
sd_append_other_parents(StringInfo sql, SdTable *child, SdFk *via)
{
	ListCell   *lc;
	int			n = 0;

	foreach(lc, child->parents)
	{
		SdFk	   *fk = lfirst(lc);
		int			i;

		if (fk->parent == via->parent &&
			memcmp(fk->child_cols, via->child_cols, sizeof(AttrNumber) * fk->nkeys) == 0)
			continue;
		appendStringInfo(sql, " AND NOT EXISTS (SELECT 1 FROM %s o%d WHERE ",
						 sd_lookup(fk->parent)->qualname, n);
		for (i = 0; i < fk->nkeys; i++)
			appendStringInfo(sql, "o%d.%s = c.%s AND ", n,
							 quote_identifier(get_attname(fk->parent, fk->parent_cols[i], false)),
							 quote_identifier(get_attname(fk->child, fk->child_cols[i], false)));
		appendStringInfo(sql, "o%d.deleted_at IS NOT NULL AND (o%d.deleted_at <> $1"
						 " OR o%d.deleted_by IS DISTINCT FROM $2))", n, n, n);
		n++;
	}
}

static SPIPlanPtr
sd_fk_plan(SdTable *parent, SdFk *fk, bool restore)
{
	SdTable    *child = sd_lookup(fk->child);
	StringInfoData sql;
	Oid			argtypes[2] = {TIMESTAMPTZOID, UUIDOID};
	SPIPlanPtr *slot = restore ? &fk->restore_plan : &fk->delete_plan;

	if (*slot)
		return *slot;
	initStringInfo(&sql);
	if (!restore)
	{
		appendStringInfo(&sql, "UPDATE %s c SET deleted_at = $1, deleted_by = $2 FROM %s p WHERE ",
						 child->qualname, parent->qualname);
		sd_append_join(&sql, fk);
		appendStringInfoString(&sql, " AND p.deleted_at = $1 AND p.deleted_by IS NOT DISTINCT FROM $2"
							   " AND c.deleted_at IS NULL");
	}
	else
	{
		appendStringInfo(&sql, "UPDATE %s c SET deleted_at = NULL, deleted_by = NULL FROM %s p WHERE ",
						 child->qualname, parent->qualname);
		sd_append_join(&sql, fk);
		appendStringInfoString(&sql, " AND p.deleted_at IS NULL AND c.deleted_at = $1"
							   " AND c.deleted_by IS NOT DISTINCT FROM $2");
		sd_append_other_parents(&sql, child, fk);
	}
	*slot = sd_prepare(parent, sql.data, 2, argtypes);
	return *slot;
}

/*
 * Walk the foreign keys breadth first from the root's table: one UPDATE per
 * foreign key per level, each touching only rows not yet in the target
 * state, so cycles and self-references end when a level changes nothing.
 * Runs as the extension owner; the caller's authority was checked on the root.
 */
static void
sd_cascade(Oid root, bool restore, Datum stamp, Datum actor, bool actor_null,
		   SdReport *rep)
{
	List	   *queue = list_make1_oid(root);
	Datum		values[2] = {stamp, actor};
	char		nulls[2] = {' ', actor_null ? 'n' : ' '};

	/* the guard is not needed inside: these statements keep the rule */
	sd_cascading++;
	PG_TRY();
	{
		while (queue != NIL)
		{
			SdTable    *parent = sd_lookup(linitial_oid(queue));
			List	   *children = parent->children;
			ListCell   *lc;

			queue = list_delete_first(queue);
			foreach(lc, children)
			{
				SdFk	   *fk = lfirst(lc);
				SPIPlanPtr	plan = sd_fk_plan(parent, fk, restore);
				LifecycleUserSave save;
				int			rc;

				lifecycle_become_table_owner(fk->child, &save);
				rc = SPI_execute_plan(plan, values, nulls, false, 0);
				lifecycle_restore_user(&save);

				if (rc != SPI_OK_UPDATE)
					elog(ERROR, "cascade on \"%s\" failed: %s", get_rel_name(fk->child),
						 SPI_result_code_string(rc));
				if (SPI_processed == 0)
					continue;
				sd_report_add(rep, fk->child, SPI_processed);
				if (!list_member_oid(queue, fk->child))
					queue = lappend_oid(queue, fk->child);
			}
		}
	}
	PG_FINALLY();
	{
		sd_cascading--;
	}
	PG_END_TRY();
}

/*
 * A deleted_at that no other cascade has: the clock to the millisecond,
 * with this backend's slot (unique among running backends) in the
 * microseconds, and strictly increasing within the backend.  Restore finds
 * a cascade's rows by this stamp (and deleted_by), so it must not repeat.
 */
static TimestampTz
sd_next_stamp(void)
{
	TimestampTz slot = MyBackendId % 1000;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz stamp = now - now % 1000 + slot;

	if (stamp <= sd_last_stamp)
		stamp = sd_last_stamp - sd_last_stamp % 1000 + 1000 + slot;
	sd_last_stamp = stamp;
	return stamp;
}

/* ---------- the root row, checked as the caller ---------- */

/* deleted_at, deleted_by of the row with key $1 (run as the owner) */
static SPIPlanPtr
sd_state_plan(SdTable *t)
{
	Oid			argtypes[1] = {t->key_type};

	if (t->state_plan == NULL)
		t->state_plan = sd_prepare(t, psprintf("SELECT deleted_at, deleted_by FROM %s WHERE %s = $1",
											   t->qualname, t->key_name), 1, argtypes);
	return t->state_plan;
}

typedef enum SdRowState
{
	SD_ROW_MISSING,
	SD_ROW_LIVE,
	SD_ROW_DELETED
} SdRowState;

static void
sd_check_column_privilege(SdTable *t, AclMode mode, const char *what)
{
	Oid			user = GetUserId();

	if (pg_class_aclcheck(t->relid, user, mode) == ACLCHECK_OK)
		return;
	if (mode == ACL_UPDATE &&
		pg_attribute_aclcheck(t->relid, t->deleted_at, user, mode) == ACLCHECK_OK &&
		pg_attribute_aclcheck(t->relid, t->deleted_by, user, mode) == ACLCHECK_OK)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to %s rows of table \"%s\"", what, get_rel_name(t->relid)),
			 errhint("Grant %s on the table (or on deleted_at and deleted_by) to the role.",
					 mode == ACL_UPDATE ? "UPDATE" : "DELETE")));
}

/*
 * Lock the row as the caller: SELECT ... FOR UPDATE applies the caller's
 * privileges and the USING clauses of its SELECT and UPDATE policies, the
 * same test an UPDATE of the row would pass, but not the check of the new
 * row against SELECT policies that makes a plain soft-delete UPDATE fail on
 * Supabase.  A row the caller cannot lock but that exists is permission
 * denied; one that does not exist is SD_ROW_MISSING.
 */
static SdRowState
sd_check_row(SdTable *t, Datum key, const char *what)
{
	Oid			argtypes[1] = {t->key_type};
	Datum		values[1] = {key};
	bool		isnull;
	int			rc;
	LifecycleUserSave save;
	bool		exists;

	if (t->check_plan == NULL)
	{
		char	   *sql = psprintf("SELECT deleted_at IS NOT NULL FROM %s WHERE %s = $1 FOR UPDATE",
								   t->qualname, t->key_name);

		t->check_plan = sd_prepare(t, sql, 1, argtypes);
	}
	rc = SPI_execute_plan(t->check_plan, values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "row check failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
		return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										  1, &isnull)) ? SD_ROW_DELETED : SD_ROW_LIVE;

	/* not visible to the caller: does it exist at all? */
	lifecycle_become_table_owner(t->relid, &save);
	rc = SPI_execute_plan(sd_state_plan(t), values, NULL, true, 1);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "row lookup failed: %s", SPI_result_code_string(rc));
	exists = SPI_processed > 0;
	if (!exists)
		return SD_ROW_MISSING;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to %s this row of table \"%s\"", what,
					get_rel_name(t->relid)),
			 errdetail("The row exists, but the row-level security policies of the current role do not let it update the row."),
			 errhint("Act as a role whose policies allow updating the row, such as its owner or service_role.")));
	return SD_ROW_MISSING;		/* keep compiler quiet */
}

/* deleted_at and deleted_by of a row, read as the owner. */
static void
sd_row_stamps(SdTable *t, Datum key, Datum *stamp, Datum *actor, bool *actor_null)
{
	Datum		values[1] = {key};
	bool		isnull;
	int			rc;

	rc = SPI_execute_plan(sd_state_plan(t), values, NULL, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "row of \"%s\" vanished", get_rel_name(t->relid));
	*stamp = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	*actor = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, actor_null);
	*actor = *actor_null ? (Datum) 0 : datumCopy(*actor, false, UUID_LEN);
}

/* ---------- soft delete and restore of one root ---------- */

/* Soft-delete the root row and its descendants; false when nothing was live. */
static bool
sd_delete_root(SdTable *t, Datum key, Datum actor, bool actor_null, SdReport *rep)
{
	Oid			argtypes[3] = {t->key_type, TIMESTAMPTZOID, UUIDOID};
	Datum		stamp;
	Datum		values[3];
	char		nulls[3] = {' ', ' ', actor_null ? 'n' : ' '};
	LifecycleUserSave save;
	int			rc;
	uint64		deleted;

	sd_check_column_privilege(t, ACL_UPDATE, "soft-delete");
	if (sd_check_row(t, key, "soft-delete") != SD_ROW_LIVE)
		return false;

	if (t->delete_plan == NULL)
	{
		char	   *sql = psprintf("UPDATE %s SET deleted_at = $2, deleted_by = $3"
								   " WHERE %s = $1 AND deleted_at IS NULL",
								   t->qualname, t->key_name);

		t->delete_plan = sd_prepare(t, sql, 3, argtypes);
	}
	stamp = TimestampTzGetDatum(sd_next_stamp());
	values[0] = key;
	values[1] = stamp;
	values[2] = actor;
	lifecycle_become_table_owner(t->relid, &save);
	rc = SPI_execute_plan(t->delete_plan, values, nulls, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "soft delete failed: %s", SPI_result_code_string(rc));
	deleted = SPI_processed;
	sd_report_add(rep, t->relid, deleted);
	if (deleted > 0)
		sd_cascade(t->relid, false, stamp, actor, actor_null, rep);
	lifecycle_restore_user(&save);
	return deleted > 0;
}

/* Restore the root row and exactly what its cascade deleted. */
static bool
sd_restore_root(SdTable *t, Datum key, SdReport *rep)
{
	Oid			argtypes[2] = {t->key_type, TIMESTAMPTZOID};
	Datum		stamp,
				actor;
	bool		actor_null;
	Datum		values[2];
	LifecycleUserSave save;
	int			rc;
	uint64		restored;

	sd_check_column_privilege(t, ACL_UPDATE, "restore");
	if (sd_check_row(t, key, "restore") != SD_ROW_DELETED)
		return false;

	if (t->restore_plan == NULL)
	{
		char	   *sql = psprintf("UPDATE %s SET deleted_at = NULL, deleted_by = NULL"
								   " WHERE %s = $1 AND deleted_at = $2",
								   t->qualname, t->key_name);

		t->restore_plan = sd_prepare(t, sql, 2, argtypes);
	}
	lifecycle_become_table_owner(t->relid, &save);
	sd_row_stamps(t, key, &stamp, &actor, &actor_null);
	values[0] = key;
	values[1] = stamp;
	rc = SPI_execute_plan(t->restore_plan, values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "restore failed: %s", SPI_result_code_string(rc));
	restored = SPI_processed;
	sd_report_add(rep, t->relid, restored);
	if (restored > 0)
		sd_cascade(t->relid, true, stamp, actor, actor_null, rep);
	lifecycle_restore_user(&save);
	return restored > 0;
}

/* ---------- SQL-callable: soft delete, restore, permanent delete ---------- */

/* The actor argument (deleted_by), which may be NULL: nobody known. */
static Datum
sd_actor_arg(FunctionCallInfo fcinfo, int argno, bool *isnull)
{
	*isnull = PG_ARGISNULL(argno);
	return *isnull ? (Datum) 0 : PG_GETARG_DATUM(argno);
}

/*
 * One soft delete or restore of a root row.  keyarg is the argument holding
 * the record id; actorarg the deleted_by argument (soft delete only).
 */
static Datum
sd_run(FunctionCallInfo fcinfo, Oid relid, int keyarg, int actorarg,
	   bool restore, bool report, const char *funcname)
{
	int			nest;
	MemoryContext callercxt = CurrentMemoryContext;
	SdReport	rep = {NIL, NIL};
	SdTable    *t;
	Datum		key;
	bool		done;
	char	   *json = NULL;

	nest = sd_enter();
	t = sd_enabled_table(relid, funcname);
	sd_require_key(t, funcname);
	if (PG_ARGISNULL(keyarg))
		sd_null_error("record_id", "Pass the primary key value of the row.");
	key = keyarg == 1 ? sd_key_datum(fcinfo, t) : PG_GETARG_DATUM(keyarg);
	if (restore)
		done = sd_restore_root(t, key, &rep);
	else
	{
		bool		actor_null;
		Datum		actor = sd_actor_arg(fcinfo, actorarg, &actor_null);

		done = sd_delete_root(t, key, actor, actor_null, &rep);
	}
	if (report)
	{
		MemoryContext old = MemoryContextSwitchTo(callercxt);

		json = sd_report_text(&rep);
		MemoryContextSwitchTo(old);
	}
	sd_leave(nest);
	if (report)
		return DirectFunctionCall1(jsonb_in, CStringGetDatum(json));
	return BoolGetDatum(done);
}

PG_FUNCTION_INFO_V1(soft_delete);
Datum
soft_delete(PG_FUNCTION_ARGS)
{
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.soft_delete('public.projects', id).");

	return sd_run(fcinfo, relid, 1, 2, false, false, "soft_delete");
}

PG_FUNCTION_INFO_V1(soft_delete_cascade);
Datum
soft_delete_cascade(PG_FUNCTION_ARGS)
{
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.soft_delete_cascade('public.projects', id).");

	return sd_run(fcinfo, relid, 1, 2, false, true, "soft_delete_cascade");
}

PG_FUNCTION_INFO_V1(restore_deleted);
Datum
restore_deleted(PG_FUNCTION_ARGS)
{
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.restore_deleted('public.projects', id).");

	return sd_run(fcinfo, relid, 1, -1, true, false, "restore_deleted");
}

PG_FUNCTION_INFO_V1(restore_cascade);
Datum
restore_cascade(PG_FUNCTION_ARGS)
{
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.restore_cascade('public.projects', id).");

	return sd_run(fcinfo, relid, 1, -1, true, true, "restore_cascade");
}

/* The tenant table: set_tenant_table()'s choice, else public.accounts. */
static Oid
sd_tenant_table(void)
{
	LifecycleUserSave save;
	int			rc;
	Oid			relid = InvalidOid;
	bool		isnull;

	lifecycle_become_owner(&save);
	rc = SPI_execute("SELECT tenant_table::oid FROM " LIFECYCLE_SCHEMA ".soft_delete_tenant", true, 1);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the tenant table: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
		return DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
	relid = RangeVarGetRelid(makeRangeVar("public", "accounts", -1), NoLock, true);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("tenant table " SD_DEFAULT_TENANT " does not exist"),
				 errdetail("soft_delete_account() and restore_account() work on the tenant table, public.accounts unless set otherwise."),
				 errhint("Name your tenant table: SELECT lifecycle.set_tenant_table('myschema.tenants');")));
	return relid;
}

static Datum
sd_run_account(FunctionCallInfo fcinfo, bool restore)
{
	int			nest;
	Oid			relid;
	const char *funcname = restore ? "restore_account" : "soft_delete_account";

	if (PG_ARGISNULL(0))
		sd_null_error("account_id", "Pass the id of the account.");
	nest = sd_enter();
	relid = sd_tenant_table();
	sd_leave(nest);
	return sd_run(fcinfo, relid, 0, 1, restore, true, funcname);
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

/*
 * Delete for good a row that is already soft-deleted, as the caller (its
 * privileges and DELETE policies apply); foreign keys decide what happens to
 * rows that reference it.
 */
PG_FUNCTION_INFO_V1(permanent_delete);
Datum
permanent_delete(PG_FUNCTION_ARGS)
{
	int			nest;
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.permanent_delete('public.projects', id).");
	SdTable    *t;
	Datum		key;
	Datum		values[1];
	Oid			argtypes[1];
	LifecycleUserSave save;
	bool		isnull;
	bool		deleted;
	int			rc;
	uint64		removed;

	nest = sd_enter();
	t = sd_enabled_table(relid, "permanent_delete");
	sd_require_key(t, "permanent_delete");
	key = sd_key_datum(fcinfo, t);
	sd_check_column_privilege(t, ACL_DELETE, "permanently delete");
	values[0] = key;
	argtypes[0] = t->key_type;

	lifecycle_become_table_owner(t->relid, &save);
	rc = SPI_execute_plan(sd_state_plan(t), values, NULL, true, 1);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "row lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
	{
		sd_leave(nest);
		PG_RETURN_BOOL(false);
	}
	SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	deleted = !isnull;
	if (!deleted)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("row of table \"%s\" is not soft-deleted", get_rel_name(relid)),
				 errdetail("permanent_delete only removes rows that are already soft-deleted."),
				 errhint("Soft-delete it first with lifecycle.soft_delete(), or use DELETE.")));

	if (t->purge_plan == NULL)
		t->purge_plan = sd_prepare(t, psprintf("DELETE FROM %s WHERE %s = $1 AND deleted_at IS NOT NULL",
											   t->qualname, t->key_name), 1, argtypes);
	sd_hard_delete++;
	PG_TRY();
	{
		rc = SPI_execute_plan(t->purge_plan, values, NULL, false, 0);
	}
	PG_FINALLY();
	{
		sd_hard_delete--;
	}
	PG_END_TRY();
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "permanent delete failed: %s", SPI_result_code_string(rc));
	removed = SPI_processed;
	if (removed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to permanently delete this row of table \"%s\"",
						get_rel_name(relid)),
				 errdetail("The row exists, but the row-level security policies of the current role do not let it delete the row."),
				 errhint("Act as a role whose policies allow deleting soft-deleted rows, such as service_role.")));
	sd_leave(nest);
	PG_RETURN_BOOL(true);
}

/* ---------- cleanup_soft_deleted_records ---------- */

/* One table of the purge: its rows are those matching pred (alias a<depth>). */
typedef struct SdPurgeNode
{
	Oid			relid;
	int			depth;
	char	   *pred;
} SdPurgeNode;

#define SD_PURGE_MAX_DEPTH 64

/* "a3.c = ANY ..." style predicate for the children of node via fk. */
static char *
sd_child_pred(SdPurgeNode *node, SdFk *fk, int depth)
{
	StringInfoData sql;
	int			i;

	initStringInfo(&sql);
	appendStringInfo(&sql, "a%d.deleted_at IS NOT NULL AND (", depth);
	for (i = 0; i < fk->nkeys; i++)
		appendStringInfo(&sql, "%sa%d.%s", i ? ", " : "", depth,
						 quote_identifier(get_attname(fk->child, fk->child_cols[i], false)));
	appendStringInfoString(&sql, ") IN (SELECT ");
	for (i = 0; i < fk->nkeys; i++)
		appendStringInfo(&sql, "%sa%d.%s", i ? ", " : "", node->depth,
						 quote_identifier(get_attname(fk->parent, fk->parent_cols[i], false)));
	appendStringInfo(&sql, " FROM %s a%d WHERE %s)", sd_lookup(fk->parent)->qualname,
					 node->depth, node->pred);
	return sql.data;
}

static uint64
sd_purge_exec(SdPurgeNode *node, const char *verb, Datum cutoff)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		values[1] = {cutoff};
	char	   *sql = psprintf("%s %s a%d WHERE %s", verb, sd_lookup(node->relid)->qualname,
							   node->depth, node->pred);
	LifecycleUserSave save;
	int			rc;

	lifecycle_become_table_owner(node->relid, &save);
	rc = SPI_execute_with_args(sql, 1, argtypes, values, NULL, false, 0);
	lifecycle_restore_user(&save);

	if (rc != SPI_OK_SELECT && rc != SPI_OK_DELETE)
		elog(ERROR, "cleanup failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * Rows soft-deleted before the cutoff and, through foreign keys between
 * enabled tables, their soft-deleted descendants: find them level by level,
 * then delete the deepest level first so that children go before parents.
 */
PG_FUNCTION_INFO_V1(cleanup_soft_deleted_records);
Datum
cleanup_soft_deleted_records(PG_FUNCTION_ARGS)
{
	int			nest;
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.cleanup_soft_deleted_records('public.projects', 90).");
	int32		days;
	Relation	rel;
	Datum		cutoff;
	List	   *nodes = NIL;
	SdPurgeNode *root;
	uint64		removed = 0;
	int			i;

	if (PG_ARGISNULL(1))
		sd_null_error("days_old", "Pass the age in days, e.g. 90.");
	days = PG_GETARG_INT32(1);
	if (days < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("days_old must not be negative"),
				 errhint("Pass 0 to remove every soft-deleted row.")));
	rel = relation_open(relid, AccessShareLock);
	lifecycle_check_table(rel, "cleanup_soft_deleted_records");
	lifecycle_check_owner(rel);
	relation_close(rel, AccessShareLock);
	cutoff = DirectFunctionCall2(timestamptz_mi_interval,
								 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
								 DirectFunctionCall7(make_interval, 0, 0, 0, Int32GetDatum(days),
													 0, 0, Float8GetDatum(0)));

	nest = sd_enter();
	sd_enabled_table(relid, "cleanup_soft_deleted_records");
	root = palloc(sizeof(SdPurgeNode));
	root->relid = relid;
	root->depth = 0;
	root->pred = "a0.deleted_at < $1";
	nodes = list_make1(root);
	for (i = 0; i < list_length(nodes); i++)
	{
		SdPurgeNode *node = list_nth(nodes, i);
		List	   *children;
		ListCell   *lc;

		if (sd_purge_exec(node, "SELECT 1 FROM", cutoff) == 0)
			continue;
		if (node->depth + 1 >= SD_PURGE_MAX_DEPTH)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("soft-deleted rows under \"%s\" nest deeper than %d levels",
							get_rel_name(relid), SD_PURGE_MAX_DEPTH),
					 errhint("Look for a cycle of rows referencing each other; remove it by hand.")));
		children = sd_lookup(node->relid)->children;
		foreach(lc, children)
		{
			SdFk	   *fk = lfirst(lc);
			SdPurgeNode *child = palloc(sizeof(SdPurgeNode));

			child->relid = fk->child;
			child->depth = node->depth + 1;
			child->pred = sd_child_pred(node, fk, child->depth);
			nodes = lappend(nodes, child);
		}
	}
	sd_hard_delete++;
	PG_TRY();
	{
		for (i = list_length(nodes) - 1; i >= 0; i--)
			removed += sd_purge_exec(list_nth(nodes, i), "DELETE FROM", cutoff);
	}
	PG_FINALLY();
	{
		sd_hard_delete--;
	}
	PG_END_TRY();
	sd_leave(nest);
	PG_RETURN_INT32((int32) Min(removed, PG_INT32_MAX));
}

/* ---------- triggers ---------- */

static void
sd_trigger_misuse(FunctionCallInfo fcinfo, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			 errmsg("%s: %s", get_func_name(fcinfo->flinfo->fn_oid), what),
			 errhint("This trigger is installed by lifecycle.enable_soft_delete(); do not create it by hand.")));
}

static char *
sd_value_text(Oid type, Datum value)
{
	Oid			outfunc;
	bool		isvarlena;

	getTypeOutputInfo(type, &outfunc, &isvarlena);
	return OidOutputFunctionCall(outfunc, value);
}

static SPIPlanPtr
sd_guard_plan(SdTable *child, SdFk *fk)
{
	StringInfoData sql;
	Oid			argtypes[INDEX_MAX_KEYS];
	int			i;

	if (fk->guard_plan)
		return fk->guard_plan;
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT deleted_at IS NOT NULL FROM %s p WHERE ",
					 sd_lookup(fk->parent)->qualname);
	for (i = 0; i < fk->nkeys; i++)
	{
		appendStringInfo(&sql, "%sp.%s = $%d", i ? " AND " : "",
						 quote_identifier(get_attname(fk->parent, fk->parent_cols[i], false)),
						 i + 1);
		argtypes[i] = get_atttype(fk->child, fk->child_cols[i]);
	}
	appendStringInfoString(&sql, " FOR SHARE");
	fk->guard_plan = sd_prepare(child, sql.data, fk->nkeys, argtypes);
	return fk->guard_plan;
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

/*
 * Refuse a live row that references a soft-deleted row of an enabled table.
 * The parent is locked FOR SHARE (as the owner, so RLS cannot hide it): a
 * cascade deleting it concurrently either waits for us, and then sees and
 * soft-deletes our row, or commits first, and then we see it deleted.
 */
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
		int			i,
					rc;
		LifecycleUserSave save;

		if (TRIGGER_FIRED_BY_UPDATE(td->tg_event) && !restored && !sd_fk_changed(td, fk))
			continue;
		for (i = 0; i < fk->nkeys && !isnull; i++)
			values[i] = heap_getattr(row, fk->child_cols[i], desc, &isnull);
		if (isnull)
			continue;			/* MATCH SIMPLE: references nothing */
		lifecycle_become_table_owner(fk->parent, &save);
		rc = SPI_execute_plan(sd_guard_plan(t, fk), values, NULL, false, 1);
		lifecycle_restore_user(&save);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "soft delete guard failed: %s", SPI_result_code_string(rc));
		if (SPI_processed == 1 &&
			DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
					 restored ?
					 errmsg("cannot restore a row of table \"%s\": it references a soft-deleted row of \"%s\"",
							RelationGetRelationName(td->tg_relation), get_rel_name(fk->parent)) :
					 errmsg("a live row of table \"%s\" cannot reference a soft-deleted row of \"%s\"",
							RelationGetRelationName(td->tg_relation), get_rel_name(fk->parent)),
					 errdetail("Key (%s)=(%s) is soft-deleted in \"%s\".",
							   get_attname(fk->child, fk->child_cols[0], false),
							   sd_value_text(get_atttype(fk->child, fk->child_cols[0]), values[0]),
							   get_rel_name(fk->parent)),
					 errhint("Restore the referenced row first with lifecycle.restore_deleted(), or reference a live row.")));
	}
}

PG_FUNCTION_INFO_V1(soft_delete_guard);
Datum
soft_delete_guard(PG_FUNCTION_ARGS)
{
	int			nest;
	TriggerData *td = (TriggerData *) fcinfo->context;
	SdTable    *t;
	HeapTuple	row;
	bool		restored = false;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo))
		sd_trigger_misuse(fcinfo, "not called by trigger manager");
	if (!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(td->tg_event) || TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		sd_trigger_misuse(fcinfo, "must be fired AFTER INSERT or UPDATE FOR EACH ROW");
	/* cascades keep the rule themselves, set-based */
	if (sd_cascading > 0)
		return PointerGetDatum(NULL);

	nest = sd_enter();
	t = sd_lookup(RelationGetRelid(td->tg_relation));
	row = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	if (t->deleted_at != InvalidAttrNumber &&
		heap_attisnull(row, t->deleted_at, RelationGetDescr(td->tg_relation)))
	{
		if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		{
			heap_getattr(td->tg_trigtuple, t->deleted_at, RelationGetDescr(td->tg_relation), &isnull);
			restored = !isnull;
		}
		sd_guard_row(td, t, row, restored);
	}
	sd_leave(nest);
	return PointerGetDatum(NULL);
}

/* DELETE on an intercepting table: soft-delete the row with cascade instead. */
PG_FUNCTION_INFO_V1(soft_delete_intercept);
Datum
soft_delete_intercept(PG_FUNCTION_ARGS)
{
	int			nest;
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	SdTable    *t;
	Datum		key;
	bool		isnull;
	pg_uuid_t  *actor = palloc(sizeof(pg_uuid_t));
	bool		actor_known;
	Oid			argtypes[3];
	Datum		stamp;
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	LifecycleUserSave save;
	int			rc;

	if (!CALLED_AS_TRIGGER(fcinfo))
		sd_trigger_misuse(fcinfo, "not called by trigger manager");
	if (!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_BY_DELETE(td->tg_event))
		sd_trigger_misuse(fcinfo, "must be fired BEFORE DELETE FOR EACH ROW");
	if (sd_hard_delete > 0)
		return PointerGetDatum(td->tg_trigtuple);

	desc = RelationGetDescr(td->tg_relation);
	nest = sd_enter();
	t = sd_lookup(RelationGetRelid(td->tg_relation));
	sd_require_key(t, "intercept_delete");
	if (!heap_attisnull(td->tg_trigtuple, t->deleted_at, desc))
	{
		/* already soft-deleted: deleting it again changes nothing */
		sd_leave(nest);
		return PointerGetDatum(NULL);
	}
	key = heap_getattr(td->tg_trigtuple, t->key_attnum, desc, &isnull);
	actor_known = lifecycle_current_actor(actor);
	argtypes[0] = t->key_type;
	argtypes[1] = TIMESTAMPTZOID;
	argtypes[2] = UUIDOID;
	if (t->delete_plan == NULL)
		t->delete_plan = sd_prepare(t, psprintf("UPDATE %s SET deleted_at = $2, deleted_by = $3"
												" WHERE %s = $1 AND deleted_at IS NULL",
												t->qualname, t->key_name), 3, argtypes);
	stamp = TimestampTzGetDatum(sd_next_stamp());
	values[0] = key;
	values[1] = stamp;
	values[2] = actor_known ? UUIDPGetDatum(actor) : (Datum) 0;
	nulls[2] = actor_known ? ' ' : 'n';
	/* the DELETE passed the caller's privileges and policies on this row */
	lifecycle_become_table_owner(t->relid, &save);
	rc = SPI_execute_plan(t->delete_plan, values, nulls, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "soft delete failed: %s", SPI_result_code_string(rc));
	if (SPI_processed > 0)
		sd_cascade(t->relid, false, stamp, values[2], !actor_known, NULL);
	lifecycle_restore_user(&save);
	sd_leave(nest);
	return PointerGetDatum(NULL);
}

/* ---------- enable / disable ---------- */

static void
sd_check_existing_column(Relation rel, const char *name, Oid want)
{
	AttrNumber	attnum = sd_attnum(rel, name);
	Oid			type;

	if (attnum == InvalidAttrNumber)
		return;
	type = TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid;
	if (getBaseType(type) != want)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of table \"%s\" has type %s, not %s",
						name, RelationGetRelationName(rel), format_type_be(type),
						format_type_be(want)),
				 errdetail("Soft delete keeps deleted_at timestamptz and deleted_by uuid."),
				 errhint("Convert it, e.g. ALTER TABLE %s ALTER COLUMN %s TYPE %s USING ..., or rename it.",
						 lifecycle_qualified_name(rel), name, format_type_be(want))));
}

/* Invalidate the cached entries of every table linked to relid by a foreign key. */
static void
sd_invalidate_neighbours(Relation rel)
{
	ListCell   *lc;
	List	   *children = sd_find_children(RelationGetRelid(rel));

	foreach(lc, RelationGetFKeyList(rel))
		CacheInvalidateRelcacheByRelid(((ForeignKeyCacheInfo *) lfirst(lc))->confrelid);
	foreach(lc, children)
		CacheInvalidateRelcacheByRelid(((SdFk *) lfirst(lc))->child);
	CacheInvalidateRelcache(rel);
}

/* WHEN clause of the update guard: a restore, or a changed foreign key. */
static char *
sd_guard_when(Relation rel)
{
	StringInfoData when;
	ListCell   *lc;

	initStringInfo(&when);
	appendStringInfoString(&when, "NEW.deleted_at IS NULL AND (OLD.deleted_at IS NOT NULL");
	foreach(lc, RelationGetFKeyList(rel))
	{
		ForeignKeyCacheInfo *fk = lfirst(lc);
		int			i;

		for (i = 0; i < fk->nkeys; i++)
		{
			const char *col = quote_identifier(get_attname(RelationGetRelid(rel), fk->conkey[i], false));

			appendStringInfo(&when, " OR OLD.%s IS DISTINCT FROM NEW.%s", col, col);
		}
	}
	appendStringInfoChar(&when, ')');
	return when.data;
}

static void
sd_exec_ddl(const char *sql)
{
	lifecycle_spi_exec(sql, SPI_OK_UTILITY, 0, NULL, NULL, NULL);
}

static char *
sd_view_name(Relation rel)
{
	char	   *name = psprintf("%s_active", RelationGetRelationName(rel));
	Oid			existing;

	if (strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("view name \"%s\" would be too long", name),
				 errhint("Rename the table to at most %d characters.", NAMEDATALEN - 1 - 7)));
	existing = get_relname_relid(name, RelationGetNamespace(rel));
	if (OidIsValid(existing) && get_rel_relkind(existing) != RELKIND_VIEW)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("\"%s\" already exists and is not a view", name),
				 errdetail("enable_soft_delete creates the view %s of the live rows.", name),
				 errhint("Rename or drop \"%s\".", name)));
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)), name);
}

PG_FUNCTION_INFO_V1(enable_soft_delete);
Datum
enable_soft_delete(PG_FUNCTION_ARGS)
{
	int			nest;
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.enable_soft_delete('public.projects').");
	bool		intercept = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	Relation	rel;
	char	   *qual,
			   *view,
			   *when;
	bool		has_fks,
				had_ins,
				had_intercept,
				has_at,
				has_by;
	Oid			argtypes[2] = {OIDOID, BOOLOID};
	Datum		values[2];
	LifecycleUserSave save;

	rel = relation_open(relid, ShareRowExclusiveLock);
	lifecycle_check_table(rel, "enable_soft_delete");
	lifecycle_check_owner(rel);
	sd_check_existing_column(rel, "deleted_at", TIMESTAMPTZOID);
	sd_check_existing_column(rel, "deleted_by", UUIDOID);
	if (intercept)
	{
		Oid			pk = RelationGetPrimaryKeyIndex(rel);
		bool		single = false;

		if (OidIsValid(pk))
		{
			Relation	idx = index_open(pk, AccessShareLock);

			single = idx->rd_index->indnkeyatts == 1;
			index_close(idx, AccessShareLock);
		}
		if (!single)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("table \"%s\" has no single-column primary key", RelationGetRelationName(rel)),
					 errdetail("intercept_delete soft-deletes each deleted row by its primary key."),
					 errhint("Add a primary key, or enable soft delete without intercept_delete.")));
	}
	qual = lifecycle_qualified_name(rel);
	view = sd_view_name(rel);
	has_fks = RelationGetFKeyList(rel) != NIL;
	when = sd_guard_when(rel);
	had_ins = sd_has_trigger(rel, SD_GUARD_INS);
	had_intercept = sd_has_trigger(rel, SD_INTERCEPT);
	has_at = sd_attnum(rel, "deleted_at") != InvalidAttrNumber;
	has_by = sd_attnum(rel, "deleted_by") != InvalidAttrNumber;
	/* keep the lock, but not the relcache reference, across the DDL */
	relation_close(rel, NoLock);

	SPI_connect();
	nest = lifecycle_pin_search_path();
	if (!has_at)
		sd_exec_ddl(psprintf("ALTER TABLE %s ADD COLUMN deleted_at timestamptz", qual));
	if (!has_by)
		sd_exec_ddl(psprintf("ALTER TABLE %s ADD COLUMN deleted_by uuid", qual));
	sd_exec_ddl(psprintf("CREATE OR REPLACE VIEW %s WITH (security_invoker = true) AS"
						 " SELECT * FROM %s WHERE deleted_at IS NULL", view, qual));
	sd_exec_ddl(psprintf("CREATE OR REPLACE TRIGGER " SD_GUARD_UPD " AFTER UPDATE ON %s"
						 " FOR EACH ROW WHEN (%s)"
						 " EXECUTE FUNCTION " LIFECYCLE_SCHEMA ".soft_delete_guard()",
						 qual, when));
	if (has_fks)
		sd_exec_ddl(psprintf("CREATE OR REPLACE TRIGGER " SD_GUARD_INS " AFTER INSERT ON %s"
							 " FOR EACH ROW WHEN (NEW.deleted_at IS NULL)"
							 " EXECUTE FUNCTION " LIFECYCLE_SCHEMA ".soft_delete_guard()", qual));
	else if (had_ins)
		sd_exec_ddl(psprintf("DROP TRIGGER " SD_GUARD_INS " ON %s", qual));
	if (intercept)
		sd_exec_ddl(psprintf("CREATE OR REPLACE TRIGGER " SD_INTERCEPT " BEFORE DELETE ON %s"
							 " FOR EACH ROW EXECUTE FUNCTION " LIFECYCLE_SCHEMA ".soft_delete_intercept()",
							 qual));
	else if (had_intercept)
		sd_exec_ddl(psprintf("DROP TRIGGER " SD_INTERCEPT " ON %s", qual));

	values[0] = ObjectIdGetDatum(relid);
	values[1] = BoolGetDatum(intercept);
	lifecycle_become_owner(&save);
	lifecycle_spi_exec("INSERT INTO " LIFECYCLE_SCHEMA ".soft_delete_tables (relid, intercept_delete)"
					   " VALUES ($1, $2) ON CONFLICT (relid) DO UPDATE"
					   " SET intercept_delete = excluded.intercept_delete, enabled_at = pg_catalog.now()",
					   SPI_OK_INSERT, 2, argtypes, values, NULL);
	lifecycle_restore_user(&save);
	lifecycle_unpin_search_path(nest);
	SPI_finish();
	rel = relation_open(relid, NoLock);
	sd_invalidate_neighbours(rel);
	relation_close(rel, NoLock);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(disable_soft_delete);
Datum
disable_soft_delete(PG_FUNCTION_ARGS)
{
	int			nest;
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.disable_soft_delete('public.projects').");
	Relation	rel;
	char	   *qual;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	LifecycleUserSave save;
	Oid			view;
	char	   *viewname;
	bool		had_ins,
				had_intercept;

	rel = relation_open(relid, ShareRowExclusiveLock);
	lifecycle_check_table(rel, "disable_soft_delete");
	lifecycle_check_owner(rel);
	if (!sd_has_trigger(rel, SD_GUARD_UPD))
	{
		ereport(NOTICE,
				(errmsg("table \"%s\" is not enabled for soft delete, skipping",
						RelationGetRelationName(rel))));
		relation_close(rel, NoLock);
		PG_RETURN_VOID();
	}
	qual = lifecycle_qualified_name(rel);
	view = get_relname_relid(psprintf("%s_active", RelationGetRelationName(rel)),
							 RelationGetNamespace(rel));
	viewname = OidIsValid(view) && get_rel_relkind(view) == RELKIND_VIEW ?
		sd_view_name(rel) : NULL;
	had_ins = sd_has_trigger(rel, SD_GUARD_INS);
	had_intercept = sd_has_trigger(rel, SD_INTERCEPT);
	relation_close(rel, NoLock);

	SPI_connect();
	nest = lifecycle_pin_search_path();
	if (viewname)
		sd_exec_ddl(psprintf("DROP VIEW %s", viewname));
	sd_exec_ddl(psprintf("DROP TRIGGER " SD_GUARD_UPD " ON %s", qual));
	if (had_ins)
		sd_exec_ddl(psprintf("DROP TRIGGER " SD_GUARD_INS " ON %s", qual));
	if (had_intercept)
		sd_exec_ddl(psprintf("DROP TRIGGER " SD_INTERCEPT " ON %s", qual));
	values[0] = ObjectIdGetDatum(relid);
	lifecycle_become_owner(&save);
	lifecycle_spi_exec("DELETE FROM " LIFECYCLE_SCHEMA ".soft_delete_tables WHERE relid = $1",
					   SPI_OK_DELETE, 1, argtypes, values, NULL);
	lifecycle_spi_exec("DELETE FROM " LIFECYCLE_SCHEMA ".soft_delete_tenant WHERE tenant_table = $1",
					   SPI_OK_DELETE, 1, argtypes, values, NULL);
	lifecycle_restore_user(&save);
	lifecycle_unpin_search_path(nest);
	SPI_finish();
	rel = relation_open(relid, NoLock);
	sd_invalidate_neighbours(rel);
	relation_close(rel, NoLock);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(set_tenant_table);
Datum
set_tenant_table(PG_FUNCTION_ARGS)
{
	int			nest;
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.set_tenant_table('public.organizations').");
	Relation	rel;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	LifecycleUserSave save;
	SdTable    *t;

	rel = relation_open(relid, AccessShareLock);
	lifecycle_check_table(rel, "set_tenant_table");
	lifecycle_check_owner(rel);
	relation_close(rel, AccessShareLock);
	nest = sd_enter();
	t = sd_enabled_table(relid, "set_tenant_table");
	sd_require_key(t, "set_tenant_table");
	if (getBaseType(t->key_type) != UUIDOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("primary key of table \"%s\" has type %s, not uuid",
						get_rel_name(relid), format_type_be(t->key_type)),
				 errdetail("soft_delete_account() takes the account id as uuid."),
				 errhint("Use soft_delete_cascade() for tenant tables with other key types.")));
	values[0] = ObjectIdGetDatum(relid);
	lifecycle_become_owner(&save);
	lifecycle_spi_exec("INSERT INTO " LIFECYCLE_SCHEMA ".soft_delete_tenant (tenant_table) VALUES ($1)"
					   " ON CONFLICT (singleton) DO UPDATE SET tenant_table = excluded.tenant_table",
					   SPI_OK_INSERT, 1, argtypes, values, NULL);
	lifecycle_restore_user(&save);
	sd_leave(nest);
	PG_RETURN_VOID();
}
