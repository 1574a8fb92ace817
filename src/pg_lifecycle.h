/*-------------------------------------------------------------------------
 *
 * pg_lifecycle.h
 *	  The ground floor every feature stands on: module hooks, the
 *	  per-relation cache, kept plans and the one way to run SQL as another
 *	  role, DDL helpers and the checks and errors the features share.
 *
 *	  Include graph: features include this header (and their own); the
 *	  core files include only this header; nothing includes a feature's.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_LIFECYCLE_H
#define PG_LIFECYCLE_H

#include "postgres.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "nodes/pg_list.h"
#include "storage/lockdefs.h"
#include "utils/portal.h"
#include "utils/relcache.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "compat.h"

/* The schema every pg_lifecycle object lives in. */
#define LIFECYCLE_SCHEMA	"lifecycle"

/*
 * The soft-delete column contract.  A row is soft-deleted when its
 * deleted_at is not NULL, whoever set it: every feature reads the data
 * through these two names.
 */
#define LC_DELETED_AT		"deleted_at"
#define LC_DELETED_BY		"deleted_by"

/*
 * A retention batch in progress: while retention's statement removes rows
 * of relid (a policy's table, or a partition of it), other features read
 * it (audit logs the batch as one RETENTION row; the audit log lets its
 * own retention delete).  Set and cleared by retention around that one
 * statement; NULL otherwise.
 */
typedef struct LcRetentionBatch
{
	Oid			relid;			/* the policy's table */
	int64		run_id;
	const char *action;			/* "delete" or "archive" */
	const char *archive;		/* the archive table (archive), else NULL */
} LcRetentionBatch;

extern const LcRetentionBatch *lc_retention_batch;

/* ---------- module.c: what each feature hands the module ---------- */

typedef struct LcFeature
{
	const char *name;
	void		(*init) (void);	/* at library load: its settings */
	void		(*xact_end) (void); /* a transaction ended: drop its state */
	void		(*subxact_end) (bool commit, SubTransactionId mine,
								SubTransactionId parent);
	/* run as the extension's owner when objects are dropped (sql_drop) */
	const char *const *forget_dropped;
	/* the feature's table in schema lifecycle, which they change */
	const char *config_table;
} LcFeature;

/*
 * State a feature keeps for the rest of the transaction, in a List of
 * items that begin with an LcXactItem: at a subtransaction's end, a
 * rollback drops the items it made, a commit hands them to its parent.
 */
typedef struct LcXactItem
{
	SubTransactionId subxid;	/* the subtransaction that made it */
} LcXactItem;

extern void lc_xact_item_init(LcXactItem *item);
extern List *lc_xact_items_subxact_end(List *items, bool commit, SubTransactionId mine,
									   SubTransactionId parent);

extern const LcFeature lc_updated_at_feature;
extern const LcFeature lc_soft_delete_feature;
extern const LcFeature lc_audit_feature;
extern const LcFeature lc_counters_feature;
extern const LcFeature lc_retention_feature;
extern const LcFeature lc_redaction_feature;

/* ---------- cache.c: operations and the per-relation cache ---------- */

/*
 * An operation is one call of a trigger or SQL-callable function that
 * runs SQL.  lc_enter() connects to SPI; nothing the extension keeps
 * (cache entries, plans) is freed while any operation runs: stale ones
 * are freed when the next outermost operation starts.
 */
extern void lc_enter(void);
extern void lc_leave(void);
extern void lc_procedure_enter(FunctionCallInfo fcinfo, const char *what, const char *hint);
extern void lc_procedure_commit(void);
extern void lc_procedure_leave(void);

/*
 * One entry per relation, in a memory context of its own.  A feature's
 * entry type starts with an LcEntry.  An entry is rebuilt when the
 * relation, or one it depends on, gets a relcache invalidation; a stale
 * entry is kept until no operation can be using it.
 */
typedef struct LcEntry
{
	Oid			relid;
	bool		valid;
	MemoryContext cxt;			/* everything below and the feature's data */
	List	   *depends;		/* other relations (OIDs) it was built from */
	List	   *plans;			/* LcPlan * kept with it, freed with it */
} LcEntry;

typedef struct LcCache LcCache;
typedef void (*LcBuild) (LcEntry *entry, Relation rel);

extern LcCache *lc_cache_create(const char *name, Size entrysize, LcBuild build);
extern LcEntry *lc_cache_lookup(LcCache *cache, Relation rel);
extern LcEntry *lc_cache_lookup_oid(LcCache *cache, Oid relid);
extern void lc_entry_depends_on(LcEntry *entry, Oid relid);
extern void lc_caches_invalidate(Oid relid);
extern void lc_cache_xact_end(void);
extern void lc_free_later(SPIPlanPtr plan);

/* ---------- run_as.c: the one way to run SQL as another role ---------- */

typedef enum LcRole
{
	LC_CALLER,					/* the current user; its rights and policies apply */
	LC_CALLER_PINNED,			/* the same, search_path pinned (DDL) */
	LC_INVOKER,					/* the role the session acts as: who reads the
								 * errors, so what they may say */
	LC_EXTENSION_OWNER,			/* the extension's own tables; search_path
								 * pg_catalog, pg_temp */
	LC_TABLE_OWNER				/* a table as its owner, as foreign keys do; the
								 * owner's own search_path, pg_temp last */
} LcRole;

/* A kept plan, prepared and always run as one role. */
typedef struct LcPlan
{
	SPIPlanPtr	spi;
	LcRole		role;
	Oid			relid;			/* LC_TABLE_OWNER: whose owner */
} LcPlan;

extern bool lc_plan_ready(const LcPlan *plan);
extern void lc_plan_prepare(LcPlan *plan, LcEntry *keeper, LcRole role, Oid relid,
							const char *sql, int nargs, Oid *argtypes);
extern uint64 lc_plan_run(LcPlan *plan, Datum *values, const char *nulls,
						  int expected, long count);
extern uint64 lc_plan_run_crosschecked(LcPlan *plan, Datum *values, const char *nulls,
									   int expected);
extern Portal lc_plan_cursor(LcPlan *plan, const char *name, Datum *values,
							 const char *nulls);
extern uint64 lc_sql_run(LcRole role, Oid relid, const char *sql, int nargs,
						 Oid *argtypes, Datum *values, const char *nulls,
						 int expected, long count);
extern Datum lc_result(uint64 row, int col, bool *isnull);
extern void lc_check_no_rules(Oid relid, CmdType event);
extern void lc_refuse_rules(Oid relid);
extern Oid	lc_invoker(void);
extern Oid	lc_extension_owner(void);
extern Oid	lc_table_owner(Oid relid);
extern void lc_forget_extension_owner(Oid relid);
extern void lc_run_as_xact_end(void);

/* ---------- ddl.c: DDL helpers, checks and shared errors ---------- */

extern void lc_check_table(Relation rel, const char *funcname);
extern Relation lc_open_owned_table(Oid relid, LOCKMODE lockmode, const char *funcname);
extern void lc_refuse_extension_table(Relation rel, const char *what);
extern void lc_check_still_table(Oid relid, const char *what);
extern char *lc_qualified_name(Relation rel);
extern char *lc_qualified_name_oid(Oid relid);
extern char *lc_operator_sql(Oid opno);
extern AttrNumber lc_attnum(Relation rel, const char *name);
extern int	lc_primary_key(Relation rel, AttrNumber *attnums);
extern Oid	lc_partition_root(Oid relid);
extern Trigger *lc_find_trigger(Relation rel, const char *name);
extern void lc_ddl(const char *sql);
extern void lc_null_argument(const char *what, const char *hint);
extern TupleTableSlot *lc_only_row(Tuplestorestate *ts, TupleDesc desc);

/* One trigger a feature installs: name, the CREATE TRIGGER text after the
 * name with %s for the table, and the shape the trigger function checks. */
typedef struct LcTriggerShape
{
	const char *name;
	int16		tgtype;			/* TRIGGER_TYPE_* bits it must have, exactly */
	const char *old_table;		/* transition table names; NULL: none */
	const char *new_table;
	int			nargs;
	const char *ddl;			/* e.g. "AFTER INSERT ON %s REFERENCING ..." */
} LcTriggerShape;

extern const LcTriggerShape *lc_verify_trigger(FunctionCallInfo fcinfo,
											   const LcTriggerShape *shapes, int nshapes,
											   const char *hint);
extern void lc_trigger_misuse(FunctionCallInfo fcinfo, const char *what, const char *hint);
extern void lc_install_triggers(List *relids, const LcTriggerShape *shapes, int nshapes,
								const char *function, const char *args, bool install);

/* ---------- actor.c: who is acting, from the request's JWT claims ---------- */

/* Redaction for audit's logged rows (redact.c): pseudonyms of the keys
 * in hash, then the redaction rules if redact. */
extern Datum lc_redact_logged_row(Datum row, char **hash, int nhash, bool redact);
extern char *lc_redact_pseudonym(const char *value);

extern bool lifecycle_current_actor(pg_uuid_t *actor);
extern const char *lifecycle_current_actor_role(void);
extern char *lifecycle_forwarded_for(void);

#endif							/* PG_LIFECYCLE_H */
