/*-------------------------------------------------------------------------
 *
 * run_as.c
 *	  The one way pg_lifecycle runs SQL, and the only place that switches
 *	  to another role (ri_triggers.c's ri_PerformCheck is the model).
 *
 *	  Authority is checked as the caller first (by the feature, or by
 *	  running the statement as LC_CALLER); only then does a statement run
 *	  as the extension's owner (to write the extension's own tables) or as
 *	  a table's owner (to cascade into a table, as foreign keys do).  While
 *	  switched:
 *	  - search_path is pinned: "pg_catalog, pg_temp" for the extension's
 *	    owner; for a table's owner the owner's own path (never one the
 *	    caller set) with pg_temp moved explicitly to the end, so that no
 *	    name resolves to the caller's temporary objects before the owner's;
 *	  - the statement's plan was prepared as that same role under that same
 *	    path (schema USAGE and name lookup are the runner's);
 *	  - every function and operator of the SQL is schema-qualified by the
 *	    features, which build it.
 *	  Each call leaves the caller in the memory context it called from (SPI
 *	  itself would leave it in its procedure context).
 *	  A kept plan that PostgreSQL finds invalid is made anew from fresh SQL
 *	  by its feature (lc_plan_ready() says when); the old one is freed
 *	  when no operation can still be running it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_db_role_setting.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "pg_lifecycle.h"

#define LC_PINNED_PATH "pg_catalog, pg_temp"

typedef struct LcSave
{
	Oid			userid;
	int			sec_context;
	int			guc_nest;		/* 0: search_path unchanged */
} LcSave;

/* ---------- who the roles are ---------- */

/*
 * The role that owns the installed extension, asked for on every audited
 * statement; pg_extension has no syscache, so it is kept until schema
 * lifecycle changes (DROP/CREATE EXTENSION) or a table of the extension
 * does (REASSIGN OWNED gives them to the new owner with the extension).
 */
static Oid	lc_owner = InvalidOid;
static Oid	lc_owner_witness = InvalidOid;

void
lc_forget_extension_owner(Oid relid)
{
	if (relid == InvalidOid || relid == lc_owner_witness)
		lc_owner = InvalidOid;
}

Oid
lc_extension_owner(void)
{
	Oid			extoid;
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			owner;

	if (OidIsValid(lc_owner))
		return lc_owner;
	extoid = get_extension_oid("pg_lifecycle", false);
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "could not find extension pg_lifecycle (oid %u)", extoid);
	owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	lc_owner_witness = get_relname_relid("updated_at_tables",
										 get_namespace_oid(LIFECYCLE_SCHEMA, false));
	lc_owner = owner;
	return owner;
}

Oid
lc_table_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* ---------- the owner's search_path ---------- */

/* One setting from pg_db_role_setting for (database, role); NULL if none. */
static char *
lc_stored_setting(Oid dbid, Oid roleid, const char *name)
{
	Relation	rel = table_open(DbRoleSettingRelationId, AccessShareLock);
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *result = NULL;
	size_t		len = strlen(name);

	ScanKeyInit(&keys[0], Anum_pg_db_role_setting_setdatabase, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(dbid));
	ScanKeyInit(&keys[1], Anum_pg_db_role_setting_setrole, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(roleid));
	scan = systable_beginscan(rel, DbRoleSettingDatidRolidIndexId, true, NULL, 2, keys);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_db_role_setting_setconfig,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
		{
			Datum	   *elems;
			bool	   *nulls;
			int			n,
						i;

			deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &nulls, &n);
			for (i = 0; i < n && result == NULL; i++)
			{
				char	   *item = nulls[i] ? NULL : TextDatumGetCString(elems[i]);

				if (item && strncmp(item, name, len) == 0 && item[len] == '=')
					result = pstrdup(item + len + 1);
			}
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * The search_path a fresh session of the owner would have in this
 * database: the owner's own stored setting (ALTER ROLE ... IN DATABASE,
 * ALTER ROLE), else the session's reset value when nothing the caller
 * controls set it (postgresql.conf, ALTER DATABASE), else the database's
 * stored setting, else the built-in default.  Never what the caller chose
 * with SET, connection options or ALTER ROLE on itself.
 */
static const char *
lc_owner_raw_path(Oid owner)
{
	static struct config_string *guc = NULL;
	char	   *stored;

	if (guc == NULL)
	{
		guc = (struct config_string *) lc_compat_find_guc("search_path");
		if (guc == NULL)
			elog(ERROR, "search_path setting not found");
	}
	if ((stored = lc_stored_setting(MyDatabaseId, owner, "search_path")) != NULL ||
		(stored = lc_stored_setting(InvalidOid, owner, "search_path")) != NULL)
		return stored;
	if (guc->gen.reset_source <= PGC_S_DATABASE && guc->reset_val != NULL)
		return guc->reset_val;
	if ((stored = lc_stored_setting(MyDatabaseId, InvalidOid, "search_path")) != NULL)
		return stored;
	return guc->boot_val;
}

/* path with pg_temp taken out and put last: the caller's temp objects never win */
static char *
lc_temp_last(const char *path)
{
	char	   *copy = pstrdup(path);
	List	   *names;
	ListCell   *lc;
	StringInfoData buf;

	if (!SplitIdentifierString(copy, ',', &names))
		return pstrdup(LC_PINNED_PATH);
	initStringInfo(&buf);
	foreach(lc, names)
	{
		const char *name = lfirst(lc);

		if (strcmp(name, "pg_temp") == 0 || strncmp(name, "pg_temp_", 8) == 0)
			continue;
		appendStringInfo(&buf, "%s, ", quote_identifier(name));
	}
	appendStringInfoString(&buf, "pg_temp");
	return buf.data;
}

/* Computed at most once per owner per transaction. */
#define LC_PATHS 8
static struct
{
	Oid			owner;
	char	   *path;			/* TopMemoryContext */
}			lc_paths[LC_PATHS];
static int	lc_npaths = 0;

static const char *
lc_owner_search_path(Oid owner)
{
	int			i;
	char	   *path;

	for (i = 0; i < lc_npaths; i++)
		if (lc_paths[i].owner == owner)
			return lc_paths[i].path;
	path = lc_temp_last(lc_owner_raw_path(owner));
	if (lc_npaths < LC_PATHS)
	{
		lc_paths[lc_npaths].owner = owner;
		lc_paths[lc_npaths].path = MemoryContextStrdup(TopMemoryContext, path);
		return lc_paths[lc_npaths++].path;
	}
	return path;
}

void
lc_run_as_xact_end(void)
{
	int			i;

	for (i = 0; i < lc_npaths; i++)
		pfree(lc_paths[i].path);
	lc_npaths = 0;
}

/* ---------- switching ---------- */


/*
 * Who reads the errors: the role the session acts as (SET ROLE), whatever
 * the extension, foreign-key actions or SECURITY DEFINER functions switched
 * the current user to on the way.
 */
Oid
lc_invoker(void)
{
	return GetOuterUserId();
}

/*
 * Become role, with its search_path.  An error needs no undoing: aborting
 * the (sub)transaction restores the user id and the settings.
 */
static void
lc_become(LcRole role, Oid relid, LcSave *save)
{
	Oid			user;
	const char *path;

	GetUserIdAndSecContext(&save->userid, &save->sec_context);
	save->guc_nest = 0;
	if (role == LC_CALLER)
		return;
	if (role == LC_INVOKER)
	{
		/* no search_path change: the caller's own statement, in effect */
		SetUserIdAndSecContext(lc_invoker(), save->sec_context | SECURITY_LOCAL_USERID_CHANGE);
		return;
	}
	if (role == LC_CALLER_PINNED)
	{
		user = InvalidOid;
		path = LC_PINNED_PATH;
	}
	else if (role == LC_EXTENSION_OWNER)
	{
		user = lc_extension_owner();
		path = LC_PINNED_PATH;
	}
	else
	{
		user = lc_table_owner(relid);
		path = lc_owner_search_path(user);
	}
	/*
	 * Always a GUC level of its own, undone afterwards: what the statement
	 * or code it runs (an owner's triggers) sets, even with a plain SET,
	 * does not outlive it in the caller's session.
	 */
	save->guc_nest = NewGUCNestLevel();
	if (strcmp(namespace_search_path, path) != 0)
		(void) set_config_option("search_path", path, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	if (role == LC_CALLER_PINNED)
		return;
	/*
	 * A restricted operation, as REFRESH MATERIALIZED VIEW runs a view's
	 * owner's code: the extension's owner runs no user code at all, and a
	 * table's owner's triggers may not change the session they run in
	 * (SET ROLE, temporary objects, cursors that outlive the statement).
	 */
	SetUserIdAndSecContext(user, save->sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION |
						   (role == LC_TABLE_OWNER ? SECURITY_NOFORCE_RLS : 0));
}

static void
lc_unbecome(LcSave *save)
{
	SetUserIdAndSecContext(save->userid, save->sec_context);
	if (save->guc_nest > 0)
		AtEOXact_GUC(false, save->guc_nest);
}

/* The error for a table whose rules rewrite what pg_lifecycle runs on it. */
void
lc_refuse_rules(Oid relid)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 OidIsValid(relid) && get_rel_name(relid) ?
			 errmsg("pg_lifecycle cannot change table \"%s\": a rule rewrites its statements",
					get_rel_name(relid)) :
			 errmsg("pg_lifecycle cannot change a table whose rules rewrite its statements"),
			 errdetail("pg_lifecycle writes the rows it names itself; a rule would write others as well, or instead, or none."),
			 errhint("Drop the rule, or use a trigger instead.")));
}

/*
 * After a statement that wrote relid: refuse if the table has a rule for
 * that event (CMD_UPDATE, CMD_DELETE).  A rule's INSTEAD action of the same
 * kind passes for the statement itself (its result code and row count
 * are the action's), and a conditional one leaves rows unwritten, so the
 * result cannot tell; the table's own rules can.  The statement holds the
 * table's lock, so these are the rules it ran with, and the error undoes
 * whatever their actions did.
 */
void
lc_check_no_rules(Oid relid, CmdType event)
{
	Relation	rel = RelationIdGetRelation(relid);
	bool		found = false;
	int			i;

	if (!RelationIsValid(rel))
		return;
	for (i = 0; rel->rd_rules != NULL && i < rel->rd_rules->numLocks; i++)
		if (rel->rd_rules->rules[i]->event == event)
			found = true;
	RelationClose(rel);
	if (found)
		lc_refuse_rules(relid);
}

/*
 * A statement that did not run as built: a rule on the table rewrote it
 * (a user can add one to a table of its own at any time), else a bug.
 */
static void
lc_check_rc(int rc, int expected, Oid relid, const char *sql)
{
	if (rc == SPI_OK_REWRITTEN && rc != expected)
		lc_refuse_rules(relid);
	if (rc != expected)
		elog(ERROR, "pg_lifecycle: statement returned %s, expected %s: %s",
			 SPI_result_code_string(rc), SPI_result_code_string(expected),
			 sql ? sql : "(kept plan)");
}

/* ---------- kept plans ---------- */

bool
lc_plan_ready(const LcPlan *plan)
{
	return plan->spi != NULL && SPI_plan_is_valid(plan->spi);
}

/*
 * Prepare plan as role (schema USAGE and name lookup are the runner's) and
 * keep it, with keeper's entry when given (freed with it), else for the
 * backend's life.  A plan it replaces is freed later.
 */
void
lc_plan_prepare(LcPlan *plan, LcEntry *keeper, LcRole role, Oid relid,
				const char *sql, int nargs, Oid *argtypes)
{
	LcSave		save;
	SPIPlanPtr	spi;
	MemoryContext cxt = CurrentMemoryContext;

	if (plan->spi)
		lc_free_later(plan->spi);
	plan->spi = NULL;
	plan->role = role;
	plan->relid = relid;
	lc_become(role, relid, &save);
	spi = SPI_prepare(sql, nargs, argtypes);
	lc_unbecome(&save);
	MemoryContextSwitchTo(cxt);
	if (spi == NULL)
		elog(ERROR, "SPI_prepare failed (%s) for: %s", SPI_result_code_string(SPI_result), sql);
	if (SPI_keepplan(spi) != 0)
		elog(ERROR, "SPI_keepplan failed");
	plan->spi = spi;
	if (keeper && !list_member_ptr(keeper->plans, plan))
	{
		MemoryContext old = MemoryContextSwitchTo(keeper->cxt);

		keeper->plans = lappend(keeper->plans, plan);
		MemoryContextSwitchTo(old);
	}
}

/* Run a kept plan as the role it was prepared as; the rows processed. */
uint64
lc_plan_run(LcPlan *plan, Datum *values, const char *nulls, int expected, long count)
{
	LcSave		save;
	int			rc;
	MemoryContext cxt = CurrentMemoryContext;

	lc_become(plan->role, plan->relid, &save);
	rc = SPI_execute_plan(plan->spi, values, nulls, false, count);
	lc_unbecome(&save);
	MemoryContextSwitchTo(cxt);
	lc_check_rc(rc, expected, plan->relid, NULL);
	return SPI_processed;
}

/*
 * The same, but under REPEATABLE READ or SERIALIZABLE it looks for rows
 * with a fresh snapshot checked against the transaction's: a row committed
 * by another transaction since then raises a serialization failure rather
 * than being missed (as foreign-key actions do).
 */
uint64
lc_plan_run_crosschecked(LcPlan *plan, Datum *values, const char *nulls, int expected)
{
	LcSave		save;
	int			rc;
	MemoryContext cxt = CurrentMemoryContext;

	if (!IsolationUsesXactSnapshot())
		return lc_plan_run(plan, values, nulls, expected, 0);
	lc_become(plan->role, plan->relid, &save);
	rc = SPI_execute_snapshot(plan->spi, values, nulls, GetLatestSnapshot(),
							  GetTransactionSnapshot(), false, true, 0);
	lc_unbecome(&save);
	MemoryContextSwitchTo(cxt);
	lc_check_rc(rc, expected, plan->relid, NULL);
	return SPI_processed;
}

/* Open a cursor on a kept plan, as its role. */
Portal
lc_plan_cursor(LcPlan *plan, const char *name, Datum *values, const char *nulls)
{
	LcSave		save;
	Portal		portal;
	MemoryContext cxt = CurrentMemoryContext;

	lc_become(plan->role, plan->relid, &save);
	portal = SPI_cursor_open(name, plan->spi, values, nulls, false);
	lc_unbecome(&save);
	MemoryContextSwitchTo(cxt);
	return portal;
}

/* Run a statement once (not kept), as role. */
uint64
lc_sql_run(LcRole role, Oid relid, const char *sql, int nargs, Oid *argtypes,
		   Datum *values, const char *nulls, int expected, long count)
{
	LcSave		save;
	int			rc;
	MemoryContext cxt = CurrentMemoryContext;

	lc_become(role, relid, &save);
	if (nargs > 0)
		rc = SPI_execute_with_args(sql, nargs, argtypes, values, nulls, false, count);
	else
		rc = SPI_execute(sql, false, count);
	lc_unbecome(&save);
	MemoryContextSwitchTo(cxt);
	lc_check_rc(rc, expected, relid, sql);
	return SPI_processed;
}

/* A value of the last statement's result. */
Datum
lc_result(uint64 row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}
