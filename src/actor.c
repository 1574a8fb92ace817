/*-------------------------------------------------------------------------
 *
 * actor.c
 *	  Who is acting: the user id ("sub") and role of the request's JWT, read
 *	  from the settings PostgREST/Supabase fill in for every request, the
 *	  same way auth.uid() and auth.role() read them.
 *
 *	  Unlike auth.uid(), a missing, empty, malformed or non-uuid claim gives
 *	  NULL and never an error: a bad claim must not break the writes that
 *	  stamp it.  The claims JSON is parsed with the non-throwing JSON lexer
 *	  (no SPI, no jsonb) and the result is kept until the setting changes, so
 *	  a trigger firing for every row parses it once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "pg_lifecycle.h"

#define ACTOR_CLAIMS_GUC	"request.jwt.claims"
#define ACTOR_SUB_GUC		"request.jwt.claim.sub"
#define ACTOR_ROLE_GUC		"request.jwt.claim.role"

/* What we took from the last claims string seen, kept in TopMemoryContext. */
typedef struct ActorClaims
{
	char	   *source;			/* the request.jwt.claims text parsed */
	char	   *sub;			/* top-level "sub" string, or NULL */
	char	   *role;			/* top-level "role" string, or NULL */
} ActorClaims;

static ActorClaims actor_cache;

/* State of the JSON walk: which top-level field's value we are in. */
typedef struct ActorParse
{
	int			depth;
	const char *const *names;	/* the top-level fields wanted */
	char	  **values;			/* their string values, or NULL */
	int			nnames;
	char	  **target;			/* where the current field's string goes */
} ActorParse;

static LC_JSON_ACTION
actor_nest_in(void *state)
{
	((ActorParse *) state)->depth++;
	LC_JSON_DONE;
}

static LC_JSON_ACTION
actor_nest_out(void *state)
{
	((ActorParse *) state)->depth--;
	LC_JSON_DONE;
}

static LC_JSON_ACTION
actor_field_start(void *state, char *fname, bool isnull)
{
	ActorParse *p = (ActorParse *) state;
	int			i;

	p->target = NULL;
	if (p->depth != 1)
		LC_JSON_DONE;
	for (i = 0; i < p->nnames; i++)
		if (strcmp(fname, p->names[i]) == 0)
			p->target = &p->values[i];
	/* like jsonb, a later duplicate key wins; a null value clears */
	if (p->target)
		*p->target = NULL;
	LC_JSON_DONE;
}

static LC_JSON_ACTION
actor_scalar(void *state, char *token, JsonTokenType tokentype)
{
	ActorParse *p = (ActorParse *) state;

	/* only the direct value of a top-level field, as ->> would see it */
	if (p->target == NULL || p->depth != 1)
		LC_JSON_DONE;
	if (tokentype == JSON_TOKEN_STRING || tokentype == JSON_TOKEN_NUMBER)
		*p->target = token;
	p->target = NULL;
	LC_JSON_DONE;
}

static LC_JSON_ACTION
actor_element_start(void *state, bool isnull)
{
	/* an array or object value of a wanted field is not a string */
	ActorParse *p = (ActorParse *) state;

	if (p->depth > 1)
		p->target = NULL;
	LC_JSON_DONE;
}

static char *
actor_copy(const char *s)
{
	return (s && *s) ? MemoryContextStrdup(TopMemoryContext, s) : NULL;
}

#define ACTOR_MAX_NESTING 32

/* How deeply arrays and objects nest in a JSON text (strings skipped). */
static int
actor_nesting(const char *json)
{
	int			depth = 0,
				max = 0;
	bool		in_string = false;
	const char *p;

	for (p = json; *p; p++)
	{
		if (in_string)
		{
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				in_string = false;
		}
		else if (*p == '"')
			in_string = true;
		else if (*p == '{' || *p == '[')
			max = Max(max, ++depth);
		else if (*p == '}' || *p == ']')
			depth--;
	}
	return max;
}

/*
 * The string values of some top-level fields of a JSON text, copied into
 * TopMemoryContext (NULL when absent, empty or not a string); all NULL when
 * the text is not valid JSON.  Never raises an error: the parser recurses
 * per level and would raise "stack depth limit exceeded" on absurd nesting,
 * so that is refused first; escapes are decoded only in UTF-8 databases,
 * where decoding cannot fail.
 */
static void
actor_json_fields(const char *json, int nnames, const char *const *names, char **values)
{
	MemoryContext parsecxt,
				oldcxt;
	ActorParse	state = {0};
	JsonSemAction sem = {0};
	JsonLexContext *lex;
	int			i;

	parsecxt = AllocSetContextCreate(CurrentMemoryContext, "pg_lifecycle json",
									 ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(parsecxt);
	state.names = names;
	state.nnames = nnames;
	state.values = palloc0(sizeof(char *) * nnames);
	sem.semstate = &state;
	sem.object_start = actor_nest_in;
	sem.object_end = actor_nest_out;
	sem.array_start = actor_nest_in;
	sem.array_end = actor_nest_out;
	sem.object_field_start = actor_field_start;
	sem.array_element_start = actor_element_start;
	sem.scalar = actor_scalar;

	lex = lc_compat_json_lexer(pstrdup(json), strlen(json), GetDatabaseEncoding() == PG_UTF8);
	for (i = 0; i < nnames; i++)
		values[i] = NULL;
	if (actor_nesting(json) <= ACTOR_MAX_NESTING && pg_parse_json(lex, &sem) == JSON_SUCCESS)
		for (i = 0; i < nnames; i++)
			values[i] = actor_copy(state.values[i]);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(parsecxt);
}

/* Parse the claims text; on malformed JSON both claims are absent. */
static void
actor_parse_claims(const char *claims)
{
	static const char *const names[2] = {"sub", "role"};
	char	   *values[2];

	if (actor_cache.source)
		pfree(actor_cache.source);
	if (actor_cache.sub)
		pfree(actor_cache.sub);
	if (actor_cache.role)
		pfree(actor_cache.role);
	actor_json_fields(claims, 2, names, values);
	actor_cache.sub = values[0];
	actor_cache.role = values[1];
	actor_cache.source = MemoryContextStrdup(TopMemoryContext, claims);
}

/* The claims' sub and role, reparsed only when request.jwt.claims changed. */
static ActorClaims *
actor_claims(void)
{
	const char *claims = GetConfigOption(ACTOR_CLAIMS_GUC, true, false);

	if (claims == NULL || *claims == '\0')
		claims = "";
	if (actor_cache.source == NULL || strcmp(actor_cache.source, claims) != 0)
		actor_parse_claims(claims);
	return &actor_cache;
}

/* A single-claim setting wins over the claims object when it is non-empty. */
static const char *
actor_claim(const char *guc, bool want_sub)
{
	const char *value = GetConfigOption(guc, true, false);
	ActorClaims *claims;

	if (value != NULL && *value != '\0')
		return value;
	claims = actor_claims();
	return want_sub ? claims->sub : claims->role;
}

static int
actor_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Accept what uuid_in accepts (32 hex digits, optionally in braces, with a
 * hyphen allowed after any group of four digits) but report failure instead
 * of raising an error.
 */
static bool
actor_parse_uuid(const char *s, pg_uuid_t *uuid)
{
	const char *p = s;
	bool		braces = (*p == '{');
	int			i;

	if (braces)
		p++;
	for (i = 0; i < UUID_LEN; i++)
	{
		int			hi = actor_hexval(p[0]);
		int			lo = hi < 0 ? -1 : actor_hexval(p[1]);

		if (lo < 0)
			return false;
		uuid->data[i] = (unsigned char) (hi * 16 + lo);
		p += 2;
		if (*p == '-' && i % 2 == 1 && i < UUID_LEN - 1)
			p++;
	}
	if (braces && *p++ != '}')
		return false;
	return *p == '\0';
}

/* The acting user's uuid; false when the request carries none usable. */
bool
lifecycle_current_actor(pg_uuid_t *actor)
{
	const char *sub = actor_claim(ACTOR_SUB_GUC, true);

	return sub != NULL && actor_parse_uuid(sub, actor);
}

/*
 * The client address PostgREST passed on: the last address of the
 * x-forwarded-for header in request.headers (the one the proxy in front of
 * PostgREST saw; the ones before it are whatever the client claimed), or
 * NULL.  Reparsed only when the setting changed.
 */
char *
lifecycle_forwarded_for(void)
{
	static char *source = NULL;
	static char *address = NULL;
	static const char *const names[1] = {"x-forwarded-for"};
	const char *headers = GetConfigOption("request.headers", true, false);

	if (headers == NULL || *headers == '\0')
		return NULL;
	if (source == NULL || strcmp(source, headers) != 0)
	{
		char	   *values[1];

		if (source)
			pfree(source);
		if (address)
			pfree(address);
		actor_json_fields(headers, 1, names, values);
		address = values[0];
		if (address)
		{
			char	   *last = strrchr(address, ',');
			char	   *start = last ? last + 1 : address;
			size_t		len;

			start += strspn(start, " \t");
			len = strcspn(start, " \t");
			memmove(address, start, len);
			address[len] = '\0';
			/* an address is hex digits, dots and colons, nothing else */
			if (len == 0 || strspn(address, "0123456789abcdefABCDEF.:") != len)
			{
				pfree(address);
				address = NULL;
			}
		}
		source = MemoryContextStrdup(TopMemoryContext, headers);
	}
	return address;
}

PG_FUNCTION_INFO_V1(current_actor);
Datum
current_actor(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *actor = palloc(sizeof(pg_uuid_t));

	if (!lifecycle_current_actor(actor))
		PG_RETURN_NULL();
	PG_RETURN_UUID_P(actor);
}

/* The role claim, else the current user's name. */
const char *
lifecycle_current_actor_role(void)
{
	const char *role = actor_claim(ACTOR_ROLE_GUC, false);

	return role ? role : GetUserNameFromId(GetUserId(), false);
}

PG_FUNCTION_INFO_V1(current_actor_role);
Datum
current_actor_role(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(lifecycle_current_actor_role()));
}
