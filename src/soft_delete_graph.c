/*-------------------------------------------------------------------------
 *
 * soft_delete_graph.c
 *	  The cache entry of a soft-delete table: its columns, its key and the
 *	  foreign keys that link it to other enabled tables.  An entry depends
 *	  on every table its foreign keys link it to, enabled or not, so that
 *	  enabling, disabling or altering a neighbour rebuilds it.
 *
 *	  A table is enabled when lifecycle.soft_delete_tables lists it and it
 *	  carries the guard trigger enable_soft_delete() installs; only foreign
 *	  keys between enabled tables are followed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "soft_delete.h"

static LcCache *sd_cache = NULL;

/* The tables lifecycle.soft_delete_tables lists, and which intercept DELETE. */
static void
sd_registrations(List **tables, List **intercepting)
{
	uint64		n = lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
							   "SELECT relid::pg_catalog.oid, intercept_delete FROM "
							   LIFECYCLE_SCHEMA ".soft_delete_tables",
							   0, NULL, NULL, NULL, SPI_OK_SELECT, 0);
	uint64		i;

	*tables = NIL;
	*intercepting = NIL;
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(lc_result(i, 1, &isnull));

		*tables = lappend_oid(*tables, relid);
		if (DatumGetBool(lc_result(i, 2, &isnull)))
			*intercepting = lappend_oid(*intercepting, relid);
	}
}

static bool
sd_has_guard(Oid relid)
{
	return OidIsValid(get_trigger_oid(relid, SD_GUARD_UPD, true));
}

static SdFk *
sd_make_fk(Oid conoid, Oid child, Oid parent, int nkeys, const int16 *ccols,
		   const int16 *pcols, const Oid *pf_eq)
{
	SdFk	   *fk = palloc0(sizeof(SdFk));
	int			i;

	fk->conoid = conoid;
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

/* Foreign keys that reference relid (not the partitions' clones of them). */
static List *
sd_referencing(Oid relid)
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
			OidIsValid(con->conparentid))
			continue;
		DeconstructFkConstraintRow(tup, &nkeys, ccols, pcols, pf_eq, NULL, NULL, NULL, NULL);
		result = lappend(result, sd_make_fk(con->oid, con->conrelid, relid, nkeys, ccols, pcols,
											pf_eq));
	}
	systable_endscan(scan);
	table_close(conrel, AccessShareLock);
	return result;
}

/* The position of attnum among t's out columns, added if missing. */
static int
sd_out_column(SdTable *t, Relation rel, AttrNumber attnum)
{
	int			i;

	for (i = 0; i < t->nout; i++)
		if (t->out_cols[i] == attnum)
			return i;
	t->out_cols = t->nout == 0 ? palloc(sizeof(AttrNumber)) :
		repalloc(t->out_cols, sizeof(AttrNumber) * (t->nout + 1));
	t->out_types = t->nout == 0 ? palloc(sizeof(Oid)) :
		repalloc(t->out_types, sizeof(Oid) * (t->nout + 1));
	t->out_cols[t->nout] = attnum;
	t->out_types[t->nout] = TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid;
	return t->nout++;
}

/*
 * The foreign-key graph around t: the children (enabled tables that
 * reference it) and the parents (enabled tables it references).
 */
static void
sd_build_graph(SdTable *t, Relation rel, List *registered)
{
	List	   *referencing = sd_referencing(t->entry.relid);
	ListCell   *lc;
	int			i;

	foreach(lc, referencing)
	{
		SdFk	   *fk = lfirst(lc);

		lc_entry_depends_on(&t->entry, fk->child);
		if (!list_member_oid(registered, fk->child) || !sd_has_guard(fk->child))
			continue;
		for (i = 0; i < fk->nkeys; i++)
			fk->pos[i] = sd_out_column(t, rel, fk->parent_cols[i]);
		t->children = lappend(t->children, fk);
	}
	foreach(lc, RelationGetFKeyList(rel))
	{
		ForeignKeyCacheInfo *info = lfirst(lc);
		SdFk	   *fk;

		lc_entry_depends_on(&t->entry, info->confrelid);
		if (!list_member_oid(registered, info->confrelid) || !sd_has_guard(info->confrelid))
			continue;
		fk = sd_make_fk(info->conoid, t->entry.relid, info->confrelid, info->nkeys,
						info->conkey, info->confkey, info->conpfeqop);
		for (i = 0; i < fk->nkeys; i++)
			fk->pos[i] = sd_out_column(t, rel, fk->child_cols[i]);
		t->parents = lappend(t->parents, fk);
	}
}

/* The single-column primary key, with the equality operator of its index. */
static void
sd_build_key(SdTable *t, Relation rel)
{
	AttrNumber	keys[INDEX_MAX_KEYS];
	List	   *indexes;
	ListCell   *lc;

	if (lc_primary_key(rel, keys) != 1)
		return;
	t->key_attnum = keys[0];
	t->key_type = TupleDescAttr(RelationGetDescr(rel), keys[0] - 1)->atttypid;
	t->key_name = pstrdup(quote_identifier(get_attname(t->entry.relid, keys[0], false)));
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);

		if (idx->rd_index->indisprimary)
		{
			Oid			opcintype = idx->rd_opcintype[0];
			Oid			eq = get_opfamily_member(idx->rd_opfamily[0], opcintype, opcintype,
												 BTEqualStrategyNumber);

			if (OidIsValid(eq))
				t->key_eq = lc_operator_sql(eq);
		}
		index_close(idx, AccessShareLock);
	}
	if (t->key_eq == NULL)
		t->key_attnum = InvalidAttrNumber;	/* a key we cannot compare is no key to us */
}

static void
sd_build(LcEntry *entry, Relation rel)
{
	SdTable    *t = (SdTable *) entry;
	char	   *nsp = get_namespace_name(RelationGetNamespace(rel));
	List	   *registered,
			   *intercepting;

	sd_registrations(&registered, &intercepting);
	/* a partition is set up with its partitioned table */
	t->root = lc_partition_root(entry->relid);
	t->registered = list_member_oid(registered, entry->relid) ||
		list_member_oid(registered, t->root);
	t->intercept = list_member_oid(intercepting, entry->relid);
	t->enabled = t->registered && lc_find_trigger(rel, SD_GUARD_UPD) != NULL;
	t->partitioned = RelationGetForm(rel)->relkind == RELKIND_PARTITIONED_TABLE;
	t->qualname = lc_qualified_name(rel);
	t->jsonname = psprintf("%s.%s", nsp, RelationGetRelationName(rel));
	t->deleted_at = lc_attnum(rel, LC_DELETED_AT);
	t->deleted_by = lc_attnum(rel, LC_DELETED_BY);
	sd_build_key(t, rel);
	if (t->enabled)
		sd_build_graph(t, rel, registered);
}

/* The entry of a table (in an operation). */
SdTable *
sd_table(Oid relid)
{
	if (sd_cache == NULL)
		sd_cache = lc_cache_create("pg_lifecycle soft delete", sizeof(SdTable), sd_build);
	return (SdTable *) lc_cache_lookup_oid(sd_cache, relid);
}

void
sd_null_error(const char *what, const char *example)
{
	lc_null_argument(what, example);
}

/* The enabled table of tbl, or an error that says what to do. */
SdTable *
sd_enabled_table(Oid relid, const char *funcname)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	SdTable    *t;

	lc_check_table(rel, funcname);
	relation_close(rel, NoLock);	/* it stays a table until we are done */
	t = sd_table(relid);
	if (!t->enabled)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is not enabled for soft delete", get_rel_name(relid)),
				 errhint("Enable it first: SELECT lifecycle.enable_soft_delete('%s');",
						 t->qualname)));
	return t;
}

void
sd_require_key(SdTable *t, const char *funcname)
{
	if (t->key_attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("table \"%s\" has no single-column primary key", get_rel_name(t->entry.relid)),
				 errdetail("%s finds the row by its primary key, which must be one column.",
						   funcname),
				 errhint("Add a primary key such as id, or soft-delete by UPDATE ... SET deleted_at = now().")));
}

/*
 * "k.k0 OP c.x AND k.k1 OP c.y": the foreign key's own equality operators
 * between the parent's key values (k.k<i>, from parameters) and the
 * child's columns.
 */
char *
sd_join_sql(SdFk *fk, const char *parent_side, const char *child)
{
	StringInfoData sql;
	int			i;

	initStringInfo(&sql);
	for (i = 0; i < fk->nkeys; i++)
		appendStringInfo(&sql, "%s%s.k%d %s %s.%s", i > 0 ? " AND " : "", parent_side, i,
						 lc_operator_sql(fk->pf_eq[i]), child,
						 quote_identifier(get_attname(fk->child, fk->child_cols[i], false)));
	return sql.data;
}

/*
 * t's out columns as a select list, each through format ("%s.%s" gives
 * "alias.col"; an aggregate around it otherwise).
 */
char *
sd_column_list(SdTable *t, const char *alias, const char *format)
{
	StringInfoData sql;
	int			i;

	initStringInfo(&sql);
	for (i = 0; i < t->nout; i++)
	{
		char	   *col = psprintf("%s.%s", alias,
								   quote_identifier(get_attname(t->entry.relid, t->out_cols[i], false)));

		appendStringInfo(&sql, ", ");
		appendStringInfo(&sql, format, col);
	}
	return sql.data;
}
