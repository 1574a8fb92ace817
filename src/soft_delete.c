/*-------------------------------------------------------------------------
 *
 * soft_delete.c
 *	  Soft delete with cascades along foreign keys and exact restore.
 *
 *	  A soft delete is an UPDATE that sets deleted_at and deleted_by.  The
 *	  root row is locked and updated as the caller, through a cursor
 *	  (UPDATE ... WHERE CURRENT OF), so its privileges, policies and
 *	  WITH CHECK apply but the SELECT policy is not applied to the new row
 *	  (the "Supabase trap").  The cascade below it then runs as each
 *	  table's owner, as PostgreSQL's own foreign-key triggers do: one
 *	  set-based UPDATE per foreign key per level, comparing keys with the
 *	  foreign key's own equality operators.  Every row of one cascade gets
 *	  the same deleted_at, unique to that cascade, and the same deleted_by,
 *	  which is how restore finds exactly those rows.
 *
 *	  Per table we cache the columns, the key and the foreign-key graph
 *	  with prepared plans; entries are rebuilt after relcache invalidation,
 *	  plans are re-made when PostgreSQL finds them stale, and replaced
 *	  entries are freed only when no operation can still be using them.
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
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "pg_lifecycle.h"

#define SD_GUARD_UPD	"lifecycle_soft_delete_guard_upd"
#define SD_GUARD_INS	"lifecycle_soft_delete_guard_ins"
#define SD_INTERCEPT	"lifecycle_soft_delete_intercept"
#define SD_INTERCEPT_END "lifecycle_soft_delete_intercept_end"
#define SD_STAMP_SEQ	"soft_delete_stamp_seq"
#define SD_CURSOR		"lifecycle_soft_delete_root_%d"
#define SD_EQ			"OPERATOR(pg_catalog.=)"

/* A foreign key from one enabled table (child) to another (parent). */
typedef struct SdFk
{
	Oid			child;
	Oid			parent;
	int			nkeys;
	AttrNumber	child_cols[INDEX_MAX_KEYS];
	AttrNumber	parent_cols[INDEX_MAX_KEYS];
	Oid			pf_eq[INDEX_MAX_KEYS];	/* parent key = child column */
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
	char	   *key_eq;			/* OPERATOR(...) of the key's index */
	List	   *children;		/* SdFk where this table is the parent */
	List	   *parents;		/* SdFk where this table is the child */
	SPIPlanPtr	lock_plan;		/* caller: cursor on the row, FOR UPDATE */
	SPIPlanPtr	visible_plan;	/* caller: is the row visible, is it deleted */
	SPIPlanPtr	delete_plan;	/* caller: soft-delete the row under the cursor */
	SPIPlanPtr	restore_plan;	/* caller: restore the row under the cursor */
	SPIPlanPtr	purge_plan;		/* caller: delete a soft-deleted row */
	SPIPlanPtr	intercept_plan; /* owner: soft-delete the rows of key array $1 */
	List	   *plans;			/* every plan above and in the SdFks, to free */
} SdTable;

/* Keys a DELETE on an intercepting table asked to remove, until its end. */
typedef struct SdPending
{
	Oid			relid;
	SubTransactionId subxid;
	List	   *keys;			/* Datums in TopTransactionContext */
} SdPending;

static HTAB *sd_cache = NULL;
static List *sd_graveyard = NIL;	/* replaced entries (copies), to free */
static int	sd_depth = 0;		/* operations in progress in this backend */
static Oid	sd_cascading_relid = InvalidOid;	/* table a cascade updates now */
static int	sd_hard_delete = 0;	/* permanent deletes in progress: no intercept */
static TimestampTz sd_last_stamp = 0;
static List *sd_pending = NIL;	/* SdPending, in TopTransactionContext */

/* Rows changed per table by one operation, for the jsonb report. */
typedef struct SdReport
{
	List	   *relids;
	List	   *counts;
} SdReport;

/* ---------- cache and transaction state ---------- */

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
		event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE ||
		event == XACT_EVENT_PARALLEL_COMMIT)
	{
		sd_depth = 0;
		sd_cascading_relid = InvalidOid;
		sd_hard_delete = 0;
		sd_pending = NIL;		/* its memory goes with the transaction */
	}
}

/*
 * A rolled-back subtransaction takes its intercepted DELETEs with it; a
 * committed one hands them to its parent.
 */
static void
sd_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	foreach(lc, sd_pending)
	{
		SdPending  *p = lfirst(lc);

		if (p->subxid != mySubid)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
			sd_pending = foreach_delete_current(sd_pending, lc);
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
			p->subxid = parentSubid;
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
	RegisterSubXactCallback(sd_subxact_callback, NULL);
}

/*
 * An operation starts / ends.  Replaced entries are freed when an operation
 * starts and none is running, so that no plan being executed is freed.  An
 * operation that fails leaves the depth raised until the transaction ends,
 * which only delays the freeing.
 */
static void
sd_enter(void)
{
	if (sd_cache == NULL)
		sd_cache_init();
	SPI_connect();
	if (sd_depth == 0)
		sd_free_graveyard();
	sd_depth++;
}

static void
sd_leave(void)
{
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

/* "OPERATOR(schema.op)": an operator named so that search_path cannot matter */
static char *
sd_operator(Oid opno)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	Form_pg_operator op;
	char	   *result;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opno);
	op = (Form_pg_operator) GETSTRUCT(tup);
	result = psprintf("OPERATOR(%s.%s)", quote_identifier(get_namespace_name(op->oprnamespace)),
					  NameStr(op->oprname));
	ReleaseSysCache(tup);
	return result;
}

static SdFk *
sd_make_fk(Oid child, Oid parent, int nkeys, const int16 *ccols, const int16 *pcols,
		   const Oid *pf_eq)
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
		fk->pf_eq[i] = pf_eq[i];
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
		Oid			pf_eq[INDEX_MAX_KEYS];
		int			nkeys;

		if (con->contype != CONSTRAINT_FOREIGN || con->confrelid != relid ||
			OidIsValid(con->conparentid) || !sd_rel_enabled(con->conrelid))
			continue;
		DeconstructFkConstraintRow(tup, &nkeys, ccols, pcols, pf_eq, NULL, NULL,
								   NULL, NULL);
		result = lappend(result, sd_make_fk(con->conrelid, relid, nkeys, ccols, pcols, pf_eq));
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
												fk->nkeys, fk->conkey, fk->confkey,
												fk->conpfeqop));
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
			Oid			opcintype = idx->rd_opcintype[0];
			Oid			eq = get_opfamily_member(idx->rd_opfamily[0], opcintype, opcintype,
												 BTEqualStrategyNumber);

			t->key_attnum = idx->rd_index->indkey.values[0];
			t->key_type = TupleDescAttr(RelationGetDescr(rel), t->key_attnum - 1)->atttypid;
			t->key_name = pstrdup(quote_identifier(get_attname(t->relid, t->key_attnum, false)));
			if (!OidIsValid(eq))
				elog(ERROR, "no equality operator for the primary key of \"%s\"",
					 RelationGetRelationName(rel));
			t->key_eq = sd_operator(eq);
		}
		index_close(idx, AccessShareLock);
	}
	t->children = t->enabled ? sd_find_children(t->relid) : NIL;
	t->parents = t->enabled ? sd_find_parents(rel) : NIL;
	MemoryContextSwitchTo(old);
}

/*
 * The cache entry of a table, rebuilt when the table (or a neighbour)
 * changed.  An invalidation that arrives while building (opening the
 * neighbours processes them) makes it build again.
 */
static SdTable *
sd_lookup(Oid relid)
{
	SdTable    *t;
	bool		found;

	if (sd_cache == NULL)
		sd_cache_init();
	t = hash_search(sd_cache, &relid, HASH_ENTER, &found);
	while (!found || !t->valid)
	{
		Relation	rel;

		if (found && t->cxt)
		{
			MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);
			SdTable    *old = MemoryContextAlloc(t->cxt, sizeof(SdTable));

			memcpy(old, t, sizeof(SdTable));
			sd_graveyard = lappend(sd_graveyard, old);
			MemoryContextSwitchTo(oldcxt);
		}
		memset(t, 0, sizeof(SdTable));
		t->relid = relid;
		t->valid = true;
		found = true;
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
	}
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

/*
 * A cached plan that is still good.  The SQL of a plan names other tables
 * and columns; when one of them changed, PostgreSQL marks the plan invalid
 * and would re-parse the old text, so make the SQL anew instead.
 */
static bool
sd_plan_ok(SPIPlanPtr plan)
{
	return plan != NULL && SPI_plan_is_valid(plan);
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

/* Argument argno, given in any type, as a value of the key column's type. */
static Datum
sd_key_datum(FunctionCallInfo fcinfo, int argno, SdTable *t)
{
	Oid			argtype = get_fn_expr_argtype(fcinfo->flinfo, argno);
	Oid			outfunc,
				infunc,
				ioparam;
	bool		isvarlena;
	char	   *text;

	if (PG_ARGISNULL(argno))
		sd_null_error(argno == 0 ? "account_id" : "record_id",
					  "Pass the primary key value of the row.");
	if (argtype == t->key_type)
		return PG_GETARG_DATUM(argno);
	getTypeOutputInfo(argtype, &outfunc, &isvarlena);
	text = OidOutputFunctionCall(outfunc, PG_GETARG_DATUM(argno));
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

/*
 * The owner of table reader reads table read in a cascade: it needs SELECT
 * there and must not be filtered by its row-level security, or the cascade
 * would silently miss rows.  One owner for all tables always passes.
 */
static void
sd_check_reader(Oid reader, Oid read)
{
	HeapTuple	tup;
	Oid			reader_owner,
				read_owner;
	bool		rls;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(reader));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", reader);
	reader_owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(read));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", read);
	read_owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	rls = ((Form_pg_class) GETSTRUCT(tup))->relrowsecurity;
	ReleaseSysCache(tup);

	if (reader_owner == read_owner || superuser_arg(reader_owner))
		return;
	if (pg_class_aclcheck(read, reader_owner, ACL_SELECT) == ACLCHECK_OK &&
		(!rls || has_bypassrls_privilege(reader_owner)))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("soft delete cannot cascade from \"%s\" to \"%s\": their owners differ",
					get_rel_name(read), get_rel_name(reader)),
			 errdetail("The cascade updates \"%s\" as its owner, %s, who cannot read every row of \"%s\".",
					   get_rel_name(reader), GetUserNameFromId(reader_owner, false),
					   get_rel_name(read)),
			 errhint("Give both tables the same owner, or grant SELECT on \"%s\" to %s without row-level security in the way.",
					 get_rel_name(read), GetUserNameFromId(reader_owner, false))));
}

/* "p.x OP c.a AND p.y OP c.b" for a foreign key, with its own operators */
static void
sd_append_join(StringInfo sql, SdFk *fk, const char *p, const char *c)
{
	int			i;

	for (i = 0; i < fk->nkeys; i++)
		appendStringInfo(sql, "%s%s.%s %s %s.%s", i > 0 ? " AND " : "", p,
						 quote_identifier(get_attname(fk->parent, fk->parent_cols[i], false)),
						 sd_operator(fk->pf_eq[i]), c,
						 quote_identifier(get_attname(fk->child, fk->child_cols[i], false)));
}

/* "x.deleted_by = $2", where NULL matches NULL */
static void
sd_append_same_actor(StringInfo sql, const char *alias, const char *param)
{
	appendStringInfo(sql, "(%s.deleted_by " SD_EQ " %s OR (%s.deleted_by IS NULL AND %s IS NULL))",
					 alias, param, alias, param);
}

/*
 * Restore only rows whose other enabled parents are all live: a restore
 * must never leave a live row under a parent that stays deleted.  When such
 * a parent is restored later in the same cascade, its own foreign key
 * brings the row back then.
 */
static void
sd_append_other_parents(StringInfo sql, SdTable *child, SdFk *via)
{
	ListCell   *lc;
	int			n = 0;

	foreach(lc, child->parents)
	{
		SdFk	   *fk = lfirst(lc);
		char		alias[16];

		if (fk->parent == via->parent && fk->nkeys == via->nkeys &&
			memcmp(fk->child_cols, via->child_cols, sizeof(AttrNumber) * fk->nkeys) == 0)
			continue;
		sd_check_reader(child->relid, fk->parent);
		snprintf(alias, sizeof(alias), "o%d", n++);
		appendStringInfo(sql, " AND NOT EXISTS (SELECT 1 FROM %s %s WHERE ",
						 sd_lookup(fk->parent)->qualname, alias);
		sd_append_join(sql, fk, alias, "c");
		appendStringInfo(sql, " AND %s.deleted_at IS NOT NULL)", alias);
	}
}

static SPIPlanPtr
sd_fk_plan(SdTable *parent, SdFk *fk, bool restore)
{
	SdTable    *child = sd_lookup(fk->child);
	StringInfoData sql;
	Oid			argtypes[2] = {TIMESTAMPTZOID, UUIDOID};
	SPIPlanPtr *slot = restore ? &fk->restore_plan : &fk->delete_plan;

	if (sd_plan_ok(*slot))
		return *slot;
	sd_check_reader(fk->child, fk->parent);
	initStringInfo(&sql);
	if (!restore)
	{
		appendStringInfo(&sql, "UPDATE %s c SET deleted_at = $1, deleted_by = $2 FROM %s p WHERE ",
						 child->qualname, parent->qualname);
		sd_append_join(&sql, fk, "p", "c");
		appendStringInfoString(&sql, " AND p.deleted_at " SD_EQ " $1 AND ");
		sd_append_same_actor(&sql, "p", "$2");
		appendStringInfoString(&sql, " AND c.deleted_at IS NULL");
	}
	else
	{
		appendStringInfo(&sql, "UPDATE %s c SET deleted_at = NULL, deleted_by = NULL FROM %s p WHERE ",
						 child->qualname, parent->qualname);
		sd_append_join(&sql, fk, "p", "c");
		appendStringInfoString(&sql, " AND p.deleted_at IS NULL AND c.deleted_at " SD_EQ " $1 AND ");
		sd_append_same_actor(&sql, "c", "$2");
		sd_append_other_parents(&sql, child, fk);
	}
	*slot = sd_prepare(parent, sql.data, 2, argtypes);
	return *slot;
}

/*
 * Run a cascade statement as the owner of the table it changes.  Under
 * REPEATABLE READ or SERIALIZABLE it looks for rows with a fresh snapshot,
 * checked against the transaction's: a row committed by another transaction
 * since then raises a serialization failure rather than being missed.
 */
static uint64
sd_exec_as_owner(Oid relid, SPIPlanPtr plan, Datum *values, const char *nulls, int expected)
{
	LifecycleUserSave save;
	Oid			outer = sd_cascading_relid;
	int			rc;

	lifecycle_become_table_owner(relid, &save);
	sd_cascading_relid = relid;
	if (IsolationUsesXactSnapshot())
		rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(),
								  GetTransactionSnapshot(), false, true, 0);
	else
		rc = SPI_execute_plan(plan, values, nulls, false, 0);
	sd_cascading_relid = outer;
	lifecycle_restore_user(&save);
	if (rc != expected)
		elog(ERROR, "statement on \"%s\" failed: %s", get_rel_name(relid),
			 SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * Walk the foreign keys breadth first from the root's table: one UPDATE per
 * foreign key per level, each touching only rows not yet in the target
 * state, so cycles and self-references end when a level changes nothing.
 */
static void
sd_cascade(Oid root, bool restore, Datum stamp, Datum actor, bool actor_null,
		   SdReport *rep)
{
	List	   *queue = list_make1_oid(root);
	Datum		values[2] = {stamp, actor};
	char		nulls[2] = {' ', actor_null ? 'n' : ' '};

	while (queue != NIL)
	{
		SdTable    *parent = sd_lookup(linitial_oid(queue));
		List	   *children = parent->children;
		ListCell   *lc;

		queue = list_delete_first(queue);
		foreach(lc, children)
		{
			SdFk	   *fk = lfirst(lc);
			uint64		n = sd_exec_as_owner(fk->child, sd_fk_plan(parent, fk, restore),
											 values, nulls, SPI_OK_UPDATE);

			if (n == 0)
				continue;
			sd_report_add(rep, fk->child, n);
			if (!list_member_oid(queue, fk->child))
				queue = lappend_oid(queue, fk->child);
		}
	}
}

/*
 * A deleted_at that no other cascade has: the clock to the millisecond,
 * with a number from a sequence in the microseconds (so cascades in the same
 * millisecond differ, across backends too), strictly increasing within the
 * backend.  Restore finds a cascade's rows by this stamp and deleted_by.
 */
static TimestampTz
sd_next_stamp(void)
{
	Oid			seq = get_relname_relid(SD_STAMP_SEQ, get_namespace_oid(LIFECYCLE_SCHEMA, false));
	TimestampTz micro;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz stamp;

	if (!OidIsValid(seq))
		elog(ERROR, "sequence " LIFECYCLE_SCHEMA "." SD_STAMP_SEQ " is missing");
	micro = nextval_internal(seq, false) % 1000;
	stamp = now - now % 1000 + micro;
	if (stamp <= sd_last_stamp)
		stamp = sd_last_stamp - sd_last_stamp % 1000 + 1000 + micro;
	sd_last_stamp = stamp;
	return stamp;
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

/* A plan of t with the key as its only parameter, cached in *slot. */
static SPIPlanPtr
sd_key_plan(SdTable *t, SPIPlanPtr *slot, const char *sql)
{
	Oid			argtypes[1] = {t->key_type};

	if (!sd_plan_ok(*slot))
		*slot = sd_prepare(t, sql, 1, argtypes);
	return *slot;
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
	SPIPlanPtr	plan = sd_key_plan(t, &t->visible_plan,
								   psprintf("SELECT deleted_at IS NOT NULL FROM %s WHERE %s %s $1",
											t->qualname, t->key_name, t->key_eq));
	int			rc = SPI_execute_plan(plan, values, NULL, true, 1);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "row lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return false;
	*deleted = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
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
	SPIPlanPtr	plan = sd_key_plan(t, &t->lock_plan,
								   psprintf("SELECT deleted_at, deleted_by FROM %s WHERE %s %s $1 FOR UPDATE",
											t->qualname, t->key_name, t->key_eq));

	root->portal = SPI_cursor_open(psprintf(SD_CURSOR, sd_depth), plan, values, NULL, false);
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
					get_rel_name(t->relid)),
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
sd_update_root(SdTable *t, SPIPlanPtr *slot, const char *set, Datum *values,
			   const char *nulls, int nargs, Oid *argtypes, SdRoot *root)
{
	char	   *sql = psprintf("UPDATE %s SET %s WHERE CURRENT OF %s", t->qualname, set,
							   quote_identifier(root->portal->name));
	SPIPlanPtr	plan;
	int			rc;

	if (sd_depth == 1)
	{
		if (!sd_plan_ok(*slot))
			*slot = sd_prepare(t, sql, nargs, argtypes);
		plan = *slot;
	}
	else if ((plan = SPI_prepare(sql, nargs, argtypes)) == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	rc = SPI_execute_plan(plan, values, nulls, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "update of the row failed: %s", SPI_result_code_string(rc));
	SPI_cursor_close(root->portal);
	root->portal = NULL;
	return SPI_processed;
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
	sd_report_add(rep, t->relid, n);
	if (n > 0)
		sd_cascade(t->relid, false, values[0], actor, actor_null, rep);
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
	n = sd_update_root(t, &t->restore_plan, "deleted_at = NULL, deleted_by = NULL",
					   NULL, NULL, 0, NULL, &root);
	sd_report_add(rep, t->relid, n);
	if (n > 0)
		sd_cascade(t->relid, true, root.stamp, root.actor, root.actor_null, rep);
	return n > 0;
}

/* ---------- SQL-callable: soft delete, restore, permanent delete ---------- */

/*
 * One soft delete or restore of a root row.  keyarg is the argument holding
 * the record id; actorarg the deleted_by argument (soft delete only).
 */
static Datum
sd_run(FunctionCallInfo fcinfo, Oid relid, int keyarg, int actorarg,
	   bool restore, bool report, const char *funcname)
{
	MemoryContext callercxt = CurrentMemoryContext;
	SdReport	rep = {NIL, NIL};
	SdTable    *t;
	Datum		key;
	bool		done;
	char	   *json = NULL;

	sd_enter();
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
	sd_leave();
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
	Oid			relid;
	bool		isnull;

	lifecycle_become_owner(&save);
	rc = SPI_execute("SELECT tenant_table::pg_catalog.oid FROM " LIFECYCLE_SCHEMA ".soft_delete_tenant",
					 true, 1);
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
						get_rel_name(t->relid), format_type_be(t->key_type)),
				 errdetail("%s takes the account id as uuid.", funcname),
				 errhint("Use soft_delete_cascade()/restore_cascade() on tenant tables with other key types.")));
}

static Datum
sd_run_account(FunctionCallInfo fcinfo, bool restore)
{
	const char *funcname = restore ? "restore_account" : "soft_delete_account";
	Oid			relid;

	if (PG_ARGISNULL(0))
		sd_null_error("account_id", "Pass the id of the account.");
	sd_enter();
	relid = sd_tenant_table();
	sd_require_key(sd_enabled_table(relid, funcname), funcname);
	sd_require_uuid_key(sd_lookup(relid), funcname);
	sd_leave();
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
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.permanent_delete('public.projects', id).");
	SdTable    *t;
	Datum		values[1];
	bool		deleted;
	SPIPlanPtr	plan;
	int			rc = 0;
	uint64		removed;

	sd_enter();
	t = sd_enabled_table(relid, "permanent_delete");
	sd_require_key(t, "permanent_delete");
	values[0] = sd_key_datum(fcinfo, 1, t);
	sd_check_column_privilege(t, ACL_DELETE, "permanently delete");
	if (!sd_visible_row(t, values[0], &deleted))
	{
		sd_leave();
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
	sd_hard_delete++;
	PG_TRY();
	{
		rc = SPI_execute_plan(plan, values, NULL, false, 0);
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
				 errdetail("The row-level security policies of the current role let it see the row, not delete it."),
				 errhint("Act as a role whose policies allow deleting soft-deleted rows, such as service_role.")));
	sd_leave();
	PG_RETURN_BOOL(true);
}

/* ---------- cleanup_soft_deleted_records ---------- */

/* One table of the purge: its rows are those matching pred (alias a<depth>). */
typedef struct SdPurgeNode
{
	Oid			relid;
	int			depth;
	char	   *pred;
	List	   *ancestors;		/* tables pred reads besides relid */
} SdPurgeNode;

#define SD_PURGE_MAX_DEPTH 64

/* Rows of fk's child that are soft-deleted and reference a row of node. */
static SdPurgeNode *
sd_purge_child(SdPurgeNode *node, SdFk *fk)
{
	SdPurgeNode *child = palloc0(sizeof(SdPurgeNode));
	StringInfoData sql;
	char		p[16],
				c[16];

	child->relid = fk->child;
	child->depth = node->depth + 1;
	child->ancestors = lappend_oid(list_copy(node->ancestors), node->relid);
	snprintf(p, sizeof(p), "a%d", node->depth);
	snprintf(c, sizeof(c), "a%d", child->depth);
	initStringInfo(&sql);
	appendStringInfo(&sql, "%s.deleted_at IS NOT NULL AND EXISTS (SELECT 1 FROM %s %s WHERE ",
					 c, sd_lookup(fk->parent)->qualname, p);
	sd_append_join(&sql, fk, p, c);
	appendStringInfo(&sql, " AND %s)", node->pred);
	child->pred = sql.data;
	return child;
}

/* SELECT (LIMIT 1) or DELETE the node's rows, as its table's owner. */
static uint64
sd_purge_exec(SdPurgeNode *node, bool delete, Datum cutoff)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		values[1] = {cutoff};
	char	   *sql;
	LifecycleUserSave save;
	ListCell   *lc;
	int			rc;

	foreach(lc, node->ancestors)
		sd_check_reader(node->relid, lfirst_oid(lc));
	sql = delete ?
		psprintf("DELETE FROM %s a%d WHERE %s", sd_lookup(node->relid)->qualname,
				 node->depth, node->pred) :
		psprintf("SELECT 1 FROM %s a%d WHERE %s LIMIT 1", sd_lookup(node->relid)->qualname,
				 node->depth, node->pred);
	lifecycle_become_table_owner(node->relid, &save);
	rc = SPI_execute_with_args(sql, 1, argtypes, values, NULL, false, 0);
	lifecycle_restore_user(&save);
	if (rc != (delete ? SPI_OK_DELETE : SPI_OK_SELECT))
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
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.cleanup_soft_deleted_records('public.projects', 90).");
	int32		days;
	Relation	rel;
	Datum		cutoff;
	List	   *nodes;
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
	rel = lifecycle_open_owned_table(relid, AccessShareLock, "cleanup_soft_deleted_records");
	relation_close(rel, AccessShareLock);
	cutoff = DirectFunctionCall2(timestamptz_mi_interval,
								 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
								 DirectFunctionCall7(make_interval, 0, 0, 0, Int32GetDatum(days),
													 0, 0, Float8GetDatum(0)));

	sd_enter();
	sd_enabled_table(relid, "cleanup_soft_deleted_records");
	root = palloc0(sizeof(SdPurgeNode));
	root->relid = relid;
	root->pred = "a0.deleted_at OPERATOR(pg_catalog.<) $1";
	nodes = list_make1(root);
	for (i = 0; i < list_length(nodes); i++)
	{
		SdPurgeNode *node = list_nth(nodes, i);
		List	   *children;
		ListCell   *lc;

		if (sd_purge_exec(node, false, cutoff) == 0)
			continue;
		if (node->depth + 1 >= SD_PURGE_MAX_DEPTH)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("soft-deleted rows under \"%s\" nest deeper than %d levels",
							get_rel_name(relid), SD_PURGE_MAX_DEPTH),
					 errdetail("Rows that reference each other in a cycle never end the descent."),
					 errhint("Break the cycle by hand (set one of the references to NULL), then run the cleanup again.")));
		children = sd_lookup(node->relid)->children;
		foreach(lc, children)
			nodes = lappend(nodes, sd_purge_child(node, lfirst(lc)));
	}
	sd_hard_delete++;
	PG_TRY();
	{
		for (i = list_length(nodes) - 1; i >= 0; i--)
			removed += sd_purge_exec(list_nth(nodes, i), true, cutoff);
	}
	PG_FINALLY();
	{
		sd_hard_delete--;
	}
	PG_END_TRY();
	sd_leave();
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

	if (sd_plan_ok(fk->guard_plan))
		return fk->guard_plan;
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT p.deleted_at IS NOT NULL FROM %s p WHERE ",
					 sd_lookup(fk->parent)->qualname);
	for (i = 0; i < fk->nkeys; i++)
	{
		appendStringInfo(&sql, "%sp.%s %s $%d", i ? " AND " : "",
						 quote_identifier(get_attname(fk->parent, fk->parent_cols[i], false)),
						 sd_operator(fk->pf_eq[i]), i + 1);
		argtypes[i] = get_atttype(fk->child, fk->child_cols[i]);
	}
	appendStringInfoString(&sql, " FOR SHARE OF p");
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
 * The parent is locked FOR SHARE as its owner (so RLS cannot hide it), like
 * a foreign-key check: a cascade deleting it concurrently either waits for
 * us, and then sees and soft-deletes our row, or commits first, and then we
 * see it deleted (under REPEATABLE READ the lock fails to serialize).
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
		SPIPlanPtr	plan;

		if (TRIGGER_FIRED_BY_UPDATE(td->tg_event) && !restored && !sd_fk_changed(td, fk))
			continue;
		for (i = 0; i < fk->nkeys && !isnull; i++)
			values[i] = heap_getattr(row, fk->child_cols[i], desc, &isnull);
		if (isnull)
			continue;			/* MATCH SIMPLE: references nothing */
		plan = sd_guard_plan(t, fk);
		lifecycle_become_table_owner(fk->parent, &save);
		rc = SPI_execute_plan(plan, values, NULL, false, 1);
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
	/* a cascade's own statement keeps the rule itself, set-based */
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event) &&
		RelationGetRelid(td->tg_relation) == sd_cascading_relid)
		return PointerGetDatum(NULL);

	sd_enter();
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
	sd_leave();
	return PointerGetDatum(NULL);
}

/* BEFORE DELETE row: remember the row's key and keep the row. */
static void
sd_intercept_row(TriggerData *td)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	Oid			relid = RelationGetRelid(td->tg_relation);
	SubTransactionId subxid = GetCurrentSubTransactionId();
	SdTable    *t = sd_lookup(relid);
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

		if (p->relid == relid && p->subxid == subxid)
			pending = p;
	}
	if (pending == NULL)
	{
		pending = palloc0(sizeof(SdPending));
		pending->relid = relid;
		pending->subxid = subxid;
		sd_pending = lappend(sd_pending, pending);
	}
	pending->keys = lappend(pending->keys, DatumGetPointer(datumCopy(key, typbyval, typlen)));
	MemoryContextSwitchTo(old);
}

/*
 * AFTER DELETE statement: soft-delete, as one cascade, every row the
 * statement asked to delete.  Done once the statement's scan is over, so
 * that the cascade cannot change rows the DELETE has yet to reach.
 */
static void
sd_intercept_statement(TriggerData *td)
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
		SdTable    *t;
		Datum	   *keys;
		int			n = 0;
		ListCell   *k;
		int16		typlen;
		bool		typbyval;
		char		typalign;
		Oid			arraytype;
		Oid			argtypes[3];
		Datum		values[3];
		char		nulls[3] = {' ', ' ', ' '};
		pg_uuid_t  *actor = palloc(sizeof(pg_uuid_t));
		bool		actor_known = lifecycle_current_actor(actor);

		t = sd_lookup(relid);
		keys = palloc(sizeof(Datum) * list_length(p->keys));
		foreach(k, p->keys)
			keys[n++] = PointerGetDatum(lfirst(k));
		get_typlenbyvalalign(t->key_type, &typlen, &typbyval, &typalign);
		arraytype = get_array_type(t->key_type);
		if (!OidIsValid(arraytype))
			elog(ERROR, "no array type for %s", format_type_be(t->key_type));
		argtypes[0] = arraytype;
		argtypes[1] = TIMESTAMPTZOID;
		argtypes[2] = UUIDOID;
		if (!sd_plan_ok(t->intercept_plan))
			t->intercept_plan = sd_prepare(t, psprintf("UPDATE %s SET deleted_at = $2, deleted_by = $3"
													   " WHERE %s %s ANY ($1) AND deleted_at IS NULL",
													   t->qualname, t->key_name, t->key_eq),
										   3, argtypes);
		values[0] = PointerGetDatum(construct_array(keys, n, t->key_type, typlen, typbyval, typalign));
		values[1] = TimestampTzGetDatum(sd_next_stamp());
		values[2] = actor_known ? UUIDPGetDatum(actor) : (Datum) 0;
		nulls[2] = actor_known ? ' ' : 'n';
		/* the DELETE passed the caller's privileges and policies on these rows */
		if (sd_exec_as_owner(relid, t->intercept_plan, values, nulls, SPI_OK_UPDATE) > 0)
			sd_cascade(relid, false, values[1], values[2], !actor_known, NULL);
	}
}

/* DELETE on an intercepting table: soft-delete the rows with cascade instead. */
PG_FUNCTION_INFO_V1(soft_delete_intercept);
Datum
soft_delete_intercept(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		sd_trigger_misuse(fcinfo, "not called by trigger manager");
	if (!TRIGGER_FIRED_BY_DELETE(td->tg_event) ||
		(TRIGGER_FIRED_FOR_ROW(td->tg_event) && !TRIGGER_FIRED_BEFORE(td->tg_event)) ||
		(!TRIGGER_FIRED_FOR_ROW(td->tg_event) && !TRIGGER_FIRED_AFTER(td->tg_event)))
		sd_trigger_misuse(fcinfo, "must be fired BEFORE DELETE FOR EACH ROW and AFTER DELETE FOR EACH STATEMENT");

	if (TRIGGER_FIRED_FOR_ROW(td->tg_event))
	{
		SdTable    *t;

		if (sd_hard_delete > 0)
			return PointerGetDatum(td->tg_trigtuple);
		if (sd_cache == NULL)
			sd_cache_init();
		t = sd_lookup(RelationGetRelid(td->tg_relation));
		/* an already soft-deleted row: deleting it again changes nothing */
		if (heap_attisnull(td->tg_trigtuple, t->deleted_at, RelationGetDescr(td->tg_relation)))
			sd_intercept_row(td);
		return PointerGetDatum(NULL);
	}
	sd_enter();
	sd_intercept_statement(td);
	sd_leave();
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

/*
 * WHEN clause of the update guard: a restore, or a changed foreign key,
 * compared with each foreign key's own equality operator.
 */
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
		HeapTuple	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(fk->conoid));
		int16		conkey[INDEX_MAX_KEYS];
		int16		confkey[INDEX_MAX_KEYS];
		Oid			ff_eq[INDEX_MAX_KEYS];
		int			nkeys,
					i;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for constraint %u", fk->conoid);
		DeconstructFkConstraintRow(tup, &nkeys, conkey, confkey, NULL, NULL, ff_eq,
								   NULL, NULL);
		ReleaseSysCache(tup);
		for (i = 0; i < nkeys; i++)
		{
			const char *col = quote_identifier(get_attname(RelationGetRelid(rel), conkey[i], false));

			appendStringInfo(&when, " OR (OLD.%s IS NULL) <> (NEW.%s IS NULL) OR NOT (OLD.%s %s NEW.%s)",
							 col, col, col, sd_operator(ff_eq[i]), col);
		}
	}
	appendStringInfoChar(&when, ')');
	return when.data;
}

/*
 * intercept_delete keeps rows a DELETE targets; that must not break a
 * foreign key whose ON DELETE action deletes or changes them, and needs a
 * plain table whose statement trigger sees its own rows' DELETEs.
 */
static void
sd_check_intercept(Relation rel)
{
	Oid			pk = RelationGetPrimaryKeyIndex(rel);
	bool		single = false;
	ListCell   *lc;

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
	if (RelationGetForm(rel)->relkind != RELKIND_RELATION || RelationGetForm(rel)->relispartition)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("intercept_delete is not supported on partitioned tables or partitions"),
				 errhint("Enable soft delete without intercept_delete and call lifecycle.soft_delete().")));
	foreach(lc, RelationGetFKeyList(rel))
	{
		ForeignKeyCacheInfo *fk = lfirst(lc);
		HeapTuple	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(fk->conoid));
		char		action;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for constraint %u", fk->conoid);
		action = ((Form_pg_constraint) GETSTRUCT(tup))->confdeltype;
		ReleaseSysCache(tup);
		if (action == FKCONSTR_ACTION_CASCADE || action == FKCONSTR_ACTION_SETNULL ||
			action == FKCONSTR_ACTION_SETDEFAULT)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("intercept_delete cannot be used on \"%s\": foreign key \"%s\" deletes or changes its rows when \"%s\" rows are deleted",
							RelationGetRelationName(rel), get_constraint_name(fk->conoid),
							get_rel_name(fk->confrelid)),
					 errdetail("Keeping the rows would leave them referencing deleted rows."),
					 errhint("Enable soft delete on \"%s\" too and soft-delete there, or change the foreign key to ON DELETE NO ACTION.",
							 get_rel_name(fk->confrelid))));
	}
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
	int			nest;

	rel = lifecycle_open_owned_table(relid, ShareRowExclusiveLock, "enable_soft_delete");
	sd_check_existing_column(rel, "deleted_at", TIMESTAMPTZOID);
	sd_check_existing_column(rel, "deleted_by", UUIDOID);
	if (intercept)
		sd_check_intercept(rel);
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
	{
		sd_exec_ddl(psprintf("CREATE OR REPLACE TRIGGER " SD_INTERCEPT " BEFORE DELETE ON %s"
							 " FOR EACH ROW EXECUTE FUNCTION " LIFECYCLE_SCHEMA ".soft_delete_intercept()",
							 qual));
		sd_exec_ddl(psprintf("CREATE OR REPLACE TRIGGER " SD_INTERCEPT_END " AFTER DELETE ON %s"
							 " FOR EACH STATEMENT EXECUTE FUNCTION " LIFECYCLE_SCHEMA ".soft_delete_intercept()",
							 qual));
	}
	else if (had_intercept)
	{
		sd_exec_ddl(psprintf("DROP TRIGGER " SD_INTERCEPT " ON %s", qual));
		sd_exec_ddl(psprintf("DROP TRIGGER IF EXISTS " SD_INTERCEPT_END " ON %s", qual));
	}

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
	int			nest;

	rel = lifecycle_open_owned_table(relid, ShareRowExclusiveLock, "disable_soft_delete");
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
	{
		sd_exec_ddl(psprintf("DROP TRIGGER " SD_INTERCEPT " ON %s", qual));
		sd_exec_ddl(psprintf("DROP TRIGGER IF EXISTS " SD_INTERCEPT_END " ON %s", qual));
	}
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

/*
 * The tenant table is one setting for the whole database, so only members
 * of the extension owner's role (its administrators) may change it.
 */
PG_FUNCTION_INFO_V1(set_tenant_table);
Datum
set_tenant_table(PG_FUNCTION_ARGS)
{
	Oid			relid = sd_table_arg(fcinfo, "Pass the table, e.g. lifecycle.set_tenant_table('public.organizations').");
	Relation	rel;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	LifecycleUserSave save;
	SdTable    *t;
	int			nest;

	if (!has_privs_of_role(GetUserId(), lifecycle_extension_owner()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to set the tenant table"),
				 errdetail("The tenant table is a setting of the whole database."),
				 errhint("Ask the role that installed pg_lifecycle (%s) to call it.",
						 GetUserNameFromId(lifecycle_extension_owner(), false))));
	rel = relation_open(relid, AccessShareLock);
	lifecycle_check_table(rel, "set_tenant_table");
	relation_close(rel, AccessShareLock);
	sd_enter();
	t = sd_enabled_table(relid, "set_tenant_table");
	sd_require_key(t, "set_tenant_table");
	sd_require_uuid_key(t, "soft_delete_account()");
	values[0] = ObjectIdGetDatum(relid);
	nest = lifecycle_pin_search_path();
	lifecycle_become_owner(&save);
	lifecycle_spi_exec("INSERT INTO " LIFECYCLE_SCHEMA ".soft_delete_tenant (tenant_table) VALUES ($1)"
					   " ON CONFLICT (singleton) DO UPDATE SET tenant_table = excluded.tenant_table",
					   SPI_OK_INSERT, 1, argtypes, values, NULL);
	lifecycle_restore_user(&save);
	lifecycle_unpin_search_path(nest);
	sd_leave();
	PG_RETURN_VOID();
}
