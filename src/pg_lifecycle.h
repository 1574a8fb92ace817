/*-------------------------------------------------------------------------
 *
 * pg_lifecycle.h
 *	  Declarations shared by the pg_lifecycle feature files.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_LIFECYCLE_H
#define PG_LIFECYCLE_H

#include "postgres.h"

#include "executor/tuptable.h"
#include "storage/lockdefs.h"
#include "utils/tuplestore.h"
#include "utils/relcache.h"
#include "utils/uuid.h"

/* The schema every pg_lifecycle object lives in (control file: schema). */
#define LIFECYCLE_SCHEMA	"lifecycle"

/* pg_lifecycle.c: table checks and running as the extension's owner */
extern void lifecycle_check_table(Relation rel, const char *funcname);
extern void lifecycle_check_owner(Relation rel);
extern char *lifecycle_qualified_name(Relation rel);
extern Relation lifecycle_open_owned_table(Oid relid, LOCKMODE lockmode, const char *funcname);

typedef struct LifecycleUserSave
{
	Oid			userid;
	int			sec_context;
	int			guc_nest;		/* search_path reset for a table owner; 0: none */
} LifecycleUserSave;

extern Oid	lifecycle_extension_owner(void);
extern void lifecycle_become_owner(LifecycleUserSave *save);
extern Oid	lifecycle_table_owner(Oid relid);
extern void lifecycle_become_table_owner(Oid relid, LifecycleUserSave *save);
extern void lifecycle_restore_user(LifecycleUserSave *save);
extern int	lifecycle_pin_search_path(void);
extern void lifecycle_unpin_search_path(int nestlevel);
extern void lifecycle_spi_exec(const char *sql, int expected, int nargs,
							   Oid *argtypes, Datum *values, const char *nulls);

extern TupleTableSlot *lifecycle_only_row(Tuplestorestate *ts, TupleDesc desc);

/* actor.c: who is acting, from the request's JWT claims */
extern bool lifecycle_current_actor(pg_uuid_t *actor);
extern const char *lifecycle_current_actor_role(void);
extern char *lifecycle_forwarded_for(void);

#endif							/* PG_LIFECYCLE_H */
