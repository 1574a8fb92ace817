/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  Audit capture: statement-level AFTER triggers with transition tables
 *	  write every change of an audited table into lifecycle.audit_log, one
 *	  set-based INSERT ... SELECT per statement, as the extension's owner
 *	  (the writer may not write the log itself).  UPDATE logs only the
 *	  columns that changed; an UPDATE that sets deleted_at is logged as
 *	  SOFT_DELETE, one that clears it as RESTORE.
 *
 *	  Old and new rows of an UPDATE are paired by their position in the
 *	  transition tables, which the executor fills in step, so rows whose
 *	  key changed (or tables without a key) are paired right too.
 *
 *	  Per table we cache the names, the options and the prepared plans;
 *	  relcache invalidation (enable_audit recreates the triggers, ALTER
 *	  TABLE) makes us read them again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "pgtime.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/bytea.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"

#include "pg_lifecycle.h"

#define AU_TRIGGER_INS	"lifecycle_audit_insert"
#define AU_TRIGGER_UPD	"lifecycle_audit_update"
#define AU_TRIGGER_DEL	"lifecycle_audit_delete"
#define AU_TRIGGER_TRUNC "lifecycle_audit_truncate"
#define AU_REDACTED		"[REDACTED]"

typedef enum AuOp
{
	AU_INSERT,
	AU_UPDATE,
	AU_UPDATE1,					/* an UPDATE of one row: nothing to pair */
	AU_DELETE,
	AU_NOPS
} AuOp;

/*
 * What one audited table needs; keyed by relid.  Its options come from the
 * trigger's arguments (attribute numbers), so they change exactly when the
 * triggers do and follow column renames.
 */
typedef struct AuTable
{
	Oid			relid;
	bool		valid;
	int			busy;			/* statements using it right now */
	bool		scratch;		/* built for one nested use, not cached */
	MemoryContext cxt;
	Oid			name_relid;		/* whose names the log uses: the root of a partition tree */
	Datum		exclude;		/* text[] */
	Datum		redact;			/* text[] */
	Datum		redact_object;	/* jsonb: {"col": "[REDACTED]", ...} */
	char	   *rid_new;		/* SQL for the key, as text */
	char	   *rid_old;
	char	   *rid_upd;
	char	   *upd_op;			/* SQL for the UPDATE's op */
	bool		builtin;		/* only built-in types: no user code in capture */
	bool		reg_types;		/* a reg* column: its output depends on search_path */
	SPIPlanPtr	plans[2][AU_NOPS];	/* [builtin fast path][op] */
	/* one row of a table of built-in types: logged from C (au_record_single) */
	bool		single;			/* the key is one column, or there is none */
	AttrNumber	key_attnum;		/* that column; 0 without a key */
	FmgrInfo	key_out;		/* its output function */
	AttrNumber	deleted_at;		/* 0 if the table has none */
	FmgrInfo	to_jsonb;		/* to_jsonb() of the table's row type */
	bool	   *excluded;		/* by attribute number - 1 */
	bool	   *redacted;
} AuTable;

static HTAB *au_cache = NULL;
static SPIPlanPtr au_insert_plan = NULL;	/* the log's INSERT, for every table */
static SPIPlanPtr au_truncate_plan = NULL;

static void
au_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	AuTable    *t;

	hash_seq_init(&status, au_cache);
	while ((t = hash_seq_search(&status)) != NULL)
		if (relid == InvalidOid || t->relid == relid)
			t->valid = false;
}

static void
au_cache_init(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(AuTable);
	ctl.hcxt = TopMemoryContext;
	au_cache = hash_create("pg_lifecycle audited tables", 64, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(au_invalidate, (Datum) 0);
}

/* The names of the flagged columns, as text[]. */
static ArrayType *
au_names_of(Relation rel, const bool *flags)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *names = palloc(sizeof(Datum) * Max(desc->natts, 1));
	int			i,
				k = 0;

	for (i = 0; i < desc->natts; i++)
		if (flags[i])
			names[k++] = CStringGetTextDatum(NameStr(TupleDescAttr(desc, i)->attname));
	return construct_array(names, k, TEXTOID, -1, false, TYPALIGN_INT);
}

/*
 * SQL for the primary key of a row as text: the output functions (format
 * %s, a record's text), not casts, under the fixed DateStyle and TimeZone
 * the capture runs with, so a key reads the same in every session.
 */
static char *
au_record_id_sql(Relation rel, const char *row)
{
	Oid			pk = RelationGetPrimaryKeyIndex(rel);
	StringInfoData sql;
	Relation	idx;
	int			i;

	if (!OidIsValid(pk))
		return "NULL::pg_catalog.text";
	idx = index_open(pk, AccessShareLock);
	initStringInfo(&sql);
	appendStringInfoString(&sql, idx->rd_index->indnkeyatts > 1 ?
						   "(ROW(" : "pg_catalog.format('%s', ");
	for (i = 0; i < idx->rd_index->indnkeyatts; i++)
		appendStringInfo(&sql, "%s%s.%s", i ? ", " : "", row,
						 quote_identifier(get_attname(RelationGetRelid(rel),
													  idx->rd_index->indkey.values[i], false)));
	appendStringInfoString(&sql, idx->rd_index->indnkeyatts > 1 ? "))::pg_catalog.text" : ")");
	index_close(idx, AccessShareLock);
	return sql.data;
}

static Datum
au_redact_object(ArrayType *redact)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	StringInfoData obj;

	deconstruct_array(redact, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	initStringInfo(&obj);
	appendStringInfoChar(&obj, '{');
	for (i = 0; i < n; i++)
	{
		if (i)
			appendStringInfoString(&obj, ", ");
		escape_json(&obj, TextDatumGetCString(elems[i]));
		appendStringInfoString(&obj, ": \"" AU_REDACTED "\"");
	}
	appendStringInfoChar(&obj, '}');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(obj.data));
}

/*
 * Are all the columns of built-in types (domains looked through)?  Then
 * to_jsonb(), the key's text and the diff run only built-in code (users
 * cannot add casts to built-in types), and the log can be written in one
 * statement as the extension's owner.  Otherwise the changes are read as the
 * table's owner first.
 */
static bool
au_builtin_types(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && getBaseType(att->atttypid) >= FirstNormalObjectId)
			return false;
	}
	return true;
}

/* Does a column's output depend on search_path (regclass, regtype, ...)? */
static bool
au_reg_types(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Oid			type = getBaseType(att->atttypid);
		Oid			elem = get_element_type(type);

		if (OidIsValid(elem))
			type = getBaseType(elem);
		if (!att->attisdropped &&
			(type == REGCLASSOID || type == REGTYPEOID || type == REGPROCOID ||
			 type == REGPROCEDUREOID || type == REGOPEROID || type == REGOPERATOROID ||
			 type == REGCONFIGOID || type == REGDICTIONARYOID || type == REGNAMESPACEOID ||
			 type == REGROLEOID || type == REGCOLLATIONOID))
			return true;
	}
	return false;
}

/* A flag per column for a text[] of attribute numbers ("{3,5}"). */
static bool *
au_attnum_flags(Relation rel, const char *attnums)
{
	ArrayType  *nums = DatumGetArrayTypeP(OidInputFunctionCall(F_ARRAY_IN, (char *) attnums,
															   INT2OID, -1));
	int			natts = RelationGetDescr(rel)->natts;
	bool	   *flags = palloc0(sizeof(bool) * Max(natts, 1));
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	deconstruct_array(nums, INT2OID, 2, true, TYPALIGN_SHORT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i] && DatumGetInt16(elems[i]) > 0 && DatumGetInt16(elems[i]) <= natts &&
			!TupleDescAttr(RelationGetDescr(rel), DatumGetInt16(elems[i]) - 1)->attisdropped)
			flags[DatumGetInt16(elems[i]) - 1] = true;
	return flags;
}

/*
 * What logging one row from C needs (tables of built-in types): the key's
 * output function and to_jsonb() resolved for the row type, as the
 * function call in SQL would be.
 */
static void
au_build_single(AuTable *t, Relation rel)
{
	Oid			pk = RelationGetPrimaryKeyIndex(rel);
	FuncExpr   *call;

	if (OidIsValid(pk))
	{
		Relation	idx = index_open(pk, AccessShareLock);

		t->single = idx->rd_index->indnkeyatts == 1;
		t->key_attnum = idx->rd_index->indkey.values[0];
		index_close(idx, AccessShareLock);
		if (t->single)
		{
			Oid			out;
			bool		varlena;

			getTypeOutputInfo(TupleDescAttr(RelationGetDescr(rel), t->key_attnum - 1)->atttypid,
							  &out, &varlena);
			fmgr_info_cxt(out, &t->key_out, t->cxt);
		}
	}
	else
	{
		t->single = true;
		t->key_attnum = 0;
	}
	fmgr_info_cxt(F_TO_JSONB, &t->to_jsonb, t->cxt);
	call = makeFuncExpr(F_TO_JSONB, JSONBOID,
						list_make1(makeNullConst(RelationGetForm(rel)->reltype, -1, InvalidOid)),
						InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
	t->to_jsonb.fn_expr = (Node *) call;
}

static void
au_build(AuTable *t, Relation rel, Trigger *trigger)
{
	MemoryContext old;
	AttrNumber	deleted_at = get_attnum(t->relid, "deleted_at");
	List	   *ancestors = RelationGetForm(rel)->relispartition ?
		get_partition_ancestors(t->relid) : NIL;

	if (trigger->tgnargs != 2)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on table \"%s\" has the wrong arguments",
						trigger->tgname, RelationGetRelationName(rel)),
				 errhint("Recreate it with lifecycle.enable_audit('%s').",
						 lifecycle_qualified_name(rel))));
	t->cxt = AllocSetContextCreate(t->scratch ? CurrentMemoryContext : CacheMemoryContext,
								   "pg_lifecycle audited table", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(t->cxt);
	t->name_relid = ancestors != NIL ? llast_oid(ancestors) : t->relid;
	t->excluded = au_attnum_flags(rel, trigger->tgargs[0]);
	t->redacted = au_attnum_flags(rel, trigger->tgargs[1]);
	t->exclude = PointerGetDatum(au_names_of(rel, t->excluded));
	t->redact = PointerGetDatum(au_names_of(rel, t->redacted));
	t->redact_object = au_redact_object(DatumGetArrayTypeP(t->redact));
	t->rid_new = au_record_id_sql(rel, "lifecycle_n");
	t->rid_old = au_record_id_sql(rel, "lifecycle_o");
	t->rid_upd = au_record_id_sql(rel, "(ln.r)");
	t->upd_op = deleted_at > 0 ?
		"CASE WHEN (lo.r).deleted_at IS NULL AND (ln.r).deleted_at IS NOT NULL THEN 'SOFT_DELETE'"
		" WHEN (lo.r).deleted_at IS NOT NULL AND (ln.r).deleted_at IS NULL THEN 'RESTORE'"
		" ELSE 'UPDATE' END::" LIFECYCLE_SCHEMA ".audit_operation" :
		"'UPDATE'::" LIFECYCLE_SCHEMA ".audit_operation";
	t->builtin = au_builtin_types(rel);
	t->reg_types = au_reg_types(rel);
	t->deleted_at = deleted_at > 0 ? deleted_at : 0;
	if (t->builtin)
		au_build_single(t, rel);
	MemoryContextSwitchTo(old);
}

static void
au_free(AuTable *t)
{
	int			i;

	for (i = 0; i < 2 * AU_NOPS; i++)
		if (t->plans[i / AU_NOPS][i % AU_NOPS] && !t->scratch)
			SPI_freeplan(t->plans[i / AU_NOPS][i % AU_NOPS]);
	memset(t->plans, 0, sizeof(t->plans));
	if (t->cxt)
		MemoryContextDelete(t->cxt);
	t->cxt = NULL;
}

/*
 * The entry of the table the trigger fired on.  While a statement of the
 * table is writing the log, a nested statement that finds the entry stale
 * gets one built just for it, so nothing in use is freed.
 */
static AuTable *
au_lookup(TriggerData *td)
{
	Relation	rel = td->tg_relation;
	Oid			relid = RelationGetRelid(rel);
	AuTable    *t;
	bool		found;

	if (au_cache == NULL)
		au_cache_init();
	t = hash_search(au_cache, &relid, HASH_ENTER, &found);
	if (!found)
		memset(t, 0, sizeof(AuTable));
	t->relid = relid;
	if (t->valid)
		return t;
	if (t->busy > 0)
	{
		AuTable    *scratch = palloc0(sizeof(AuTable));

		scratch->relid = relid;
		scratch->scratch = true;
		au_build(scratch, rel, td->tg_trigger);
		return scratch;
	}
	while (!t->valid)
	{
		au_free(t);
		t->valid = true;
		PG_TRY();
		{
			au_build(t, rel, td->tg_trigger);
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

/* ---------- the SQL of each operation ---------- */

/*
 * The rows to log, computed as the table's owner: to_jsonb(), the key's
 * text and the diff may run the owner's own code (casts, output
 * functions), which must never run with the extension owner's rights.
 * One row of five arrays: record ids, ops, old and new values, changed
 * columns (as jsonb arrays).  $1 excluded columns, $2 redaction object,
 * $3 redacted columns, $4 the redaction marker.
 */
#define AU_ROW(alias) \
	"(pg_catalog.to_jsonb(" alias ".*) OPERATOR(pg_catalog.-) $1) OPERATOR(pg_catalog.||) $2"

/* The rows to log: rid, op, o, n, c (changed columns as a jsonb array). */
static char *
au_rows_sql(AuTable *t, AuOp op)
{
	const char *pairs = op == AU_UPDATE1 ?
		" FROM (SELECT lifecycle_t AS r FROM lifecycle_old lifecycle_t) lo,"
		" (SELECT lifecycle_t AS r FROM lifecycle_new lifecycle_t) ln" :
		" FROM (SELECT pg_catalog.row_number() OVER () AS rn, lifecycle_t AS r"
		" FROM lifecycle_old lifecycle_t) lo"
		" JOIN (SELECT pg_catalog.row_number() OVER () AS rn, lifecycle_t AS r"
		" FROM lifecycle_new lifecycle_t) ln ON lo.rn OPERATOR(pg_catalog.=) ln.rn";

	switch (op)
	{
		case AU_INSERT:
			return psprintf("SELECT %s AS rid, 'INSERT'::" LIFECYCLE_SCHEMA ".audit_operation AS op,"
							" NULL::pg_catalog.jsonb AS o, " AU_ROW("lifecycle_n") " AS n,"
							" NULL::pg_catalog.jsonb AS c FROM lifecycle_new lifecycle_n",
							t->rid_new);
		case AU_DELETE:
			return psprintf("SELECT %s AS rid, 'DELETE'::" LIFECYCLE_SCHEMA ".audit_operation AS op, "
							AU_ROW("lifecycle_o") " AS o, NULL::pg_catalog.jsonb AS n,"
							" NULL::pg_catalog.jsonb AS c FROM lifecycle_old lifecycle_o",
							t->rid_old);
		case AU_UPDATE:
		case AU_UPDATE1:
			/* pair old and new rows by position; keep only changed keys */
			return psprintf("SELECT d.rid, d.op, c.o, c.n, pg_catalog.to_jsonb(c.cols) AS c"
							" FROM (SELECT %s AS op, %s AS rid,"
							" pg_catalog.to_jsonb(lo.r) OPERATOR(pg_catalog.-) $1 AS oj,"
							" pg_catalog.to_jsonb(ln.r) OPERATOR(pg_catalog.-) $1 AS nj"
							"%s) d,"
							" LATERAL (SELECT"
							" pg_catalog.jsonb_object_agg(e.k, CASE WHEN e.k OPERATOR(pg_catalog.=) ANY ($3) THEN $4 ELSE e.ov END) AS o,"
							" pg_catalog.jsonb_object_agg(e.k, CASE WHEN e.k OPERATOR(pg_catalog.=) ANY ($3) THEN $4 ELSE e.nv END) AS n,"
							" pg_catalog.array_agg(e.k ORDER BY e.k) AS cols"
							" FROM (SELECT oe.key AS k, oe.value AS ov, ne.value AS nv"
							" FROM pg_catalog.jsonb_each(d.oj) oe"
							" JOIN pg_catalog.jsonb_each(d.nj) ne ON ne.key OPERATOR(pg_catalog.=) oe.key"
							" WHERE NOT (oe.value OPERATOR(pg_catalog.=) ne.value)) e) c"
							" WHERE c.cols IS NOT NULL",
							t->upd_op, t->rid_upd, pairs);
		default:
			elog(ERROR, "unknown audit operation %d", op);
	}
	return NULL;				/* keep compiler quiet */
}

/*
 * The log's own INSERT, the same for every table: it only unnests the
 * arrays of built-in types computed above.  $1 occurred_at, $2 txid, $3 $4
 * names, $5..$9 the arrays, $10 actor, $11 actor role, $12 database user,
 * $13 forwarded client address.
 */
#define AU_LOG_COLUMNS \
	"INSERT INTO " LIFECYCLE_SCHEMA ".audit_log (occurred_at, txid, schema_name, table_name," \
	" op, record_id, old_values, new_values, changed_columns, actor_id, actor_role, db_user," \
	" client_addr, application_name) "
#define AU_LOG_CONTEXT \
	"$10, $11, $12, COALESCE($13, pg_catalog.host(pg_catalog.inet_client_addr()))," \
	" pg_catalog.current_setting('application_name')"

static SPIPlanPtr
au_log_plan(bool truncate)
{
	SPIPlanPtr *slot = truncate ? &au_truncate_plan : &au_insert_plan;
	Oid			types[13];
	Oid			optype;
	const char *sql = truncate ?
		AU_LOG_COLUMNS "SELECT $1, $2, $3, $4, 'TRUNCATE', NULL, NULL, NULL, NULL, " AU_LOG_CONTEXT :
		AU_LOG_COLUMNS "SELECT $1, $2, $3, $4, u.op, u.rid, u.o, u.n,"
		" CASE WHEN u.c IS NULL THEN NULL ELSE ARRAY(SELECT pg_catalog.jsonb_array_elements_text(u.c)) END, "
		AU_LOG_CONTEXT " FROM ROWS FROM (pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7),"
		" pg_catalog.unnest($8), pg_catalog.unnest($9)) AS u(rid, op, o, n, c)";

	if (*slot != NULL && SPI_plan_is_valid(*slot))
		return *slot;
	optype = get_array_type(GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
											CStringGetDatum("audit_operation"),
											ObjectIdGetDatum(get_namespace_oid(LIFECYCLE_SCHEMA, false))));
	types[0] = TIMESTAMPTZOID;
	types[1] = INT8OID;
	types[2] = TEXTOID;
	types[3] = TEXTOID;
	types[4] = TEXTARRAYOID;
	types[5] = optype;
	types[6] = JSONBARRAYOID;
	types[7] = JSONBARRAYOID;
	types[8] = JSONBARRAYOID;
	types[9] = UUIDOID;
	types[10] = TEXTOID;
	types[11] = TEXTOID;
	types[12] = TEXTOID;
	if (*slot)
		SPI_freeplan(*slot);
	*slot = SPI_prepare(sql, 13, types);
	if (*slot == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(*slot) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return *slot;
}

/*
 * The plan of one operation of a table.  Built-in types only: one INSERT of
 * the rows, run as the extension's owner ($1..$4 as for the rows, $5..$12
 * the context).  Otherwise the rows as one row of arrays, run as the
 * table's owner, for au_log_plan().
 */
static SPIPlanPtr
au_plan(AuTable *t, AuOp op)
{
	Oid			types[12] = {TEXTARRAYOID, JSONBOID, TEXTARRAYOID, JSONBOID,
		TIMESTAMPTZOID, INT8OID, TEXTOID, TEXTOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID};
	SPIPlanPtr *slot = &t->plans[t->builtin][op];
	char	   *sql;

	if (*slot != NULL && SPI_plan_is_valid(*slot))
		return *slot;
	if (t->builtin)
		sql = psprintf(AU_LOG_COLUMNS "SELECT $5, $6, $7, $8, x.op, x.rid, x.o, x.n,"
					   " CASE WHEN x.c IS NULL THEN NULL ELSE ARRAY(SELECT pg_catalog.jsonb_array_elements_text(x.c)) END,"
					   " $9, $10, $11, COALESCE($12, pg_catalog.host(pg_catalog.inet_client_addr())),"
					   " pg_catalog.current_setting('application_name') FROM (%s) x",
					   au_rows_sql(t, op));
	else
		sql = psprintf("SELECT pg_catalog.array_agg(x.rid), pg_catalog.array_agg(x.op),"
					   " pg_catalog.array_agg(x.o), pg_catalog.array_agg(x.n), pg_catalog.array_agg(x.c)"
					   " FROM (%s) x", au_rows_sql(t, op));
	*slot = SPI_prepare(sql, t->builtin ? 12 : 4, types);
	if (*slot == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (!t->scratch && SPI_keepplan(*slot) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return *slot;
}

/*
 * Settings that make values read the same in every session: dates and
 * times in ISO form and UTC, in the log's values and its record ids.
 */
static int
au_pin_output(AuTable *t)
{
	long		gmtoff;
	int			nest;

	/* ISO output does not depend on the date order; any zone fixed at UTC prints alike */
	if (DateStyle == USE_ISO_DATES && IntervalStyle == INTSTYLE_POSTGRES &&
		pg_get_timezone_offset(session_timezone, &gmtoff) && gmtoff == 0 &&
		extra_float_digits == 1 && bytea_output == BYTEA_OUTPUT_HEX && !t->reg_types)
		return 0;				/* already so */
	nest = NewGUCNestLevel();
	(void) set_config_option("extra_float_digits", "1", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("bytea_output", "hex", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	/* regclass and friends print names qualified unless on the search_path */
	if (t->reg_types)
		(void) set_config_option("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("DateStyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("TimeZone", "UTC", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("IntervalStyle", "postgres", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

static void
au_unpin_output(int nest)
{
	if (nest > 0)
		AtEOXact_GUC(true, nest);
}

/* ---------- the trigger ---------- */

static void
au_trigger_misuse(FunctionCallInfo fcinfo, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			 errmsg("%s: %s", get_func_name(fcinfo->flinfo->fn_oid), what),
			 errhint("This trigger is installed by lifecycle.enable_audit(); do not create it by hand.")));
}

/* The redaction marker, "[REDACTED]" as jsonb, made once. */
static Datum
au_marker(void)
{
	static Datum marker = (Datum) 0;

	if (marker == (Datum) 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		marker = DirectFunctionCall1(jsonb_in, CStringGetDatum("\"" AU_REDACTED "\""));
		MemoryContextSwitchTo(old);
	}
	return marker;
}

/*
 * Who, when and where, for the log: occurred_at, txid, schema and table
 * names, actor, actor role, database user, forwarded client address.
 */
static void
au_context(AuTable *t, Datum *values, char *nulls)
{
	pg_uuid_t  *actor = palloc(sizeof(pg_uuid_t));
	char	   *forwarded = lifecycle_forwarded_for();
	bool		known = lifecycle_current_actor(actor);

	memset(nulls, ' ', 8);
	values[0] = TimestampTzGetDatum(GetCurrentStatementStartTimestamp());
	values[1] = Int64GetDatum((int64) U64FromFullTransactionId(GetTopFullTransactionId()));
	values[2] = CStringGetTextDatum(get_namespace_name(get_rel_namespace(t->name_relid)));
	values[3] = CStringGetTextDatum(get_rel_name(t->name_relid));
	values[4] = known ? UUIDPGetDatum(actor) : (Datum) 0;
	nulls[4] = known ? ' ' : 'n';
	values[5] = CStringGetTextDatum(lifecycle_current_actor_role());
	values[6] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	values[7] = forwarded ? CStringGetTextDatum(forwarded) : (Datum) 0;
	nulls[7] = forwarded ? ' ' : 'n';
}

/* Write the log row(s) of au_log_plan(), as the extension's owner. */
static void
au_write_log(bool truncate, Datum *ctx, const char *ctxnulls, Datum *arrays)
{
	Datum		values[13];
	char		nulls[13];
	LifecycleUserSave save;
	int			rc,
				i;

	memcpy(values, ctx, 4 * sizeof(Datum));
	memcpy(nulls, ctxnulls, 4);
	for (i = 0; i < 5; i++)
	{
		values[4 + i] = truncate ? (Datum) 0 : arrays[i];
		nulls[4 + i] = truncate ? 'n' : ' ';
	}
	memcpy(values + 9, ctx + 4, 4 * sizeof(Datum));
	memcpy(nulls + 9, ctxnulls + 4, 4);
	lifecycle_become_owner(&save);
	rc = SPI_execute_plan(au_log_plan(truncate), values, nulls, false, 0);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "writing the audit log failed: %s", SPI_result_code_string(rc));
}

/*
 * The log's INSERT of one row whose values were all made in C: $1
 * occurred_at, $2 txid, $3 $4 names, $5 op, $6 record id, $7 $8 old and
 * new values, $9 changed columns, $10 actor, $11 actor role, $12 database
 * user, $13 forwarded client address.
 */
static SPIPlanPtr
au_single_plan(void)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[13] = {TIMESTAMPTZOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
		JSONBOID, JSONBOID, TEXTARRAYOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID};

	if (plan != NULL && SPI_plan_is_valid(plan))
		return plan;
	if (plan)
		SPI_freeplan(plan);
	plan = SPI_prepare(AU_LOG_COLUMNS "VALUES ($1, $2, $3, $4, $5::" LIFECYCLE_SCHEMA
					   ".audit_operation, $6, $7, $8, $9, " AU_LOG_CONTEXT ")", 13, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

/* A row as jsonb, as to_jsonb(row) makes it. */
static Datum
au_to_jsonb(AuTable *t, TupleTableSlot *slot)
{
	return FunctionCall1(&t->to_jsonb, ExecFetchSlotHeapTupleDatum(slot));
}

/* A row as the log holds it: its jsonb - leave || add. */
static Datum
au_row_jsonb(Datum j, Datum leave, Datum add)
{
	j = DirectFunctionCall2(jsonb_delete_array, j, leave);
	return DirectFunctionCall2(jsonb_concat, j, add);
}

/* Column names in the database's collation, as ORDER BY sorts them. */
static int
au_name_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *) a;
	const char *y = *(const char *const *) b;

	return varstr_cmp(x, strlen(x), y, strlen(y), DEFAULT_COLLATION_OID);
}

static Datum
au_text_array(const char **names, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(names[i]);
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * One row inserted, deleted or updated in a table of built-in types with a
 * one-column key (or none): everything the log needs is made here, in C,
 * and written with one plain INSERT as the extension's owner.  An UPDATE's
 * changed columns are found by comparing the stored values.  Only built-in
 * code runs (output functions of built-in types), so it does not matter
 * whose rights it runs with.
 */
static void
au_record_single(AuTable *t, TriggerData *td, AuOp op)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	TupleTableSlot *o = op == AU_INSERT ? NULL : lifecycle_only_row(td->tg_oldtable, desc);
	TupleTableSlot *n = op == AU_DELETE ? NULL : lifecycle_only_row(td->tg_newtable, desc);
	TupleTableSlot *keyrow = n ? n : o;
	Datum		ctx[8],
				values[13];
	char		ctxnulls[8],
				nulls[13];
	const char *opname;
	LifecycleUserSave save;
	int			nest,
				rc;

	memset(nulls, ' ', sizeof(nulls));
	nest = au_pin_output(t);
	if (op == AU_UPDATE1)
	{
		const char **leave = palloc(sizeof(char *) * desc->natts);
		const char **changed = palloc(sizeof(char *) * desc->natts);
		int			nleave = 0,
					nchanged = 0,
					i;
		StringInfoData redact;
		Datum		leave_arr,
					redact_obj;
		Datum		oj = (Datum) 0,
					nj = (Datum) 0;

		initStringInfo(&redact);
		appendStringInfoChar(&redact, '{');
		for (i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);
			bool		same;

			if (att->attisdropped)
				continue;
			same = o->tts_isnull[i] || n->tts_isnull[i] ?
				o->tts_isnull[i] == n->tts_isnull[i] :
				datum_image_eq(o->tts_values[i], n->tts_values[i], att->attbyval, att->attlen);
			if (!same && !t->excluded[i])
			{
				/* other bytes may be the same value (1.0 and 1.00): compare as the log would */
				Datum		name = CStringGetTextDatum(NameStr(att->attname));
				Datum		ov,
							nv;

				if (oj == (Datum) 0)
				{
					oj = au_to_jsonb(t, o);
					nj = au_to_jsonb(t, n);
				}
				ov = DirectFunctionCall2(jsonb_object_field, oj, name);
				nv = DirectFunctionCall2(jsonb_object_field, nj, name);

				same = DatumGetBool(DirectFunctionCall2(jsonb_eq, ov, nv));
			}
			if (t->excluded[i] || same)
			{
				leave[nleave++] = NameStr(att->attname);
				continue;
			}
			changed[nchanged++] = NameStr(att->attname);
			if (t->redacted[i])
			{
				if (redact.len > 1)
					appendStringInfoString(&redact, ", ");
				escape_json(&redact, NameStr(att->attname));
				appendStringInfoString(&redact, ": \"" AU_REDACTED "\"");
			}
		}
		appendStringInfoChar(&redact, '}');
		if (nchanged == 0)
		{
			au_unpin_output(nest);
			ExecDropSingleTupleTableSlot(o);
			ExecDropSingleTupleTableSlot(n);
			return;
		}
		qsort(changed, nchanged, sizeof(char *), au_name_cmp);
		leave_arr = au_text_array(leave, nleave);
		redact_obj = DirectFunctionCall1(jsonb_in, CStringGetDatum(redact.data));
		values[6] = au_row_jsonb(oj, leave_arr, redact_obj);
		values[7] = au_row_jsonb(nj, leave_arr, redact_obj);
		values[8] = au_text_array(changed, nchanged);
		opname = "UPDATE";
		if (t->deleted_at > 0 &&
			o->tts_isnull[t->deleted_at - 1] != n->tts_isnull[t->deleted_at - 1])
			opname = o->tts_isnull[t->deleted_at - 1] ? "SOFT_DELETE" : "RESTORE";
	}
	else
	{
		values[6] = o ? au_row_jsonb(au_to_jsonb(t, o), t->exclude, t->redact_object) : (Datum) 0;
		nulls[6] = o ? ' ' : 'n';
		values[7] = n ? au_row_jsonb(au_to_jsonb(t, n), t->exclude, t->redact_object) : (Datum) 0;
		nulls[7] = n ? ' ' : 'n';
		nulls[8] = 'n';
		opname = op == AU_INSERT ? "INSERT" : "DELETE";
	}
	values[4] = CStringGetTextDatum(opname);
	if (t->key_attnum > 0 && !keyrow->tts_isnull[t->key_attnum - 1])
		values[5] = CStringGetTextDatum(OutputFunctionCall(&t->key_out,
														   keyrow->tts_values[t->key_attnum - 1]));
	else
		nulls[5] = 'n';
	au_context(t, ctx, ctxnulls);
	memcpy(values, ctx, 4 * sizeof(Datum));
	memcpy(nulls, ctxnulls, 4);
	memcpy(values + 9, ctx + 4, 4 * sizeof(Datum));
	memcpy(nulls + 9, ctxnulls + 4, 4);
	lifecycle_become_owner(&save);
	rc = SPI_execute_plan(au_single_plan(), values, nulls, false, 0);
	lifecycle_restore_user(&save);
	au_unpin_output(nest);
	if (o)
		ExecDropSingleTupleTableSlot(o);
	if (n)
		ExecDropSingleTupleTableSlot(n);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "writing the audit log failed: %s", SPI_result_code_string(rc));
}

/*
 * Log one operation of the statement.  Built-in types: one INSERT as the
 * extension's owner.  Otherwise the changes are read as the table's owner
 * (its casts and functions run with its own rights) and then written, as
 * arrays of built-in types, as the extension's owner.
 */
static void
au_record(AuTable *t, AuOp op)
{
	Datum		values[12];
	char		nulls[12];
	LifecycleUserSave save;
	int			nest,
				rc,
				i;

	values[0] = t->exclude;
	values[1] = t->redact_object;
	values[2] = t->redact;
	values[3] = au_marker();
	memset(nulls, ' ', 4);
	au_context(t, values + 4, nulls + 4);
	nest = au_pin_output(t);
	if (t->builtin)
	{
		lifecycle_become_owner(&save);
		rc = SPI_execute_plan(au_plan(t, op), values, nulls, false, 0);
		lifecycle_restore_user(&save);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "writing the audit log failed: %s", SPI_result_code_string(rc));
	}
	else
	{
		Datum		arrays[5];
		bool		isnull = false;

		lifecycle_become_table_owner(t->relid, &save);
		rc = SPI_execute_plan(au_plan(t, op), values, nulls, true, 1);
		lifecycle_restore_user(&save);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "reading the changes failed: %s", SPI_result_code_string(rc));
		for (i = 0; i < 5 && !isnull; i++)
			arrays[i] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &isnull);
		if (!isnull)
			au_write_log(false, values + 4, nulls + 4, arrays);
	}
	au_unpin_output(nest);
}

PG_FUNCTION_INFO_V1(audit_trigger);
Datum
audit_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	AuTable    *t;
	int64		nold,
				nnew;
	bool		single;

	if (!CALLED_AS_TRIGGER(fcinfo))
		au_trigger_misuse(fcinfo, "not called by trigger manager");
	if (TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_AFTER(td->tg_event))
		au_trigger_misuse(fcinfo, "must be fired AFTER ... FOR EACH STATEMENT");
	if (!TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) &&
		(TRIGGER_FIRED_BY_DELETE(td->tg_event) ? td->tg_oldtable : td->tg_newtable) == NULL)
		au_trigger_misuse(fcinfo, "needs its transition tables (REFERENCING ...)");
	nold = td->tg_oldtable ? tuplestore_tuple_count(td->tg_oldtable) : 0;
	nnew = td->tg_newtable ? tuplestore_tuple_count(td->tg_newtable) : 0;
	if (!TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) && nold == 0 && nnew == 0)
		return PointerGetDatum(NULL);

	SPI_connect();
	t = au_lookup(td);
	single = t->builtin && t->single && nold <= 1 && nnew <= 1 &&
		(nold == nnew || !TRIGGER_FIRED_BY_UPDATE(td->tg_event));
	if (!single && SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "could not register the transition tables");
	t->busy++;
	PG_TRY();
	{
		if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		{
			Datum		ctx[8];
			char		ctxnulls[8];

			au_context(t, ctx, ctxnulls);
			au_write_log(true, ctx, ctxnulls, NULL);
		}
		else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event) && nold != nnew)
		{
			/*
			 * Rows went missing between old and new (a BEFORE trigger of the
			 * partition a row moved to dropped it): the positions no longer
			 * pair, so log the old rows as deleted and the new ones as
			 * inserted.
			 */
			au_record(t, AU_DELETE);
			au_record(t, AU_INSERT);
		}
		else if (single)
			au_record_single(t, td, TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? AU_UPDATE1 :
							 TRIGGER_FIRED_BY_INSERT(td->tg_event) ? AU_INSERT : AU_DELETE);
		else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
			au_record(t, nold == 1 ? AU_UPDATE1 : AU_UPDATE);
		else
			au_record(t, TRIGGER_FIRED_BY_INSERT(td->tg_event) ? AU_INSERT : AU_DELETE);
	}
	PG_FINALLY();
	{
		t->busy--;
	}
	PG_END_TRY();
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* The log is append-only: refuse UPDATE, DELETE and TRUNCATE, for everyone. */
PG_FUNCTION_INFO_V1(audit_log_append_only);
Datum
audit_log_append_only(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		au_trigger_misuse(fcinfo, "not called by trigger manager");
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("lifecycle.audit_log is append-only"),
			 errdetail("UPDATE, DELETE and TRUNCATE of the audit log are refused for every role."),
			 errhint("Rows leave the log only through the extension's retention.")));
	PG_RETURN_NULL();
}

/* ---------- enable / disable ---------- */

static ArrayType *
au_array_arg(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? construct_empty_array(TEXTOID) : PG_GETARG_ARRAYTYPE_P(argno);
}

/* "{3,5}": the attribute numbers of a list of column names, checked. */
static char *
au_attnums(Relation rel, ArrayType *names, const char *what, ArrayType *other)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	StringInfoData buf;

	deconstruct_array(names, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < n; i++)
	{
		char	   *col = nulls[i] ? "" : TextDatumGetCString(elems[i]);
		AttrNumber	attnum = get_attnum(RelationGetRelid(rel), col);

		if (attnum <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" in %s does not exist in table \"%s\"",
							col, what, RelationGetRelationName(rel)),
					 errhint("Name columns of the table.")));
		if (other != NULL)
		{
			Datum	   *oelems;
			bool	   *onulls;
			int			on,
						j;

			deconstruct_array(other, TEXTOID, -1, false, TYPALIGN_INT, &oelems, &onulls, &on);
			for (j = 0; j < on; j++)
				if (!onulls[j] && strcmp(TextDatumGetCString(oelems[j]), col) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("column \"%s\" is in both exclude_columns and redact_columns", col),
							 errdetail("An excluded column never appears in the log; a redacted one appears with its value masked."),
							 errhint("Name it in one list only.")));
		}
		appendStringInfo(&buf, "%s%d", i ? "," : "", attnum);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* The table and, for a partitioned table, every partition below it. */
static List *
au_tables(Relation rel)
{
	if (RelationGetForm(rel)->relkind == RELKIND_PARTITIONED_TABLE)
		return find_all_inheritors(RelationGetRelid(rel), ShareRowExclusiveLock, NULL);
	return list_make1_oid(RelationGetRelid(rel));
}

PG_FUNCTION_INFO_V1(enable_audit);
Datum
enable_audit(PG_FUNCTION_ARGS)
{
	Oid			relid;
	ArrayType  *exclude = au_array_arg(fcinfo, 1);
	ArrayType  *redact = au_array_arg(fcinfo, 2);
	Relation	rel;
	char	   *exclude_nums,
			   *redact_nums;
	List	   *tables;
	ListCell   *lc;
	Oid			argtypes[3] = {OIDOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		values[3];
	LifecycleUserSave save;
	int			nest;
	static const char *const events[4][2] = {
		{AU_TRIGGER_INS, "INSERT ON %s REFERENCING NEW TABLE AS lifecycle_new FOR EACH STATEMENT"},
		{AU_TRIGGER_UPD, "UPDATE ON %s REFERENCING OLD TABLE AS lifecycle_old NEW TABLE AS lifecycle_new FOR EACH STATEMENT"},
		{AU_TRIGGER_DEL, "DELETE ON %s REFERENCING OLD TABLE AS lifecycle_old FOR EACH STATEMENT"},
		{AU_TRIGGER_TRUNC, "TRUNCATE ON %s FOR EACH STATEMENT"}};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table must not be NULL"),
				 errhint("Pass the table, e.g. lifecycle.enable_audit('public.projects').")));
	relid = PG_GETARG_OID(0);
	rel = lifecycle_open_owned_table(relid, ShareRowExclusiveLock, "enable_audit");
	if (RelationGetNamespace(rel) == get_namespace_oid(LIFECYCLE_SCHEMA, false))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot audit \"%s\", a table of pg_lifecycle itself",
						RelationGetRelationName(rel)),
				 errdetail("The audit log would log its own writes."),
				 errhint("Audit your own tables.")));
	exclude_nums = au_attnums(rel, exclude, "exclude_columns", NULL);
	redact_nums = au_attnums(rel, redact, "redact_columns", exclude);
	tables = au_tables(rel);
	relation_close(rel, NoLock);

	SPI_connect();
	nest = lifecycle_pin_search_path();
	foreach(lc, tables)
	{
		char	   *qual = quote_qualified_identifier(get_namespace_name(get_rel_namespace(lfirst_oid(lc))),
													  get_rel_name(lfirst_oid(lc)));
		int			i;

		for (i = 0; i < 4; i++)
			lifecycle_spi_exec(psprintf("CREATE OR REPLACE TRIGGER %s AFTER %s"
										" EXECUTE FUNCTION " LIFECYCLE_SCHEMA ".audit_trigger(%s, %s)",
										events[i][0], psprintf(events[i][1], qual),
										quote_literal_cstr(exclude_nums), quote_literal_cstr(redact_nums)),
							   SPI_OK_UTILITY, 0, NULL, NULL, NULL);
	}
	values[0] = ObjectIdGetDatum(relid);
	values[1] = PointerGetDatum(exclude);
	values[2] = PointerGetDatum(redact);
	lifecycle_become_owner(&save);
	lifecycle_spi_exec("INSERT INTO " LIFECYCLE_SCHEMA ".audit_tables (relid, exclude_columns, redact_columns)"
					   " VALUES ($1, $2, $3) ON CONFLICT (relid) DO UPDATE"
					   " SET exclude_columns = excluded.exclude_columns,"
					   " redact_columns = excluded.redact_columns, enabled_at = pg_catalog.now()",
					   SPI_OK_INSERT, 3, argtypes, values, NULL);
	lifecycle_restore_user(&save);
	lifecycle_unpin_search_path(nest);
	SPI_finish();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(disable_audit);
Datum
disable_audit(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Relation	rel;
	bool		audited = false;
	List	   *tables;
	ListCell   *lc;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	LifecycleUserSave save;
	int			nest,
				i;
	const char *triggers[4] = {AU_TRIGGER_INS, AU_TRIGGER_UPD, AU_TRIGGER_DEL, AU_TRIGGER_TRUNC};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table must not be NULL"),
				 errhint("Pass the table, e.g. lifecycle.disable_audit('public.projects').")));
	relid = PG_GETARG_OID(0);
	rel = lifecycle_open_owned_table(relid, ShareRowExclusiveLock, "disable_audit");
	for (i = 0; rel->trigdesc && i < rel->trigdesc->numtriggers; i++)
		if (strcmp(rel->trigdesc->triggers[i].tgname, AU_TRIGGER_INS) == 0)
			audited = true;
	tables = au_tables(rel);
	relation_close(rel, NoLock);
	if (!audited)
	{
		ereport(NOTICE,
				(errmsg("table \"%s\" is not audited, skipping", get_rel_name(relid))));
		PG_RETURN_VOID();
	}

	SPI_connect();
	nest = lifecycle_pin_search_path();
	foreach(lc, tables)
	{
		char	   *qual = quote_qualified_identifier(get_namespace_name(get_rel_namespace(lfirst_oid(lc))),
													  get_rel_name(lfirst_oid(lc)));

		for (i = 0; i < 4; i++)
			lifecycle_spi_exec(psprintf("DROP TRIGGER IF EXISTS %s ON %s", triggers[i], qual),
							   SPI_OK_UTILITY, 0, NULL, NULL, NULL);
	}
	values[0] = ObjectIdGetDatum(relid);
	lifecycle_become_owner(&save);
	lifecycle_spi_exec("DELETE FROM " LIFECYCLE_SCHEMA ".audit_tables WHERE relid OPERATOR(pg_catalog.=) $1",
					   SPI_OK_DELETE, 1, argtypes, values, NULL);
	lifecycle_restore_user(&save);
	lifecycle_unpin_search_path(nest);
	SPI_finish();
	PG_RETURN_VOID();
}
