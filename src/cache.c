/*-------------------------------------------------------------------------
 *
 * cache.c
 *	  Operations and the per-relation cache every feature keeps its
 *	  per-table work in (column lookups, plans, the foreign-key graph).
 *
 *	  One rule keeps entries safe while a statement uses them: nothing the
 *	  extension keeps is freed while any of its operations runs.  An entry
 *	  found stale is replaced by a new one built beside it; the old entry,
 *	  and plans replaced because PostgreSQL found them invalid, wait in a
 *	  graveyard until the next outermost operation starts.  An operation
 *	  that fails leaves the count raised until its transaction ends, which
 *	  only delays the freeing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "access/relation.h"

#include "nodes/parsenodes.h"

#include "pg_lifecycle.h"

struct LcCache
{
	const char *name;
	Size		entrysize;
	LcBuild		build;
	HTAB	   *hash;			/* relid -> LcSlot */
};

typedef struct LcSlot
{
	Oid			relid;			/* hash key */
	LcEntry    *entry;			/* the current entry, or NULL */
	bool		building;
} LcSlot;

#define LC_MAX_CACHES 12

static LcCache *lc_caches[LC_MAX_CACHES];
static int	lc_ncaches = 0;
static int	lc_depth = 0;		/* operations running in this backend */
static List *lc_stale_entries = NIL;	/* in TopMemoryContext */
static List *lc_stale_plans = NIL;

/* ---------- operations ---------- */

static void
lc_free_entry(LcEntry *entry)
{
	ListCell   *lc;

	foreach(lc, entry->plans)
	{
		LcPlan	   *plan = lfirst(lc);

		if (plan->spi)
			SPI_freeplan(plan->spi);
		plan->spi = NULL;
	}
	MemoryContextDelete(entry->cxt);
}

static void
lc_free_graveyard(void)
{
	ListCell   *lc;

	foreach(lc, lc_stale_plans)
		SPI_freeplan((SPIPlanPtr) lfirst(lc));
	list_free(lc_stale_plans);
	lc_stale_plans = NIL;
	foreach(lc, lc_stale_entries)
		lc_free_entry((LcEntry *) lfirst(lc));
	list_free(lc_stale_entries);
	lc_stale_entries = NIL;
}

void
lc_enter(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (lc_depth == 0)
		lc_free_graveyard();
	lc_depth++;
}

void
lc_leave(void)
{
	lc_depth--;
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
}

/*
 * A procedure that commits as it goes (CALL lifecycle.run_retention()):
 * its own SPI connection, outside the operation count (each commit ends
 * the operations of its transaction).  It runs lc_enter()/lc_leave()
 * operations between commits.
 */
void
lc_procedure_enter(FunctionCallInfo fcinfo, const char *what, const char *hint)
{
	if (fcinfo->context == NULL || !IsA(fcinfo->context, CallContext) ||
		castNode(CallContext, fcinfo->context)->atomic)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("%s must be called with CALL, outside a transaction block", what),
				 errdetail("It commits after every batch, which it cannot do inside a transaction block, a function, or a CALL with other statements."),
				 hint ? errhint("%s", hint) : 0));
	if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect_ext failed");
}

/* Commit, and go on in a new transaction. */
void
lc_procedure_commit(void)
{
	SPI_commit();
}

void
lc_procedure_leave(void)
{
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
}

void
lc_cache_xact_end(void)
{
	lc_depth = 0;
}

/* A plan no longer used, freed when no operation can be running it. */
void
lc_free_later(SPIPlanPtr plan)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	lc_stale_plans = lappend(lc_stale_plans, plan);
	MemoryContextSwitchTo(old);
}

/* An entry no longer current: freed now, or when no operation runs. */
static void
lc_retire(LcEntry *entry, bool now_ok)
{
	MemoryContext old;

	if (now_ok && lc_depth == 0)
	{
		lc_free_entry(entry);
		return;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	lc_stale_entries = lappend(lc_stale_entries, entry);
	MemoryContextSwitchTo(old);
}

/* ---------- the per-relation cache ---------- */

LcCache *
lc_cache_create(const char *name, Size entrysize, LcBuild build)
{
	LcCache    *cache;
	HASHCTL		ctl;

	if (lc_ncaches >= LC_MAX_CACHES)
		elog(ERROR, "too many pg_lifecycle caches");
	cache = MemoryContextAllocZero(TopMemoryContext, sizeof(LcCache));
	cache->name = name;
	cache->entrysize = entrysize;
	cache->build = build;
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(LcSlot);
	ctl.hcxt = TopMemoryContext;
	cache->hash = hash_create(name, 32, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	lc_caches[lc_ncaches++] = cache;
	return cache;
}

static LcEntry *
lc_new_entry(LcCache *cache, Oid relid)
{
	MemoryContext cxt = AllocSetContextCreate(CacheMemoryContext, "pg_lifecycle cache entry",
											  ALLOCSET_SMALL_SIZES);
	LcEntry    *entry = MemoryContextAllocZero(cxt, cache->entrysize);

	MemoryContextSetIdentifier(cxt, cache->name);

	entry->relid = relid;
	entry->cxt = cxt;
	entry->valid = true;
	return entry;
}

/*
 * The entry of a relation the caller has opened (and so locked), built
 * when missing or stale.  An invalidation that arrives while building
 * (opening other relations processes them) makes it build again.
 */
LcEntry *
lc_cache_lookup(LcCache *cache, Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	bool		found;
	LcSlot	   *slot = hash_search(cache->hash, &relid, HASH_ENTER, &found);

	if (!found)
	{
		slot->entry = NULL;
		slot->building = false;
	}
	if (slot->entry && slot->entry->valid)
		return slot->entry;
	if (slot->building)
		elog(ERROR, "pg_lifecycle: recursive build of the %s entry of relation %u",
			 cache->name, relid);
	if (lc_depth == 0)
		lc_free_graveyard();
	for (;;)
	{
		LcEntry    *entry;
		MemoryContext old;

		if (slot->entry)
			lc_retire(slot->entry, true);
		entry = lc_new_entry(cache, relid);
		slot->entry = entry;
		slot->building = true;
		old = MemoryContextSwitchTo(entry->cxt);
		PG_TRY();
		{
			cache->build(entry, rel);
		}
		PG_CATCH();
		{
			/* dynahash never moves its elements: slot is still ours */
			MemoryContextSwitchTo(old);
			slot->building = false;
			slot->entry = NULL;
			lc_retire(entry, false);	/* its plans may be unwinding */
			PG_RE_THROW();
		}
		PG_END_TRY();
		MemoryContextSwitchTo(old);
		slot->building = false;
		if (entry->valid)
			return entry;
	}
}

LcEntry *
lc_cache_lookup_oid(LcCache *cache, Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	LcEntry    *entry = lc_cache_lookup(cache, rel);

	relation_close(rel, AccessShareLock);
	return entry;
}

/* The entry also goes stale when relid changes. */
void
lc_entry_depends_on(LcEntry *entry, Oid relid)
{
	MemoryContext old = MemoryContextSwitchTo(entry->cxt);

	if (!list_member_oid(entry->depends, relid))
		entry->depends = lappend_oid(entry->depends, relid);
	MemoryContextSwitchTo(old);
}

/* From the relcache callback: only flags, no catalog access. */
void
lc_caches_invalidate(Oid relid)
{
	int			i;

	for (i = 0; i < lc_ncaches; i++)
	{
		HASH_SEQ_STATUS status;
		LcSlot	   *slot;

		hash_seq_init(&status, lc_caches[i]->hash);
		while ((slot = hash_seq_search(&status)) != NULL)
		{
			LcEntry    *entry = slot->entry;

			if (entry && (relid == InvalidOid || entry->relid == relid ||
						  list_member_oid(entry->depends, relid)))
				entry->valid = false;
		}
	}
}
