/*-------------------------------------------------------------------------
 *
 * redact.c
 *	  The document walk of telemetry redaction, and its SQL:
 *	  redact_jsonb() (and redact_telemetry_metadata()), redaction_report(),
 *	  the trigger redact_trigger() (and auto_redact_telemetry()), and
 *	  enable_redaction()/disable_redaction().
 *
 *	  One pass over the document with the jsonb iterator, one level at a
 *	  time (nested containers come as binary values and are walked in
 *	  turn), pushing the result as it goes.  A document nothing matched
 *	  is returned as it came, the very same bytes.  The walk runs no SQL
 *	  and reads only the rules cached by redact_rules.c, so the trigger
 *	  may be attached by hand (the seeds' auto_redact_telemetry): all it
 *	  can do is scrub the row it is given.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"

#include "redact.h"

#define RD_MAX_PASSES	16
#define RD_MAX_COLUMNS	64
#define RD_UNUSABLE_JSON "[redacted:unusable_json]"

/* One step of the path to the value being looked at. */
typedef struct RdSeg
{
	const char *key;			/* NULL: an element */
	int			keylen;
	int			index;
	bool		json;			/* the string holds JSON, walked inside */
} RdSeg;

typedef struct RdWalk
{
	RdRules    *rules;
	bool		changed;
	bool		track;			/* keep the path: reports, path rules */
	RdSeg	   *path;
	int			depth;
	int			maxdepth;
	Tuplestorestate *report;	/* redaction_report: rows, no output */
	TupleDesc	report_desc;
	bool		raw;			/* the document is a scalar: removing it leaves null */
} RdWalk;

static JsonbValue *rd_walk(RdWalk *w, JsonbContainer *jc, JsonbParseState **st);
static bool rd_json_start(char c);

/* ---------- paths ---------- */

static void
rd_push(RdWalk *w, const char *key, int keylen, int index, bool json)
{
	if (!w->track)
		return;
	if (w->depth == w->maxdepth)
	{
		w->maxdepth = Max(16, w->maxdepth * 2);
		w->path = w->path ? repalloc(w->path, sizeof(RdSeg) * w->maxdepth) :
			palloc(sizeof(RdSeg) * w->maxdepth);
	}
	w->path[w->depth].key = key;
	w->path[w->depth].keylen = keylen;
	w->path[w->depth].index = index;
	w->path[w->depth].json = json;
	w->depth++;
}

static void
rd_pop(RdWalk *w)
{
	if (w->track)
		w->depth--;
}

static bool
rd_plain_key(const char *k, int len)
{
	int			i;

	if (len == 0 || !(isalpha((unsigned char) k[0]) || k[0] == '_'))
		return false;
	for (i = 1; i < len; i++)
		if (!(isalnum((unsigned char) k[i]) || k[i] == '_'))
			return false;
	return true;
}

/* The path as jsonpath text: $.a."odd key"[3], stringified JSON as ::json. */
static char *
rd_path_text(RdWalk *w)
{
	StringInfoData buf;
	int			i,
				k;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '$');
	for (i = 0; i < w->depth; i++)
	{
		RdSeg	   *s = &w->path[i];

		if (s->json)
			appendStringInfoString(&buf, "::json");
		else if (s->key == NULL)
			appendStringInfo(&buf, "[%d]", s->index);
		else if (rd_plain_key(s->key, s->keylen))
		{
			appendStringInfoChar(&buf, '.');
			appendBinaryStringInfo(&buf, s->key, s->keylen);
		}
		else
		{
			appendStringInfoString(&buf, ".\"");
			for (k = 0; k < s->keylen; k++)
			{
				if (s->key[k] == '"' || s->key[k] == '\\')
					appendStringInfoChar(&buf, '\\');
				appendStringInfoChar(&buf, s->key[k]);
			}
			appendStringInfoChar(&buf, '"');
		}
	}
	return buf.data;
}

/* The path rule naming the current position, if any. */
static RdPathRule *
rd_path_rule(RdWalk *w)
{
	ListCell   *lc;

	foreach(lc, w->rules->paths)
	{
		RdPathRule *pr = lfirst(lc);
		ListCell   *sc;
		int			i = 0;
		bool		match = list_length(pr->segments) == w->depth;

		foreach(sc, pr->segments)
		{
			const char *seg = lfirst(sc);
			RdSeg	   *p;

			if (!match)
				break;
			p = &w->path[i++];
			if (p->json)
				match = false;
			else if (seg[0] == '*')
				match = p->key != NULL;
			else if (seg[0] == '.')
				match = p->key != NULL && (int) strlen(seg + 1) == p->keylen &&
					memcmp(seg + 1, p->key, p->keylen) == 0;
			else if (strcmp(seg, "[*]") == 0)
				match = p->key == NULL;
			else
				match = p->key == NULL && atoi(seg + 1) == p->index;
		}
		if (match)
			return pr;
	}
	return NULL;
}

static void
rd_report(RdWalk *w, const char *rule, RdAction action)
{
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (action == RD_HASH && !rd_key_ready(false))
		action = RD_MASK;
	values[0] = CStringGetTextDatum(rd_path_text(w));
	values[1] = CStringGetTextDatum(rule);
	values[2] = CStringGetTextDatum(rd_action_name(action));
	tuplestore_putvalues(w->report, w->report_desc, values, nulls);
}

/* ---------- actions ---------- */

static void
rd_push_string(JsonbParseState **st, JsonbIteratorToken tok, char *s, int len)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = s;
	v.val.string.len = len;
	(void) pushJsonbValue(st, tok, &v);
}

/* The byte where the last n characters of s begin. */
static int
rd_last_chars(const char *s, int len, int n)
{
	int			i = len;

	if (pg_database_encoding_max_length() == 1)
		return Max(0, len - n);
	while (i > 0 && n > 0)
	{
		i--;
		if (((unsigned char) s[i] & 0xC0) != 0x80)
			n--;
	}
	return i;
}

/*
 * The replacement of data under action: mask writes marker, hash a keyed
 * pseudonym (masking without a key), partial the marker with the last 4
 * characters when at least 8 remain hidden.  marker is "[name]"; partial
 * makes it "[name:...1234]".
 */
static void
rd_replacement(StringInfo out, RdAction action, const char *marker,
			   const char *data, int len)
{
	if (action == RD_HASH && rd_key_ready(true) && rd_hash(data, len, out))
		return;
	if (action == RD_PARTIAL && pg_mbstrlen_with_len(data, len) >= 8)
	{
		int			from = rd_last_chars(data, len, 4);

		appendBinaryStringInfo(out, marker, strlen(marker) - 1);
		appendStringInfoString(out, ":...");
		appendBinaryStringInfo(out, data + from, len - from);
		appendStringInfoChar(out, ']');
		return;
	}
	if (action != RD_REMOVE)
		appendStringInfoString(out, marker);
}

/*
 * A value this rule (name) wrote already: "[redacted:<name>]", its partial
 * form "[redacted:<name>:...<last 4>]", or a pseudonym "[hash:<id>:<32 hex>]".
 * Anything else, "[redacted: hunter2]" too, is a value like any other.
 */
static bool
rd_is_marker(JsonbValue *v, const char *name)
{
	const char *s = v->val.string.val;
	int			len = v->val.string.len;
	int			nl = strlen(name);
	int			i,
				colon;

	if (v->type != jbvString || len < 3 || s[0] != '[' || s[len - 1] != ']')
		return false;
	if (len >= 11 + nl && memcmp(s, "[redacted:", 10) == 0 && memcmp(s + 10, name, nl) == 0)
	{
		if (len == 11 + nl)
			return true;
		/* partial: four characters at most after "..." */
		return s[10 + nl] == ':' && len > 14 + nl && memcmp(s + 11 + nl, "...", 3) == 0 &&
			pg_mbstrlen_with_len(s + 14 + nl, len - 15 - nl) <= 4;
	}
	if (len < 6 + 1 + 1 + 32 + 1 || memcmp(s, "[hash:", 6) != 0)
		return false;
	colon = len - 34;			/* "[hash:" id ":" 32 hex "]" */
	if (s[colon] != ':' || colon - 6 < 1 || colon - 6 > 32)
		return false;
	for (i = 6; i < colon; i++)
		if (!(isalnum((unsigned char) s[i]) || s[i] == '_' || s[i] == '-'))
			return false;
	for (i = colon + 1; i < len - 1; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* The text a rule hashes or partly keeps: a string's own, else its JSON. */
static char *
rd_value_text(JsonbValue *v, int *len)
{
	StringInfoData buf;

	if (v->type == jbvString)
	{
		*len = v->val.string.len;
		return v->val.string.val;
	}
	initStringInfo(&buf);
	if (v->type == jbvBinary)
		(void) JsonbToCString(&buf, v->val.binary.data, v->val.binary.len);
	else
	{
		Jsonb	   *j = JsonbValueToJsonb(v);

		(void) JsonbToCString(&buf, &j->root, VARSIZE(j));
	}
	*len = buf.len;
	return buf.data;
}

/* A value removed: gone, but a scalar document becomes null, not nothing. */
static void
rd_removed(RdWalk *w, JsonbParseState **st, JsonbIteratorToken tok)
{
	JsonbValue	null;

	if (tok != WJB_ELEM || !w->raw)
		return;
	null.type = jbvNull;
	(void) pushJsonbValue(st, tok, &null);
}

/* A key or path rule takes the whole value (of any type). */
static void
rd_take(RdWalk *w, JsonbParseState **st, JsonbIteratorToken tok, JsonbValue *key,
		JsonbValue *v, RdAction action, const char *name, const char *rule)
{
	StringInfoData out;
	char	   *data;
	int			len;

	w->changed = true;
	if (w->report)
		rd_report(w, rule, action);
	if (action == RD_REMOVE)
	{
		rd_removed(w, st, tok);
		return;
	}
	if (key)
		(void) pushJsonbValue(st, WJB_KEY, key);
	/* the last characters of an object's or array's JSON text say nothing */
	if (action == RD_PARTIAL && v->type == jbvBinary)
		action = RD_MASK;
	initStringInfo(&out);
	data = rd_value_text(v, &len);
	rd_replacement(&out, action, psprintf("[redacted:%s]", name), data, len);
	rd_push_string(st, tok, out.data, out.len);
}

/* ---------- values ---------- */

/*
 * A string: JSON inside is walked as a document and written back as JSON
 * text; any other string is scanned by the detectors.  Returns the new
 * string, or NULL when it stays as it is.
 */
static char *
rd_string(RdWalk *w, const char *s, int len, int *outlen)
{
	RdRules    *r = w->rules;
	RdSpan	   *spans;
	StringInfoData out;
	int			n,
				i,
				pass,
				at = 0;

	if (len >= 2 && rd_json_start(s[0]))
	{
		char	   *copy = pnstrdup(s, len);
		int			kind = rd_json_kind(copy, len, RD_JSON_CONTAINER);

		if (kind == RD_JSON_UNUSABLE)
		{
			/* JSON that jsonb cannot hold: it cannot be scrubbed, so it goes */
			w->changed = true;
			if (w->report)
				rd_report(w, "json:unusable", RD_MASK);
			*outlen = strlen(RD_UNUSABLE_JSON);
			return pstrdup(RD_UNUSABLE_JSON);
		}
		if (kind == RD_JSON_YES)
		{
			Jsonb	   *inner = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(copy)));
			JsonbParseState *ist = NULL;
			bool		outer_changed = w->changed;
			JsonbValue *res;

			w->changed = false;
			rd_push(w, NULL, 0, 0, true);
			check_stack_depth();
			res = rd_walk(w, &inner->root, &ist);
			rd_pop(w);
			if (!w->changed)
			{
				w->changed = outer_changed;
				return NULL;
			}
			initStringInfo(&out);
			(void) JsonbToCString(&out, &JsonbValueToJsonb(res)->root, len);
			*outlen = out.len;
			return out.data;
		}
	}
	n = rd_detect(s, len, r->detector_on, &spans);
	if (n == 0)
		return NULL;
	w->changed = true;
	/*
	 * Replace, and scan the result again until nothing matches: a match cut
	 * short by an overlapping one, or glued to its neighbour, may stand alone
	 * once its neighbour is a marker.  Markers never match, so each pass
	 * shrinks what is left; a string still matching after many passes goes
	 * whole.
	 */
	for (pass = 0; n > 0; pass++)
	{
		if (pass == RD_MAX_PASSES)
		{
			*outlen = strlen("[redacted]");
			return pstrdup("[redacted]");
		}
		initStringInfo(&out);
		at = 0;
		for (i = 0; i < n; i++)
		{
			RdDetector d = spans[i].detector;

			if (w->report)
				rd_report(w, r->detector_rule[d], r->detector_action[d]);
			appendBinaryStringInfo(&out, s + at, spans[i].start - at);
			rd_replacement(&out, r->detector_action[d], rd_detector_markers[d],
						   s + spans[i].start, spans[i].end - spans[i].start);
			at = spans[i].end;
		}
		appendBinaryStringInfo(&out, s + at, len - at);
		s = out.data;
		len = out.len;
		n = rd_detect(s, len, r->detector_on, &spans);
	}
	/* text that was not JSON until a match was replaced: walk it now */
	if (len >= 2 && rd_json_start(s[0]) && pass < RD_MAX_PASSES)
	{
		char	   *again = rd_string(w, s, len, outlen);

		if (again)
			return again;
	}
	*outlen = len;
	return (char *) s;
}

/* Where JSON text may begin. */
static bool
rd_json_start(char c)
{
	return c == '{' || c == '[' || c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

/* An integer that is a card number (JSON numbers are values too). */
static bool
rd_card_number(RdWalk *w, JsonbValue *v)
{
	static Datum lo = (Datum) 0,
				hi;
	char	   *digits;
	int			n;
	bool		card;

	if (!w->rules->detector_on[RD_DET_CARD])
		return false;
	/* 10^12 <= v < 10^19 first: the text of 1e131071 is 131,072 digits */
	if (lo == (Datum) 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		hi = DirectFunctionCall3(numeric_in, CStringGetDatum("10000000000000000000"),
								 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
		lo = DirectFunctionCall3(numeric_in, CStringGetDatum("1000000000000"),
								 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
		MemoryContextSwitchTo(old);
	}
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(v->val.numeric), lo)) < 0 ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(v->val.numeric), hi)) >= 0)
		return false;
	digits = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	n = strlen(digits);
	card = n >= 13 && n <= 19 && strspn(digits, "0123456789") == n && rd_card_digits(digits, n);
	pfree(digits);
	return card;
}

static void
rd_value(RdWalk *w, JsonbParseState **st, JsonbIteratorToken tok, JsonbValue *key, JsonbValue *v)
{
	if (v->type == jbvBinary)
	{
		if (key)
			(void) pushJsonbValue(st, WJB_KEY, key);
		check_stack_depth();
		rd_walk(w, v->val.binary.data, st);
		return;
	}
	if (v->type == jbvString)
	{
		int			len;
		char	   *s = rd_string(w, v->val.string.val, v->val.string.len, &len);

		if (key)
			(void) pushJsonbValue(st, WJB_KEY, key);
		if (s)
			rd_push_string(st, tok, s, len);
		else
			(void) pushJsonbValue(st, tok, v);
		return;
	}
	if (v->type == jbvNumeric && rd_card_number(w, v))
	{
		RdRules    *r = w->rules;
		int			len;
		char	   *data = rd_value_text(v, &len);
		StringInfoData out;

		w->changed = true;
		if (w->report)
			rd_report(w, r->detector_rule[RD_DET_CARD], r->detector_action[RD_DET_CARD]);
		if (r->detector_action[RD_DET_CARD] == RD_REMOVE)
		{
			rd_removed(w, st, tok);
			return;
		}
		if (key)
			(void) pushJsonbValue(st, WJB_KEY, key);
		initStringInfo(&out);
		rd_replacement(&out, r->detector_action[RD_DET_CARD], rd_detector_markers[RD_DET_CARD], data, len);
		rd_push_string(st, tok, out.data, out.len);
		return;
	}
	if (key)
		(void) pushJsonbValue(st, WJB_KEY, key);
	(void) pushJsonbValue(st, tok, v);
}

/* A member of an object: path rule, safe key, key rule, or its value. */
static void
rd_member(RdWalk *w, JsonbParseState **st, JsonbValue *key, JsonbValue *v)
{
	RdRules    *r = w->rules;
	int			verdict;

	rd_push(w, key->val.string.val, key->val.string.len, 0, false);
	if (r->paths != NIL)
	{
		RdPathRule *pr = rd_path_rule(w);

		if (pr)
		{
			if (rd_is_marker(v, pr->name))
				rd_value(w, st, WJB_VALUE, key, v);
			else
				rd_take(w, st, WJB_VALUE, key, v, pr->action, pr->name, pr->rule);
			rd_pop(w);
			return;
		}
	}
	verdict = r->nkeys > 0 || r->nsafe > 0 ?
		rd_key_rule(r, key->val.string.val, key->val.string.len) : RD_KEY_NONE;
	/* "tokens": 10 is a count, "cookies_enabled": true a flag: a plural takes no scalars but strings */
	if (verdict >= 0 && (verdict & RD_KEY_PLURAL) &&
		(v->type == jbvNumeric || v->type == jbvBool || v->type == jbvNull))
		verdict = RD_KEY_NONE;
	if (verdict >= 0 && !rd_is_marker(v, r->keys[verdict & ~RD_KEY_PLURAL].name))
	{
		RdKeyRule  *k = &r->keys[verdict & ~RD_KEY_PLURAL];

		rd_take(w, st, WJB_VALUE, key, v, k->action, k->name, k->rule);
	}
	else
		rd_value(w, st, WJB_VALUE, key, v);
	rd_pop(w);
}

static void
rd_element(RdWalk *w, JsonbParseState **st, JsonbValue *v, int index)
{
	rd_push(w, NULL, 0, index, false);
	if (w->rules->paths != NIL)
	{
		RdPathRule *pr = rd_path_rule(w);

		if (pr && !rd_is_marker(v, pr->name))
		{
			rd_take(w, st, WJB_ELEM, NULL, v, pr->action, pr->name, pr->rule);
			rd_pop(w);
			return;
		}
	}
	rd_value(w, st, WJB_ELEM, NULL, v);
	rd_pop(w);
}

/*
 * One container: pushed to st, its members and elements walked.  Returns
 * what the last push returned: for the outermost container, the result.
 */
static JsonbValue *
rd_walk(RdWalk *w, JsonbContainer *jc, JsonbParseState **st)
{
	JsonbIterator *it = JsonbIteratorInit(jc);
	JsonbValue	v;
	JsonbValue *res = NULL;
	JsonbIteratorToken tok;
	int			index = 0;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_KEY:
				{
					JsonbValue	key = v;
					JsonbValue	val;

					tok = JsonbIteratorNext(&it, &val, true);
					Assert(tok == WJB_VALUE);
					rd_member(w, st, &key, &val);
					break;
				}
			case WJB_ELEM:
				rd_element(w, st, &v, index++);
				break;
			case WJB_BEGIN_ARRAY:
				w->raw |= v.val.array.rawScalar;
				(void) pushJsonbValue(st, tok, v.val.array.rawScalar ? &v : NULL);
				break;
			default:
				res = pushJsonbValue(st, tok, NULL);
				break;
		}
	}
	return res;
}

/*
 * The document redacted; the same pointer when nothing matched.  With a
 * tuplestore, the reasons go there.
 */
static Jsonb *
rd_redact(Jsonb *doc, Tuplestorestate *report, TupleDesc desc)
{
	RdWalk		w = {0};
	JsonbParseState *st = NULL;
	JsonbValue *res;

	w.rules = rd_rules();
	w.report = report;
	w.report_desc = desc;
	w.track = report != NULL || w.rules->paths != NIL;
	res = rd_walk(&w, &doc->root, &st);
	if (!w.changed)
		return doc;
	return JsonbValueToJsonb(res);
}

/* ---------- SQL: the functions ---------- */

PG_FUNCTION_INFO_V1(lifecycle_redact_jsonb);
Datum
lifecycle_redact_jsonb(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc = PG_GETARG_JSONB_P(0);

	PG_RETURN_JSONB_P(rd_redact(doc, NULL, NULL));
}

PG_FUNCTION_INFO_V1(lifecycle_redaction_report);
Datum
lifecycle_redaction_report(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Jsonb	   *doc = PG_GETARG_JSONB_P(0);

	InitMaterializedSRF(fcinfo, 0);
	(void) rd_redact(doc, rsinfo->setResult, rsinfo->setDesc);
	return (Datum) 0;
}

/* ---------- the trigger ---------- */

#define RD_TRIGGER_NAME		"lifecycle_redact"

/* One column a trigger scrubs. */
typedef struct RdColumn
{
	AttrNumber	attnum;
	Oid			type;			/* JSONBOID, JSONOID or TEXTOID (base types) */
} RdColumn;

typedef struct RdTrigger
{
	Oid			tgoid;
	int			ncols;
	RdColumn   *cols;
} RdTrigger;

typedef struct RdTable
{
	LcEntry		entry;
	List	   *triggers;		/* RdTrigger *, resolved on first use */
} RdTable;

static LcCache *rd_table_cache = NULL;

static void
rd_table_build(LcEntry *entry, Relation rel)
{
	((RdTable *) entry)->triggers = NIL;
}

static const char *rd_trigger_hint =
	"Use lifecycle.enable_redaction('<table>', '{<column>, ...}'), or CREATE TRIGGER ... BEFORE INSERT OR UPDATE ON <table> FOR EACH ROW EXECUTE FUNCTION lifecycle.redact_trigger('<column>', ...).";

/* A column redaction can scrub: jsonb, json or text (or a domain over them). */
static RdColumn
rd_resolve_column(Relation rel, const char *name)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;
	RdColumn	col = {InvalidAttrNumber, InvalidOid};

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Oid			base;

		if (att->attisdropped || strcmp(NameStr(att->attname), name) != 0)
			continue;
		base = getBaseType(att->atttypid);
		if (base != JSONBOID && base != JSONOID && base != TEXTOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of table \"%s\" has type %s, not jsonb, json or text",
							name, RelationGetRelationName(rel), format_type_be(att->atttypid)),
					 errdetail("Redaction scrubs JSON documents, and text that holds JSON or free text."),
					 errhint("Name the jsonb, json or text columns to scrub.")));
		if (att->attgenerated)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_DEFINITION),
					 errmsg("column \"%s\" of table \"%s\" is a generated column",
							name, RelationGetRelationName(rel)),
					 errhint("Scrub the columns it is generated from.")));
		col.attnum = att->attnum;
		col.type = base;
		return col;
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column \"%s\" of table \"%s\" does not exist", name, RelationGetRelationName(rel)),
			 errhint("Name the jsonb, json or text columns to scrub.")));
	return col;					/* keep compiler quiet */
}

/* The columns named, or with none named every jsonb and json column. */
static int
rd_resolve_columns(Relation rel, char **names, int nnames, RdColumn *cols)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i,
				j,
				n = 0;

	if (nnames > RD_MAX_COLUMNS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a redaction trigger scrubs at most %d columns", RD_MAX_COLUMNS)));
	for (i = 0; i < nnames; i++)
	{
		RdColumn	c = rd_resolve_column(rel, names[i]);

		for (j = 0; j < n; j++)
			if (cols[j].attnum == c.attnum)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("column \"%s\" is named twice", names[i]),
						 errhint("Name each column to scrub once.")));
		cols[n++] = c;
	}
	if (nnames > 0)
		return n;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Oid			base = getBaseType(att->atttypid);

		if (!att->attisdropped && !att->attgenerated && (base == JSONBOID || base == JSONOID))
		{
			if (n == RD_MAX_COLUMNS)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("a redaction trigger scrubs at most %d columns", RD_MAX_COLUMNS),
						 errhint("Name the columns to scrub.")));
			cols[n].attnum = att->attnum;
			cols[n++].type = base;
		}
	}
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("table \"%s\" has no jsonb or json column to scrub", RelationGetRelationName(rel)),
				 errhint("Name the columns, e.g. EXECUTE FUNCTION lifecycle.redact_trigger('payload').")));
	return n;
}

static RdTrigger *
rd_trigger_info(TriggerData *td)
{
	Trigger    *tg = td->tg_trigger;
	RdTable    *t;
	RdTrigger  *info;
	ListCell   *lc;
	MemoryContext old;

	if (rd_table_cache == NULL)
		rd_table_cache = lc_cache_create("pg_lifecycle redaction table", sizeof(RdTable), rd_table_build);
	t = (RdTable *) lc_cache_lookup(rd_table_cache, td->tg_relation);
	foreach(lc, t->triggers)
		if (((RdTrigger *) lfirst(lc))->tgoid == tg->tgoid)
			return lfirst(lc);
	old = MemoryContextSwitchTo(t->entry.cxt);
	info = palloc0(sizeof(RdTrigger));
	info->tgoid = tg->tgoid;
	info->cols = palloc(sizeof(RdColumn) * Max(RelationGetDescr(td->tg_relation)->natts, 1));
	info->ncols = rd_resolve_columns(td->tg_relation, tg->tgargs, tg->tgnargs, info->cols);
	t->triggers = lappend(t->triggers, info);
	MemoryContextSwitchTo(old);
	return info;
}

/*
 * A json or text value scrubbed; NULL when it stays as it is.  JSON (for a
 * json column any JSON value, for text an object or array) is walked as a
 * document; other text is scanned by the detectors; JSON that jsonb cannot
 * hold (\u0000, a lone surrogate) cannot be scrubbed and is replaced whole.
 */
static text *
rd_redact_text(text *in, bool json)
{
	char	   *s = text_to_cstring(in);
	int			len = strlen(s);
	int			kind = rd_json_kind(s, len, json ? RD_JSON_ANY : RD_JSON_CONTAINER);

	if (kind == RD_JSON_UNUSABLE)
		return cstring_to_text(json ? "\"" RD_UNUSABLE_JSON "\"" : RD_UNUSABLE_JSON);
	if (kind == RD_JSON_YES)
	{
		Jsonb	   *doc = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s)));
		Jsonb	   *out = rd_redact(doc, NULL, NULL);
		StringInfoData buf;

		if (out == doc)
			return NULL;
		initStringInfo(&buf);
		(void) JsonbToCString(&buf, &out->root, VARSIZE(out));
		return cstring_to_text_with_len(buf.data, buf.len);
	}
	if (json)
		return NULL;			/* not JSON: the column's own input check says so */
	{
		RdWalk		w = {0};
		int			outlen;
		char	   *r;

		w.rules = rd_rules();
		r = rd_string(&w, s, len, &outlen);
		return r ? cstring_to_text_with_len(r, outlen) : NULL;
	}
}

/*
 * BEFORE INSERT OR UPDATE ... FOR EACH ROW: the named jsonb, json or text
 * columns of the new row, scrubbed.  It runs no SQL and acts only on the
 * row it is given, so it may be attached by hand; what is checked is that
 * it fires where it can do its job.
 */
PG_FUNCTION_INFO_V1(lifecycle_redact_trigger);
Datum
lifecycle_redact_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	RdTrigger  *info;
	HeapTuple	tuple;
	TupleDesc	desc;
	int			cols[RD_MAX_COLUMNS];
	Datum		values[RD_MAX_COLUMNS];
	bool		nulls[RD_MAX_COLUMNS];
	int			n = 0,
				i;

	if (!CALLED_AS_TRIGGER(fcinfo))
		lc_trigger_misuse(fcinfo, "not called by trigger manager", rd_trigger_hint);
	if (!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		lc_trigger_misuse(fcinfo, "must be fired for each row", rd_trigger_hint);
	if (!TRIGGER_FIRED_BEFORE(td->tg_event))
		lc_trigger_misuse(fcinfo, "must be fired BEFORE the row is written", rd_trigger_hint);
	if (!TRIGGER_FIRED_BY_INSERT(td->tg_event) && !TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		lc_trigger_misuse(fcinfo, "must be fired for INSERT or UPDATE", rd_trigger_hint);
	tuple = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	desc = RelationGetDescr(td->tg_relation);
	info = rd_trigger_info(td);
	for (i = 0; i < info->ncols; i++)
	{
		RdColumn   *c = &info->cols[i];
		bool		isnull;
		Datum		d = heap_getattr(tuple, c->attnum, desc, &isnull);
		Datum		out = (Datum) 0;

		if (isnull)
			continue;
		if (c->type == JSONBOID)
		{
			Jsonb	   *doc = DatumGetJsonbP(d);
			Jsonb	   *r = rd_redact(doc, NULL, NULL);

			if (r != doc)
				out = JsonbPGetDatum(r);
		}
		else
		{
			text	   *r = rd_redact_text(DatumGetTextPP(d), c->type == JSONOID);

			if (r)
				out = PointerGetDatum(r);
		}
		if (out == (Datum) 0)
			continue;
		cols[n] = c->attnum;
		values[n] = out;
		nulls[n++] = false;
	}
	if (n == 0)
		return PointerGetDatum(tuple);
	return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, n, cols, values, nulls));
}

/* ---------- enable_redaction / disable_redaction ---------- */

PG_FUNCTION_INFO_V1(lifecycle_enable_redaction);
Datum
lifecycle_enable_redaction(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Relation	rel;
	Datum	   *elems;
	bool	   *enulls;
	int			nelems = 0,
				i;
	char	  **names;
	RdColumn   *cols;
	StringInfoData args;
	char	   *sql;
	Oid			argtypes[2] = {OIDOID, NAMEARRAYOID};
	Datum		values[2];

	if (PG_ARGISNULL(0))
		lc_null_argument("table", "Pass the table, e.g. lifecycle.enable_redaction('public.telemetry_events', '{metadata}').");
	relid = PG_GETARG_OID(0);
	if (!PG_ARGISNULL(1))
		deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR,
						  &elems, &enulls, &nelems);
	names = palloc(sizeof(char *) * Max(nelems, 1));
	for (i = 0; i < nelems; i++)
	{
		if (enulls[i])
			lc_null_argument("a column name", "Name the jsonb, json or text columns to scrub.");
		names[i] = NameStr(*DatumGetName(elems[i]));
	}

	rel = lc_open_owned_table(relid, ShareRowExclusiveLock, "enable_redaction");
	cols = palloc(sizeof(RdColumn) * Max(RelationGetDescr(rel)->natts, 1));
	nelems = rd_resolve_columns(rel, names, nelems, cols);
	initStringInfo(&args);
	for (i = 0; i < nelems; i++)
		appendStringInfo(&args, "%s%s", i ? ", " : "",
						 quote_literal_cstr(NameStr(TupleDescAttr(RelationGetDescr(rel), cols[i].attnum - 1)->attname)));
	sql = psprintf("CREATE OR REPLACE TRIGGER " RD_TRIGGER_NAME
				   " BEFORE INSERT OR UPDATE ON %s FOR EACH ROW"
				   " EXECUTE FUNCTION " LIFECYCLE_SCHEMA ".redact_trigger(%s)",
				   lc_qualified_name(rel), args.data);
	elems = palloc(sizeof(Datum) * Max(nelems, 1));
	for (i = 0; i < nelems; i++)
		elems[i] = NameGetDatum(&TupleDescAttr(RelationGetDescr(rel), cols[i].attnum - 1)->attname);
	values[0] = ObjectIdGetDatum(relid);
	values[1] = PointerGetDatum(construct_array(elems, nelems, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR));
	relation_close(rel, NoLock);

	(void) rd_rules();			/* installed? */
	lc_enter();
	lc_ddl(sql);
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "INSERT INTO " LIFECYCLE_SCHEMA ".redaction_tables (relid, columns)"
					  " VALUES ($1, $2) ON CONFLICT (relid) DO UPDATE"
					  " SET columns = excluded.columns, enabled_at = pg_catalog.now()",
					  2, argtypes, values, NULL, SPI_OK_INSERT, 0);
	lc_leave();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(lifecycle_disable_redaction);
Datum
lifecycle_disable_redaction(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Relation	rel;
	bool		had;
	char	   *sql;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];

	if (PG_ARGISNULL(0))
		lc_null_argument("table", "Pass the table, e.g. lifecycle.disable_redaction('public.telemetry_events').");
	relid = PG_GETARG_OID(0);
	rel = lc_open_owned_table(relid, ShareRowExclusiveLock, "disable_redaction");
	had = lc_find_trigger(rel, RD_TRIGGER_NAME) != NULL;
	sql = psprintf("DROP TRIGGER " RD_TRIGGER_NAME " ON %s", lc_qualified_name(rel));
	relation_close(rel, NoLock);
	if (!had)
		ereport(NOTICE,
				(errmsg("table \"%s\" has no lifecycle redaction trigger, skipping", get_rel_name(relid))));
	lc_enter();
	if (had)
		lc_ddl(sql);
	values[0] = ObjectIdGetDatum(relid);
	(void) lc_sql_run(LC_EXTENSION_OWNER, InvalidOid,
					  "DELETE FROM " LIFECYCLE_SCHEMA ".redaction_tables WHERE relid OPERATOR(pg_catalog.=) $1",
					  1, argtypes, values, NULL, SPI_OK_DELETE, 0);
	lc_leave();
	PG_RETURN_VOID();
}

/* sql_drop: forget tables whose trigger is gone. */
static const char *const rd_forget_dropped[] = {
	"DELETE FROM " LIFECYCLE_SCHEMA ".redaction_tables r"
	" WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t"
	" WHERE t.tgrelid OPERATOR(pg_catalog.=) r.relid"
	" AND t.tgname OPERATOR(pg_catalog.=) '" RD_TRIGGER_NAME "')",
	NULL
};

const LcFeature lc_redaction_feature = {
	.name = "redaction",
	.init = rd_rules_init,
	.xact_end = rd_rules_xact_end,
	.forget_dropped = rd_forget_dropped,
	.config_table = "redaction_tables",
};

/* ---------- for audit: logged values ---------- */

/* The keyed pseudonym of value, or "[REDACTED]" without a usable key. */
char *
lc_redact_pseudonym(const char *value)
{
	StringInfoData out;

	initStringInfo(&out);
	if (!rd_key_ready(true) || !rd_hash(value, strlen(value), &out))
		return pstrdup("[REDACTED]");
	return out.data;
}

/*
 * A logged row (a jsonb object of column values): the values of the keys
 * in hash replaced by keyed pseudonyms ("[REDACTED]" without a usable
 * key, with the warning), then, if redact, the whole object passed through
 * the redaction rules.  The same pointer when nothing changed.
 */
Datum
lc_redact_logged_row(Datum datum, char **hash, int nhash, bool redact)
{
	Jsonb	   *row = DatumGetJsonbP(datum);

	if (nhash > 0 && JB_ROOT_IS_OBJECT(row))
	{
		JsonbParseState *st = NULL;
		JsonbIterator *it = JsonbIteratorInit(&row->root);
		JsonbValue	v,
				   *res = NULL;
		JsonbIteratorToken tok;
		bool		keyed = rd_key_ready(true);

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
			{
				JsonbValue	key = v;
				int			i;
				bool		hashed = false;

				tok = JsonbIteratorNext(&it, &v, true);
				for (i = 0; i < nhash && !hashed; i++)
					hashed = (int) strlen(hash[i]) == key.val.string.len &&
						memcmp(hash[i], key.val.string.val, key.val.string.len) == 0;
				(void) pushJsonbValue(&st, WJB_KEY, &key);
				if (hashed && v.type != jbvNull)
				{
					StringInfoData out;
					int			len;
					char	   *data = rd_value_text(&v, &len);

					initStringInfo(&out);
					if (!keyed || !rd_hash(data, len, &out))
						appendStringInfoString(&out, "[REDACTED]");
					rd_push_string(&st, WJB_VALUE, out.data, out.len);
				}
				else
					(void) pushJsonbValue(&st, WJB_VALUE, &v);
			}
			else
				res = pushJsonbValue(&st, tok, NULL);
		}
		row = JsonbValueToJsonb(res);
	}
	if (redact)
		row = rd_redact(row, NULL, NULL);
	return JsonbPGetDatum(row);
}
