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
#include "catalog/pg_cast.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
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

#include "pg_lifecycle.h"

#define AU_TRIGGER_INS	"lifecycle_audit_insert"
#define AU_TRIGGER_UPD	"lifecycle_audit_update"
#define AU_TRIGGER_DEL	"lifecycle_audit_delete"
#define AU_TRIGGER_TRUNC "lifecycle_audit_truncate"
#define AU_REDACTED		"[REDACTED]"
#define AU_NPARAMS		12

typedef enum AuOp
{
	AU_INSERT,
	AU_UPDATE,
	AU_DELETE,
	AU_TRUNCATE,
	AU_NOPS
} AuOp;

/* What one audited table needs; keyed by relid. */
typedef struct AuTable
{
	Oid			relid;
	bool		valid;
	MemoryContext cxt;
	char	   *schema_name;
	char	   *table_name;
	Datum		exclude;		/* text[] */
	Datum		redact;			/* text[] */
	Datum		redact_object;	/* jsonb: {"col": "[REDACTED]", ...} */
	char	   *record_id_new;	/* SQL for the key of alias n / (n.r) */
	char	   *record_id_old;
	char	   *record_id_upd;
	char	   *soft_delete_op; /* SQL for the UPDATE's op */
	SPIPlanPtr	plans[AU_NOPS];
} AuTable;

static HTAB *au_cache = NULL;
static Oid	au_param_types[AU_NPARAMS];

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

/*
 * to_jsonb() calls a type's cast to json when the type has one; the log is
 * written as the extension's owner, so such a cast written by someone else
 * must not run there.  Refuse tables with a column whose type (or element,
 * base or attribute type) has a cast to json by a role that is not a
 * superuser.
 */
static void
au_check_json_cast(Oid type, const char *column, Relation rel, int depth)
{
	HeapTuple	tup;
	Oid			elem;

	type = getBaseType(type);
	if (type < FirstNormalObjectId || depth > 8)
		return;
	if (OidIsValid(elem = get_element_type(type)))
	{
		au_check_json_cast(elem, column, rel, depth + 1);
		return;
	}
	tup = SearchSysCache2(CASTSOURCETARGET, ObjectIdGetDatum(type), ObjectIdGetDatum(JSONOID));
	if (HeapTupleIsValid(tup))
	{
		Oid			func = ((Form_pg_cast) GETSTRUCT(tup))->castfunc;

		ReleaseSysCache(tup);
		if (OidIsValid(func))
		{
			HeapTuple	ptup = SearchSysCache1(PROCOID, ObjectIdGetDatum(func));
			Oid			owner = InvalidOid;

			if (HeapTupleIsValid(ptup))
			{
				owner = ((Form_pg_proc) GETSTRUCT(ptup))->proowner;
				ReleaseSysCache(ptup);
			}
			if (!superuser_arg(owner))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("cannot audit table \"%s\": column \"%s\" has type %s with a cast to json",
								RelationGetRelationName(rel), column, format_type_be(type)),
						 errdetail("The audit log is written as the extension's owner, which must not run casts written by other roles."),
						 errhint("Exclude the column with exclude_columns, or drop the cast.")));
		}
	}
	if (get_typtype(type) == TYPTYPE_COMPOSITE)
	{
		Relation	typrel = relation_open(get_typ_typrelid(type), AccessShareLock);
		TupleDesc	desc = RelationGetDescr(typrel);
		int			i;

		for (i = 0; i < desc->natts; i++)
			if (!TupleDescAttr(desc, i)->attisdropped)
				au_check_json_cast(TupleDescAttr(desc, i)->atttypid, column, rel, depth + 1);
		relation_close(typrel, AccessShareLock);
	}
}

/* Is name in the text[] array? */
static bool
au_array_has(ArrayType *arr, const char *name)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i] && strcmp(TextDatumGetCString(elems[i]), name) == 0)
			return true;
	return false;
}

static void
au_check_columns(Relation rel, ArrayType *exclude, ArrayType *redact)
{
	TupleDesc	desc = RelationGetDescr(rel);
	ArrayType  *lists[2] = {exclude, redact};
	const char *what[2] = {"exclude_columns", "redact_columns"};
	int			l,
				i;

	for (l = 0; l < 2; l++)
	{
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		deconstruct_array(lists[l], TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		for (i = 0; i < n; i++)
		{
			char	   *col = nulls[i] ? "" : TextDatumGetCString(elems[i]);
			AttrNumber	attnum = get_attnum(RelationGetRelid(rel), col);

			if (attnum <= 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" in %s does not exist in table \"%s\"",
								col, what[l], RelationGetRelationName(rel)),
						 errhint("Name columns of the table.")));
			if (l == 1 && au_array_has(exclude, col))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("column \"%s\" is in both exclude_columns and redact_columns", col),
						 errdetail("An excluded column never appears in the log; a redacted one appears with its value masked."),
						 errhint("Name it in one list only.")));
		}
	}
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && !au_array_has(exclude, NameStr(att->attname)))
			au_check_json_cast(att->atttypid, NameStr(att->attname), rel, 0);
	}
}

/* SQL for the primary key of a row, as text: alias.col, ROW(...), or NULL. */
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
	if (idx->rd_index->indnkeyatts > 1)
		appendStringInfoString(&sql, "ROW(");
	for (i = 0; i < idx->rd_index->indnkeyatts; i++)
		appendStringInfo(&sql, "%s(%s).%s", i ? ", " : "", row,
						 quote_identifier(get_attname(RelationGetRelid(rel),
													  idx->rd_index->indkey.values[i], false)));
	if (idx->rd_index->indnkeyatts > 1)
		appendStringInfoChar(&sql, ')');
	appendStringInfoString(&sql, "::pg_catalog.text");
	index_close(idx, AccessShareLock);
	return sql.data;
}

/* The options of a table from lifecycle.audit_tables, read as the owner. */
static void
au_read_options(AuTable *t)
{
	LifecycleUserSave save;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(t->relid)};
	bool		isnull;
	int			rc;
	ArrayType  *redact;
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	StringInfoData obj;
	MemoryContext old;

	lifecycle_become_owner(&save);
	rc = SPI_execute_with_args("SELECT exclude_columns, redact_columns FROM " LIFECYCLE_SCHEMA
							   ".audit_tables WHERE relid OPERATOR(pg_catalog.=) $1",
							   1, argtypes, values, NULL, true, 1);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the audit options: %s", SPI_result_code_string(rc));
	/* SPI returns to its own context: keep what follows in the entry's */
	old = MemoryContextSwitchTo(t->cxt);
	if (SPI_processed == 1)
	{
		t->exclude = datumCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
							   false, -1);
		t->redact = datumCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull),
							  false, -1);
	}
	else
	{
		t->exclude = PointerGetDatum(construct_empty_array(TEXTOID));
		t->redact = PointerGetDatum(construct_empty_array(TEXTOID));
	}
	redact = DatumGetArrayTypeP(t->redact);
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
	t->redact_object = DirectFunctionCall1(jsonb_in, CStringGetDatum(obj.data));
	MemoryContextSwitchTo(old);
}

static void
au_build(AuTable *t, Relation rel)
{
	MemoryContext old;
	AttrNumber	deleted_at = get_attnum(t->relid, "deleted_at");
	int			i;

	for (i = 0; i < AU_NOPS; i++)
		if (t->plans[i])
			SPI_freeplan(t->plans[i]);
	if (t->cxt)
		MemoryContextDelete(t->cxt);
	t->cxt = AllocSetContextCreate(CacheMemoryContext, "pg_lifecycle audited table",
								   ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(t->cxt);
	memset(t->plans, 0, sizeof(t->plans));
	t->schema_name = get_namespace_name(RelationGetNamespace(rel));
	t->table_name = pstrdup(RelationGetRelationName(rel));
	t->record_id_new = au_record_id_sql(rel, "n");
	t->record_id_old = au_record_id_sql(rel, "o");
	t->record_id_upd = au_record_id_sql(rel, "n.r");
	t->soft_delete_op = deleted_at > 0 ?
		"CASE WHEN (o.r).deleted_at IS NULL AND (n.r).deleted_at IS NOT NULL THEN 'SOFT_DELETE'"
		" WHEN (o.r).deleted_at IS NOT NULL AND (n.r).deleted_at IS NULL THEN 'RESTORE'"
		" ELSE 'UPDATE' END::" LIFECYCLE_SCHEMA ".audit_operation" :
		"'UPDATE'::" LIFECYCLE_SCHEMA ".audit_operation";
	MemoryContextSwitchTo(old);
	au_read_options(t);
	au_check_columns(rel, DatumGetArrayTypeP(t->exclude), DatumGetArrayTypeP(t->redact));
}

static AuTable *
au_lookup(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	AuTable    *t;
	bool		found;

	if (au_cache == NULL)
		au_cache_init();
	t = hash_search(au_cache, &relid, HASH_ENTER, &found);
	if (!found)
		memset(t, 0, sizeof(AuTable));
	t->relid = relid;
	while (!t->valid)
	{
		t->valid = true;
		PG_TRY();
		{
			au_build(t, rel);
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

#define AU_COLUMNS \
	"INSERT INTO " LIFECYCLE_SCHEMA ".audit_log (occurred_at, txid, schema_name, table_name," \
	" op, record_id, old_values, new_values, changed_columns, actor_id, actor_role, db_user," \
	" client_addr, application_name) "
#define AU_CONTEXT \
	"$7, $8, $9, COALESCE($10, pg_catalog.host(pg_catalog.inet_client_addr()))," \
	" pg_catalog.current_setting('application_name')"
#define AU_ROW(alias) \
	"(pg_catalog.to_jsonb(" alias ") OPERATOR(pg_catalog.-) $5)" \
	" OPERATOR(pg_catalog.||) $6"

static char *
au_sql(AuTable *t, AuOp op)
{
	switch (op)
	{
		case AU_INSERT:
			return psprintf(AU_COLUMNS "SELECT $1, $2, $3, $4, 'INSERT', %s, NULL, " AU_ROW("n")
							", NULL, " AU_CONTEXT " FROM lifecycle_new n", t->record_id_new);
		case AU_DELETE:
			return psprintf(AU_COLUMNS "SELECT $1, $2, $3, $4, 'DELETE', %s, " AU_ROW("o")
							", NULL, NULL, " AU_CONTEXT " FROM lifecycle_old o", t->record_id_old);
		case AU_TRUNCATE:
			return pstrdup(AU_COLUMNS "SELECT $1, $2, $3, $4, 'TRUNCATE', NULL, NULL, NULL, NULL, "
						   AU_CONTEXT);
		case AU_UPDATE:
			/* pair old and new rows by position; keep only changed keys */
			return psprintf("WITH o AS (SELECT pg_catalog.row_number() OVER () AS rn, t AS r FROM lifecycle_old t),"
							" n AS (SELECT pg_catalog.row_number() OVER () AS rn, t AS r FROM lifecycle_new t) "
							AU_COLUMNS "SELECT $1, $2, $3, $4, d.op, d.rid, c.o, c.n, c.cols, " AU_CONTEXT
							" FROM (SELECT %s AS op, %s AS rid,"
							" pg_catalog.to_jsonb(o.r) OPERATOR(pg_catalog.-) $5 AS oj,"
							" pg_catalog.to_jsonb(n.r) OPERATOR(pg_catalog.-) $5 AS nj"
							" FROM o JOIN n ON o.rn OPERATOR(pg_catalog.=) n.rn) d,"
							" LATERAL (SELECT"
							" pg_catalog.jsonb_object_agg(e.k, CASE WHEN e.k OPERATOR(pg_catalog.=) ANY ($11) THEN $12 ELSE e.ov END) AS o,"
							" pg_catalog.jsonb_object_agg(e.k, CASE WHEN e.k OPERATOR(pg_catalog.=) ANY ($11) THEN $12 ELSE e.nv END) AS n,"
							" pg_catalog.array_agg(e.k ORDER BY e.k) AS cols"
							" FROM (SELECT oe.key AS k, oe.value AS ov, ne.value AS nv"
							" FROM pg_catalog.jsonb_each(d.oj) oe"
							" JOIN pg_catalog.jsonb_each(d.nj) ne ON ne.key OPERATOR(pg_catalog.=) oe.key"
							" WHERE NOT (oe.value OPERATOR(pg_catalog.=) ne.value)) e) c"
							" WHERE c.cols IS NOT NULL",
							t->soft_delete_op, t->record_id_upd);
		default:
			elog(ERROR, "unknown audit operation %d", op);
	}
	return NULL;				/* keep compiler quiet */
}

static SPIPlanPtr
au_plan(AuTable *t, AuOp op)
{
	SPIPlanPtr	plan;

	if (t->plans[op] != NULL && SPI_plan_is_valid(t->plans[op]))
		return t->plans[op];
	if (au_param_types[0] == InvalidOid)
	{
		Oid			types[AU_NPARAMS] = {TIMESTAMPTZOID, INT8OID, NAMEOID, NAMEOID, TEXTARRAYOID,
			JSONBOID, UUIDOID, TEXTOID, NAMEOID, TEXTOID, TEXTARRAYOID, JSONBOID};

		memcpy(au_param_types, types, sizeof(types));
	}
	plan = SPI_prepare(au_sql(t, op), AU_NPARAMS, au_param_types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	t->plans[op] = plan;
	return plan;
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

PG_FUNCTION_INFO_V1(audit_trigger);
Datum
audit_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	AuOp		op;
	Tuplestorestate *rows;
	AuTable    *t;
	Datum		values[AU_NPARAMS];
	char		nulls[AU_NPARAMS];
	pg_uuid_t  *actor = palloc(sizeof(pg_uuid_t));
	char	   *forwarded;
	LifecycleUserSave save;
	int			rc;

	if (!CALLED_AS_TRIGGER(fcinfo))
		au_trigger_misuse(fcinfo, "not called by trigger manager");
	if (TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_AFTER(td->tg_event))
		au_trigger_misuse(fcinfo, "must be fired AFTER ... FOR EACH STATEMENT");
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		op = AU_INSERT, rows = td->tg_newtable;
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		op = AU_UPDATE, rows = td->tg_newtable;
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		op = AU_DELETE, rows = td->tg_oldtable;
	else
		op = AU_TRUNCATE, rows = NULL;
	if (op != AU_TRUNCATE && rows == NULL)
		au_trigger_misuse(fcinfo, "needs its transition tables (REFERENCING ...)");
	if (rows != NULL && tuplestore_tuple_count(rows) == 0)
		return PointerGetDatum(NULL);

	SPI_connect();
	if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "could not register the transition tables");
	t = au_lookup(td->tg_relation);

	memset(nulls, ' ', sizeof(nulls));
	values[0] = TimestampTzGetDatum(GetCurrentStatementStartTimestamp());
	values[1] = Int64GetDatum((int64) U64FromFullTransactionId(GetTopFullTransactionId()));
	values[2] = DirectFunctionCall1(namein, CStringGetDatum(t->schema_name));
	values[3] = DirectFunctionCall1(namein, CStringGetDatum(t->table_name));
	values[4] = t->exclude;
	values[5] = t->redact_object;
	values[6] = lifecycle_current_actor(actor) ? UUIDPGetDatum(actor) : (Datum) 0;
	nulls[6] = values[6] ? ' ' : 'n';
	values[7] = CStringGetTextDatum(lifecycle_current_actor_role());
	values[8] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
	forwarded = lifecycle_forwarded_for();
	values[9] = forwarded ? CStringGetTextDatum(forwarded) : (Datum) 0;
	nulls[9] = forwarded ? ' ' : 'n';
	values[10] = t->redact;
	values[11] = DirectFunctionCall1(jsonb_in, CStringGetDatum("\"" AU_REDACTED "\""));

	/* the writer may not write the log: the extension's owner does */
	lifecycle_become_owner(&save);
	rc = SPI_execute_plan(au_plan(t, op), values, nulls, false, 0);
	lifecycle_restore_user(&save);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "writing the audit log failed: %s", SPI_result_code_string(rc));
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

PG_FUNCTION_INFO_V1(enable_audit);
Datum
enable_audit(PG_FUNCTION_ARGS)
{
	Oid			relid;
	ArrayType  *exclude = au_array_arg(fcinfo, 1);
	ArrayType  *redact = au_array_arg(fcinfo, 2);
	Relation	rel;
	char	   *qual;
	Oid			argtypes[3] = {OIDOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		values[3];
	LifecycleUserSave save;
	int			nest;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table must not be NULL"),
				 errhint("Pass the table, e.g. lifecycle.enable_audit('public.projects').")));
	relid = PG_GETARG_OID(0);
	rel = relation_open(relid, ShareRowExclusiveLock);
	lifecycle_check_table(rel, "enable_audit");
	if (RelationGetNamespace(rel) == get_namespace_oid(LIFECYCLE_SCHEMA, false))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot audit \"%s\", a table of pg_lifecycle itself",
						RelationGetRelationName(rel)),
				 errdetail("The audit log would log its own writes."),
				 errhint("Audit your own tables.")));
	lifecycle_check_owner(rel);
	au_check_columns(rel, exclude, redact);
	qual = lifecycle_qualified_name(rel);
	relation_close(rel, NoLock);

	SPI_connect();
	nest = lifecycle_pin_search_path();
	lifecycle_spi_exec(psprintf("CREATE OR REPLACE TRIGGER " AU_TRIGGER_INS " AFTER INSERT ON %s"
								" REFERENCING NEW TABLE AS lifecycle_new FOR EACH STATEMENT"
								" EXECUTE FUNCTION " LIFECYCLE_SCHEMA ".audit_trigger()", qual),
					   SPI_OK_UTILITY, 0, NULL, NULL, NULL);
	lifecycle_spi_exec(psprintf("CREATE OR REPLACE TRIGGER " AU_TRIGGER_UPD " AFTER UPDATE ON %s"
								" REFERENCING OLD TABLE AS lifecycle_old NEW TABLE AS lifecycle_new"
								" FOR EACH STATEMENT EXECUTE FUNCTION " LIFECYCLE_SCHEMA ".audit_trigger()",
								qual),
					   SPI_OK_UTILITY, 0, NULL, NULL, NULL);
	lifecycle_spi_exec(psprintf("CREATE OR REPLACE TRIGGER " AU_TRIGGER_DEL " AFTER DELETE ON %s"
								" REFERENCING OLD TABLE AS lifecycle_old FOR EACH STATEMENT"
								" EXECUTE FUNCTION " LIFECYCLE_SCHEMA ".audit_trigger()", qual),
					   SPI_OK_UTILITY, 0, NULL, NULL, NULL);
	lifecycle_spi_exec(psprintf("CREATE OR REPLACE TRIGGER " AU_TRIGGER_TRUNC " AFTER TRUNCATE ON %s"
								" FOR EACH STATEMENT EXECUTE FUNCTION " LIFECYCLE_SCHEMA ".audit_trigger()",
								qual),
					   SPI_OK_UTILITY, 0, NULL, NULL, NULL);
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
	CacheInvalidateRelcacheByRelid(relid);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(disable_audit);
Datum
disable_audit(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Relation	rel;
	char	   *qual;
	bool		audited = false;
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
	rel = relation_open(relid, ShareRowExclusiveLock);
	lifecycle_check_table(rel, "disable_audit");
	lifecycle_check_owner(rel);
	for (i = 0; rel->trigdesc && i < rel->trigdesc->numtriggers; i++)
		if (strcmp(rel->trigdesc->triggers[i].tgname, AU_TRIGGER_INS) == 0)
			audited = true;
	qual = lifecycle_qualified_name(rel);
	relation_close(rel, NoLock);
	if (!audited)
	{
		ereport(NOTICE,
				(errmsg("table \"%s\" is not audited, skipping", get_rel_name(relid))));
		PG_RETURN_VOID();
	}

	SPI_connect();
	nest = lifecycle_pin_search_path();
	for (i = 0; i < 4; i++)
		lifecycle_spi_exec(psprintf("DROP TRIGGER IF EXISTS %s ON %s", triggers[i], qual),
						   SPI_OK_UTILITY, 0, NULL, NULL, NULL);
	values[0] = ObjectIdGetDatum(relid);
	lifecycle_become_owner(&save);
	lifecycle_spi_exec("DELETE FROM " LIFECYCLE_SCHEMA ".audit_tables WHERE relid OPERATOR(pg_catalog.=) $1",
					   SPI_OK_DELETE, 1, argtypes, values, NULL);
	lifecycle_restore_user(&save);
	lifecycle_unpin_search_path(nest);
	SPI_finish();
	PG_RETURN_VOID();
}
