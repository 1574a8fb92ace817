/*-------------------------------------------------------------------------
 *
 * soft_delete_cascade.c
 *	  The three cascades along foreign keys between enabled tables.
 *
 *	  Every statement runs as the owner of the one table it reads or
 *	  changes and gets the other table's key values as parameters (arrays,
 *	  unnested and joined with the foreign key's own equality operators),
 *	  as PostgreSQL's foreign-key actions do: no owner ever reads another
 *	  owner's table, and a table of another owner is no obstacle.
 *
 *	  Delete: breadth first from the root row; each UPDATE soft-deletes
 *	  the live children of the rows the previous step soft-deleted and
 *	  returns their own key values for the next step, so cycles and
 *	  self-references end when a step changes nothing.
 *
 *	  Restore: first collect, read-only, the rows of the cascade reachable
 *	  from the root (same deleted_at and deleted_by), remembering each by
 *	  its position (tableoid, ctid); then mark the rows that must stay
 *	  deleted: those whose enabled parent stays deleted (deleted by
 *	  another cascade, or itself marked), to a fixpoint; then restore the
 *	  rest, one UPDATE per table, the root last.  Rows that reference each
 *	  other (a self-reference, two users who invited each other, a cycle
 *	  across tables) come back together.
 *
 *	  Purge: collect the old soft-deleted rows and their soft-deleted
 *	  descendants the same way, then delete them children first; tables
 *	  that reference each other in a cycle go in one statement.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "storage/itemptr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/lsyscache.h"

#include "soft_delete.h"

#define SD_EQ			"OPERATOR(pg_catalog.=)"
#define SD_SAME_ACTOR(a) "(" a ".deleted_by " SD_EQ " $2 OR (" a ".deleted_by IS NULL AND $2 IS NULL))"

static Oid	sd_cascading_relid = InvalidOid;	/* table a cascade updates now */
static int	sd_hard_delete = 0; /* permanent deletes in progress: no intercept */
static TimestampTz sd_last_stamp = 0;

/* A cascade's own statement keeps the guard's rule itself, set-based. */
bool
sd_cascading(Oid relid)
{
	return relid == sd_cascading_relid;
}

bool
sd_hard_deleting(void)
{
	return sd_hard_delete > 0;
}

/*
 * A deleted_at that no other cascade has: the clock to the millisecond,
 * with a number from a sequence in the microseconds (so cascades in the same
 * millisecond differ, across backends too), strictly increasing within the
 * backend.  Restore finds a cascade's rows by this stamp and deleted_by.
 */
TimestampTz
sd_next_stamp(void)
{
	Oid			seq = get_relname_relid("soft_delete_stamp_seq",
										get_namespace_oid(LIFECYCLE_SCHEMA, false));
	TimestampTz micro;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz stamp;

	if (!OidIsValid(seq))
		elog(ERROR, "sequence " LIFECYCLE_SCHEMA ".soft_delete_stamp_seq is missing");
	micro = nextval_internal(seq, false) % 1000;
	stamp = now - now % 1000 + micro;
	if (stamp <= sd_last_stamp)
		stamp = sd_last_stamp - sd_last_stamp % 1000 + 1000 + micro;
	sd_last_stamp = stamp;
	return stamp;
}

/* ---------- the report ---------- */

void
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

char *
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
		escape_json(&buf, sd_table(lfirst_oid(r))->jsonname);
		appendStringInfo(&buf, ": " UINT64_FORMAT, (uint64) (uintptr_t) lfirst(c));
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* ---------- SQL pieces ---------- */

/* "ROWS FROM (pg_catalog.unnest($3), ...) AS k(k0, ...)" for n arrays from $first */
static char *
sd_unnest_sql(int n, int first)
{
	StringInfoData sql;
	int			i;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "ROWS FROM (");
	for (i = 0; i < n; i++)
		appendStringInfo(&sql, "%spg_catalog.unnest($%d)", i ? ", " : "", first + i);
	appendStringInfoString(&sql, ") AS k(");
	for (i = 0; i < n; i++)
		appendStringInfo(&sql, "%sk%d", i ? ", " : "", i);
	appendStringInfoChar(&sql, ')');
	return sql.data;
}

/* Array types of the columns at positions pos of t's out columns. */
static void
sd_array_types(SdTable *t, const int *pos, int n, Oid *types)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		types[i] = get_array_type(t->out_types[pos[i]]);
		if (!OidIsValid(types[i]))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("foreign keys on columns of type %s cannot be followed",
							format_type_be(t->out_types[pos[i]])),
					 errdetail("Soft delete passes key values as arrays, and the type has none.")));
	}
}

/*
 * Run a cascade statement: the guard lets the table's rows through.  Its
 * count is the report's and what it wrote the cascade's, so a rule of the
 * table on the statement's event (which could write other rows, count
 * them, or leave some unwritten) stops it.
 */
static uint64
sd_run(LcPlan *plan, Oid relid, Datum *values, const char *nulls, int expected)
{
	Oid			outer = sd_cascading_relid;
	uint64		n = 0;

	sd_cascading_relid = relid;
	PG_TRY();
	{
		n = lc_plan_run_crosschecked(plan, values, nulls, expected);
	}
	PG_FINALLY();
	{
		sd_cascading_relid = outer;
	}
	PG_END_TRY();
	lc_check_no_rules(relid, expected == SPI_OK_DELETE ? CMD_DELETE : CMD_UPDATE);
	return n;
}

/* ---------- delete ---------- */

/* One step waiting: rows of table relid just soft-deleted, as out-column arrays. */
typedef struct SdStep
{
	Oid			relid;
	Datum	   *arrays;			/* one per out column of the table */
} SdStep;

/*
 * The FROM and WHERE clauses (up to the first condition) matching rows
 * "alias" of fk's child to the parent keys in the arrays from $first: a
 * one-column key as "col = ANY (keys)", the operator commuted, several
 * columns by a join with the unnested keys.  The restore of leaf tables
 * uses it; the delete cascade joins (sd_delete_plan says why).
 */
static char *
sd_keys_match_sql(SdFk *fk, const char *alias, int first)
{
	if (fk->nkeys == 1 && OidIsValid(get_commutator(fk->pf_eq[0])))
		return psprintf(" WHERE %s.%s %s ANY ($%d)", alias,
						quote_identifier(get_attname(fk->child, fk->child_cols[0], false)),
						lc_operator_sql(get_commutator(fk->pf_eq[0])), first);
	return psprintf(" FROM %s WHERE %s", sd_unnest_sql(fk->nkeys, first),
					sd_join_sql(fk, "k", alias));
}

/*
 * The statement soft-deleting the children of parent's keys along fk.  A
 * child with children of its own returns its out columns as arrays for
 * the next step; a child without is a plain UPDATE whose count is all that
 * is needed (collecting a large leaf's columns, or only counting its rows
 * through a CTE, costs a tenth of its UPDATE).  The child's entry says
 * which one is needed now, so a child that gains children gets the other
 * plan.  Both join the unnested keys: "fk = ANY (keys)" was faster for a
 * leaf UPDATE alone but slower in every run of the whole account delete
 * and of the restore after it (bench/RESULTS.md, 2026-12-01 and -02).
 */
static LcPlan *
sd_delete_plan(SdTable *parent, SdFk *fk, bool leaf)
{
	SdTable    *child = sd_table(fk->child);
	LcPlan	   *plan = &fk->delete_plan[leaf ? 1 : 0];
	Oid			types[2 + INDEX_MAX_KEYS] = {TIMESTAMPTZOID, UUIDOID};
	char	   *update;

	if (lc_plan_ready(plan))
		return plan;
	sd_array_types(parent, fk->pos, fk->nkeys, types + 2);
	update = psprintf("UPDATE %s c SET deleted_at = $1, deleted_by = $2 FROM %s"
					  " WHERE %s AND c.deleted_at IS NULL",
					  child->qualname, sd_unnest_sql(fk->nkeys, 3),
					  sd_join_sql(fk, "k", "c"));
	if (!leaf)
		update = psprintf("WITH u AS (%s RETURNING c.tableoid%s)"
						  " SELECT pg_catalog.count(*)::pg_catalog.int8%s FROM u",
						  update, sd_column_list(child, "c", "%s"),
						  sd_column_list(child, "u", "pg_catalog.array_agg(%s)"));
	lc_plan_prepare(plan, &parent->entry, LC_TABLE_OWNER, fk->child, update,
					2 + fk->nkeys, types);
	return plan;
}

/*
 * The result row of a statement that soft-deleted rows of t and returned
 * count, then one array per out column: the count, and a copy of the arrays.
 */
Datum *
sd_step_arrays(SdTable *t, uint64 *n)
{
	Datum	   *arrays = palloc0(sizeof(Datum) * Max(t->nout, 1));
	bool		isnull;
	int			i;

	*n = (uint64) DatumGetInt64(lc_result(0, 1, &isnull));
	for (i = 0; i < t->nout && *n > 0; i++)
		arrays[i] = lc_result(0, i + 2, &isnull);
	return arrays;
}

/* Run a statement that soft-deletes rows of t returning the step's shape. */
Datum *
sd_delete_rows(SdTable *t, LcPlan *plan, Datum *values, const char *nulls, uint64 *n)
{
	(void) sd_run(plan, t->entry.relid, values, nulls, SPI_OK_SELECT);
	return sd_step_arrays(t, n);
}

/*
 * Soft-delete, breadth first, the live descendants of rows of t that were
 * just soft-deleted (given as out-column arrays), with stamp and actor.
 */
void
sd_cascade_delete(SdTable *t, Datum *out, uint64 nrows,
				  Datum stamp, Datum actor, bool actor_null, SdReport *rep)
{
	List	   *queue = NIL;
	SdStep	   *first = palloc(sizeof(SdStep));
	Datum		values[2 + INDEX_MAX_KEYS];
	char		nulls[2 + INDEX_MAX_KEYS];

	if (nrows == 0 || t->children == NIL)
		return;
	first->relid = t->entry.relid;
	first->arrays = out;
	queue = lappend(queue, first);
	memset(nulls, ' ', sizeof(nulls));
	values[0] = stamp;
	values[1] = actor;
	nulls[1] = actor_null ? 'n' : ' ';
	while (queue != NIL)
	{
		SdStep	   *step = linitial(queue);
		SdTable    *parent = sd_table(step->relid);
		ListCell   *lc;

		queue = list_delete_first(queue);
		foreach(lc, parent->children)
		{
			SdFk	   *fk = lfirst(lc);
			SdTable    *child;
			SdStep	   *next;
			uint64		n;
			Datum	   *arrays;
			int			i;

			for (i = 0; i < fk->nkeys; i++)
				values[2 + i] = step->arrays[fk->pos[i]];
			child = sd_table(fk->child);
			if (child->children == NIL)
			{
				n = sd_run(sd_delete_plan(parent, fk, true), fk->child, values, nulls,
						   SPI_OK_UPDATE);
				if (n > 0)
					sd_report_add(rep, fk->child, n);
				continue;
			}
			arrays = sd_delete_rows(child, sd_delete_plan(parent, fk, false), values, nulls, &n);
			if (n == 0)
				continue;
			sd_report_add(rep, fk->child, n);
			next = palloc(sizeof(SdStep));
			next->relid = fk->child;
			next->arrays = arrays;
			queue = lappend(queue, next);
		}
	}
}

/* ---------- collecting rows: restore and purge ---------- */

/* A row's position: its partition and its tuple there. */
typedef struct SdPos
{
	Oid			tableoid;
	ItemPointerData tid;
	int			index;			/* where its values are in SdRows */
} SdPos;

/* The rows of one table that a restore or a purge collected. */
typedef struct SdRows
{
	SdTable    *t;
	int			n;
	int			cap;
	SdPos	   *pos;			/* by index */
	Datum	  **cols;			/* [out column][index] */
	bool	  **nulls;
	bool	   *marked;			/* restore: stays deleted */
	SdPos	   *sorted;			/* pos, sorted, for lookups */
	int			nsorted;
	int			lowlink;		/* purge: Tarjan's order */
	int			number;
	bool		onstack;
} SdRows;

typedef struct SdCollect
{
	bool		restore;
	Datum		stamp;			/* restore: the cascade's deleted_at ... */
	Datum		actor;			/* ... and deleted_by */
	bool		actor_null;
	List	   *tables;			/* SdRows * */
} SdCollect;

static int
sd_pos_cmp(const void *a, const void *b)
{
	const SdPos *x = a;
	const SdPos *y = b;

	if (x->tableoid != y->tableoid)
		return x->tableoid < y->tableoid ? -1 : 1;
	return ItemPointerCompare((ItemPointer) &x->tid, (ItemPointer) &y->tid);
}

static SdRows *
sd_rows_new(SdTable *t)
{
	SdRows	   *rows = palloc0(sizeof(SdRows));

	rows->t = t;
	rows->cols = palloc0(sizeof(Datum *) * Max(t->nout, 1));
	rows->nulls = palloc0(sizeof(bool *) * Max(t->nout, 1));
	return rows;
}

static SdRows *
sd_rows_lookup(SdCollect *c, Oid relid)
{
	ListCell   *lc;

	foreach(lc, c->tables)
		if (((SdRows *) lfirst(lc))->t->entry.relid == relid)
			return lfirst(lc);
	return NULL;
}

/* The rows collected from relid, made empty when there are none yet. */
static SdRows *
sd_rows(SdCollect *c, Oid relid)
{
	SdRows	   *rows = sd_rows_lookup(c, relid);

	if (rows == NULL)
	{
		rows = sd_rows_new(sd_table(relid));
		c->tables = lappend(c->tables, rows);
	}
	return rows;
}

/* The index of the row at (tableoid, tid), or -1. */
static int
sd_rows_find(SdRows *rows, Oid tableoid, ItemPointer tid)
{
	SdPos		key;
	SdPos	   *found;

	if (rows == NULL || rows->nsorted == 0)
		return -1;
	key.tableoid = tableoid;
	key.tid = *tid;
	found = bsearch(&key, rows->sorted, rows->nsorted, sizeof(SdPos), sd_pos_cmp);
	return found ? found->index : -1;
}

static void
sd_rows_grow(SdRows *rows, int need)
{
	int			i;

	if (need <= rows->cap)
		return;
	rows->cap = Max(need, rows->cap * 2);
	rows->pos = rows->pos ? repalloc_huge(rows->pos, sizeof(SdPos) * rows->cap) :
		palloc_extended(sizeof(SdPos) * rows->cap, MCXT_ALLOC_HUGE);
	rows->marked = rows->marked ? repalloc_huge(rows->marked, sizeof(bool) * rows->cap) :
		palloc_extended(sizeof(bool) * rows->cap, MCXT_ALLOC_HUGE);
	for (i = 0; i < rows->t->nout; i++)
	{
		rows->cols[i] = rows->cols[i] ? repalloc_huge(rows->cols[i], sizeof(Datum) * rows->cap) :
			palloc_extended(sizeof(Datum) * rows->cap, MCXT_ALLOC_HUGE);
		rows->nulls[i] = rows->nulls[i] ? repalloc_huge(rows->nulls[i], sizeof(bool) * rows->cap) :
			palloc_extended(sizeof(bool) * rows->cap, MCXT_ALLOC_HUGE);
	}
}

/*
 * Add the rows of a collecting statement's result (arrays: tableoid, ctid,
 * then one per out column) that are not there yet, each once.  Returns the
 * index of the first row added; the rows added are from there to rows->n.
 */
static int
sd_rows_add(SdRows *rows)
{
	SdTable    *t = rows->t;
	Datum	   *oids,
			   *tids;
	bool	   *anulls;
	int			n,
				i,
				c,
				from = rows->n;
	bool		isnull;
	Datum		d = lc_result(0, 1, &isnull);
	Datum	  **vals;
	bool	  **vnulls;
	SdPos	   *cand;
	SdPos	   *merged;
	int			a,
				b,
				k;

	if (isnull)
		return from;
	deconstruct_array(DatumGetArrayTypeP(d), OIDOID, sizeof(Oid), true, TYPALIGN_INT,
					  &oids, &anulls, &n);
	deconstruct_array(DatumGetArrayTypeP(lc_result(0, 2, &isnull)), TIDOID, sizeof(ItemPointerData),
					  false, TYPALIGN_SHORT, &tids, &anulls, &n);
	vals = palloc(sizeof(Datum *) * Max(t->nout, 1));
	vnulls = palloc(sizeof(bool *) * Max(t->nout, 1));
	for (c = 0; c < t->nout; c++)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;
		int			m;

		get_typlenbyvalalign(t->out_types[c], &typlen, &typbyval, &typalign);
		deconstruct_array(DatumGetArrayTypeP(lc_result(0, 3 + c, &isnull)), t->out_types[c],
						  typlen, typbyval, typalign, &vals[c], &vnulls[c], &m);
	}
	/* the result's rows sorted, each once, and not already there */
	cand = palloc_extended(sizeof(SdPos) * Max(n, 1), MCXT_ALLOC_HUGE);
	for (i = 0; i < n; i++)
	{
		cand[i].tableoid = DatumGetObjectId(oids[i]);
		cand[i].tid = *(ItemPointer) DatumGetPointer(tids[i]);
		cand[i].index = i;
	}
	qsort(cand, n, sizeof(SdPos), sd_pos_cmp);
	sd_rows_grow(rows, rows->n + n);
	for (i = 0; i < n; i++)
	{
		int			r = cand[i].index;

		if ((i > 0 && sd_pos_cmp(&cand[i], &cand[i - 1]) == 0) ||
			sd_rows_find(rows, cand[i].tableoid, &cand[i].tid) >= 0)
			continue;
		k = rows->n++;
		rows->pos[k] = cand[i];
		rows->pos[k].index = k;
		rows->marked[k] = false;
		for (c = 0; c < t->nout; c++)
		{
			rows->cols[c][k] = vals[c][r];
			rows->nulls[c][k] = vnulls[c][r];
		}
	}
	if (rows->n == from)
		return from;
	/* merge the added rows (in order already) into the sorted lookup */
	merged = palloc_extended(sizeof(SdPos) * rows->n, MCXT_ALLOC_HUGE);
	for (a = 0, b = from, k = 0; a < from || b < rows->n;)
	{
		if (b >= rows->n || (a < from && sd_pos_cmp(&rows->sorted[a], &rows->pos[b]) < 0))
			merged[k++] = rows->sorted[a++];
		else
			merged[k++] = rows->pos[b++];
	}
	if (rows->sorted)
		pfree(rows->sorted);
	rows->sorted = merged;
	rows->nsorted = rows->n;
	return from;
}

/*
 * Arrays of the values at positions pos of rows [from, to) (only the
 * marked ones, or only the unmarked ones, when which is 1 or 0), for
 * parameters; false when no row qualifies.
 */
static bool
sd_rows_arrays(SdRows *rows, int from, int to, const int *pos, int npos, int which,
			   Datum *arrays)
{
	int			i,
				c,
				k = 0;
	Datum	   *elems = palloc(sizeof(Datum) * Max(to - from, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(to - from, 1));

	for (c = 0; c < npos; c++)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;
		Oid			type = rows->t->out_types[pos[c]];
		int			dims[1];
		int			lbs[1] = {1};

		k = 0;
		for (i = from; i < to; i++)
		{
			if (which >= 0 && rows->marked[i] != (which == 1))
				continue;
			elems[k] = rows->cols[pos[c]][i];
			nulls[k++] = rows->nulls[pos[c]][i];
		}
		if (k == 0)
			return false;
		dims[0] = k;
		get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
		arrays[c] = PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, type,
													   typlen, typbyval, typalign));
	}
	return true;
}

/* (tableoid[], tid[]) of the rows of rows that are (not) marked, but skip. */
static int
sd_rows_positions(SdRows *rows, bool marked, int skip, Datum *oids, Datum *tids)
{
	Datum	   *o = palloc(sizeof(Datum) * Max(rows->n, 1));
	Datum	   *t = palloc(sizeof(Datum) * Max(rows->n, 1));
	int			i,
				k = 0;

	for (i = 0; i < rows->n; i++)
	{
		if (rows->marked[i] != marked || i == skip)
			continue;
		o[k] = ObjectIdGetDatum(rows->pos[i].tableoid);
		t[k++] = PointerGetDatum(&rows->pos[i].tid);
	}
	*oids = PointerGetDatum(construct_array(o, k, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
	*tids = PointerGetDatum(construct_array(t, k, TIDOID, sizeof(ItemPointerData), false,
											TYPALIGN_SHORT));
	return k;
}

/* "c.tableoid, c.ctid, c.<out columns>" aggregated into arrays */
static char *
sd_collect_list(SdTable *t)
{
	return psprintf("pg_catalog.array_agg(c.tableoid), pg_catalog.array_agg(c.ctid)%s",
					sd_column_list(t, "c", "pg_catalog.array_agg(%s)"));
}

/*
 * The rows of t (alias c) that "from" joins to key values, filtered by
 * their deleted_at and deleted_by (m.a and m.b in filter), aggregated as
 * sd_collect_list does.  The join is fenced off (OFFSET 0) from the
 * filter: the planner's statistics say few rows are soft-deleted (a
 * cascade has just stamped them, or they say so after ANALYZE), and
 * joined with that estimate it would choose a nested loop over the keys
 * for every such row, quadratic in the rows of a large cascade.  Unfiltered,
 * the join is estimated from the table's size and comes out a hash join
 * or an index probe per key.  The subquery's columns are renamed by
 * position, so that no column of t can clash with them.
 */
static char *
sd_fenced_sql(SdTable *t, const char *from, const char *filter)
{
	StringInfoData sql;
	int			i;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT pg_catalog.array_agg(m.o), pg_catalog.array_agg(m.t)");
	for (i = 0; i < t->nout; i++)
		appendStringInfo(&sql, ", pg_catalog.array_agg(m.x%d)", i);
	appendStringInfo(&sql, " FROM (SELECT c.tableoid, c.ctid, c.deleted_at, c.deleted_by%s FROM %s OFFSET 0)"
					 " AS m(o, t, a, b", sd_column_list(t, "c", "%s"), from);
	for (i = 0; i < t->nout; i++)
		appendStringInfo(&sql, ", x%d", i);
	appendStringInfo(&sql, ") WHERE %s", filter);
	return sql.data;
}

/* The rows of fk's child that reference the given parent key values and pass the filter. */
static LcPlan *
sd_collect_plan(SdTable *parent, SdFk *fk, bool restore)
{
	LcPlan	   *plan = &fk->collect_plan[restore ? 0 : 1];
	SdTable    *child = sd_table(fk->child);
	Oid			types[2 + INDEX_MAX_KEYS] = {TIMESTAMPTZOID, UUIDOID};

	if (lc_plan_ready(plan))
		return plan;
	sd_array_types(parent, fk->pos, fk->nkeys, types + 2);
	lc_plan_prepare(plan, &parent->entry, LC_TABLE_OWNER, fk->child,
					sd_fenced_sql(child,
								  psprintf("%s c JOIN %s ON %s", child->qualname,
										   sd_unnest_sql(fk->nkeys, 3), sd_join_sql(fk, "k", "c")),
								  restore ? "m.a " SD_EQ " $1 AND (m.b " SD_EQ " $2 OR (m.b IS NULL AND $2 IS NULL))" :
								  "m.a IS NOT NULL"),
					2 + fk->nkeys, types);
	return plan;
}

/*
 * From the rows of the first table already collected, breadth first along
 * the foreign keys: every row of the cascade (restore) or every
 * soft-deleted row (purge) below them, each once.
 */
/* Rows [from, to) of a table, whose children are still to be found. */
typedef struct SdRange
{
	SdRows	   *rows;
	int			from;
	int			to;
} SdRange;

static List *
sd_range(List *queue, SdRows *rows, int from)
{
	SdRange    *r = palloc(sizeof(SdRange));

	r->rows = rows;
	r->from = from;
	r->to = rows->n;
	return lappend(queue, r);
}

/*
 * A child restored straight from its parent's keys, never collected: a
 * table without enabled children whose only enabled parent is this one,
 * over a one-column key.  Its rows are blocked exactly when their parent
 * row stays deleted, so the restore needs no positions or marks for it:
 * one UPDATE of the rows whose key is among the parent rows being restored
 * and that carry the cascade's stamp.  By key, not by position: a row
 * another transaction changes meanwhile is read again (as EvalPlanQual
 * does for any UPDATE) and restored, not missed; and = ANY of the keys is
 * a scan of the table or of its index, never a loop over the keys per row.
 */
static bool
sd_leaf_restore(SdFk *fk)
{
	SdTable    *child = sd_table(fk->child);

	return child->children == NIL && list_length(child->parents) == 1 && fk->nkeys == 1 &&
		OidIsValid(get_commutator(fk->pf_eq[0]));
}

static LcPlan *
sd_leaf_restore_plan(SdTable *parent, SdFk *fk)
{
	SdTable    *child = sd_table(fk->child);
	Oid			types[3] = {TIMESTAMPTZOID, UUIDOID};

	if (lc_plan_ready(&fk->leaf_restore_plan))
		return &fk->leaf_restore_plan;
	sd_array_types(parent, fk->pos, 1, types + 2);
	lc_plan_prepare(&fk->leaf_restore_plan, &parent->entry, LC_TABLE_OWNER, fk->child,
					psprintf("UPDATE %s u SET deleted_at = NULL, deleted_by = NULL%s"
							 " AND u.deleted_at " SD_EQ " $1 AND " SD_SAME_ACTOR("u"),
							 child->qualname, sd_keys_match_sql(fk, "u", 3)),
					3, types);
	return &fk->leaf_restore_plan;
}

/* Restore the leaf children (sd_leaf_restore) of the unmarked rows of rows. */
static void
sd_restore_leaves(SdCollect *c, SdRows *rows, SdReport *rep)
{
	ListCell   *lc;
	Datum		values[3];
	char		nulls[3] = {' ', c->actor_null ? 'n' : ' ', ' '};

	values[0] = c->stamp;
	values[1] = c->actor;
	foreach(lc, rows->t->children)
	{
		SdFk	   *fk = lfirst(lc);

		if (!sd_leaf_restore(fk) ||
			!sd_rows_arrays(rows, 0, rows->n, fk->pos, 1, 0, values + 2))
			continue;
		sd_report_add(rep, fk->child,
					  sd_run(sd_leaf_restore_plan(rows->t, fk), fk->child, values, nulls,
							 SPI_OK_UPDATE));
	}
}

static void
sd_collect(SdCollect *c, SdRows *start)
{
	List	   *queue = sd_range(NIL, start, 0);
	Datum		values[2 + INDEX_MAX_KEYS];
	char		nulls[2 + INDEX_MAX_KEYS];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = c->stamp;
	values[1] = c->actor;
	nulls[1] = c->actor_null ? 'n' : ' ';
	while (queue != NIL)
	{
		SdRange    *r = linitial(queue);
		ListCell   *lc;

		queue = list_delete_first(queue);
		foreach(lc, r->rows->t->children)
		{
			SdFk	   *fk = lfirst(lc);
			SdRows	   *child;
			int			added;

			if ((c->restore && sd_leaf_restore(fk)) ||
				!sd_rows_arrays(r->rows, r->from, r->to, fk->pos, fk->nkeys, -1, values + 2))
				continue;
			/* nothing may run SQL between the statement and reading its result */
			child = sd_rows(c, fk->child);
			(void) lc_plan_run_crosschecked(sd_collect_plan(r->rows->t, fk, c->restore),
											values, nulls, SPI_OK_SELECT);
			added = sd_rows_add(child);
			if (child->n > added && child->t->children != NIL)
				queue = sd_range(queue, child, added);
		}
	}
}

/* ---------- restore: the rows that stay deleted ---------- */

/* Which parents of these child-side values are soft-deleted: their positions and keys. */
static LcPlan *
sd_deleted_parents_plan(SdTable *child, SdFk *fk)
{
	SdTable    *parent = sd_table(fk->parent);
	Oid			types[INDEX_MAX_KEYS];
	StringInfoData on;
	int			i;

	if (lc_plan_ready(&fk->deleted_plan))
		return &fk->deleted_plan;
	sd_array_types(child, fk->pos, fk->nkeys, types);
	initStringInfo(&on);
	for (i = 0; i < fk->nkeys; i++)
		appendStringInfo(&on, "%sc.%s %s k.k%d", i ? " AND " : "",
						 quote_identifier(get_attname(fk->parent, fk->parent_cols[i], false)),
						 lc_operator_sql(fk->pf_eq[i]), i);
	lc_plan_prepare(&fk->deleted_plan, &child->entry, LC_TABLE_OWNER, fk->parent,
					sd_fenced_sql(parent,
								  psprintf("%s c JOIN (SELECT DISTINCT * FROM %s) k ON %s",
										   parent->qualname, sd_unnest_sql(fk->nkeys, 1), on.data),
								  "m.a IS NOT NULL"),
					fk->nkeys, types);
	return &fk->deleted_plan;
}

/* The rows of fk's child that reference these parent key values (any state). */
static LcPlan *
sd_match_plan(SdTable *parent, SdFk *fk)
{
	Oid			types[INDEX_MAX_KEYS];

	if (lc_plan_ready(&fk->match_plan))
		return &fk->match_plan;
	sd_array_types(parent, fk->pos, fk->nkeys, types);
	lc_plan_prepare(&fk->match_plan, &parent->entry, LC_TABLE_OWNER, fk->child,
					psprintf("SELECT pg_catalog.array_agg(c.tableoid), pg_catalog.array_agg(c.ctid)"
							 " FROM %s c JOIN %s ON %s",
							 sd_table(fk->child)->qualname, sd_unnest_sql(fk->nkeys, 1),
							 sd_join_sql(fk, "k", "c")),
					fk->nkeys, types);
	return &fk->match_plan;
}

/* Mark the collected rows the last statement's (tableoid[], ctid[]) result names. */
static bool
sd_mark_result(SdRows *rows)
{
	Datum	   *oids,
			   *tids;
	bool	   *n1,
			   *n2;
	int			n,
				i;
	bool		isnull,
				any = false;
	Datum		d = lc_result(0, 1, &isnull);

	if (isnull || rows == NULL)
		return false;
	deconstruct_array(DatumGetArrayTypeP(d), OIDOID, sizeof(Oid), true, TYPALIGN_INT,
					  &oids, &n1, &n);
	deconstruct_array(DatumGetArrayTypeP(lc_result(0, 2, &isnull)), TIDOID, sizeof(ItemPointerData),
					  false, TYPALIGN_SHORT, &tids, &n2, &n);
	for (i = 0; i < n; i++)
	{
		int			k = sd_rows_find(rows, DatumGetObjectId(oids[i]),
									 (ItemPointer) DatumGetPointer(tids[i]));

		if (k >= 0 && !rows->marked[k])
			rows->marked[k] = any = true;
	}
	return any;
}

/* The parent's copy of a child's foreign key (its positions are the parent's). */
static SdFk *
sd_parent_side(SdTable *parent, SdFk *fk)
{
	ListCell   *lc;

	foreach(lc, parent->children)
		if (((SdFk *) lfirst(lc))->conoid == fk->conoid)
			return lfirst(lc);
	elog(ERROR, "foreign key %u missing from the entry of \"%s\"", fk->conoid, parent->qualname);
	return NULL;				/* keep compiler quiet */
}

/*
 * Mark the rows of the cascade whose parent over fk is soft-deleted and
 * not part of the cascade (another cascade deleted it, or it stays).
 */
static bool
sd_mark_outside(SdCollect *c, SdRows *rows, SdFk *fk)
{
	SdTable    *pt = sd_table(fk->parent);
	SdFk	   *pfk = sd_parent_side(pt, fk);
	SdRows	   *inside = sd_rows_lookup(c, fk->parent);
	SdRows	   *deleted;
	Datum		values[INDEX_MAX_KEYS];
	int			i;

	if (!sd_rows_arrays(rows, 0, rows->n, fk->pos, fk->nkeys, -1, values))
		return false;
	(void) lc_plan_run(sd_deleted_parents_plan(rows->t, fk), values, NULL, SPI_OK_SELECT, 0);
	deleted = sd_rows_new(pt);
	(void) sd_rows_add(deleted);
	for (i = 0; i < deleted->n; i++)
		deleted->marked[i] = sd_rows_find(inside, deleted->pos[i].tableoid,
										  &deleted->pos[i].tid) < 0;
	if (!sd_rows_arrays(deleted, 0, deleted->n, pfk->pos, pfk->nkeys, 1, values))
		return false;
	(void) lc_plan_run(sd_match_plan(pt, pfk), values, NULL, SPI_OK_SELECT, 0);
	return sd_mark_result(rows);
}

/*
 * Rows of the cascade whose enabled parent stays deleted stay deleted,
 * and so do the rows of the cascade below them, to a fixpoint.
 */
static void
sd_mark_blocked(SdCollect *c)
{
	List	   *queue = NIL;
	ListCell   *lc;

	foreach(lc, c->tables)
	{
		SdRows	   *rows = lfirst(lc);
		ListCell   *p;
		bool		marked = false;

		foreach(p, rows->t->parents)
			marked |= sd_mark_outside(c, rows, lfirst(p));
		if (marked)
			queue = lappend(queue, rows);
	}
	while (queue != NIL)
	{
		SdRows	   *rows = linitial(queue);
		ListCell   *ch;

		queue = list_delete_first(queue);
		foreach(ch, rows->t->children)
		{
			SdFk	   *fk = lfirst(ch);
			Datum		values[INDEX_MAX_KEYS];
			SdRows	   *child = sd_rows_lookup(c, fk->child);

			if (child == NULL ||
				!sd_rows_arrays(rows, 0, rows->n, fk->pos, fk->nkeys, 1, values))
				continue;
			(void) lc_plan_run(sd_match_plan(rows->t, fk), values, NULL, SPI_OK_SELECT, 0);
			if (sd_mark_result(child) && !list_member_ptr(queue, child))
				queue = lappend(queue, child);
		}
	}
}

/* ---------- restore and purge: changing the collected rows ---------- */

/* UPDATE (restore) or DELETE (purge) rows of t by position, as t's owner. */
static LcPlan *
sd_apply_plan(SdTable *t, bool restore)
{
	LcPlan	   *plan = &t->apply_plan[restore ? 0 : 1];
	Oid			types[4] = {TIMESTAMPTZOID, UUIDOID, OIDARRAYOID, TIDARRAYOID};
	const char *which;

	if (lc_plan_ready(plan))
		return plan;
	/* a tid names a row within one partition: partitions need the pair */
	which = t->partitioned ?
		" ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4)) AS x(o, t)"
		" WHERE c.tableoid " SD_EQ " x.o AND c.ctid " SD_EQ " x.t" :
		" WHERE c.ctid " SD_EQ " ANY ($4)";
	lc_plan_prepare(plan, &t->entry, LC_TABLE_OWNER, t->entry.relid, restore ?
					psprintf("UPDATE %s c SET deleted_at = NULL, deleted_by = NULL%s%s"
							 " AND c.deleted_at " SD_EQ " $1 AND " SD_SAME_ACTOR("c"),
							 t->qualname, t->partitioned ? " FROM" : "", which) :
					psprintf("DELETE FROM %s c%s%s AND c.deleted_at IS NOT NULL",
							 t->qualname, t->partitioned ? " USING" : "", which),
					4, types);
	return plan;
}

/* The collected rows of rows that are not marked, but skip, by position. */
static uint64
sd_apply(SdCollect *c, SdRows *rows, int skip)
{
	Datum		values[4] = {c->stamp, c->actor, 0, 0};
	char		nulls[4] = {' ', c->actor_null ? 'n' : ' ', ' ', ' '};
	int			expected = sd_rows_positions(rows, false, skip, &values[2], &values[3]);
	uint64		n;

	if (expected == 0)
		return 0;
	n = sd_run(sd_apply_plan(rows->t, c->restore), rows->t->entry.relid, values, nulls,
			   c->restore ? SPI_OK_UPDATE : SPI_OK_DELETE);
	if (n != (uint64) expected)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("rows of table \"%s\" changed while they were being %s",
						get_rel_name(rows->t->entry.relid), c->restore ? "restored" : "purged"),
				 errdetail("Another transaction updated or deleted some of them."),
				 errhint("Retry the operation.")));
	return n;
}

/*
 * The root row's position and out columns, as its table's owner (the
 * caller may not read ctid, or every column): the caller holds the row
 * locked, so its position cannot change under us.
 */
static void
sd_root_rows(SdRows *rows, Datum key)
{
	SdTable    *t = rows->t;
	Oid			types[1] = {t->key_type};

	if (!lc_plan_ready(&t->out_plan))
		lc_plan_prepare(&t->out_plan, &t->entry, LC_TABLE_OWNER, t->entry.relid,
						psprintf("SELECT %s FROM %s c WHERE c.%s %s $1",
								 sd_collect_list(t), t->qualname, t->key_name, t->key_eq),
						1, types);
	(void) lc_plan_run(&t->out_plan, &key, NULL, SPI_OK_SELECT, 0);
	(void) sd_rows_add(rows);
}

/*
 * Restore what the root's cascade soft-deleted below it, the root row
 * itself excepted (the caller restores it as itself, after these, so that
 * its parents in the cascade are back when its guard checks them).
 * Returns false, and changes nothing, when the root itself must stay
 * deleted: a parent of it stays deleted.
 */
bool
sd_cascade_restore(SdTable *t, Datum key, Datum stamp, Datum actor,
				   bool actor_null, SdReport *rep)
{
	SdCollect	c = {true, stamp, actor, actor_null, NIL};
	SdRows	   *root;
	ListCell   *lc;

	if (t->children == NIL)
		return true;			/* nothing below it; its guard checks its parents */
	root = sd_rows(&c, t->entry.relid);
	sd_root_rows(root, key);
	if (root->n != 1)
		elog(ERROR, "root row of \"%s\" not found at its position", t->qualname);
	sd_collect(&c, root);
	sd_mark_blocked(&c);
	if (root->marked[0])
		return false;
	foreach(lc, c.tables)
	{
		SdRows	   *rows = lfirst(lc);

		sd_report_add(rep, rows->t->entry.relid, sd_apply(&c, rows, rows == root ? 0 : -1));
		sd_restore_leaves(&c, rows, rep);
	}
	return true;
}

/* ---------- purge ---------- */

/* Tarjan's strongly connected components: children before their parents. */
static void
sd_components(SdCollect *c, SdRows *v, int *counter, List **stack, List **order)
{
	ListCell   *lc;

	v->number = v->lowlink = ++(*counter);
	*stack = lcons(v, *stack);
	v->onstack = true;
	foreach(lc, v->t->children)
	{
		SdRows	   *w = sd_rows_lookup(c, ((SdFk *) lfirst(lc))->child);

		if (w == NULL || w->n == 0)
			continue;
		if (w->number == 0)
		{
			sd_components(c, w, counter, stack, order);
			v->lowlink = Min(v->lowlink, w->lowlink);
		}
		else if (w->onstack)
			v->lowlink = Min(v->lowlink, w->number);
	}
	if (v->lowlink == v->number)
	{
		List	   *component = NIL;
		SdRows	   *w;

		do
		{
			w = linitial(*stack);
			*stack = list_delete_first(*stack);
			w->onstack = false;
			component = lappend(component, w);
		} while (w != v);
		*order = lappend(*order, component);
	}
}

/*
 * Tables that reference each other in a cycle, with one owner: their rows
 * go in one statement, so that each foreign key is checked once all are
 * gone.
 */
static uint64
sd_purge_together(List *component)
{
	StringInfoData sql;
	Oid		   *types = palloc(sizeof(Oid) * 2 * list_length(component));
	Datum	   *values = palloc(sizeof(Datum) * 2 * list_length(component));
	ListCell   *lc;
	int			i = 0;
	bool		isnull;
	Oid			any_table = InvalidOid;	/* they have one owner */

	initStringInfo(&sql);
	appendStringInfoString(&sql, "WITH ");
	foreach(lc, component)
	{
		SdRows	   *rows = lfirst(lc);

		(void) sd_rows_positions(rows, false, -1, &values[2 * i], &values[2 * i + 1]);
		types[2 * i] = OIDARRAYOID;
		types[2 * i + 1] = TIDARRAYOID;
		appendStringInfo(&sql, "%sd%d AS (DELETE FROM %s c USING ROWS FROM"
						 " (pg_catalog.unnest($%d), pg_catalog.unnest($%d)) AS x(o, t)"
						 " WHERE c.tableoid " SD_EQ " x.o AND c.ctid " SD_EQ " x.t"
						 " AND c.deleted_at IS NOT NULL RETURNING 1)",
						 i ? ", " : "", i, rows->t->qualname, 2 * i + 1, 2 * i + 2);
		any_table = rows->t->entry.relid;
		i++;
	}
	appendStringInfoString(&sql, " SELECT 0::pg_catalog.int8");
	for (i = 0; i < list_length(component); i++)
		appendStringInfo(&sql, " OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM d%d)", i);
	sd_hard_delete++;
	PG_TRY();
	{
		(void) lc_sql_run(LC_TABLE_OWNER, any_table, sql.data, 2 * list_length(component), types,
						  values, NULL, SPI_OK_SELECT, 0);
	}
	PG_FINALLY();
	{
		sd_hard_delete--;
	}
	PG_END_TRY();
	return (uint64) DatumGetInt64(lc_result(0, 1, &isnull));
}

static bool
sd_one_owner(List *component)
{
	ListCell   *lc;
	Oid			owner = lc_table_owner(((SdRows *) linitial(component))->t->entry.relid);

	foreach(lc, component)
		if (lc_table_owner(((SdRows *) lfirst(lc))->t->entry.relid) != owner)
			return false;
	return true;
}

/*
 * Delete for good the rows of t soft-deleted before cutoff and, along the
 * foreign keys, their soft-deleted descendants: children first.  Returns
 * the rows removed.
 */
uint64
sd_cascade_purge(SdTable *t, Datum cutoff)
{
	SdCollect	c = {false, cutoff, (Datum) 0, true, NIL};
	SdRows	   *root = sd_rows(&c, t->entry.relid);
	Oid			types[1] = {TIMESTAMPTZOID};
	List	   *stack = NIL,
			   *order = NIL;
	ListCell   *lc;
	int			counter = 0;
	uint64		removed = 0;

	if (!lc_plan_ready(&t->roots_plan))
		lc_plan_prepare(&t->roots_plan, &t->entry, LC_TABLE_OWNER, t->entry.relid,
						psprintf("SELECT %s FROM %s c WHERE c.deleted_at OPERATOR(pg_catalog.<) $1",
								 sd_collect_list(t), t->qualname),
						1, types);
	(void) lc_plan_run(&t->roots_plan, &cutoff, NULL, SPI_OK_SELECT, 0);
	(void) sd_rows_add(root);
	if (root->n == 0)
		return 0;
	sd_collect(&c, root);
	sd_components(&c, root, &counter, &stack, &order);
	foreach(lc, order)
	{
		List	   *component = lfirst(lc);
		ListCell   *r;

		if (list_length(component) > 1 && sd_one_owner(component))
		{
			removed += sd_purge_together(component);
			continue;
		}
		foreach(r, component)
		{
			sd_hard_delete++;
			PG_TRY();
			{
				removed += sd_apply(&c, lfirst(r), -1);
			}
			PG_FINALLY();
			{
				sd_hard_delete--;
			}
			PG_END_TRY();
		}
	}
	return removed;
}

/* Run a DELETE of soft-deleted rows that intercepting triggers let through. */
uint64
sd_hard_delete_run(LcPlan *plan, Datum *values)
{
	uint64		n = 0;

	sd_hard_delete++;
	PG_TRY();
	{
		n = lc_plan_run(plan, values, NULL, SPI_OK_DELETE, 0);
	}
	PG_FINALLY();
	{
		sd_hard_delete--;
	}
	PG_END_TRY();
	return n;
}

/* A transaction ended: no cascade runs any more. */
void
sd_cascade_xact_end(void)
{
	sd_cascading_relid = InvalidOid;
	sd_hard_delete = 0;
}
