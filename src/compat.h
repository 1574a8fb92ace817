/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every difference between the PostgreSQL versions pg_lifecycle builds
 *	  on (15 to 18), behind one name each.  The rest of the code calls the
 *	  names below and never tests PG_VERSION_NUM itself.
 *
 *	  15 and 18 are built and tested; 16 and 17 use the branch their
 *	  release introduced the change in (noted on each).
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_COMPAT_H
#define LIFECYCLE_COMPAT_H

#include "postgres.h"

#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/guc_tables.h"

/* Does role own (or have the privileges of the owner of) the relation?  (16) */
#if PG_VERSION_NUM >= 160000
#define lc_compat_relation_ownercheck(relid, role) \
	object_ownercheck(RelationRelationId, (relid), (role))
#else
#define lc_compat_relation_ownercheck(relid, role) pg_class_ownercheck((relid), (role))
#endif

/* May role create in database dbid?  (16: object_aclcheck) */
#if PG_VERSION_NUM >= 160000
#define lc_compat_database_aclcheck(dbid, role, mode) \
	object_aclcheck(DatabaseRelationId, (dbid), (role), (mode))
#else
#define lc_compat_database_aclcheck(dbid, role, mode) pg_database_aclcheck((dbid), (role), (mode))
#endif

/* May role use schema nspid?  (16: object_aclcheck) */
#if PG_VERSION_NUM >= 160000
#define lc_compat_namespace_aclcheck(nspid, role, mode) \
	object_aclcheck(NamespaceRelationId, (nspid), (role), (mode))
#else
#define lc_compat_namespace_aclcheck(nspid, role, mode) pg_namespace_aclcheck((nspid), (role), (mode))
#endif

/* May role execute function funcid?  (16: object_aclcheck) */
#if PG_VERSION_NUM >= 160000
#define lc_compat_proc_aclcheck(funcid, role, mode) \
	object_aclcheck(ProcedureRelationId, (funcid), (role), (mode))
#else
#define lc_compat_proc_aclcheck(funcid, role, mode) pg_proc_aclcheck((funcid), (role), (mode))
#endif

/* This backend's number among the server's processes.  (17) */
#if PG_VERSION_NUM >= 170000
#define lc_compat_my_proc_number() ((int) MyProcNumber)
#else
#define lc_compat_my_proc_number() ((int) MyProc->pgprocno)
#endif

/* A setting's definition, by name; NULL if there is none.  (16) */
static inline struct config_generic *
lc_compat_find_guc(const char *name)
{
#if PG_VERSION_NUM >= 160000
	return find_option(name, false, true, ERROR);
#else
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();
	int			i;

	for (i = 0; i < n; i++)
		if (strcmp(vars[i]->name, name) == 0)
			return vars[i];
	return NULL;
#endif
}

/*
 * JSON semantic actions: from 16 they return a JsonParseErrorType.  Declare
 * them with LC_JSON_ACTION and end them with LC_JSON_DONE.
 */
#if PG_VERSION_NUM >= 160000
#define LC_JSON_ACTION JsonParseErrorType
#define LC_JSON_DONE return JSON_SUCCESS
#else
#define LC_JSON_ACTION void
#define LC_JSON_DONE return
#endif

/* A lexer over a string the caller keeps; freed with its memory context.  (17) */
static inline JsonLexContext *
lc_compat_json_lexer(char *json, int len, bool need_escapes)
{
#if PG_VERSION_NUM >= 170000
	return makeJsonLexContextCstringLen(NULL, json, len, GetDatabaseEncoding(), need_escapes);
#else
	return makeJsonLexContextCstringLen(json, len, GetDatabaseEncoding(), need_escapes);
#endif
}

/* Decode base64; the length written, or -1.  (18: uint8 output) */
#if PG_VERSION_NUM >= 180000
#define lc_compat_b64_decode(src, len, dst, dstlen) \
	pg_b64_decode((src), (len), (uint8 *) (dst), (dstlen))
#else
#define lc_compat_b64_decode(src, len, dst, dstlen) \
	pg_b64_decode((src), (len), (char *) (dst), (dstlen))
#endif

#endif							/* LIFECYCLE_COMPAT_H */
