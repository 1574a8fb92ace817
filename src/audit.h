/*-------------------------------------------------------------------------
 *
 * audit.h
 *	  What the audit files share: the triggers enable_audit() installs, in
 *	  the shape audit_trigger() checks before it runs any SQL.
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_AUDIT_H
#define LIFECYCLE_AUDIT_H

#include "pg_lifecycle.h"

#define AU_NTRIGGERS	5
#define AU_OLD_TABLE	"lifecycle_old"
#define AU_NEW_TABLE	"lifecycle_new"
#define AU_HINT			"Audit triggers are installed by lifecycle.enable_audit(); do not create them by hand."

extern const LcTriggerShape au_triggers[AU_NTRIGGERS];

/* audit.c */
extern void au_xact_end(void);
extern void au_subxact_end(bool commit, SubTransactionId mine, SubTransactionId parent);

#endif							/* LIFECYCLE_AUDIT_H */
