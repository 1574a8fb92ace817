/*-------------------------------------------------------------------------
 *
 * counters_config.c
 *	  Usage resources as lifecycle.usage_resources configures them, read
 *	  as the extension's owner, and the two per-relation caches built from
 *	  them: per source table, the resources counted from its rows; per
 *	  counter table (the accounts), the resources it mirrors and limits.
 *	  Both are rebuilt when the table, or the other table of a resource,
 *	  changes (track_usage/untrack_usage invalidate both).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "counters.h"

static LcCache *uc_source_cache = NULL;
static LcCache *uc_accounts_cache = NULL;

/* The definitions of one resource (name), or of all. */
List *
uc_defs(const char *resource)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	char		nulls[1] = {resource ? ' ' : 'n'};
	List	   *defs = NIL;
	uint64		i,
				n;

	values[0] = resource ? CStringGetTextDatum(resource) : (Datum) 0;
	n = lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
				   "SELECT resource_type, counter_table::pg_catalog.oid, counter_column,"
				   " source_table::pg_catalog.oid, source_column, limit_column"
				   " FROM " LIFECYCLE_SCHEMA ".usage_resources"
				   " WHERE $1 IS NULL OR resource_type OPERATOR(pg_catalog.=) $1 ORDER BY 1",
				   1, types, values, nulls, SPI_OK_SELECT, 0);
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		UcDef	   *d = palloc0(sizeof(UcDef));
		bool		isnull;
		Datum		src;

		d->resource = SPI_getvalue(tup, desc, 1);
		d->counter_relid = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		d->column = SPI_getvalue(tup, desc, 3);
		src = SPI_getbinval(tup, desc, 4, &isnull);
		d->source_relid = isnull ? InvalidOid : DatumGetObjectId(src);
		d->source_column = SPI_getvalue(tup, desc, 5);
		d->limit = SPI_getvalue(tup, desc, 6);
		defs = lappend(defs, d);
	}
	return defs;
}

UcDef *
uc_def(const char *resource)
{
	List	   *defs = uc_defs(resource);

	if (defs == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("usage resource \"%s\" is not tracked", resource),
				 errhint("Declare it with lifecycle.track_usage(); lifecycle.usage_resources lists those tracked.")));
	return linitial(defs);
}

/* The one-column key of a counter table (checked by track_usage); 0 if none. */
AttrNumber
uc_key_attnum(Relation rel)
{
	AttrNumber	keys[INDEX_MAX_KEYS];

	return lc_primary_key(rel, keys) == 1 ? keys[0] : 0;
}

/*
 * Fill in c, in the current memory context, from the counter table
 * (open).  What no longer fits the table (a renamed column, a dropped
 * key) is left unresolved: uc_counter_check() says so to whoever uses it.
 */
static void
uc_counter_init(UcCounter *c, LcEntry *keeper, Relation counter, const char *resource,
				const char *column, const char *limit)
{
	AttrNumber	key = uc_key_attnum(counter);

	memset(c, 0, sizeof(UcCounter));
	c->resource = pstrdup(resource);
	c->counter_relid = RelationGetRelid(counter);
	c->counter = lc_qualified_name(counter);
	c->keeper = keeper;
	c->key = key ? pstrdup(quote_identifier(get_attname(c->counter_relid, key, false))) : NULL;
	c->column_name = pstrdup(column);
	c->column = pstrdup(quote_identifier(column));
	c->column_attnum = lc_attnum(counter, column);
	c->limit_name = limit ? pstrdup(limit) : NULL;
	c->limit = limit ? pstrdup(quote_identifier(limit)) : NULL;
	c->limit_attnum = limit ? lc_attnum(counter, limit) : 0;
}

/* Does the resource still fit its counter table?  An error that says how to mend it. */
void
uc_counter_check(UcCounter *c)
{
	if (c->key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("counter table of usage resource \"%s\" no longer has a one-column primary key",
						c->resource),
				 errhint("Restore the key, or run lifecycle.untrack_usage('%s').", c->resource)));
	if (c->column_attnum == InvalidAttrNumber || (c->limit && c->limit_attnum == InvalidAttrNumber))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of usage resource \"%s\" no longer exists in \"%s\"",
						c->column_attnum == InvalidAttrNumber ? c->column_name : c->limit_name,
						c->resource, get_rel_name(c->counter_relid)),
				 errhint("Run lifecycle.untrack_usage('%s') and lifecycle.track_usage() again with the column's new name.",
						 c->resource)));
}

/* ---------- source tables ---------- */

static void
uc_source_build(LcEntry *entry, Relation rel)
{
	UcTable    *t = (UcTable *) entry;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	uint64		i,
				n;

	/* the root's resources count the rows of its partitions too */
	values[0] = ObjectIdGetDatum(lc_partition_root(entry->relid));
	n = lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
				   "SELECT resource_type, counter_table::pg_catalog.oid, counter_column,"
				   " source_column, limit_column FROM " LIFECYCLE_SCHEMA ".usage_resources"
				   " WHERE source_table OPERATOR(pg_catalog.=) $1 ORDER BY 1",
				   1, argtypes, values, NULL, SPI_OK_SELECT, 0);
	t->deleted_at = lc_attnum(rel, LC_DELETED_AT);
	t->nres = (int) n;
	t->res = palloc0(sizeof(UcResource) * Max(t->nres, 1));
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		UcResource *r = &t->res[i];
		char	   *srccol = SPI_getvalue(tup, desc, 4);
		bool		isnull;
		Oid			counter_relid = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		Relation	counter = relation_open(counter_relid, AccessShareLock);

		uc_counter_init(&r->c, entry, counter, SPI_getvalue(tup, desc, 1),
						SPI_getvalue(tup, desc, 3), SPI_getvalue(tup, desc, 5));
		relation_close(counter, AccessShareLock);
		lc_entry_depends_on(entry, counter_relid);
		uc_counter_check(&r->c);
		r->source_attnum = lc_attnum(rel, srccol);
		if (r->source_attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of usage resource \"%s\" no longer exists in \"%s\"",
							srccol, r->c.resource, RelationGetRelationName(rel)),
					 errhint("Run lifecycle.untrack_usage() and lifecycle.track_usage() again with the column's new name.")));
	}
}

/* The resources counted from a source table's rows (in an operation). */
UcTable *
uc_source_table(Relation rel)
{
	if (uc_source_cache == NULL)
		uc_source_cache = lc_cache_create("pg_lifecycle counted table", sizeof(UcTable),
										  uc_source_build);
	return (UcTable *) lc_cache_lookup(uc_source_cache, rel);
}

/* ---------- counter tables ---------- */

static void
uc_accounts_build(LcEntry *entry, Relation rel)
{
	UcAccounts *a = (UcAccounts *) entry;
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(entry->relid)};
	uint64		i,
				n;

	n = lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
				   "SELECT resource_type, counter_column, limit_column FROM "
				   LIFECYCLE_SCHEMA ".usage_resources"
				   " WHERE counter_table OPERATOR(pg_catalog.=) $1 ORDER BY 1",
				   1, types, values, NULL, SPI_OK_SELECT, 0);
	a->key = uc_key_attnum(rel);
	a->n = (int) n;
	a->counters = palloc0(sizeof(UcCounter) * Max(a->n, 1));
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		uc_counter_init(&a->counters[i], entry, rel, SPI_getvalue(tup, desc, 1),
						SPI_getvalue(tup, desc, 2), SPI_getvalue(tup, desc, 3));
	}
}

/* The resources a counter table mirrors (in an operation). */
UcAccounts *
uc_accounts(Oid counter_relid)
{
	if (uc_accounts_cache == NULL)
		uc_accounts_cache = lc_cache_create("pg_lifecycle counter table", sizeof(UcAccounts),
											uc_accounts_build);
	return (UcAccounts *) lc_cache_lookup_oid(uc_accounts_cache, counter_relid);
}

/*
 * The counter of a resource, from its counter table's entry (where its
 * plans are kept), checked against the table as it is now.
 */
UcCounter *
uc_counter_of(UcDef *d)
{
	UcAccounts *a = uc_accounts(d->counter_relid);
	int			i;

	for (i = 0; i < a->n; i++)
	{
		UcCounter  *c = &a->counters[i];

		if (strcmp(c->resource, d->resource) != 0)
			continue;
		uc_counter_check(c);
		return c;
	}
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("usage resource \"%s\" changed while it was being used", d->resource),
			 errhint("Retry the statement.")));
	return NULL;				/* keep compiler quiet */
}
