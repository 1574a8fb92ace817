/*-------------------------------------------------------------------------
 *
 * ddl.c
 *	  What the features share to set tables up and to check how they are
 *	  called: the table and ownership checks of every enable_* function,
 *	  qualified names, primary keys, installing a set of triggers over a
 *	  partition tree, verifying how a trigger function was attached, and
 *	  the errors these give.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_operator.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "pg_lifecycle.h"

/*
 * Refuse anything but an ordinary or partitioned table: views, sequences,
 * foreign tables and indexes cannot carry the triggers we install.
 */
void
lc_check_table(Relation rel, const char *funcname)
{
	char		relkind = RelationGetForm(rel)->relkind;

	if (relkind == RELKIND_RELATION || relkind == RELKIND_PARTITIONED_TABLE)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
			 errdetail("%s works only on ordinary and partitioned tables.", funcname),
			 errhint("Call it on the table the view or object is built on.")));
}

/* pg_lifecycle's own tables are never set up as a user's. */
void
lc_refuse_extension_table(Relation rel, const char *funcname)
{
	if (RelationGetNamespace(rel) != get_namespace_oid(LIFECYCLE_SCHEMA, false))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("\"%s\" is a table of pg_lifecycle itself", RelationGetRelationName(rel)),
			 errdetail("%s works on your own tables, not on the extension's.", funcname),
			 errhint("Name one of your tables.")));
}

/*
 * Open a table the caller must own, for an enable/disable function.
 * Ownership is checked before the lock is taken too, so that a role that
 * may not change the table cannot make its writers queue behind a lock
 * request it has no right to.
 */
Relation
lc_open_owned_table(Oid relid, LOCKMODE lockmode, const char *funcname)
{
	Relation	rel;

	if (!lc_compat_relation_ownercheck(relid, GetUserId()))
	{
		char	   *name = get_rel_name(relid);

		if (name == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation with OID %u does not exist", relid)));
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, name);
	}
	rel = relation_open(relid, lockmode);
	lc_check_table(rel, funcname);
	lc_refuse_extension_table(rel, funcname);
	if (!lc_compat_relation_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(RelationGetForm(rel)->relkind),
					   RelationGetRelationName(rel));
	return rel;
}

/*
 * Before a relation of another owner is read as the caller: lock it and
 * check that it is still a table.  An owner could have turned it into a
 * view whose functions would run with the reader's rights.
 */
void
lc_check_still_table(Oid relid, const char *what)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);
	char		relkind;

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid),
				 errdetail("%s was set up on it, and it has been dropped since.", what)));
	relkind = RelationGetForm(rel)->relkind;
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is no longer a table", RelationGetRelationName(rel)),
				 errdetail("%s was set up on it as a table; pg_lifecycle does not read it as anything else.",
						   what)));
	/* keep the lock: it cannot change kind until the transaction ends */
	relation_close(rel, NoLock);
}

/* schema.name, quoted; the session's own temporary schema is pg_temp */
static char *
lc_qualify(Oid nspoid, const char *name)
{
	return quote_qualified_identifier(isTempNamespace(nspoid) ? "pg_temp" :
									  get_namespace_name(nspoid), name);
}

char *
lc_qualified_name(Relation rel)
{
	return lc_qualify(RelationGetNamespace(rel), RelationGetRelationName(rel));
}

char *
lc_qualified_name_oid(Oid relid)
{
	char	   *name = get_rel_name(relid);

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	return lc_qualify(get_rel_namespace(relid), name);
}

/* "OPERATOR(schema.op)": an operator named so that search_path cannot matter */
char *
lc_operator_sql(Oid opno)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	Form_pg_operator op;
	char	   *result;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opno);
	op = (Form_pg_operator) GETSTRUCT(tup);
	result = psprintf("OPERATOR(%s.%s)", quote_identifier(get_namespace_name(op->oprnamespace)),
					  NameStr(op->oprname));
	ReleaseSysCache(tup);
	return result;
}

/* A user column by name; InvalidAttrNumber when missing or dropped. */
AttrNumber
lc_attnum(Relation rel, const char *name)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), name);

	return attnum > 0 ? attnum : InvalidAttrNumber;
}

/* The primary key's columns (at most INDEX_MAX_KEYS); 0 without one. */
int
lc_primary_key(Relation rel, AttrNumber *attnums)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	int			n = 0;

	foreach(lc, indexes)
	{
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index index;
		int			i;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for index %u", lfirst_oid(lc));
		index = (Form_pg_index) GETSTRUCT(tup);
		if (index->indisprimary)
		{
			n = index->indnkeyatts;
			for (i = 0; i < n; i++)
				attnums[i] = index->indkey.values[i];
		}
		ReleaseSysCache(tup);
		if (n > 0)
			break;
	}
	list_free(indexes);
	return n;
}

/* The partitioned table at the top of relid's tree, else relid. */
Oid
lc_partition_root(Oid relid)
{
	if (!get_rel_relispartition(relid))
		return relid;
	return llast_oid(get_partition_ancestors(relid));
}

Trigger *
lc_find_trigger(Relation rel, const char *name)
{
	int			i;

	for (i = 0; rel->trigdesc && i < rel->trigdesc->numtriggers; i++)
		if (strcmp(rel->trigdesc->triggers[i].tgname, name) == 0)
			return &rel->trigdesc->triggers[i];
	return NULL;
}

/* A DDL statement of an enable/disable function, as the caller. */
void
lc_ddl(const char *sql)
{
	(void) lc_sql_run(LC_CALLER_PINNED, InvalidOid, sql, 0, NULL, NULL, NULL, SPI_OK_UTILITY, 0);
}

void
lc_null_argument(const char *what, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
			 errmsg("%s must not be NULL", what),
			 hint ? errhint("%s", hint) : 0));
}

/*
 * The one row of a statement's transition table, without moving the read
 * position others (the executor, other triggers) use.
 */
TupleTableSlot *
lc_only_row(Tuplestorestate *ts, TupleDesc desc)
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

/* ---------- triggers ---------- */

void
lc_trigger_misuse(FunctionCallInfo fcinfo, const char *what, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			 errmsg("%s: %s", get_func_name(fcinfo->flinfo->fn_oid), what),
			 errhint("%s", hint)));
}

static bool
lc_same_name(const char *a, const char *b)
{
	return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/*
 * Before a trigger function runs any SQL: was it attached exactly as its
 * enable function attaches it?  Anyone can attach a trigger function to a
 * table of their own (a temp table, a transition table under another name
 * for our SQL to find theirs instead): the name, the type (level, timing,
 * events), the transition tables' names and the number of arguments must
 * all be one of the shapes given.  Whether the table is registered is the
 * feature's check, after this one.  Returns the shape it matched.
 */
const LcTriggerShape *
lc_verify_trigger(FunctionCallInfo fcinfo, const LcTriggerShape *shapes, int nshapes,
				  const char *hint)
{
	TriggerData *td;
	Trigger    *tg;
	int			i;

	if (!CALLED_AS_TRIGGER(fcinfo))
		lc_trigger_misuse(fcinfo, "not called by trigger manager", hint);
	td = (TriggerData *) fcinfo->context;
	tg = td->tg_trigger;
	for (i = 0; i < nshapes; i++)
	{
		const LcTriggerShape *s = &shapes[i];

		if (strcmp(tg->tgname, s->name) == 0 && tg->tgtype == s->tgtype &&
			lc_same_name(tg->tgoldtable, s->old_table) &&
			lc_same_name(tg->tgnewtable, s->new_table) && tg->tgnargs == s->nargs)
			return s;
	}
	ereport(ERROR,
			(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			 errmsg("%s: trigger \"%s\" on table \"%s\" was not created by pg_lifecycle",
					get_func_name(fcinfo->flinfo->fn_oid), tg->tgname,
					RelationGetRelationName(td->tg_relation)),
			 errdetail("This trigger function runs only as its enable function attaches it: its name, events, level, timing, transition tables and arguments."),
			 errhint("%s", hint)));
	return NULL;				/* keep compiler quiet */
}

/*
 * Create (install) or drop a set of triggers on each of relids, with the
 * caller's rights.  function is lifecycle.<function>(<args>).
 */
void
lc_install_triggers(List *relids, const LcTriggerShape *shapes, int nshapes,
					const char *function, const char *args, bool install)
{
	ListCell   *lc;
	int			i;

	foreach(lc, relids)
	{
		Oid			relid = lfirst_oid(lc);
		char	   *qual = lc_qualified_name_oid(relid);

		for (i = 0; i < nshapes; i++)
		{
			if (install)
				lc_ddl(psprintf("CREATE OR REPLACE TRIGGER %s %s EXECUTE FUNCTION "
								LIFECYCLE_SCHEMA ".%s(%s)",
								quote_identifier(shapes[i].name),
								psprintf(shapes[i].ddl, qual), function, args ? args : ""));
			else if (OidIsValid(get_trigger_oid(relid, shapes[i].name, true)))
				lc_ddl(psprintf("DROP TRIGGER %s ON %s", quote_identifier(shapes[i].name), qual));
		}
	}
}
