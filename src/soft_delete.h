/*-------------------------------------------------------------------------
 *
 * soft_delete.h
 *	  Soft delete with cascades along foreign keys and exact restore.
 *
 *	  A soft delete is an UPDATE that sets deleted_at and deleted_by.  The
 *	  root row is locked and updated as the caller, through a cursor
 *	  (UPDATE ... WHERE CURRENT OF), so its privileges, policies and WITH
 *	  CHECK apply but the SELECT policy is not applied to the new row (the
 *	  "Supabase trap").  The cascade below it runs as each table's owner,
 *	  as PostgreSQL's own foreign-key actions do, and, like them, passes
 *	  key values from one table to the next as parameters: no statement
 *	  reads another owner's table.  Every row of one cascade gets the same
 *	  deleted_at, unique to that cascade, and the same deleted_by, which is
 *	  how restore finds exactly those rows.
 *
 *	  The files:
 *	  soft_delete_graph.c    the per-table cache entry: columns, key, the
 *	                         foreign-key graph between enabled tables
 *	  soft_delete_cascade.c  the cascades: delete, restore (exact, whatever
 *	                         the graph: cycles, self-references) and purge
 *	  soft_delete_api.c      the SQL-callable functions on one root row,
 *	                         cleanup and the stats
 *	  soft_delete_triggers.c the guard (no live row under a deleted one)
 *	                         and the intercepted DELETE
 *	  soft_delete_admin.c    enable/disable, the tenant table
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_SOFT_DELETE_H
#define LIFECYCLE_SOFT_DELETE_H

#include "pg_lifecycle.h"

#include "utils/timestamp.h"

#define SD_GUARD_UPD		"lifecycle_soft_delete_guard_upd"
#define SD_GUARD_INS		"lifecycle_soft_delete_guard_ins"
#define SD_INTERCEPT		"lifecycle_soft_delete_intercept"
#define SD_INTERCEPT_END	"lifecycle_soft_delete_intercept_end"
#define SD_HINT				"This trigger is installed by lifecycle.enable_soft_delete(); do not create it by hand."

/* A foreign key from one enabled table (child) to another (parent). */
typedef struct SdFk
{
	Oid			conoid;
	Oid			child;
	Oid			parent;
	int			nkeys;
	AttrNumber	child_cols[INDEX_MAX_KEYS];
	AttrNumber	parent_cols[INDEX_MAX_KEYS];
	Oid			pf_eq[INDEX_MAX_KEYS];	/* parent key = child column */
	int			pos[INDEX_MAX_KEYS];	/* its columns among the entry's out columns */
	/* plans of the parent's entry (children), run as the child's owner */
	LcPlan		delete_plan[2];	/* soft-delete the children of these keys:
								 * returning their out columns, or (a child
								 * without children) only how many */
	LcPlan		collect_plan[2];	/* restore, purge: find the children of these keys */
	LcPlan		match_plan;		/* rows referencing these keys */
	LcPlan		leaf_restore_plan;	/* restore a leaf child's rows of these keys */
	/* plans of the child's entry (parents), run as the parent's owner */
	LcPlan		guard_plan;		/* is the parent of these values deleted (FOR SHARE) */
	LcPlan		deleted_plan;	/* which of these values have deleted parents */
} SdFk;

/* What we know about one table, in the shared cache. */
typedef struct SdTable
{
	LcEntry		entry;
	bool		registered;		/* in lifecycle.soft_delete_tables */
	bool		enabled;		/* registered, and has its guard trigger */
	bool		intercept;		/* registered with intercept_delete */
	bool		partitioned;
	Oid			root;			/* the partitioned table of a partition, else itself */
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
	/* the columns cascades read: referenced by children, referencing parents */
	int			nout;
	AttrNumber *out_cols;
	Oid		   *out_types;
	/* plans of the root row and of the table's own statements */
	LcPlan		lock_plan;		/* caller: cursor on the row, FOR UPDATE */
	LcPlan		visible_plan;	/* caller: is the row visible, is it deleted */
	LcPlan		delete_plan;	/* caller: soft-delete the row under the cursor */
	LcPlan		restore_plan;	/* caller: restore the row under the cursor */
	LcPlan		purge_plan;		/* caller: delete a soft-deleted row */
	LcPlan		out_plan;		/* owner: the position and out columns of the row of a key */
	LcPlan		keyed_plan;		/* owner: the out columns of the row just soft-deleted */
	LcPlan		apply_plan[2];	/* owner: restore / delete rows by position */
	LcPlan		roots_plan;		/* owner: rows soft-deleted before a time */
	LcPlan		intercept_plan; /* owner: soft-delete the rows of key array $1 */
} SdTable;

/* Rows changed per table by one operation, for the jsonb report. */
typedef struct SdReport
{
	List	   *relids;
	List	   *counts;
} SdReport;

/* soft_delete_graph.c */
extern SdTable *sd_table(Oid relid);
extern SdTable *sd_enabled_table(Oid relid, const char *funcname);
extern void sd_require_key(SdTable *t, const char *funcname);
extern void sd_null_error(const char *what, const char *example);
extern char *sd_join_sql(SdFk *fk, const char *parent_side, const char *child);
extern char *sd_column_list(SdTable *t, const char *alias, const char *format);

/* soft_delete_cascade.c */
extern TimestampTz sd_next_stamp(void);
extern bool sd_cascading(Oid relid);
extern bool sd_hard_deleting(void);
extern void sd_cascade_delete(SdTable *t, Datum *out, uint64 nrows,
							  Datum stamp, Datum actor, bool actor_null, SdReport *rep);
extern Datum *sd_delete_rows(SdTable *t, LcPlan *plan, Datum *values, const char *nulls,
							 uint64 *n);
extern Datum *sd_step_arrays(SdTable *t, uint64 *n);
extern bool sd_cascade_restore(SdTable *t, Datum key, Datum stamp,
							   Datum actor, bool actor_null, SdReport *rep);
extern uint64 sd_cascade_purge(SdTable *t, Datum cutoff);
extern void sd_cascade_xact_end(void);
extern uint64 sd_hard_delete_run(LcPlan *plan, Datum *values);
extern void sd_report_add(SdReport *rep, Oid relid, uint64 n);
extern char *sd_report_text(SdReport *rep);

/* soft_delete_api.c */
extern void sd_check_tenant(SdTable *t);
extern void sd_api_xact_end(void);

/* soft_delete_triggers.c */
extern void sd_parent_deleted_error(Relation child, SdFk *fk, Datum *values, bool restore);
extern const LcTriggerShape sd_guard_shapes[2];
extern const LcTriggerShape sd_intercept_shapes[2];
extern void sd_triggers_xact_end(void);
extern void sd_triggers_subxact_end(bool commit, SubTransactionId mine, SubTransactionId parent);

#endif							/* LIFECYCLE_SOFT_DELETE_H */
