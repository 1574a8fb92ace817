/*-------------------------------------------------------------------------
 *
 * redact_rules.c
 *	  The rules of telemetry redaction and what they need: the rule tables
 *	  read once per backend (an entry of the shared cache keyed by
 *	  lifecycle.redaction_rules, made stale when either rule table
 *	  changes, in any session: a statement trigger on both sends the
 *	  relcache invalidation), key words, the keyed hash, and the SQL
 *	  functions that change rules.
 *
 *	  A rule is (kind, pattern).  The extension installs its defaults as
 *	  rows with builtin = true; a team's own row for the same (kind,
 *	  pattern) overrides the default (to change its action or disable
 *	  it), and pg_dump keeps only the team's rows, so a restore gets the
 *	  defaults from CREATE EXTENSION and the overrides from the dump.
 *
 *	  Key rules match on normalized key words: case, camelCase, digits,
 *	  and any punctuation split a key into lowercase words ("userPassword",
 *	  "user-password" and "USER_PASSWORD" are "user password"), and a rule
 *	  matches when its words occur in the key's, whole and in order.  The
 *	  verdict for a key is remembered per backend, so the keys of a
 *	  telemetry stream are normalized once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "common/hmac.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "storage/fd.h"

#include <sys/stat.h>

#include "redact.h"

#define RD_MEMO_KEYLEN	64
#define RD_MEMO_MAX		20000
#define RD_MIN_SECRET	16

typedef struct RdMemo
{
	char		key[RD_MEMO_KEYLEN];
	int			verdict;		/* a key rule's index, RD_KEY_NONE or RD_KEY_SAFE */
} RdMemo;

static LcCache *rd_cache = NULL;
static RdRules *rd_current = NULL;	/* the cache's entry, only ever the current one */
static char *rd_key_setting = NULL;
static bool rd_warned = false;

static const char *const rd_action_names[] = {"mask", "hash", "remove", "partial"};

const char *
rd_action_name(RdAction action)
{
	return rd_action_names[action];
}

int
rd_action_by_name(const char *name)
{
	int			i;

	for (i = 0; i < lengthof(rd_action_names); i++)
		if (strcmp(name, rd_action_names[i]) == 0)
			return i;
	return -1;
}

/* ---------- key words ---------- */

#define RD_CLASS(c) (((c) >= 'a' && (c) <= 'z') ? 1 : ((c) >= 'A' && (c) <= 'Z') ? 2 : \
					 ((c) >= '0' && (c) <= '9') ? 3 : ((unsigned char) (c) >= 0x80) ? 1 : 0)

/*
 * "userPassword", "API_Key2" -> "user password", "api key 2": lowercase
 * words one space apart.  Non-ASCII bytes count as lowercase letters.
 */
char *
rd_normalize_key(const char *key, int len)
{
	char	   *out = palloc(len * 2 + 1);
	int			n = 0,
				i,
				prev = 0;

	for (i = 0; i < len; i++)
	{
		char		c = key[i];
		int			cls = RD_CLASS(c);
		bool		split;

		if (cls == 0)
		{
			prev = 0;
			continue;
		}
		/* a new word: after a separator, lower->Upper, letter<->digit, and
		 * the last capital of a run before a lowercase ("APIKey") */
		split = prev == 0 ||
			(cls == 2 && prev == 1) ||
			(cls == 3) != (prev == 3) ||
			(cls == 2 && prev == 2 && i + 1 < len && RD_CLASS(key[i + 1]) == 1);
		if (split && n > 0)
			out[n++] = ' ';
		out[n++] = (cls == 2) ? c - 'A' + 'a' : c;
		prev = cls;
	}
	out[n] = '\0';
	return out;
}

/*
 * Do the words of pattern occur, whole and in order, in words?  1: yes;
 * RD_PLURAL: its last word with an "s" ("tokens", "api keys"); 0: no.
 */
static int
rd_words_contain(const char *words, const char *pattern)
{
	int			pl = strlen(pattern);
	const char *p = words;
	int			found = 0;

	while ((p = strstr(p, pattern)) != NULL)
	{
		if (p == words || p[-1] == ' ')
		{
			if (p[pl] == '\0' || p[pl] == ' ')
				return 1;
			if (p[pl] == 's' && (p[pl + 1] == '\0' || p[pl + 1] == ' '))
				found = RD_PLURAL;
		}
		p++;
	}
	return found;
}

/*
 * Does a word of words end with joined, the pattern's words run together
 * ("userpassword", "accesstoken", "privatekey")?  Only for patterns of at
 * least 5 letters: "otp" or "ssn" at the end of a word is chance.
 */
static int
rd_word_suffix(const char *words, const char *joined)
{
	int			jl = strlen(joined);
	const char *w = words;

	if (jl < 5)
		return 0;
	while (*w)
	{
		int			wl = strcspn(w, " ");

		if (wl >= jl && memcmp(w + wl - jl, joined, jl) == 0)
			return 1;
		if (wl > jl && w[wl - 1] == 's' && memcmp(w + wl - 1 - jl, joined, jl) == 0)
			return RD_PLURAL;
		w += wl;
		while (*w == ' ')
			w++;
	}
	return 0;
}

static int
rd_key_verdict(RdRules *r, const char *key, int len)
{
	char	   *words = rd_normalize_key(key, len);
	int			i,
				plural = -1;

	for (i = 0; i < r->nsafe; i++)
		if (strcmp(words, r->safe[i]) == 0)
			return RD_KEY_SAFE;
	for (i = 0; i < r->nkeys; i++)
	{
		int			m = rd_words_contain(words, r->keys[i].words);

		if (m == 0)
			m = rd_word_suffix(words, r->keys[i].joined);
		if (m == 1)
			return i;
		if (m == RD_PLURAL && plural < 0)
			plural = i;
	}
	return plural >= 0 ? plural | RD_KEY_PLURAL : RD_KEY_NONE;
}

/* The key rule that takes key (its index), RD_KEY_SAFE or RD_KEY_NONE. */
int
rd_key_rule(RdRules *r, const char *key, int len)
{
	RdMemo	   *m;
	char		buf[RD_MEMO_KEYLEN];
	bool		found;

	if (len >= RD_MEMO_KEYLEN || memchr(key, '\0', len) != NULL)
		return rd_key_verdict(r, key, len);
	memcpy(buf, key, len);
	buf[len] = '\0';
	m = hash_search(r->key_memo, buf, HASH_ENTER, &found);
	if (!found)
	{
		m->verdict = rd_key_verdict(r, key, len);
		if (++r->memo_size > RD_MEMO_MAX)
		{
			/* a stream of ever new keys: start over rather than grow */
			int			verdict = m->verdict;
			HASHCTL		ctl;

			hash_destroy(r->key_memo);
			ctl.keysize = RD_MEMO_KEYLEN;
			ctl.entrysize = sizeof(RdMemo);
			ctl.hcxt = r->entry.cxt;
			r->key_memo = hash_create("pg_lifecycle redaction keys", 1024, &ctl,
									  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
			r->memo_size = 0;
			return verdict;
		}
	}
	return m->verdict;
}

/* ---------- the rules ---------- */

static Oid
rd_table_oid(const char *name)
{
	Oid			nsp = get_namespace_oid(LIFECYCLE_SCHEMA, true);

	return OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
}

/*
 * Path patterns: $ then .key, ."quoted key", .* (any key), [n] or [*]
 * (an element).  Returns the segments, or NULL with *error set.
 */
static List *
rd_parse_path(const char *pattern, const char **error)
{
	const char *p = pattern;
	List	   *segs = NIL;

	if (*p == '$')
		p++;
	else
	{
		*error = "A path starts with $, e.g. $.user.email or $.events[*].ip.";
		return NULL;
	}
	while (*p)
	{
		StringInfoData seg;

		initStringInfo(&seg);
		if (p[0] == '.' && p[1] == '"')
		{
			p += 2;
			while (*p && *p != '"')
			{
				if (*p == '\\' && p[1])
					p++;
				appendStringInfoChar(&seg, *p++);
			}
			if (*p != '"')
			{
				*error = "A quoted key is not closed.";
				return NULL;
			}
			p++;
			segs = lappend(segs, psprintf(".%s", seg.data));	/* quoted: never "*" */
		}
		else if (p[0] == '.')
		{
			p++;
			while (*p && *p != '.' && *p != '[')
				appendStringInfoChar(&seg, *p++);
			if (seg.len == 0)
			{
				*error = "A key in a path cannot be empty; quote unusual keys as .\"key\".";
				return NULL;
			}
			segs = lappend(segs, strcmp(seg.data, "*") == 0 ? pstrdup("*") : psprintf(".%s", seg.data));
		}
		else if (p[0] == '[')
		{
			p++;
			while (*p && *p != ']')
				appendStringInfoChar(&seg, *p++);
			if (*p != ']' || seg.len == 0 ||
				(strcmp(seg.data, "*") != 0 && strspn(seg.data, "0123456789") != seg.len))
			{
				*error = "An element is [n] or [*].";
				return NULL;
			}
			p++;
			segs = lappend(segs, psprintf("[%s]", seg.data));
		}
		else
		{
			*error = "After $ come .key, .\"key\", .*, [n] or [*].";
			return NULL;
		}
	}
	if (segs == NIL)
	{
		*error = "The whole document cannot be a path rule.";
		return NULL;
	}
	return segs;
}

static void
rd_build(LcEntry *entry, Relation rel)
{
	RdRules    *r = (RdRules *) entry;
	Oid			safe = rd_table_oid("redaction_safe_keys");
	uint64		n,
				i;
	HASHCTL		ctl;
	MemoryContext cxt = entry->cxt;
	int			nk = 0;

	if (OidIsValid(safe))
		lc_entry_depends_on(entry, safe);
	n = lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
				   "SELECT DISTINCT ON (kind, pattern) kind, pattern, action, enabled"
				   " FROM lifecycle.redaction_rules ORDER BY kind, pattern, builtin",
				   0, NULL, NULL, NULL, SPI_OK_SELECT, 0);
	r->keys = MemoryContextAllocZero(cxt, sizeof(RdKeyRule) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		char	   *kind = TextDatumGetCString(lc_result(i, 1, &isnull));
		char	   *pattern = TextDatumGetCString(lc_result(i, 2, &isnull));
		int			action = rd_action_by_name(TextDatumGetCString(lc_result(i, 3, &isnull)));
		bool		enabled = DatumGetBool(lc_result(i, 4, &isnull));
		MemoryContext old;

		if (!enabled || action < 0)
			continue;
		old = MemoryContextSwitchTo(cxt);
		if (strcmp(kind, "key") == 0)
		{
			RdKeyRule  *k = &r->keys[nk++];
			char	   *c;
			int			n;

			k->words = rd_normalize_key(pattern, strlen(pattern));
			k->joined = palloc(strlen(k->words) + 1);
			for (c = k->words, n = 0; *c; c++)
				if (*c != ' ')
					k->joined[n++] = *c;
			k->joined[n] = '\0';
			k->name = pstrdup(k->words);
			for (c = k->name; *c; c++)
				if (*c == ' ')
					*c = '_';
			k->rule = psprintf("key:%s", pattern);
			k->action = action;
		}
		else if (strcmp(kind, "detector") == 0)
		{
			int			d = rd_detector_by_name(pattern);

			if (d >= 0)
			{
				r->detector_on[d] = true;
				r->detector_action[d] = action;
				r->detector_rule[d] = psprintf("detector:%s", pattern);
			}
		}
		else if (strcmp(kind, "path") == 0)
		{
			const char *error;
			List	   *segs = rd_parse_path(pattern, &error);

			if (segs)
			{
				RdPathRule *pr = palloc(sizeof(RdPathRule));
				char	   *last = llast(segs);

				pr->segments = segs;
				pr->rule = psprintf("path:%s", pattern);
				pr->name = last[0] == '.' ? pstrdup(last + 1) : pstrdup("element");
				pr->action = action;
				r->paths = lappend(r->paths, pr);
			}
		}
		MemoryContextSwitchTo(old);
	}
	r->nkeys = nk;
	if (OidIsValid(safe))
	{
		n = lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					   "SELECT key_words FROM lifecycle.redaction_safe_keys",
					   0, NULL, NULL, NULL, SPI_OK_SELECT, 0);
		r->safe = MemoryContextAllocZero(cxt, sizeof(char *) * Max(n, 1));
		for (i = 0; i < n; i++)
		{
			bool		isnull;

			r->safe[i] = MemoryContextStrdup(cxt, TextDatumGetCString(lc_result(i, 1, &isnull)));
		}
		r->nsafe = n;
	}
	ctl.keysize = RD_MEMO_KEYLEN;
	ctl.entrysize = sizeof(RdMemo);
	ctl.hcxt = cxt;
	r->key_memo = hash_create("pg_lifecycle redaction keys", 1024, &ctl,
							  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	r->memo_size = 0;
}

/*
 * The rules in effect.  The entry stays valid until a rule table changes;
 * only a lookup of this cache replaces (and frees) an entry, and every
 * lookup goes through here, so rd_current is never a freed entry.
 */
RdRules *
rd_rules(void)
{
	Oid			relid;

	if (rd_current && rd_current->entry.valid)
		return rd_current;
	relid = rd_table_oid("redaction_rules");
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the redaction rules of pg_lifecycle are not installed in this database"),
				 errhint("Run ALTER EXTENSION pg_lifecycle UPDATE.")));
	if (rd_cache == NULL)
		rd_cache = lc_cache_create("pg_lifecycle redaction", sizeof(RdRules), rd_build);
	lc_enter();
	rd_current = NULL;
	rd_current = (RdRules *) lc_cache_lookup_oid(rd_cache, relid);
	lc_leave();
	return rd_current;
}

/* ---------- the keyed hash ---------- */

/*
 * The key is "<key id>:<secret>", from the file named by
 * lifecycle.redaction_key_file (read again when the file changes; it must
 * not be readable by group or others), else from lifecycle.redaction_key.
 * Both are superuser-only settings, and SHOW gives the key id alone.  A
 * server-wide key belongs in the file: PostgreSQL logs the new value of a
 * setting changed in postgresql.conf when it reloads, so a key written
 * there would reach the server log.
 */
#define RD_KEY_MAX 1024

static char *rd_key_file = NULL;
static char rd_file_key[RD_KEY_MAX];
static const char *rd_file_problem = NULL;
static char *rd_file_loaded = NULL;	/* path the key was read from */
static time_t rd_file_mtime = 0;
static TimestampTz rd_file_checked = 0;

static void
rd_read_key_file(void)
{
	struct stat st;
	FILE	   *f;
	size_t		n;
	TimestampTz now = GetCurrentTimestamp();

	if (rd_file_loaded && strcmp(rd_file_loaded, rd_key_file) == 0 &&
		now - rd_file_checked < USECS_PER_SEC)
		return;
	rd_file_checked = now;
	if (stat(rd_key_file, &st) != 0)
	{
		rd_file_key[0] = '\0';
		rd_file_problem = "the file named by lifecycle.redaction_key_file cannot be read by the server.";
		return;
	}
	/* checked every time: a chmod does not change the file's mtime */
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		rd_file_key[0] = '\0';
		rd_file_mtime = 0;
		rd_file_problem = "the file named by lifecycle.redaction_key_file has group or world access; it must be u=rw (0600).";
		return;
	}
	if (rd_file_loaded && strcmp(rd_file_loaded, rd_key_file) == 0 && st.st_mtime == rd_file_mtime &&
		rd_file_problem == NULL)
		return;
	if (rd_file_loaded)
		pfree(rd_file_loaded);
	rd_file_loaded = MemoryContextStrdup(TopMemoryContext, rd_key_file);
	rd_file_mtime = st.st_mtime;
	rd_file_key[0] = '\0';
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		rd_file_problem = "the file named by lifecycle.redaction_key_file has group or world access; it must be u=rw (0600).";
		return;
	}
	f = AllocateFile(rd_key_file, "r");
	if (f == NULL)
	{
		rd_file_problem = "the file named by lifecycle.redaction_key_file cannot be read by the server.";
		return;
	}
	n = fread(rd_file_key, 1, RD_KEY_MAX - 1, f);
	FreeFile(f);
	while (n > 0 && (rd_file_key[n - 1] == '\n' || rd_file_key[n - 1] == '\r' ||
					 rd_file_key[n - 1] == ' ' || rd_file_key[n - 1] == '\t'))
		n--;
	rd_file_key[n] = '\0';
	rd_file_problem = NULL;
}

/* The key's text, or NULL with *problem saying why there is none. */
static const char *
rd_key_text(const char **problem)
{
	if (rd_key_file && *rd_key_file)
	{
		rd_read_key_file();
		*problem = rd_file_problem ? rd_file_problem : "the key file does not hold <key id>:<secret>, the id of letters, digits, _ or - (at most 32), the secret at least 16 bytes.";
		return rd_file_key[0] ? rd_file_key : NULL;
	}
	*problem = rd_key_setting && *rd_key_setting ?
		"lifecycle.redaction_key must be <key id>:<secret>, the id of letters, digits, _ or - (at most 32), the secret at least 16 bytes." :
		"neither lifecycle.redaction_key_file nor lifecycle.redaction_key is set.";
	return rd_key_setting && *rd_key_setting ? rd_key_setting : NULL;
}

/* Split "<key id>:<secret>" and check both; false when k is no usable key. */
static bool
rd_split_key(const char *k, const char **id, int *idlen, const char **secret)
{
	const char *colon;
	int			i;

	if (k == NULL || (colon = strchr(k, ':')) == NULL)
		return false;
	*id = k;
	*idlen = colon - k;
	*secret = colon + 1;
	if (*idlen < 1 || *idlen > 32 || strlen(*secret) < RD_MIN_SECRET)
		return false;
	for (i = 0; i < *idlen; i++)
		if (!(isalnum((unsigned char) k[i]) || k[i] == '_' || k[i] == '-'))
			return false;
	return true;
}

/* The key in effect (the file's, else the setting's), split. */
static bool
rd_parse_key(const char **id, int *idlen, const char **secret, const char **problem)
{
	return rd_split_key(rd_key_text(problem), id, idlen, secret);
}

/* Is a usable key set?  If not and warn, say so once per transaction. */
bool
rd_key_ready(bool warn)
{
	const char *id,
			   *secret,
			   *problem;
	int			idlen;

	if (rd_parse_key(&id, &idlen, &secret, &problem))
		return true;
	if (warn && !rd_warned)
	{
		rd_warned = true;
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("redaction rules with action hash are masking: no usable redaction key"),
				 errdetail("The key is missing or unusable: %s", problem),
				 errhint("A superuser writes <key id>:<secret> into a file only the server's OS user can read and sets lifecycle.redaction_key_file to it in postgresql.conf.")));
	}
	return false;
}

/* Append "[hash:<id>:<32 hex digits>]" for data; false without a key. */
bool
rd_hash(const char *data, int len, StringInfo out)
{
	const char *id,
			   *secret,
			   *problem;
	int			idlen,
				i;
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	pg_hmac_ctx *ctx;

	if (!rd_parse_key(&id, &idlen, &secret, &problem))
		return false;
	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL || pg_hmac_init(ctx, (const uint8 *) secret, strlen(secret)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_hmac_final(ctx, mac, sizeof(mac)) < 0)
	{
		if (ctx)
			pg_hmac_free(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not compute the HMAC-SHA-256 pseudonym of a redacted value")));
	}
	pg_hmac_free(ctx);
	appendStringInfoString(out, "[hash:");
	appendBinaryStringInfo(out, id, idlen);
	appendStringInfoChar(out, ':');
	for (i = 0; i < 16; i++)
		appendStringInfo(out, "%02x", mac[i]);
	appendStringInfoChar(out, ']');
	return true;
}

/* SHOW lifecycle.redaction_key: the key id, never the secret. */
static const char *
rd_show_key(void)
{
	const char *id,
			   *secret;
	int			idlen;

	if (rd_key_setting == NULL || *rd_key_setting == '\0')
		return "";
	/* this setting's own value, whatever the file holds */
	if (!rd_split_key(rd_key_setting, &id, &idlen, &secret))
		return "(not usable)";
	return psprintf("%.*s:(hidden)", idlen, id);
}

void
rd_rules_init(void)
{
	DefineCustomStringVariable("lifecycle.redaction_key_file",
							   "File holding the key of the hash action of redaction rules: <key id>:<secret>.",
							   "Readable only by the server's OS user (0600); takes precedence over lifecycle.redaction_key.",
							   &rd_key_file, "", PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("lifecycle.redaction_key",
							   "Key of the hash action of redaction rules: <key id>:<secret>.",
							   "HMAC-SHA-256 pseudonyms are tagged with the key id; for a server-wide key use lifecycle.redaction_key_file.",
							   &rd_key_setting, "", PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, rd_show_key);
}

void
rd_rules_xact_end(void)
{
	rd_warned = false;
}


/* ---------- changing rules ---------- */

static void
rd_check_may_change(Oid relid)
{
	if (pg_class_aclcheck(relid, GetUserId(), ACL_INSERT | ACL_UPDATE | ACL_DELETE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to change redaction rules"),
				 errdetail("Rules are changed by the owner of %s (the extension's owner) and by roles it grants INSERT, UPDATE and DELETE on it.",
						   get_rel_name(relid)),
				 errhint("Ask the database owner, or have it GRANT INSERT, UPDATE, DELETE ON lifecycle.redaction_rules, lifecycle.redaction_safe_keys TO <role>.")));
}

static char *
rd_text_arg(FunctionCallInfo fcinfo, int n, const char *what, const char *hint)
{
	if (PG_ARGISNULL(n))
		lc_null_argument(what, hint);
	return TextDatumGetCString(PG_GETARG_DATUM(n));
}

/* A rule's (kind, pattern) checked and in its stored form. */
static char *
rd_check_rule(const char *kind, const char *pattern)
{
	if (strcmp(kind, "key") == 0)
	{
		char	   *words = rd_normalize_key(pattern, strlen(pattern));

		if (*words == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key pattern \"%s\" has no words", pattern),
					 errdetail("Keys are matched on their words: letters and digits, split at case changes and punctuation."),
					 errhint("Give the words the key contains, e.g. 'api key' or 'apiKey'.")));
		return words;
	}
	if (strcmp(kind, "detector") == 0)
	{
		StringInfoData names;
		int			i;

		if (rd_detector_by_name(pattern) >= 0)
			return pstrdup(pattern);
		initStringInfo(&names);
		for (i = 0; i < RD_NDETECTORS; i++)
			appendStringInfo(&names, "%s%s", i ? ", " : "", rd_detector_names[i]);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown detector \"%s\"", pattern),
				 errhint("The detectors are: %s.", names.data)));
	}
	if (strcmp(kind, "path") == 0)
	{
		const char *error;

		if (rd_parse_path(pattern, &error) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid path pattern \"%s\"", pattern),
					 errdetail("%s", error),
					 errhint("Paths look like $.user.email, $.events[*].ip or $.*.\"odd key\".")));
		return pstrdup(pattern);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown kind of redaction rule \"%s\"", kind),
			 errhint("The kinds are key, detector and path.")));
	return NULL;				/* keep compiler quiet */
}

static RdAction
rd_check_action(const char *kind, const char *action)
{
	int			a = rd_action_by_name(action);

	if (a < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown redaction action \"%s\"", action),
				 errhint("The actions are mask, hash, remove and partial.")));
	return a;
}

static Oid
rd_rules_table(void)
{
	Oid			relid = rd_table_oid("redaction_rules");

	if (!OidIsValid(relid))
		(void) rd_rules();		/* its error */
	return relid;
}

PG_FUNCTION_INFO_V1(lifecycle_set_redaction_rule);
Datum
lifecycle_set_redaction_rule(PG_FUNCTION_ARGS)
{
	const char *hint = "Call it as lifecycle.set_redaction_rule('key', 'password', 'mask').";
	char	   *kind = rd_text_arg(fcinfo, 0, "kind", hint);
	char	   *pattern = rd_text_arg(fcinfo, 1, "pattern", hint);
	char	   *action = rd_text_arg(fcinfo, 2, "action", hint);
	bool		enabled = PG_ARGISNULL(3) ? true : PG_GETARG_BOOL(3);
	Oid			relid = rd_rules_table();
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, BOOLOID};
	Datum		values[4];

	rd_check_may_change(relid);
	pattern = rd_check_rule(kind, pattern);
	if (rd_check_action(kind, action) == RD_REMOVE && strcmp(kind, "path") == 0)
	{
		const char *error;
		char	   *last = llast(rd_parse_path(pattern, &error));

		if (last[0] == '[' && last[1] != '*')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("path rule \"%s\" cannot remove an element by its position", pattern),
					 errdetail("Removing element n moves the next one to n, which the next redaction would remove too."),
					 errhint("Use mask, or [*] to remove every element.")));
	}
	values[0] = CStringGetTextDatum(kind);
	values[1] = CStringGetTextDatum(pattern);
	values[2] = CStringGetTextDatum(action);
	values[3] = BoolGetDatum(enabled);
	lc_enter();
	(void) lc_sql_run(LC_CALLER, InvalidOid,
					  "INSERT INTO lifecycle.redaction_rules AS r (kind, pattern, action, enabled, builtin)"
					  " VALUES ($1, $2, $3, $4, false)"
					  " ON CONFLICT (kind, pattern, builtin) DO UPDATE"
					  " SET action = EXCLUDED.action, enabled = EXCLUDED.enabled,"
					  " changed_at = pg_catalog.now()",
					  4, types, values, NULL, SPI_OK_INSERT, 0);
	lc_leave();
	PG_RETURN_VOID();
}

/*
 * Disable a rule: the team's row for it says enabled = false, keeping the
 * action in effect.  Unknown rules are an error, not a silent no-op.
 */
PG_FUNCTION_INFO_V1(lifecycle_disable_redaction_rule);
Datum
lifecycle_disable_redaction_rule(PG_FUNCTION_ARGS)
{
	const char *hint = "Call it as lifecycle.disable_redaction_rule('key', 'token').";
	char	   *kind = rd_text_arg(fcinfo, 0, "kind", hint);
	char	   *pattern = rd_text_arg(fcinfo, 1, "pattern", hint);
	Oid			relid = rd_rules_table();
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	uint64		n;

	rd_check_may_change(relid);
	pattern = rd_check_rule(kind, pattern);
	values[0] = CStringGetTextDatum(kind);
	values[1] = CStringGetTextDatum(pattern);
	lc_enter();
	n = lc_sql_run(LC_CALLER, InvalidOid,
				   "INSERT INTO lifecycle.redaction_rules AS r (kind, pattern, action, enabled, builtin)"
				   " SELECT DISTINCT ON (kind, pattern) kind, pattern, action, false, false"
				   " FROM lifecycle.redaction_rules"
				   " WHERE kind OPERATOR(pg_catalog.=) $1 AND pattern OPERATOR(pg_catalog.=) $2"
				   " ORDER BY kind, pattern, builtin"
				   " ON CONFLICT (kind, pattern, builtin) DO UPDATE"
				   " SET enabled = false, changed_at = pg_catalog.now()",
				   2, types, values, NULL, SPI_OK_INSERT, 0);
	lc_leave();
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("there is no %s redaction rule \"%s\"", kind, pattern),
				 errhint("See lifecycle.redaction_rules_in_effect.")));
	PG_RETURN_VOID();
}

/* Drop the team's own rule; a default it overrode applies again. */
PG_FUNCTION_INFO_V1(lifecycle_drop_redaction_rule);
Datum
lifecycle_drop_redaction_rule(PG_FUNCTION_ARGS)
{
	const char *hint = "Call it as lifecycle.drop_redaction_rule('key', 'session token').";
	char	   *kind = rd_text_arg(fcinfo, 0, "kind", hint);
	char	   *pattern = rd_text_arg(fcinfo, 1, "pattern", hint);
	Oid			relid = rd_rules_table();
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	uint64		n;

	rd_check_may_change(relid);
	pattern = rd_check_rule(kind, pattern);
	values[0] = CStringGetTextDatum(kind);
	values[1] = CStringGetTextDatum(pattern);
	lc_enter();
	n = lc_sql_run(LC_CALLER, InvalidOid,
				   "DELETE FROM lifecycle.redaction_rules WHERE NOT builtin"
				   " AND kind OPERATOR(pg_catalog.=) $1 AND pattern OPERATOR(pg_catalog.=) $2",
				   2, types, values, NULL, SPI_OK_DELETE, 0);
	lc_leave();
	if (n == 0)
		ereport(NOTICE,
				(errmsg("there is no own %s redaction rule \"%s\", skipping", kind, pattern),
				 errdetail("Default rules cannot be dropped; disable them with lifecycle.disable_redaction_rule().")));
	PG_RETURN_VOID();
}

static void
rd_safe_key(FunctionCallInfo fcinfo, bool add)
{
	const char *hint = add ? "Call it as lifecycle.add_safe_key('token_count')." :
		"Call it as lifecycle.drop_safe_key('token_count').";
	char	   *key = rd_text_arg(fcinfo, 0, "key", hint);
	char	   *words = rd_check_rule("key", key);
	Oid			relid = rd_table_oid("redaction_safe_keys");
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];

	(void) rd_rules_table();
	rd_check_may_change(relid);
	values[0] = CStringGetTextDatum(words);
	values[1] = CStringGetTextDatum(key);
	lc_enter();
	if (add)
		(void) lc_sql_run(LC_CALLER, InvalidOid,
						  "INSERT INTO lifecycle.redaction_safe_keys (key_words, example)"
						  " VALUES ($1, $2) ON CONFLICT (key_words) DO NOTHING",
						  2, types, values, NULL, SPI_OK_INSERT, 0);
	else if (lc_sql_run(LC_CALLER, InvalidOid,
						"DELETE FROM lifecycle.redaction_safe_keys WHERE key_words OPERATOR(pg_catalog.=) $1",
						1, types, values, NULL, SPI_OK_DELETE, 0) == 0)
		ereport(NOTICE,
				(errmsg("\"%s\" is not a safe key, skipping", key)));
	lc_leave();
}

PG_FUNCTION_INFO_V1(lifecycle_add_safe_key);
Datum
lifecycle_add_safe_key(PG_FUNCTION_ARGS)
{
	rd_safe_key(fcinfo, true);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(lifecycle_drop_safe_key);
Datum
lifecycle_drop_safe_key(PG_FUNCTION_ARGS)
{
	rd_safe_key(fcinfo, false);
	PG_RETURN_VOID();
}

/*
 * AFTER ... FOR EACH STATEMENT on the two rule tables: every backend's
 * rules go stale when the transaction commits.  Attached by the install
 * script to those two tables only; anywhere else it refuses.
 */
PG_FUNCTION_INFO_V1(lifecycle_redaction_rules_changed);
Datum
lifecycle_redaction_rules_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td;
	Oid			relid;
	const char *hint = "It is pg_lifecycle's own trigger on lifecycle.redaction_rules and lifecycle.redaction_safe_keys.";

	if (!CALLED_AS_TRIGGER(fcinfo))
		lc_trigger_misuse(fcinfo, "not called by trigger manager", hint);
	td = (TriggerData *) fcinfo->context;
	relid = RelationGetRelid(td->tg_relation);
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		(relid != rd_table_oid("redaction_rules") && relid != rd_table_oid("redaction_safe_keys")))
		lc_trigger_misuse(fcinfo, "attached to a table other than the redaction rules", hint);
	CacheInvalidateRelcacheByRelid(rd_table_oid("redaction_rules"));
	return PointerGetDatum(NULL);
}
