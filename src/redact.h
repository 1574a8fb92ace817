/*-------------------------------------------------------------------------
 *
 * redact.h
 *	  Telemetry redaction: secrets and personal data scrubbed from jsonb
 *	  before it is stored.
 *
 *	  redact_detect.c  the value detectors: each finds, in a string, the
 *	                   spans it recognizes and validates (Luhn, mod-97,
 *	                   parsed addresses, decoded JWT headers), nothing else;
 *	  redact_rules.c   the rules (lifecycle.redaction_rules and
 *	                   redaction_safe_keys) cached per backend until either
 *	                   table changes; key words; the keyed hash;
 *	  redact.c         the document walk, redact_jsonb, redaction_report,
 *	                   the trigger and enable/disable_redaction.
 *
 *	  Order of precedence for a member of an object: a path rule naming
 *	  it, then a safe key (never a key rule), then key rules; values no
 *	  key or path rule takes are scanned by the detectors (strings, and
 *	  integers for cards), and strings that hold a JSON object or array
 *	  are parsed and walked like the document.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REDACT_H
#define REDACT_H

#include "pg_lifecycle.h"
#include "lib/stringinfo.h"

typedef enum RdAction
{
	RD_MASK,
	RD_HASH,
	RD_REMOVE,
	RD_PARTIAL
} RdAction;

typedef enum RdDetector
{
	RD_DET_PEM,					/* first: a key block holds other shapes */
	RD_DET_JWT,
	RD_DET_URL_CREDENTIALS,
	RD_DET_AUTH_HEADER,			/* Bearer / Basic credentials */
	RD_DET_EMAIL,
	RD_DET_AWS_KEY,
	RD_DET_IBAN,
	RD_DET_CARD,
	RD_DET_SSN,
	RD_DET_PHONE,
	RD_DET_IPV6,
	RD_DET_IPV4,
	RD_NDETECTORS
} RdDetector;

/* One match in a string: bytes [start, end) and what found it. */
typedef struct RdSpan
{
	int			start;
	int			end;
	RdDetector	detector;
} RdSpan;

/* redact_detect.c */
extern const char *const rd_detector_names[RD_NDETECTORS];
extern const char *const rd_detector_markers[RD_NDETECTORS];
extern int	rd_detector_by_name(const char *name);
extern int	rd_detect(const char *s, int len, const bool *enabled, RdSpan **spans);
extern bool rd_card_digits(const char *digits, int n);
#define RD_JSON_OBJECT		0		/* what rd_json_kind accepts */
#define RD_JSON_CONTAINER	1
#define RD_JSON_ANY			2
#define RD_JSON_NO			0		/* what rd_json_kind says */
#define RD_JSON_YES			1
#define RD_JSON_UNUSABLE	2
extern int	rd_json_kind(char *s, int len, int what);

/* redact_rules.c */
typedef struct RdKeyRule
{
	char	   *words;			/* normalized: lowercase words, one space apart */
	char	   *joined;			/* the words run together */
	char	   *name;			/* for markers: words joined by '_' */
	char	   *rule;			/* for reports: "key:<pattern>" */
	RdAction	action;
} RdKeyRule;

typedef struct RdPathRule
{
	List	   *segments;		/* char *: a key, "*" any key, "[*]" any element */
	char	   *rule;			/* "path:<pattern>" */
	char	   *name;			/* for markers: the last key */
	RdAction	action;
} RdPathRule;

typedef struct RdRules
{
	LcEntry		entry;			/* keyed by lifecycle.redaction_rules */
	int			nkeys;
	RdKeyRule  *keys;
	List	   *paths;			/* RdPathRule * */
	bool		detector_on[RD_NDETECTORS];
	RdAction	detector_action[RD_NDETECTORS];
	char	   *detector_rule[RD_NDETECTORS];	/* "detector:<name>" */
	int			nsafe;
	char	  **safe;			/* normalized words of safe keys */
	struct HTAB *key_memo;		/* raw key -> what rule takes it */
	long		memo_size;
} RdRules;

extern RdRules *rd_rules(void);
extern const char *rd_action_name(RdAction action);
extern int	rd_action_by_name(const char *name);
extern char *rd_normalize_key(const char *key, int len);
extern int	rd_key_rule(RdRules *rules, const char *key, int len);
extern bool rd_hash(const char *data, int len, StringInfo out);
extern bool rd_key_ready(bool warn);
extern void rd_rules_init(void);
extern void rd_rules_xact_end(void);

#define RD_KEY_NONE		(-1)
#define RD_KEY_SAFE		(-2)
#define RD_KEY_PLURAL	0x100000	/* or'ed into an index: matched in the plural */
#define RD_PLURAL		2

#endif							/* REDACT_H */
