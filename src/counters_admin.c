/*-------------------------------------------------------------------------
 *
 * counters_admin.c
 *	  track_usage() and untrack_usage(): check the tables as their owner,
 *	  record the resource as the extension's owner, install the triggers
 *	  (counters_trigger.c on the source table and its partitions,
 *	  counters_guard.c on the counter table), and backfill the counts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "counters.h"

static bool
uc_is_integer(Oid type)
{
	type = getBaseType(type);
	return type == INT2OID || type == INT4OID || type == INT8OID;
}

/* A column of rel that must exist; its type. */
static Oid
uc_column_type(Relation rel, const char *column, const char *argname)
{
	AttrNumber	attnum = lc_attnum(rel, column);

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist", column,
						RelationGetRelationName(rel)),
				 errdetail("%s names a column of %s.", argname, RelationGetRelationName(rel))));
	return get_atttype(RelationGetRelid(rel), attnum);
}

static void
uc_check_integer(Relation rel, const char *column, const char *argname, const char *hint)
{
	Oid			type = uc_column_type(rel, column, argname);

	if (!uc_is_integer(type))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s \"%s\" must be of an integer type, not %s",
						strcmp(argname, "counter_column") == 0 ? "counter column" : "limit column",
						column, format_type_be(type)),
				 errhint("%s", hint)));
}

/* The accounts table: a uuid key, integer counter and limit columns.  Its key's type. */
static Oid
uc_check_counter_table(Relation counter, const char *column, const char *limit)
{
	AttrNumber	keys[INDEX_MAX_KEYS];
	int			nkeys = lc_primary_key(counter, keys);
	Oid			keytype;

	if (nkeys != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("counter table \"%s\" needs a one-column primary key",
						RelationGetRelationName(counter)),
				 errdetail(nkeys > 1 ? "Its primary key has more than one column." :
						   "It has no primary key."),
				 errhint("Counters are kept per account: use the accounts table, keyed by its uuid id.")));
	keytype = getBaseType(TupleDescAttr(RelationGetDescr(counter), keys[0] - 1)->atttypid);
	if (keytype != UUIDOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the primary key of counter table \"%s\" is of type %s, not uuid",
						RelationGetRelationName(counter), format_type_be(keytype)),
				 errhint("Accounts are identified by uuid, as the usage functions take account_id uuid.")));
	uc_check_integer(counter, column, "counter_column", "Use integer or bigint.");
	if (lc_attnum(counter, column) == keys[0])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("counter column \"%s\" is the key of \"%s\"", column,
						RelationGetRelationName(counter))));
	if (limit)
		uc_check_integer(counter, limit, "limit_column", "Use integer or bigint; NULL means unlimited.");
	if (limit && strcmp(limit, column) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the counter and the limit cannot be the same column \"%s\"", column)));
	return keytype;
}

/* The source table: not a partition nor an inheritance parent; its column holds the key. */
static void
uc_check_source_table(Relation source, const char *column, Relation counter, Oid keytype)
{
	Oid			srctype;

	if (RelationGetForm(source)->relispartition)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is a partition", RelationGetRelationName(source)),
				 errhint("Track the partitioned table; its partitions are counted with it.")));
	if (RelationGetForm(source)->relkind != RELKIND_PARTITIONED_TABLE &&
		has_subclass(RelationGetRelid(source)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("\"%s\" has inheritance children", RelationGetRelationName(source)),
				 errdetail("Rows written straight into a child table would not be counted."),
				 errhint("Use declarative partitioning, or count each table as its own resource.")));
	srctype = getBaseType(uc_column_type(source, column, "source_column"));
	if (srctype != keytype)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("source column \"%s\" is of type %s, but the key of \"%s\" is %s",
						column, format_type_be(srctype),
						RelationGetRelationName(counter), format_type_be(keytype)),
				 errhint("The source column must hold the account's key.")));
}

static bool
uc_same_name(const char *a, const char *b)
{
	return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/* A resource of that name must be defined the same; a counter column counts one resource. */
static bool
uc_check_definition(UcDef *want)
{
	List	   *all = uc_defs(NULL);
	ListCell   *lc;
	bool		exists = false;

	foreach(lc, all)
	{
		UcDef	   *d = lfirst(lc);

		if (strcmp(d->resource, want->resource) == 0)
		{
			exists = true;
			if (d->counter_relid != want->counter_relid || strcmp(d->column, want->column) != 0 ||
				d->source_relid != want->source_relid ||
				!uc_same_name(d->source_column, want->source_column) ||
				!uc_same_name(d->limit, want->limit))
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_OBJECT),
						 errmsg("usage resource \"%s\" is already tracked with a different definition",
								want->resource),
						 errdetail("It counts into %s.%s%s%s.", get_rel_name(d->counter_relid), d->column,
								   d->source_column ? " the rows of " : " (metered)",
								   d->source_column ? get_rel_name(d->source_relid) : ""),
						 errhint("Run lifecycle.untrack_usage('%s') first to change it.", want->resource)));
		}
		else if (d->counter_relid == want->counter_relid && strcmp(d->column, want->column) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("column \"%s\" of \"%s\" already counts usage resource \"%s\"",
							want->column, get_rel_name(want->counter_relid), d->resource),
					 errhint("Give each resource its own counter column.")));
	}
	return exists;
}

static void
uc_record(UcDef *d)
{
	Oid			types[6] = {TEXTOID, OIDOID, NAMEOID, OIDOID, NAMEOID, NAMEOID};
	Datum		values[6];
	char		nulls[6] = "      ";

	values[0] = CStringGetTextDatum(d->resource);
	values[1] = ObjectIdGetDatum(d->counter_relid);
	values[2] = DirectFunctionCall1(namein, CStringGetDatum(d->column));
	values[3] = ObjectIdGetDatum(d->source_relid);
	nulls[3] = d->source_column ? ' ' : 'n';
	values[4] = d->source_column ? DirectFunctionCall1(namein, CStringGetDatum(d->source_column)) : (Datum) 0;
	nulls[4] = d->source_column ? ' ' : 'n';
	values[5] = d->limit ? DirectFunctionCall1(namein, CStringGetDatum(d->limit)) : (Datum) 0;
	nulls[5] = d->limit ? ' ' : 'n';
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "INSERT INTO " LIFECYCLE_SCHEMA ".usage_resources (resource_type, counter_table,"
					  " counter_column, source_table, source_column, limit_column)"
					  " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (resource_type) DO NOTHING",
					  6, types, values, nulls, SPI_OK_INSERT, 0);
}

/* Is relid the counter (or the source) table of some resource? */
static bool
uc_table_used(Oid relid, bool as_counter)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};

	return lc_sql_run(LC_EXTENSION_OWNER, InvalidOid, as_counter ?
					  "SELECT 1 FROM " LIFECYCLE_SCHEMA ".usage_resources"
					  " WHERE counter_table OPERATOR(pg_catalog.=) $1" :
					  "SELECT 1 FROM " LIFECYCLE_SCHEMA ".usage_resources"
					  " WHERE source_table OPERATOR(pg_catalog.=) $1",
					  1, types, values, NULL, SPI_OK_SELECT, 1) == 1;
}

/*
 * Install (or drop) the triggers of a table, as the configuration says:
 * the guard on a counter table, the statement triggers on a source table
 * and its partitions.  Both tables' entries are rebuilt.
 */
static void
uc_install_triggers(Oid relid, bool as_counter)
{
	List	   *tables = as_counter ? list_make1_oid(relid) :
		find_all_inheritors(relid, NoLock, NULL);
	ListCell   *lc;

	lc_install_triggers(tables, as_counter ? uc_guard_trigger : uc_source_triggers,
						as_counter ? 1 : UC_NSOURCE_TRIGGERS,
						as_counter ? "usage_guard" : "usage_trigger", NULL,
						uc_table_used(relid, as_counter));
	foreach(lc, tables)
		CacheInvalidateRelcacheByRelid(lfirst_oid(lc));
}

/* Metered: the counter column's present values are the usage so far. */
static void
uc_seed_metered(UcDef *d, Relation counter, bool limited)
{
	Datum		arrays[2];
	bool		isnull;
	const char *column = quote_identifier(d->column);

	(void) lc_sql_run(LC_TABLE_OWNER, d->counter_relid,
					  psprintf("SELECT pg_catalog.array_agg(t.%s), pg_catalog.array_agg(t.%s::pg_catalog.int8)"
							   " FROM %s t WHERE t.%s IS NOT NULL AND t.%s OPERATOR(pg_catalog.<>) 0",
							   quote_identifier(get_attname(d->counter_relid, uc_key_attnum(counter), false)),
							   column, lc_qualified_name(counter), column, column),
					  0, NULL, NULL, NULL, SPI_OK_SELECT, 1);
	arrays[0] = lc_result(0, 1, &isnull);
	arrays[1] = lc_result(0, 2, &isnull);
	if (!isnull)
	{
		Oid			types[4] = {TEXTOID, UUIDARRAYOID, INT8ARRAYOID, BOOLOID};
		Datum		values[4] = {CStringGetTextDatum(d->resource), arrays[0], arrays[1],
		BoolGetDatum(limited)};

		/* with a limit, no room yet: the first increase checks it */
		(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
						  "INSERT INTO " LIFECYCLE_SCHEMA ".usage_counts (resource_type, account_id, slot, n, cap)"
						  " SELECT $1, x.a, 0, x.n, CASE WHEN $4 THEN " UC_NO_ROOM " END"
						  " FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS x(a, n)",
						  4, types, values, NULL, SPI_OK_INSERT, 0);
	}
}

/* track_usage's arguments, checked for what needs no table. */
static UcDef *
uc_track_args(FunctionCallInfo fcinfo)
{
	UcDef	   *d = palloc0(sizeof(UcDef));

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("resource_type, counter_table and counter_column must not be NULL"),
				 errhint("For example: lifecycle.track_usage('projects', 'public.accounts', 'current_project_count', 'public.projects', 'account_id', 'max_projects').")));
	d->resource = text_to_cstring(PG_GETARG_TEXT_PP(0));
	d->counter_relid = PG_GETARG_OID(1);
	d->column = pstrdup(NameStr(*PG_GETARG_NAME(2)));
	d->source_relid = PG_ARGISNULL(3) ? InvalidOid : PG_GETARG_OID(3);
	d->source_column = PG_ARGISNULL(4) ? NULL : pstrdup(NameStr(*PG_GETARG_NAME(4)));
	d->limit = PG_ARGISNULL(5) ? NULL : pstrdup(NameStr(*PG_GETARG_NAME(5)));
	if (d->resource[0] == '\0' || strlen(d->resource) > 200)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("resource_type must be 1 to 200 characters long"),
				 errhint("Name the resource as the application does, e.g. 'projects' or 'ai_requests'.")));
	if ((d->source_relid == InvalidOid) != (d->source_column == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source_table and source_column go together"),
				 errhint("Give both to count a table's rows, or neither (source_table => NULL) for metered usage.")));
	return d;
}

PG_FUNCTION_INFO_V1(track_usage);
Datum
track_usage(PG_FUNCTION_ARGS)
{
	UcDef	   *d = uc_track_args(fcinfo);
	Relation	counter,
				source = NULL;
	Oid			keytype;
	bool		existed;

	uc_check_snapshot("track_usage");
	counter = lc_open_owned_table(d->counter_relid, ShareRowExclusiveLock, "track_usage");
	keytype = uc_check_counter_table(counter, d->column, d->limit);
	if (OidIsValid(d->source_relid))
	{
		source = lc_open_owned_table(d->source_relid, ShareRowExclusiveLock, "track_usage");
		uc_check_source_table(source, d->source_column, counter, keytype);
	}
	lc_enter();
	existed = uc_check_definition(d);
	uc_record(d);
	uc_install_triggers(d->counter_relid, true);
	if (OidIsValid(d->source_relid))
		uc_install_triggers(d->source_relid, false);
	else if (!existed)
		uc_seed_metered(d, counter, d->limit != NULL);
	/* backfill: counts from the data, and the columns from the counts */
	(void) uc_sync_one(linitial(uc_defs(d->resource)), NULL, true);
	lc_leave();
	if (source)
		relation_close(source, NoLock);
	relation_close(counter, NoLock);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(untrack_usage);
Datum
untrack_usage(PG_FUNCTION_ARGS)
{
	char	   *resource;
	UcDef	   *d;
	Relation	counter;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	if (PG_ARGISNULL(0))
		lc_null_argument("resource_type", "Pass the name the resource was tracked under.");
	resource = text_to_cstring(PG_GETARG_TEXT_PP(0));
	lc_enter();
	d = uc_def(resource);
	counter = lc_open_owned_table(d->counter_relid, ShareRowExclusiveLock, "untrack_usage");
	if (OidIsValid(d->source_relid))
		relation_close(lc_open_owned_table(d->source_relid, ShareRowExclusiveLock,
										   "untrack_usage"), NoLock);
	values[0] = CStringGetTextDatum(resource);
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "DELETE FROM " LIFECYCLE_SCHEMA ".usage_resources WHERE resource_type OPERATOR(pg_catalog.=) $1",
					  1, types, values, NULL, SPI_OK_DELETE, 0);
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "DELETE FROM " LIFECYCLE_SCHEMA ".usage_counts WHERE resource_type OPERATOR(pg_catalog.=) $1",
					  1, types, values, NULL, SPI_OK_DELETE, 0);
	uc_install_triggers(d->counter_relid, true);
	if (OidIsValid(d->source_relid))
		uc_install_triggers(d->source_relid, false);
	lc_leave();
	relation_close(counter, NoLock);
	PG_RETURN_VOID();
}

/* sql_drop: forget resources whose tables are gone, with their counts. */
static const char *const uc_forget_dropped[] = {
	"WITH gone AS ("
	" DELETE FROM " LIFECYCLE_SCHEMA ".usage_resources r"
	" WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
	" WHERE c.oid OPERATOR(pg_catalog.=) r.counter_table)"
	" OR (r.source_table IS NOT NULL AND"
	" NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
	" WHERE c.oid OPERATOR(pg_catalog.=) r.source_table))"
	" RETURNING r.resource_type)"
	" DELETE FROM " LIFECYCLE_SCHEMA ".usage_counts u USING gone"
	" WHERE u.resource_type OPERATOR(pg_catalog.=) gone.resource_type",
	NULL
};

const LcFeature lc_counters_feature = {
	.name = "counters",
	.forget_dropped = uc_forget_dropped,
	.config_table = "usage_resources",
};
