/*-------------------------------------------------------------------------
 *
 * audit_admin.c
 *	  The SQL API of audit capture: enable_audit() and disable_audit(),
 *	  which install the capture triggers (audit.c) as the table's owner and
 *	  record the options as the extension's owner, and the functions
 *	  behind the view lifecycle.audit_log_visible, which shows a reader
 *	  only what it could have read from the audited table itself.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "audit.h"

const LcTriggerShape au_triggers[AU_NTRIGGERS] = {
	{"lifecycle_audit_insert", TRIGGER_TYPE_INSERT, NULL, AU_NEW_TABLE, 2,
	"AFTER INSERT ON %s REFERENCING NEW TABLE AS " AU_NEW_TABLE " FOR EACH STATEMENT"},
	{"lifecycle_audit_update", TRIGGER_TYPE_UPDATE, AU_OLD_TABLE, AU_NEW_TABLE, 2,
		"AFTER UPDATE ON %s REFERENCING OLD TABLE AS " AU_OLD_TABLE " NEW TABLE AS "
	AU_NEW_TABLE " FOR EACH STATEMENT"},
	{"lifecycle_audit_delete", TRIGGER_TYPE_DELETE, AU_OLD_TABLE, NULL, 2,
	"AFTER DELETE ON %s REFERENCING OLD TABLE AS " AU_OLD_TABLE " FOR EACH STATEMENT"},
	{"lifecycle_audit_truncate", TRIGGER_TYPE_TRUNCATE, NULL, NULL, 2,
	"AFTER TRUNCATE ON %s FOR EACH STATEMENT"},
	/* who each statement runs as (a foreign key's action runs as the table's owner) */
	{"lifecycle_audit_start", TRIGGER_TYPE_BEFORE | TRIGGER_TYPE_INSERT | TRIGGER_TYPE_UPDATE |
		TRIGGER_TYPE_DELETE, NULL, NULL, 2,
	"BEFORE INSERT OR UPDATE OR DELETE ON %s FOR EACH STATEMENT"},
};

/* ---------- enable / disable ---------- */

static ArrayType *
au_array_arg(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? construct_empty_array(TEXTOID) : PG_GETARG_ARRAYTYPE_P(argno);
}

/* "{3,5}": the attribute numbers of a list of column names, checked. */
static char *
au_attnums(Relation rel, ArrayType *names, const char *what, ArrayType *other,
		   const char *other_what)
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
							 errmsg("column \"%s\" is in both %s and %s", col, other_what, what),
							 errdetail("An excluded column never appears in the log; a redacted one appears with its value masked; a hashed one with a keyed pseudonym of it."),
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

static Oid
au_table_arg(FunctionCallInfo fcinfo, const char *funcname)
{
	if (PG_ARGISNULL(0))
		lc_null_argument("table", psprintf("Pass the table, e.g. lifecycle.%s('public.projects').",
										   funcname));
	return PG_GETARG_OID(0);
}

PG_FUNCTION_INFO_V1(enable_audit);
Datum
enable_audit(PG_FUNCTION_ARGS)
{
	Oid			relid = au_table_arg(fcinfo, "enable_audit");
	ArrayType  *exclude = au_array_arg(fcinfo, 1);
	ArrayType  *redact = au_array_arg(fcinfo, 2);
	/* the SQL of 0.4.0 (before ALTER EXTENSION UPDATE) has three arguments */
	bool		options = PG_NARGS() > 3;
	ArrayType  *hash = options ? au_array_arg(fcinfo, 3) : construct_empty_array(TEXTOID);
	bool		redact_values = options && !PG_ARGISNULL(4) && PG_GETARG_BOOL(4);
	Relation	rel;
	char	   *args;
	char	   *hash_attnums;
	List	   *tables;
	Oid			argtypes[5] = {OIDOID, TEXTARRAYOID, TEXTARRAYOID, TEXTOID, BOOLOID};
	Datum		values[5];

	rel = lc_open_owned_table(relid, ShareRowExclusiveLock, "enable_audit");
	args = psprintf("%s, %s",
					quote_literal_cstr(au_attnums(rel, exclude, "exclude_columns", NULL, NULL)),
					quote_literal_cstr(au_attnums(rel, redact, "redact_columns", exclude,
												  "exclude_columns")));
	hash_attnums = au_attnums(rel, hash, "hash_columns", exclude, "exclude_columns");
	(void) au_attnums(rel, hash, "hash_columns", redact, "redact_columns");
	tables = au_tables(rel);
	relation_close(rel, NoLock);

	lc_enter();
	/* CREATE OR REPLACE: the tables' cached options are read again */
	lc_install_triggers(tables, au_triggers, AU_NTRIGGERS, "audit_trigger", args, true);
	values[0] = ObjectIdGetDatum(relid);
	values[1] = PointerGetDatum(exclude);
	values[2] = PointerGetDatum(redact);
	values[3] = CStringGetTextDatum(hash_attnums);	/* "{3,5}", cast in the statement */
	values[4] = BoolGetDatum(redact_values);
	if (options)
		(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
						  "INSERT INTO " LIFECYCLE_SCHEMA ".audit_tables"
						  " (relid, exclude_columns, redact_columns, hash_attnums, redact_values)"
						  " VALUES ($1, $2, $3, $4::pg_catalog.int2[], $5) ON CONFLICT (relid) DO UPDATE"
						  " SET exclude_columns = excluded.exclude_columns,"
						  " redact_columns = excluded.redact_columns, hash_attnums = excluded.hash_attnums,"
						  " redact_values = excluded.redact_values, enabled_at = pg_catalog.now()",
						  5, argtypes, values, NULL, SPI_OK_INSERT, 0);
	else
		(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
						  "INSERT INTO " LIFECYCLE_SCHEMA ".audit_tables (relid, exclude_columns, redact_columns)"
						  " VALUES ($1, $2, $3) ON CONFLICT (relid) DO UPDATE"
						  " SET exclude_columns = excluded.exclude_columns,"
						  " redact_columns = excluded.redact_columns, enabled_at = pg_catalog.now()",
						  3, argtypes, values, NULL, SPI_OK_INSERT, 0);
	lc_leave();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(disable_audit);
Datum
disable_audit(PG_FUNCTION_ARGS)
{
	Oid			relid = au_table_arg(fcinfo, "disable_audit");
	Relation	rel;
	bool		audited;
	List	   *tables;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];

	rel = lc_open_owned_table(relid, ShareRowExclusiveLock, "disable_audit");
	audited = lc_find_trigger(rel, au_triggers[0].name) != NULL;
	tables = au_tables(rel);
	relation_close(rel, NoLock);
	if (!audited)
	{
		ereport(NOTICE,
				(errmsg("table \"%s\" is not audited, skipping", get_rel_name(relid))));
		PG_RETURN_VOID();
	}
	lc_enter();
	lc_install_triggers(tables, au_triggers, AU_NTRIGGERS, "audit_trigger", NULL, false);
	values[0] = ObjectIdGetDatum(relid);
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "DELETE FROM " LIFECYCLE_SCHEMA ".audit_tables WHERE relid OPERATOR(pg_catalog.=) $1",
					  1, argtypes, values, NULL, SPI_OK_DELETE, 0);
	lc_leave();
	PG_RETURN_VOID();
}

/* sql_drop: forget the options of dropped tables (the log keeps their history). */
static const char *const au_forget_dropped[] = {
	"DELETE FROM " LIFECYCLE_SCHEMA ".audit_tables a"
	" WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
	" WHERE c.oid OPERATOR(pg_catalog.=) a.relid)",
	NULL
};

const LcFeature lc_audit_feature = {
	.name = "audit",
	.xact_end = au_xact_end,
	.subxact_end = au_subxact_end,
	.forget_dropped = au_forget_dropped,
	.config_table = "audit_tables",
};

/* ---------- what a reader may see of the log ---------- */

/*
 * What the current user may read of one audited table, looked up once per
 * query (fn_extra) and table.  A reader that bypasses row-level security
 * or acts for the log's owner reads everything; any other reader sees a
 * row of the log only if it wrote the change itself (its own JWT user, and
 * the statement ran as its own role: not a foreign key's cascade nor a
 * function running as another owner), and then only the columns it may
 * SELECT on the audited table now.
 */
typedef struct AuReader
{
	char	   *schema;
	char	   *table;
	Oid			relid;			/* InvalidOid: the table is gone */
	bool		whole;			/* SELECT on the whole table */
	bool		some;			/* on the table or on some column */
	bool		key;			/* on every column of the primary key, if any */
} AuReader;

typedef struct AuReaders
{
	bool		everything;
	char	   *user;
	List	   *tables;			/* AuReader * */
} AuReaders;

static AuReaders *
au_readers(FunctionCallInfo fcinfo)
{
	AuReaders  *r = fcinfo->flinfo->fn_extra;

	if (r == NULL)
	{
		Oid			user = GetUserId();

		r = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(AuReaders));
		r->everything = superuser_arg(user) || has_bypassrls_privilege(user) ||
			has_privs_of_role(user, lc_extension_owner());
		r->user = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, GetUserNameFromId(user, false));
		fcinfo->flinfo->fn_extra = r;
	}
	return r;
}

static bool
au_column_readable(AuReader *t, const char *column)
{
	AttrNumber	attnum;

	if (!OidIsValid(t->relid))
		return false;
	if (t->whole)
		return true;
	attnum = get_attnum(t->relid, column);
	return attnum > 0 &&
		pg_attribute_aclcheck(t->relid, attnum, GetUserId(), ACL_SELECT) == ACLCHECK_OK;
}

static AuReader *
au_reader(FunctionCallInfo fcinfo, AuReaders *r, text *schema, text *table)
{
	char	   *nsp = text_to_cstring(schema);
	char	   *rel = text_to_cstring(table);
	ListCell   *lc;
	AuReader   *t;
	MemoryContext old;
	Oid			nspoid;

	foreach(lc, r->tables)
	{
		t = lfirst(lc);
		if (strcmp(t->schema, nsp) == 0 && strcmp(t->table, rel) == 0)
			return t;
	}
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	t = palloc0(sizeof(AuReader));
	t->schema = pstrdup(nsp);
	t->table = pstrdup(rel);
	nspoid = get_namespace_oid(nsp, true);
	t->relid = OidIsValid(nspoid) ? get_relname_relid(rel, nspoid) : InvalidOid;
	if (OidIsValid(t->relid))
	{
		Relation	relation = try_relation_open(t->relid, AccessShareLock);
		AttrNumber	keys[INDEX_MAX_KEYS];
		int			nkeys,
					i;

		if (relation == NULL)
			t->relid = InvalidOid;
		else
		{
			t->whole = pg_class_aclcheck(t->relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK;
			t->some = t->whole ||
				pg_attribute_aclcheck_all(t->relid, GetUserId(), ACL_SELECT, ACLMASK_ANY) == ACLCHECK_OK;
			nkeys = lc_primary_key(relation, keys);
			t->key = true;		/* without a key, record_id is NULL */
			for (i = 0; i < nkeys; i++)
				t->key = t->key && (t->whole ||
									pg_attribute_aclcheck(t->relid, keys[i], GetUserId(),
														  ACL_SELECT) == ACLCHECK_OK);
			relation_close(relation, AccessShareLock);
		}
	}
	r->tables = lappend(r->tables, t);
	MemoryContextSwitchTo(old);
	return t;
}

/*
 * audit_row_visible(schema, table, actor_id, db_user, changed_columns):
 * may the current user see this row of the log at all?  An UPDATE shows
 * only if a column the reader may read changed.
 */
PG_FUNCTION_INFO_V1(audit_row_visible);
Datum
audit_row_visible(PG_FUNCTION_ARGS)
{
	AuReaders  *r = au_readers(fcinfo);
	AuReader   *t;
	pg_uuid_t	me;

	if (r->everything)
		PG_RETURN_BOOL(true);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) ||
		!lifecycle_current_actor(&me) ||
		memcmp(PG_GETARG_UUID_P(2), &me, sizeof(pg_uuid_t)) != 0 ||
		strcmp(text_to_cstring(PG_GETARG_TEXT_PP(3)), r->user) != 0)
		PG_RETURN_BOOL(false);
	t = au_reader(fcinfo, r, PG_GETARG_TEXT_PP(0), PG_GETARG_TEXT_PP(1));
	if (!t->some || !t->key)
		PG_RETURN_BOOL(false);
	if (!PG_ARGISNULL(4))
	{
		Datum	   *cols;
		bool	   *nulls;
		int			n,
					i;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(4), TEXTOID, -1, false, TYPALIGN_INT,
						  &cols, &nulls, &n);
		for (i = 0; i < n; i++)
			if (!nulls[i] && au_column_readable(t, TextDatumGetCString(cols[i])))
				PG_RETURN_BOOL(true);
		PG_RETURN_BOOL(false);
	}
	PG_RETURN_BOOL(true);
}

/* audit_visible_values(schema, table, values jsonb): without the columns it may not read. */
PG_FUNCTION_INFO_V1(audit_visible_values);
Datum
audit_visible_values(PG_FUNCTION_ARGS)
{
	AuReaders  *r = au_readers(fcinfo);
	AuReader   *t;
	Jsonb	   *values;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	List	   *drop = NIL;
	Datum		result;
	ListCell   *lc;

	if (PG_ARGISNULL(2))
		PG_RETURN_NULL();
	values = PG_GETARG_JSONB_P(2);
	if (r->everything)
		PG_RETURN_JSONB_P(values);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || !JB_ROOT_IS_OBJECT(values))
		PG_RETURN_NULL();
	t = au_reader(fcinfo, r, PG_GETARG_TEXT_PP(0), PG_GETARG_TEXT_PP(1));
	it = JsonbIteratorInit(&values->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		if (!au_column_readable(t, pnstrdup(v.val.string.val, v.val.string.len)))
			drop = lappend(drop, cstring_to_text_with_len(v.val.string.val, v.val.string.len));
	}
	result = PointerGetDatum(values);
	foreach(lc, drop)
		result = DirectFunctionCall2(jsonb_delete, result, PointerGetDatum(lfirst(lc)));
	PG_RETURN_DATUM(result);
}

/* audit_visible_columns(schema, table, columns text[]): those it may read. */
PG_FUNCTION_INFO_V1(audit_visible_columns);
Datum
audit_visible_columns(PG_FUNCTION_ARGS)
{
	AuReaders  *r = au_readers(fcinfo);
	AuReader   *t;
	Datum	   *cols;
	bool	   *nulls;
	int			n,
				i,
				k = 0;

	if (PG_ARGISNULL(2))
		PG_RETURN_NULL();
	if (r->everything)
		PG_RETURN_DATUM(PG_GETARG_DATUM(2));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	t = au_reader(fcinfo, r, PG_GETARG_TEXT_PP(0), PG_GETARG_TEXT_PP(1));
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), TEXTOID, -1, false, TYPALIGN_INT,
					  &cols, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i] && au_column_readable(t, TextDatumGetCString(cols[i])))
			cols[k++] = cols[i];
	PG_RETURN_ARRAYTYPE_P(construct_array(cols, k, TEXTOID, -1, false, TYPALIGN_INT));
}
