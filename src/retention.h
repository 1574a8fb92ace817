/*-------------------------------------------------------------------------
 *
 * retention.h
 *	  What the retention files share: a policy as read from
 *	  lifecycle.retention_policies, and the archive helpers the runner and
 *	  restore_archived() use.
 *
 *	  retention_admin.c    set/drop_retention, holds, the pg_cron jobs
 *	  retention_run.c      run_retention(), cleanup_retention_data(): batches
 *	  retention_archive.c  archive tables, restore_archived()
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_RETENTION_H
#define LIFECYCLE_RETENTION_H

#include "datatype/timestamp.h"

#include "pg_lifecycle.h"

/* Columns every archive table has after the source's own. */
#define RT_ARCHIVED_AT		"archived_at"
#define RT_RUN_ID			"retention_run_id"
#define RT_JOB_NAME			"pg_lifecycle retention"
#define RT_REFRESH_JOB_NAME	"pg_lifecycle usage refresh"

typedef enum RtAction
{
	RT_DELETE,
	RT_ARCHIVE,
	RT_PURGE
} RtAction;

/* One row of lifecycle.retention_policies. */
typedef struct RtPolicy
{
	Oid			relid;
	char	   *name;			/* the table's name when the policy was read */
	Interval	keep;
	char	   *ts_column;
	RtAction	action;
	int			batch_size;
	char	   *owner_column;	/* NULL: none */
	Oid			pref_relid;		/* InvalidOid: none */
	char	   *pref_key;
	char	   *pref_column;
	Interval	min_keep;
	char	   *archive_schema;
	bool		enabled;
} RtPolicy;

/* retention_admin.c */
extern double rt_pause;
extern bool rt_is_audit_log(Oid relid);
extern RtAction rt_action(const char *label);
extern const char *rt_action_label(RtAction action);
extern List *rt_policies(Oid only);
extern void rt_check_policy(const RtPolicy *p, Relation rel);

/* retention_archive.c */
extern char *rt_archive_prepare(const RtPolicy *p, Relation rel, List **columns);
extern Oid	rt_archive_relid(Oid relid, const char *schema);

/* retention_run.c */
extern char *rt_where_sql(const RtPolicy *p, Relation rel);

#endif							/* LIFECYCLE_RETENTION_H */
