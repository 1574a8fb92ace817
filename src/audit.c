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
 *	  Per table the shared cache keeps the names, the options and the
 *	  prepared plans; relcache invalidation (enable_audit recreates the
 *	  triggers, ALTER TABLE) makes them be read again.  enable_audit() and
 *	  the rest of the SQL API are in audit_admin.c.
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
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"

#include "audit.h"

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
 * What one audited table needs, in the shared cache.  Its options come
 * from the triggers' arguments (attribute numbers), so they change exactly
 * when the triggers do and follow column renames.
 */
typedef struct AuTable
{
	LcEntry		entry;
	bool		registered;		/* its root is in lifecycle.audit_tables */
	bool		args_ok;		/* its audit triggers agree on their arguments */
	char	   *args[2];		/* those arguments */
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
	LcPlan		plans[AU_NOPS];
	/* one row of a table of built-in types: logged from C (au_record_single) */
	bool		single;			/* the key is one column, or there is none */
	AttrNumber	key_attnum;		/* that column; 0 without a key */
	FmgrInfo	key_out;		/* its output function */
	AttrNumber	deleted_at;		/* 0 if the table has none */
	FmgrInfo	to_jsonb;		/* to_jsonb() of the table's row type */
	bool	   *excluded;		/* by attribute number - 1 */
	bool	   *redacted;
	/* enable_audit(hash_columns, redact_values): values rewritten in C */
	char	  **hash_names;		/* columns logged as keyed pseudonyms */
	int			nhash;
	bool		redact_values;	/* logged values through the redaction rules */
	bool		hash_rid;		/* a hashed column is in the key: so is record_id */
	bool		transform;		/* any: the log rows come back to C */
} AuTable;

static LcCache *au_cache = NULL;
static LcPlan au_insert_plan;	/* the log's INSERT, for every table */
static LcPlan au_truncate_plan;
static LcPlan au_single_plan;

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
	AttrNumber	keys[INDEX_MAX_KEYS];
	int			nkeys = lc_primary_key(rel, keys);
	StringInfoData sql;
	int			i;

	if (nkeys == 0)
		return "NULL::pg_catalog.text";
	initStringInfo(&sql);
	appendStringInfoString(&sql, nkeys > 1 ? "(ROW(" : "pg_catalog.format('%s', ");
	for (i = 0; i < nkeys; i++)
		appendStringInfo(&sql, "%s%s.%s", i ? ", " : "", row,
						 quote_identifier(get_attname(RelationGetRelid(rel), keys[i], false)));
	appendStringInfoString(&sql, nkeys > 1 ? "))::pg_catalog.text" : ")");
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
	AttrNumber	keys[INDEX_MAX_KEYS];
	int			nkeys = lc_primary_key(rel, keys);
	FuncExpr   *call;

	t->single = nkeys <= 1;
	t->key_attnum = nkeys == 1 ? keys[0] : 0;
	if (nkeys == 1)
	{
		Oid			out;
		bool		varlena;

		getTypeOutputInfo(TupleDescAttr(RelationGetDescr(rel), t->key_attnum - 1)->atttypid,
						  &out, &varlena);
		fmgr_info_cxt(out, &t->key_out, t->entry.cxt);
	}
	fmgr_info_cxt(F_TO_JSONB, &t->to_jsonb, t->entry.cxt);
	call = makeFuncExpr(F_TO_JSONB, JSONBOID,
						list_make1(makeNullConst(RelationGetForm(rel)->reltype, -1, InvalidOid)),
						InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
	t->to_jsonb.fn_expr = (Node *) call;
}

/*
 * The arguments every audit trigger of the table carries (they must agree:
 * a trigger replaced by hand with other options is refused, not obeyed).
 */
static void
au_trigger_args(AuTable *t, Relation rel)
{
	int			i;

	t->args_ok = false;
	for (i = 0; i < AU_NTRIGGERS; i++)
	{
		Trigger    *tg = lc_find_trigger(rel, au_triggers[i].name);

		if (tg == NULL)
			continue;
		if (tg->tgnargs != 2)
			return;
		if (t->args[0] == NULL)
		{
			t->args[0] = pstrdup(tg->tgargs[0]);
			t->args[1] = pstrdup(tg->tgargs[1]);
		}
		else if (strcmp(t->args[0], tg->tgargs[0]) != 0 ||
				 strcmp(t->args[1], tg->tgargs[1]) != 0)
			return;
	}
	t->args_ok = t->args[0] != NULL;
}

/* hash_columns (a jsonb array of names) and redact_values, from the registration. */
static void
au_read_options(AuTable *t, Relation rel)
{
	bool		isnull;
	Jsonb	   *attnums = DatumGetJsonbP(lc_result(0, 1, &isnull));
	JsonbIterator *it = JsonbIteratorInit(&attnums->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			n = JB_ROOT_COUNT(attnums);
	AttrNumber	pk[INDEX_MAX_KEYS];
	int			npk = lc_primary_key(rel, pk);

	t->redact_values = DatumGetBool(lc_result(0, 2, &isnull));
	t->hash_names = palloc0(sizeof(char *) * Max(n, 1));
	t->nhash = 0;
	t->hash_rid = false;
	/* by attribute number of the audited (root) table: names follow renames */
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		AttrNumber	attnum;
		char	   *name;
		int			k;

		if (tok != WJB_ELEM || v.type != jbvNumeric || t->nhash >= n)
			continue;
		attnum = DatumGetInt16(DirectFunctionCall1(numeric_int2, NumericGetDatum(v.val.numeric)));
		name = get_attname(t->name_relid, attnum, true);
		if (name == NULL)
			continue;
		t->hash_names[t->nhash++] = name;
		/* a hashed key column: the record id is its pseudonym too */
		for (k = 0; k < npk; k++)
			if (strcmp(NameStr(TupleDescAttr(RelationGetDescr(rel), pk[k] - 1)->attname), name) == 0)
				t->hash_rid = true;
	}
	t->transform = t->nhash > 0 || t->redact_values;
}

/*
 * The log's arrays rewritten element by element: the logged rows (jsonb[])
 * with pseudonyms and redaction applied, the record ids (text[]) as their
 * pseudonyms.
 */
static Datum
au_rewrite_array(AuTable *t, Datum array, Oid elemtype)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	int			dims[1],
				lbs[1] = {1};

	deconstruct_array(DatumGetArrayTypeP(array), elemtype, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			continue;
		if (elemtype == JSONBOID)
			elems[i] = lc_redact_logged_row(elems[i], t->hash_names, t->nhash, t->redact_values);
		else
			elems[i] = CStringGetTextDatum(lc_redact_pseudonym(TextDatumGetCString(elems[i])));
	}
	dims[0] = n;
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, elemtype, -1, false,
											  TYPALIGN_INT));
}

static void
au_build(LcEntry *entry, Relation rel)
{
	AuTable    *t = (AuTable *) entry;
	Oid			relid = RelationGetRelid(rel);
	AttrNumber	deleted_at = lc_attnum(rel, LC_DELETED_AT);
	Oid			types[2] = {OIDOID, OIDOID};
	Datum		values[2];

	/* partitions are logged under the root's name; either may be the one audited */
	t->name_relid = lc_partition_root(relid);
	values[0] = ObjectIdGetDatum(t->name_relid);
	values[1] = ObjectIdGetDatum(relid);
	/* to_jsonb: the options of 0.5.0 are read alike before the update */
	t->registered = lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
							   "SELECT COALESCE(pg_catalog.to_jsonb(a) OPERATOR(pg_catalog.->) 'hash_attnums', '[]'),"
							   " COALESCE((pg_catalog.to_jsonb(a) OPERATOR(pg_catalog.->>) 'redact_values')::pg_catalog.bool, false)"
							   " FROM " LIFECYCLE_SCHEMA ".audit_tables a"
							   " WHERE relid OPERATOR(pg_catalog.=) $1 OR relid OPERATOR(pg_catalog.=) $2",
							   2, types, values, NULL, SPI_OK_SELECT, 1) == 1;
	if (t->registered)
		au_read_options(t, rel);
	au_trigger_args(t, rel);
	if (!t->registered || !t->args_ok)
		return;
	t->excluded = au_attnum_flags(rel, t->args[0]);
	t->redacted = au_attnum_flags(rel, t->args[1]);
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
	/* pseudonyms and redaction are applied in C to the rows read back */
	t->builtin = au_builtin_types(rel) && !t->transform;
	t->reg_types = au_reg_types(rel);
	t->deleted_at = deleted_at;
	if (t->builtin)
		au_build_single(t, rel);
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

/* The log's INSERT of unnested arrays (or of a TRUNCATE), kept for every table. */
static LcPlan *
au_log_plan(bool truncate)
{
	LcPlan	   *plan = truncate ? &au_truncate_plan : &au_insert_plan;
	Oid			types[13] = {TIMESTAMPTZOID, INT8OID, TEXTOID, TEXTOID, TEXTARRAYOID,
		InvalidOid, JSONBARRAYOID, JSONBARRAYOID, JSONBARRAYOID, UUIDOID, TEXTOID, TEXTOID,
	TEXTOID};

	if (lc_plan_ready(plan))
		return plan;
	types[5] = get_array_type(GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
											  CStringGetDatum("audit_operation"),
											  ObjectIdGetDatum(get_namespace_oid(LIFECYCLE_SCHEMA, false))));
	lc_plan_prepare(plan, NULL, LC_EXTENSION_OWNER, InvalidOid, truncate ?
					AU_LOG_COLUMNS "SELECT $1, $2, $3, $4, 'TRUNCATE', NULL, NULL, NULL, NULL, " AU_LOG_CONTEXT :
					AU_LOG_COLUMNS "SELECT $1, $2, $3, $4, u.op, u.rid, u.o, u.n,"
					" CASE WHEN u.c IS NULL THEN NULL ELSE ARRAY(SELECT pg_catalog.jsonb_array_elements_text(u.c)) END, "
					AU_LOG_CONTEXT " FROM ROWS FROM (pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7),"
					" pg_catalog.unnest($8), pg_catalog.unnest($9)) AS u(rid, op, o, n, c)",
					13, types);
	return plan;
}

/*
 * The plan of one operation of a table.  Built-in types only: one INSERT of
 * the rows, run as the extension's owner ($1..$4 as for the rows, $5..$12
 * the context).  Otherwise the rows as one row of arrays, run as the
 * table's owner, for au_log_plan().
 */
static LcPlan *
au_plan(AuTable *t, AuOp op)
{
	Oid			types[12] = {TEXTARRAYOID, JSONBOID, TEXTARRAYOID, JSONBOID,
		TIMESTAMPTZOID, INT8OID, TEXTOID, TEXTOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID};
	LcPlan	   *plan = &t->plans[op];

	if (lc_plan_ready(plan))
		return plan;
	if (t->builtin)
		lc_plan_prepare(plan, &t->entry, LC_EXTENSION_OWNER, InvalidOid,
						psprintf(AU_LOG_COLUMNS "SELECT $5, $6, $7, $8, x.op, x.rid, x.o, x.n,"
								 " CASE WHEN x.c IS NULL THEN NULL ELSE ARRAY(SELECT pg_catalog.jsonb_array_elements_text(x.c)) END,"
								 " $9, $10, $11, COALESCE($12, pg_catalog.host(pg_catalog.inet_client_addr())),"
								 " pg_catalog.current_setting('application_name') FROM (%s) x",
								 au_rows_sql(t, op)),
						12, types);
	else
		lc_plan_prepare(plan, &t->entry, LC_TABLE_OWNER, t->entry.relid,
						psprintf("SELECT pg_catalog.array_agg(x.rid), pg_catalog.array_agg(x.op),"
								 " pg_catalog.array_agg(x.o), pg_catalog.array_agg(x.n), pg_catalog.array_agg(x.c)"
								 " FROM (%s) x", au_rows_sql(t, op)),
						4, types);
	return plan;
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
 * The role each statement runs as, noted by the BEFORE STATEMENT trigger
 * and taken by the AFTER STATEMENT trigger of the same table and event.
 * A foreign key's ON DELETE CASCADE runs its DELETE as the referencing
 * table's owner, but its AFTER triggers fire later, back as the user who
 * deleted the parent row: only the BEFORE trigger sees who really ran it,
 * and db_user is what lets readers tell their own statements from those.
 */
typedef struct AuRunner
{
	LcXactItem	item;			/* first: a transaction-lifetime list's item */
	Oid			relid;
	uint32		event;			/* TRIGGER_EVENT_INSERT, _UPDATE, _DELETE */
	Oid			user;
} AuRunner;

static List *au_runners = NIL;	/* in TopTransactionContext */

void
au_xact_end(void)
{
	au_runners = NIL;			/* its memory goes with the transaction */
}

void
au_subxact_end(bool commit, SubTransactionId mine, SubTransactionId parent)
{
	au_runners = lc_xact_items_subxact_end(au_runners, commit, mine, parent);
}

static void
au_statement_starts(TriggerData *td)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	AuRunner   *r = palloc(sizeof(AuRunner));

	r->relid = RelationGetRelid(td->tg_relation);
	r->event = td->tg_event & TRIGGER_EVENT_OPMASK;
	r->user = GetUserId();
	lc_xact_item_init(&r->item);
	au_runners = lappend(au_runners, r);
	MemoryContextSwitchTo(old);
}

/* Who ran the statement whose AFTER trigger fires now (the current user if unknown). */
static Oid
au_statement_runner(TriggerData *td)
{
	Oid			relid = RelationGetRelid(td->tg_relation);
	uint32		event = td->tg_event & TRIGGER_EVENT_OPMASK;
	ListCell   *lc;

	foreach(lc, au_runners)
	{
		AuRunner   *r = lfirst(lc);

		if (r->relid == relid && r->event == event)
		{
			Oid			user = r->user;

			au_runners = foreach_delete_current(au_runners, lc);
			pfree(r);
			return user;
		}
	}
	return GetUserId();
}

/*
 * Who, when and where, for the log: occurred_at, txid, schema and table
 * names, actor, actor role, database user (who ran the statement),
 * forwarded client address.
 */
static void
au_context(AuTable *t, Oid runner, Datum *values, char *nulls)
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
	values[6] = CStringGetTextDatum(GetUserNameFromId(runner, false));
	values[7] = forwarded ? CStringGetTextDatum(forwarded) : (Datum) 0;
	nulls[7] = forwarded ? ' ' : 'n';
}

/* Write the log row(s) of au_log_plan(), as the extension's owner. */
static void
au_write_log(bool truncate, Datum *ctx, const char *ctxnulls, Datum *arrays)
{
	Datum		values[13];
	char		nulls[13];
	int			i;

	memcpy(values, ctx, 4 * sizeof(Datum));
	memcpy(nulls, ctxnulls, 4);
	for (i = 0; i < 5; i++)
	{
		values[4 + i] = truncate ? (Datum) 0 : arrays[i];
		nulls[4 + i] = truncate ? 'n' : ' ';
	}
	memcpy(values + 9, ctx + 4, 4 * sizeof(Datum));
	memcpy(nulls + 9, ctxnulls + 4, 4);
	(void) lc_plan_run(au_log_plan(truncate), values, nulls, SPI_OK_INSERT, 0);
}

/*
 * The log's INSERT of one row whose values were all made in C: $1
 * occurred_at, $2 txid, $3 $4 names, $5 op, $6 record id, $7 $8 old and
 * new values, $9 changed columns, $10 actor, $11 actor role, $12 database
 * user, $13 forwarded client address.
 */
static LcPlan *
au_single_log_plan(void)
{
	Oid			types[13] = {TIMESTAMPTZOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
		JSONBOID, JSONBOID, TEXTARRAYOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID};

	if (!lc_plan_ready(&au_single_plan))
		lc_plan_prepare(&au_single_plan, NULL, LC_EXTENSION_OWNER, InvalidOid,
						AU_LOG_COLUMNS "VALUES ($1, $2, $3, $4, $5::" LIFECYCLE_SCHEMA
						".audit_operation, $6, $7, $8, $9, " AU_LOG_CONTEXT ")", 13, types);
	return &au_single_plan;
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
au_record_single(AuTable *t, TriggerData *td, AuOp op, Oid runner)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	TupleTableSlot *o = op == AU_INSERT ? NULL : lc_only_row(td->tg_oldtable, desc);
	TupleTableSlot *n = op == AU_DELETE ? NULL : lc_only_row(td->tg_newtable, desc);
	TupleTableSlot *keyrow = n ? n : o;
	Datum		ctx[8],
				values[13];
	char		ctxnulls[8],
				nulls[13];
	const char *opname;
	int			nest;

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
	au_context(t, runner, ctx, ctxnulls);
	memcpy(values, ctx, 4 * sizeof(Datum));
	memcpy(nulls, ctxnulls, 4);
	memcpy(values + 9, ctx + 4, 4 * sizeof(Datum));
	memcpy(nulls + 9, ctxnulls + 4, 4);
	(void) lc_plan_run(au_single_log_plan(), values, nulls, SPI_OK_INSERT, 0);
	au_unpin_output(nest);
	if (o)
		ExecDropSingleTupleTableSlot(o);
	if (n)
		ExecDropSingleTupleTableSlot(n);
}

/*
 * A retention batch (lc_retention_batch): one RETENTION row for the whole
 * statement, its old_values saying how many rows went, how (delete or
 * archive, and where to), in which run, and the range of their keys: the
 * rows themselves are in the archive, or meant to be gone.
 */
static void
au_record_retention(AuTable *t, TriggerData *td, Oid runner, int64 nrows)
{
	const LcRetentionBatch *batch = lc_retention_batch;
	Datum		ctx[8],
				values[13];
	char		ctxnulls[8],
				nulls[13];
	StringInfoData doc;

	memset(nulls, ' ', sizeof(nulls));
	initStringInfo(&doc);
	appendStringInfo(&doc, "{\"rows\": " INT64_FORMAT ", \"run_id\": " INT64_FORMAT ", \"action\": ",
					 nrows, batch->run_id);
	escape_json(&doc, batch->action);
	appendStringInfoString(&doc, ", \"archive\": ");
	if (batch->archive)
		escape_json(&doc, batch->archive);
	else
		appendStringInfoString(&doc, "null");
	if (t->key_attnum > 0)
	{
		const char *key = NameStr(TupleDescAttr(RelationGetDescr(td->tg_relation),
												t->key_attnum - 1)->attname);

		if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
			elog(ERROR, "could not register the transition tables");
		/* the key type's own ordering and output, as the table's owner */
		/* ORDER BY, not min()/max(): every key type sorts, not every one has them (uuid) */
		(void) lc_sql_run(LC_TABLE_OWNER, RelationGetRelid(td->tg_relation),
						  psprintf("SELECT (SELECT o.%s::pg_catalog.text FROM " AU_OLD_TABLE " o ORDER BY o.%s LIMIT 1),"
								   " (SELECT o.%s::pg_catalog.text FROM " AU_OLD_TABLE " o ORDER BY o.%s DESC LIMIT 1)",
								   quote_identifier(key), quote_identifier(key),
								   quote_identifier(key), quote_identifier(key)),
						  0, NULL, NULL, NULL, SPI_OK_SELECT, 1);
		appendStringInfoString(&doc, ", \"key\": ");
		escape_json(&doc, key);
		appendStringInfoString(&doc, ", \"first_key\": ");
		escape_json(&doc, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
		appendStringInfoString(&doc, ", \"last_key\": ");
		escape_json(&doc, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	}
	appendStringInfoChar(&doc, '}');
	values[4] = CStringGetTextDatum("RETENTION");
	nulls[5] = 'n';
	values[6] = DirectFunctionCall1(jsonb_in, CStringGetDatum(doc.data));
	nulls[7] = 'n';
	nulls[8] = 'n';
	au_context(t, runner, ctx, ctxnulls);
	memcpy(values, ctx, 4 * sizeof(Datum));
	memcpy(nulls, ctxnulls, 4);
	memcpy(values + 9, ctx + 4, 4 * sizeof(Datum));
	memcpy(nulls + 9, ctxnulls + 4, 4);
	(void) lc_plan_run(au_single_log_plan(), values, nulls, SPI_OK_INSERT, 0);
}

/*
 * Log one operation of the statement.  Built-in types: one INSERT as the
 * extension's owner.  Otherwise the changes are read as the table's owner
 * (its casts and functions run with its own rights) and then written, as
 * arrays of built-in types, as the extension's owner.
 */
static void
au_record(AuTable *t, AuOp op, Oid runner)
{
	Datum		values[12];
	char		nulls[12];
	int			nest,
				i;

	values[0] = t->exclude;
	values[1] = t->redact_object;
	values[2] = t->redact;
	values[3] = au_marker();
	memset(nulls, ' ', 4);
	au_context(t, runner, values + 4, nulls + 4);
	nest = au_pin_output(t);
	if (t->builtin)
		(void) lc_plan_run(au_plan(t, op), values, nulls, SPI_OK_INSERT, 0);
	else
	{
		Datum		arrays[5];
		bool		isnull = false;

		/* one row of aggregates, always */
		(void) lc_plan_run(au_plan(t, op), values, nulls, SPI_OK_SELECT, 0);
		for (i = 0; i < 5 && !isnull; i++)
			arrays[i] = lc_result(0, i + 1, &isnull);
		if (!isnull && t->transform)
		{
			arrays[2] = au_rewrite_array(t, arrays[2], JSONBOID);
			arrays[3] = au_rewrite_array(t, arrays[3], JSONBOID);
			if (t->hash_rid)
				arrays[0] = au_rewrite_array(t, arrays[0], TEXTOID);
		}
		if (!isnull)
			au_write_log(false, values + 4, nulls + 4, arrays);
	}
	au_unpin_output(nest);
}

/*
 * The entry of the table the trigger fired on, once the trigger is known
 * to be one enable_audit() made: shape first (no SQL before that), then
 * registration and agreement with the table's other audit triggers.
 */
static AuTable *
au_attached(FunctionCallInfo fcinfo)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Trigger    *tg;
	AuTable    *t;

	tg = td->tg_trigger;
	if (au_cache == NULL)
		au_cache = lc_cache_create("pg_lifecycle audit", sizeof(AuTable), au_build);
	t = (AuTable *) lc_cache_lookup(au_cache, td->tg_relation);
	if (!t->args_ok || !t->registered ||
		strcmp(tg->tgargs[0], t->args[0]) != 0 || strcmp(tg->tgargs[1], t->args[1]) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("audit_trigger: trigger \"%s\" on table \"%s\" was not created by pg_lifecycle",
						tg->tgname, RelationGetRelationName(td->tg_relation)),
				 errdetail(!t->registered ?
						   "The table is not in lifecycle.audited_tables." :
						   "The table's audit triggers do not agree on their options."),
				 errhint("Run lifecycle.enable_audit('%s') to set auditing up again, or drop the trigger.",
						 lc_qualified_name_oid(lc_partition_root(RelationGetRelid(td->tg_relation))))));
	return t;
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
	Oid			runner;

	(void) lc_verify_trigger(fcinfo, au_triggers, AU_NTRIGGERS, AU_HINT);
	if (TRIGGER_FIRED_BEFORE(td->tg_event))
	{
		au_statement_starts(td);	/* no SQL: just who runs it */
		return PointerGetDatum(NULL);
	}
	runner = TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) ? GetUserId() : au_statement_runner(td);
	nold = td->tg_oldtable ? tuplestore_tuple_count(td->tg_oldtable) : 0;
	nnew = td->tg_newtable ? tuplestore_tuple_count(td->tg_newtable) : 0;
	if (!TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) && nold == 0 && nnew == 0)
		return PointerGetDatum(NULL);

	lc_enter();
	t = au_attached(fcinfo);
	if (TRIGGER_FIRED_BY_DELETE(td->tg_event) && lc_retention_batch != NULL &&
		lc_retention_batch->relid == lc_partition_root(RelationGetRelid(td->tg_relation)))
	{
		au_record_retention(t, td, runner, nold);
		lc_leave();
		return PointerGetDatum(NULL);
	}
	single = t->builtin && t->single && nold <= 1 && nnew <= 1 &&
		(nold == nnew || !TRIGGER_FIRED_BY_UPDATE(td->tg_event));
	if (!single && SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "could not register the transition tables");
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		Datum		ctx[8];
		char		ctxnulls[8];

		au_context(t, runner, ctx, ctxnulls);
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
		au_record(t, AU_DELETE, runner);
		au_record(t, AU_INSERT, runner);
	}
	else if (single)
		au_record_single(t, td, TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? AU_UPDATE1 :
						 TRIGGER_FIRED_BY_INSERT(td->tg_event) ? AU_INSERT : AU_DELETE, runner);
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		au_record(t, nold == 1 ? AU_UPDATE1 : AU_UPDATE, runner);
	else
		au_record(t, TRIGGER_FIRED_BY_INSERT(td->tg_event) ? AU_INSERT : AU_DELETE, runner);
	lc_leave();
	return PointerGetDatum(NULL);
}

/* The log is append-only: refuse UPDATE, DELETE and TRUNCATE, for everyone. */
PG_FUNCTION_INFO_V1(audit_log_append_only);
Datum
audit_log_append_only(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		lc_trigger_misuse(fcinfo, "not called by trigger manager", AU_HINT);
	/* the one way out: the log's own retention policy, deleting row by row */
	if (TRIGGER_FIRED_BY_DELETE(td->tg_event) && TRIGGER_FIRED_FOR_ROW(td->tg_event) &&
		TRIGGER_FIRED_BEFORE(td->tg_event) && lc_retention_batch != NULL &&
		lc_retention_batch->relid == RelationGetRelid(td->tg_relation) &&
		RelationGetNamespace(td->tg_relation) == get_namespace_oid(LIFECYCLE_SCHEMA, false) &&
		strcmp(RelationGetRelationName(td->tg_relation), "audit_log") == 0)
		return PointerGetDatum(td->tg_trigtuple);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s is append-only", lc_qualified_name(td->tg_relation)),
			 errdetail("UPDATE, DELETE and TRUNCATE of the audit log (and of its archive) are refused for every role."),
			 errhint("Rows leave the log only through a retention policy on it: lifecycle.set_retention('lifecycle.audit_log', ..., timestamp_column => 'occurred_at').")));
	PG_RETURN_NULL();
}

