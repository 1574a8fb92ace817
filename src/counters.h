/*-------------------------------------------------------------------------
 *
 * counters.h
 *	  Usage counters and plan limits.  A counted resource is the live rows
 *	  of a source table per account (or metered usage without a table); its
 *	  count lives in lifecycle.usage_counts, split over slots so concurrent
 *	  writers of one account do not queue on one row, and is mirrored into
 *	  the counter column of the account's row (accounts.current_project_count)
 *	  whenever that row can be locked without waiting.
 *
 *	  The files:
 *	  counters_config.c  resources as configured, and the two caches (source
 *	                     tables, counter tables)
 *	  counters_store.c   the slots: applying a change under a limit,
 *	                     totals, mirroring into the counter column
 *	  counters_trigger.c the statement trigger on source tables
 *	  counters_guard.c   the row trigger on counter tables
 *	  counters_api.c     metering, recounting and the read functions
 *	  counters_admin.c   track_usage / untrack_usage
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_COUNTERS_H
#define LIFECYCLE_COUNTERS_H

#include "pg_lifecycle.h"

#define UC_NSLOTS		16
#define UC_NO_ROOM		"-4611686018427387904"	/* cap: every increase rebalances */
#define UC_HINT			"This trigger is installed by lifecycle.track_usage(); do not create it by hand."

/* Where a resource's counts are mirrored and its limits read. */
typedef struct UcCounter
{
	char	   *resource;
	Oid			counter_relid;
	char	   *counter;		/* the counter table, quoted */
	char	   *key;			/* its key column, quoted */
	char	   *column;			/* the counter column, quoted */
	char	   *limit;			/* the limit column, quoted; NULL without */
	char	   *column_name;	/* the same, as configured */
	char	   *limit_name;
	AttrNumber	column_attnum;
	AttrNumber	limit_attnum;	/* 0 without */
	LcEntry    *keeper;			/* the cache entry its plans are kept with */
	LcPlan		mirror_plan;
	LcPlan		limit_plan;
	LcPlan		sees_plan;		/* can the caller see the account */
	LcPlan		touch_plan;		/* can the caller update the account */
	LcPlan		invoker_plan;	/* can the session's role see the account */
} UcCounter;

/* A resource's definition, from lifecycle.usage_resources. */
typedef struct UcDef
{
	char	   *resource;
	Oid			counter_relid;
	char	   *column;
	Oid			source_relid;	/* InvalidOid: metered */
	char	   *source_column;
	char	   *limit;
} UcDef;

/* A counter table's entry: the resources it counts. */
typedef struct UcAccounts
{
	LcEntry		entry;
	AttrNumber	key;
	int			n;
	UcCounter  *counters;
} UcAccounts;

/* One resource counted from a source table. */
typedef struct UcResource
{
	UcCounter	c;
	AttrNumber	source_attnum;	/* the account column of the source table */
	LcPlan		delta[3];		/* INSERT, UPDATE, DELETE: (account, delta) rows */
} UcResource;

/* A source table's entry: its resources. */
typedef struct UcTable
{
	LcEntry		entry;
	AttrNumber	deleted_at;		/* 0: every row is live */
	int			nres;
	UcResource *res;
} UcTable;

enum
{
	UC_INS, UC_UPD, UC_DEL
};

/* counters_config.c */
extern List *uc_defs(const char *resource);
extern UcDef *uc_def(const char *resource);
extern AttrNumber uc_key_attnum(Relation rel);
extern UcTable *uc_source_table(Relation rel);
extern UcAccounts *uc_accounts(Oid counter_relid);
extern UcCounter *uc_counter_of(UcDef *d);
extern void uc_counter_check(UcCounter *c);

/* counters_store.c */
extern int64 uc_apply(UcCounter *c, pg_uuid_t *account, int64 delta, bool strict,
					  int64 *limit_out);
extern int64 uc_total(const char *resource, pg_uuid_t *account);
extern int64 uc_read_limit(UcCounter *c, pg_uuid_t *account);
extern void uc_mirror_soon(UcCounter *c, pg_uuid_t *account, int64 delta);
extern void uc_forget_mirrors(void);
extern void uc_limit_error(UcCounter *c, pg_uuid_t *account, int64 count, int64 delta,
						   int64 lim);
extern void uc_limit_changed(const char *resource, Datum account, bool unlimited);
extern bool uc_own_write(void);
extern bool uc_begin_own_write(void);
extern void uc_end_own_write(bool saved);
extern bool uc_account_visible(UcCounter *c, pg_uuid_t *account, LcRole role,
							   bool to_write);

/* counters_api.c */
extern int	uc_sync_one(UcDef *d, pg_uuid_t *account, bool recount);
extern void uc_truncated(Oid relid);
extern void uc_check_snapshot(const char *funcname);

/* counters_trigger.c, counters_guard.c */
#define UC_NSOURCE_TRIGGERS 4
extern const LcTriggerShape uc_source_triggers[UC_NSOURCE_TRIGGERS];
extern const LcTriggerShape uc_guard_trigger[1];

#endif							/* LIFECYCLE_COUNTERS_H */
