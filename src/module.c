/*-------------------------------------------------------------------------
 *
 * module.c
 *	  Module entry point.  _PG_init registers the extension's one relcache
 *	  invalidation callback (PostgreSQL gives a backend ten for all its
 *	  extensions together), its syscache and transaction callbacks, and
 *	  hands each event to the core and to the features listed below.  Also
 *	  the one sql_drop event trigger, which runs each feature's cleanup.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/event_trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "catalog/namespace.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "pg_lifecycle.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Every feature, in the order of the install script. */
const LcRetentionBatch *lc_retention_batch = NULL;

static const LcFeature *const lc_features[] = {
	&lc_updated_at_feature,
	&lc_soft_delete_feature,
	&lc_audit_feature,
	&lc_counters_feature,
	&lc_retention_feature,
	&lc_redaction_feature,
};

#define LC_NFEATURES lengthof(lc_features)

static void
lc_relcache_callback(Datum arg, Oid relid)
{
	lc_caches_invalidate(relid);
	lc_forget_extension_owner(relid);
}

/* A schema changed (DROP/CREATE EXTENSION remakes schema lifecycle). */
static void
lc_namespace_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	lc_forget_extension_owner(InvalidOid);
}

static void
lc_xact_callback(XactEvent event, void *arg)
{
	int			i;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	lc_cache_xact_end();
	lc_run_as_xact_end();
	lc_retention_batch = NULL;
	for (i = 0; i < LC_NFEATURES; i++)
		if (lc_features[i]->xact_end)
			lc_features[i]->xact_end();
}

void
lc_xact_item_init(LcXactItem *item)
{
	item->subxid = GetCurrentSubTransactionId();
}

List *
lc_xact_items_subxact_end(List *items, bool commit, SubTransactionId mine,
						  SubTransactionId parent)
{
	ListCell   *lc;

	foreach(lc, items)
	{
		LcXactItem *item = lfirst(lc);

		if (item->subxid != mine)
			continue;
		if (commit)
			item->subxid = parent;
		else
			items = foreach_delete_current(items, lc);
	}
	return items;
}

static void
lc_subxact_callback(SubXactEvent event, SubTransactionId mine,
					SubTransactionId parent, void *arg)
{
	int			i;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	for (i = 0; i < LC_NFEATURES; i++)
		if (lc_features[i]->subxact_end)
			lc_features[i]->subxact_end(event == SUBXACT_EVENT_COMMIT_SUB, mine, parent);
}

void
_PG_init(void)
{
	CacheRegisterRelcacheCallback(lc_relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, lc_namespace_callback, (Datum) 0);
	RegisterXactCallback(lc_xact_callback, NULL);
	RegisterSubXactCallback(lc_subxact_callback, NULL);
	for (int i = 0; i < LC_NFEATURES; i++)
		if (lc_features[i]->init)
			lc_features[i]->init();
	/* after every feature defined its settings: a typo is then an error */
	MarkGUCPrefixReserved("lifecycle");
}

/*
 * sql_drop: every feature forgets the tables (and triggers) that are gone.
 * The dropping role may not write the configuration tables, so the
 * statements run as the extension's owner; each only deletes rows whose
 * object no longer exists.
 */
PG_FUNCTION_INFO_V1(forget_dropped);
Datum
forget_dropped(PG_FUNCTION_ARGS)
{
	int			i;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo) ||
		strcmp(((EventTriggerData *) fcinfo->context)->event, "sql_drop") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("forget_dropped: must be fired by an event trigger ON sql_drop"),
				 errhint("It is installed by CREATE EXTENSION pg_lifecycle; do not call it.")));
	lc_enter();
	for (i = 0; i < LC_NFEATURES; i++)
	{
		const char *const *sql = lc_features[i]->forget_dropped;
		const char *table = lc_features[i]->config_table;

		/* during ALTER EXTENSION UPDATE, a newer feature's tables may not exist yet */
		if (table && !OidIsValid(get_relname_relid(table, get_namespace_oid(LIFECYCLE_SCHEMA, false))))
			continue;
		for (; sql && *sql; sql++)
			(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid, *sql, 0, NULL, NULL, NULL,
							  SPI_OK_DELETE, 0);
	}
	lc_leave();
	PG_RETURN_VOID();
}
