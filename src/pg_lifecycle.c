/*-------------------------------------------------------------------------
 *
 * pg_lifecycle.c
 *	  Module entry point and the helpers every feature shares: checking
 *	  that a relation is a table the caller owns, and running a statement
 *	  as the extension's owner once the caller's authority has been checked.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/pg_db_role_setting.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/array.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/inval.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "pg_lifecycle.h"

PG_MODULE_MAGIC;

/*
 * Refuse anything but an ordinary or partitioned table: views, sequences,
 * foreign tables and indexes cannot carry the row triggers we install.
 */
void
lifecycle_check_table(Relation rel, const char *funcname)
{
	char		relkind = RelationGetForm(rel)->relkind;

	if (relkind == RELKIND_RELATION || relkind == RELKIND_PARTITIONED_TABLE)
		return;

	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
			 errdetail("%s works only on ordinary and partitioned tables.",
					   funcname),
			 errhint("Call it on the table the view or object is built on.")));
}

/* The caller (not a SECURITY DEFINER owner) must own the table. */
void
lifecycle_check_owner(Relation rel)
{
	if (!pg_class_ownercheck(RelationGetRelid(rel), GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER,
					   get_relkind_objtype(RelationGetForm(rel)->relkind),
					   RelationGetRelationName(rel));
}

/*
 * Open a table the caller must own.  Ownership is checked before the lock
 * is taken too, so that a role that may not change the table cannot make
 * its writers queue behind a lock request it has no right to.
 */
Relation
lifecycle_open_owned_table(Oid relid, LOCKMODE lockmode, const char *funcname)
{
	Relation	rel;

	if (!pg_class_ownercheck(relid, GetUserId()))
	{
		char	   *name = get_rel_name(relid);

		if (name == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation with OID %u does not exist", relid)));
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, name);
	}
	rel = relation_open(relid, lockmode);
	lifecycle_check_table(rel, funcname);
	lifecycle_check_owner(rel);
	return rel;
}

char *
lifecycle_qualified_name(Relation rel)
{
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
}

/*
 * The role that owns the installed extension (and so its tables), asked
 * for by triggers on every statement; pg_extension has no syscache, so it
 * is kept until schema lifecycle or one of the extension's tables changes.
 * The extension's owner changes only with REASSIGN OWNED, which gives the
 * extension's tables to the new owner too, or with DROP and CREATE
 * EXTENSION, which make the schema anew.
 */
static Oid	lifecycle_owner_cache = InvalidOid;
static Oid	lifecycle_owner_witness = InvalidOid;	/* a table the owner owns */

static void
lifecycle_forget_owner(Datum arg, int cacheid, uint32 hashvalue)
{
	lifecycle_owner_cache = InvalidOid;
}

/* REASSIGN OWNED gives the extension's tables to the new owner too. */
static void
lifecycle_forget_owner_rel(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == lifecycle_owner_witness)
		lifecycle_owner_cache = InvalidOid;
}

Oid
lifecycle_extension_owner(void)
{
	static bool registered = false;
	Oid			extoid;
	Relation	extrel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			owner;

	if (OidIsValid(lifecycle_owner_cache))
		return lifecycle_owner_cache;
	if (!registered)
	{
		CacheRegisterSyscacheCallback(NAMESPACEOID, lifecycle_forget_owner, (Datum) 0);
		CacheRegisterRelcacheCallback(lifecycle_forget_owner_rel, (Datum) 0);
		registered = true;
	}
	extoid = get_extension_oid("pg_lifecycle", false);
	extrel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(extoid));
	scan = systable_beginscan(extrel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "could not find extension pg_lifecycle (oid %u)", extoid);
	owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	systable_endscan(scan);
	table_close(extrel, AccessShareLock);
	lifecycle_owner_witness = get_relname_relid("updated_at_tables",
												get_namespace_oid(LIFECYCLE_SCHEMA, false));
	lifecycle_owner_cache = owner;
	return owner;
}

/*
 * Switch to the extension's owner to write extension-owned tables after the
 * caller's authority has been checked.  An error aborts the (sub)transaction,
 * which restores the user id by itself.
 */
void
lifecycle_become_owner(LifecycleUserSave *save)
{
	Oid			owner = lifecycle_extension_owner();

	GetUserIdAndSecContext(&save->userid, &save->sec_context);
	save->guc_nest = 0;
	SetUserIdAndSecContext(owner,
						   save->sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

/*
 * Switch to the owner of a table to read or write it after the caller's
 * authority has been checked, as PostgreSQL's own foreign-key triggers do:
 * the table's triggers then run with its owner's rights, never with the
 * extension owner's, and the owner's access is not limited by its RLS.
 */
Oid
lifecycle_table_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* One setting from pg_db_role_setting for (database, role); NULL if none. */
static char *
lifecycle_stored_setting(Oid dbid, Oid roleid, const char *name)
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
 * The search_path a fresh session of the table's owner would have in this
 * database: the session's reset value when nothing the caller controls set
 * it (postgresql.conf, ALTER DATABASE), else the owner's and the
 * database's stored settings, else the built-in default.  Never what the
 * caller chose with SET, connection options or ALTER ROLE on itself.
 */
static const char *
lifecycle_owner_search_path(Oid owner)
{
	static struct config_string *guc = NULL;
	char	   *stored;

	if (guc == NULL)
	{
		struct config_generic **vars = get_guc_variables();
		int			i,
					n = GetNumConfigOptions();

		for (i = 0; i < n && guc == NULL; i++)
			if (strcmp(vars[i]->name, "search_path") == 0)
				guc = (struct config_string *) vars[i];
		if (guc == NULL)
			elog(ERROR, "search_path setting not found");
	}
	if (guc->gen.reset_source <= PGC_S_DATABASE && guc->reset_val != NULL)
		return guc->reset_val;
	if ((stored = lifecycle_stored_setting(MyDatabaseId, owner, "search_path")) != NULL ||
		(stored = lifecycle_stored_setting(InvalidOid, owner, "search_path")) != NULL ||
		(stored = lifecycle_stored_setting(MyDatabaseId, InvalidOid, "search_path")) != NULL)
		return stored;
	return guc->boot_val;
}

void
lifecycle_become_table_owner(Oid relid, LifecycleUserSave *save)
{
	Oid			owner = lifecycle_table_owner(relid);
	const char *reset = lifecycle_owner_search_path(owner);

	GetUserIdAndSecContext(&save->userid, &save->sec_context);
	/*
	 * The owner's triggers run with the owner's own search_path, not one
	 * the caller set: otherwise the caller could plant a function or an
	 * operator that they call with the owner's rights.
	 */
	save->guc_nest = 0;
	if (strcmp(GetConfigOption("search_path", false, false), reset) != 0)
	{
		save->guc_nest = NewGUCNestLevel();
		(void) set_config_option("search_path", reset, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	SetUserIdAndSecContext(owner,
						   save->sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_NOFORCE_RLS);
}

void
lifecycle_restore_user(LifecycleUserSave *save)
{
	SetUserIdAndSecContext(save->userid, save->sec_context);
	if (save->guc_nest > 0)
		AtEOXact_GUC(true, save->guc_nest);
	save->guc_nest = 0;
}

/*
 * Statements the extension runs resolve operators and functions in
 * pg_catalog only, whatever the caller's search_path: otherwise a user could
 * plant an operator that runs with the rights of the role we switched to.
 * Returns the GUC nest level to pass to lifecycle_unpin_search_path(); an
 * error unwinds it by itself.
 */
int
lifecycle_pin_search_path(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	return nestlevel;
}

void
lifecycle_unpin_search_path(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}

/* Run one statement through SPI (connected by the caller). */
void
lifecycle_spi_exec(const char *sql, int expected, int nargs,
				   Oid *argtypes, Datum *values, const char *nulls)
{
	int			rc;

	if (nargs > 0)
		rc = SPI_execute_with_args(sql, nargs, argtypes, values, nulls, false, 0);
	else
		rc = SPI_execute(sql, false, 0);
	if (rc != expected)
		elog(ERROR, "SPI_execute failed (%s) for: %s",
			 SPI_result_code_string(rc), sql);
}

/*
 * The one row of a statement's transition table, without moving the read
 * position others (the executor, other triggers) use.
 */
TupleTableSlot *
lifecycle_only_row(Tuplestorestate *ts, TupleDesc desc)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	int			ptr = tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND);

	tuplestore_select_read_pointer(ts, ptr);
	tuplestore_rescan(ts);
	if (!tuplestore_gettupleslot(ts, true, false, slot))
		elog(ERROR, "transition table is empty");
	tuplestore_select_read_pointer(ts, 0);
	slot_getallattrs(slot);
	return slot;
}
