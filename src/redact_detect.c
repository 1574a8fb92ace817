/*-------------------------------------------------------------------------
 *
 * redact_detect.c
 *	  The value detectors of telemetry redaction.  Each scans a string
 *	  for the one shape it knows and keeps only what validates: cards by
 *	  Luhn and issuer prefix, IBANs by mod-97, addresses by parsing, JWTs
 *	  by decoding their header.  A match must stand on its own: a card
 *	  inside a longer run of digits, letters or hex (a UUID, a digest) is
 *	  not a card.  rd_detect runs the enabled detectors and returns their
 *	  matches in order, overlaps resolved (the earliest start wins, then
 *	  the longer match, then the detector listed first).
 *
 *	  Plain C over bytes, no regular expressions: every detector is one
 *	  pass, and a string without the detector's anchor character ('@',
 *	  "://", a digit, "eyJ", ...) costs it a memchr.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/base64.h"

#include "redact.h"

const char *const rd_detector_names[RD_NDETECTORS] = {
	"private_key", "jwt", "url_credentials", "auth_header", "email", "aws_access_key",
	"iban", "card", "ssn", "phone", "ipv6", "ipv4"
};

const char *const rd_detector_markers[RD_NDETECTORS] = {
	"[private_key]", "[jwt]", "[credentials]", "[credential]", "[email]", "[aws_access_key]",
	"[iban]", "[card]", "[ssn]", "[phone]", "[ipv6]", "[ipv4]"
};

int
rd_detector_by_name(const char *name)
{
	int			i;

	for (i = 0; i < RD_NDETECTORS; i++)
		if (strcmp(name, rd_detector_names[i]) == 0)
			return i;
	return -1;
}

#define IS_DIGIT(c)		((c) >= '0' && (c) <= '9')
#define IS_UPPER(c)		((c) >= 'A' && (c) <= 'Z')
#define IS_LOWER(c)		((c) >= 'a' && (c) <= 'z')
#define IS_ALNUM(c)		(IS_DIGIT(c) || IS_UPPER(c) || IS_LOWER(c))
#define IS_HEX(c)		(IS_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))
#define IS_B64URL(c)	(IS_ALNUM(c) || (c) == '-' || (c) == '_')

typedef struct RdScan
{
	const char *s;
	int			len;
	RdSpan	   *spans;
	int			n;
	int			max;
} RdScan;

static void
rd_add(RdScan *sc, int start, int end, RdDetector d)
{
	if (end > start)
	{
		if (sc->n == sc->max)
		{
			sc->max = sc->max ? sc->max * 2 : 8;
			sc->spans = sc->spans ? repalloc_huge(sc->spans, sizeof(RdSpan) * sc->max) :
				palloc(sizeof(RdSpan) * sc->max);
		}
		sc->spans[sc->n].start = start;
		sc->spans[sc->n].end = end;
		sc->spans[sc->n].detector = d;
		sc->n++;
	}
}

/*
 * True when the token [start, end) stands alone: not glued to letters or
 * digits, nor joined to them by one '-', '.' or '_' (a UUID's groups, a
 * version, an identifier).
 */
static bool
rd_alone_start(const char *s, int len, int start)
{
	char		p;

	if (start == 0)
		return true;
	p = s[start - 1];
	if (IS_ALNUM(p))
		return false;
	return !((p == '-' || p == '.' || p == '_') && start > 1 && IS_ALNUM(s[start - 2]));
}

static bool
rd_alone_end(const char *s, int len, int end)
{
	char		n;

	if (end >= len)
		return true;
	n = s[end];
	if (IS_ALNUM(n))
		return false;
	return !((n == '-' || n == '.' || n == '_') && end + 1 < len && IS_ALNUM(s[end + 1]));
}

static bool
rd_alone(const char *s, int len, int start, int end)
{
	return rd_alone_start(s, len, start) && rd_alone_end(s, len, end);
}

static bool
rd_has(const char *s, int len, char c)
{
	return memchr(s, c, len) != NULL;
}

static int
rd_find(const char *s, int len, int from, const char *needle)
{
	int			nl = strlen(needle);
	int			i;

	for (i = from; i + nl <= len; i++)
		if (s[i] == needle[0] && memcmp(s + i, needle, nl) == 0)
			return i;
	return -1;
}

/* ---------- payment cards ---------- */

static bool
rd_luhn(const char *d, int n)
{
	int			sum = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		int			v = d[n - 1 - i] - '0';

		if (i % 2 == 1)
		{
			v *= 2;
			if (v > 9)
				v -= 9;
		}
		sum += v;
	}
	return sum % 10 == 0;
}

/* The issuer prefixes and lengths of the major card networks. */
static bool
rd_card_issuer(const char *d, int n)
{
	int			p2 = (d[0] - '0') * 10 + (d[1] - '0');
	int			p3 = p2 * 10 + (d[2] - '0');
	int			p4 = p3 * 10 + (d[3] - '0');

	switch (d[0])
	{
		case '4':				/* Visa */
			return n == 13 || n == 16 || n == 19;
		case '2':				/* Mastercard 2-series */
			return n == 16 && p4 >= 2221 && p4 <= 2720;
		case '5':				/* Mastercard, Maestro */
			if (p2 >= 51 && p2 <= 55)
				return n == 16;
			return (p2 == 50 || (p2 >= 56 && p2 <= 58)) && n >= 13;
		case '3':
			if (p2 == 34 || p2 == 37)	/* American Express */
				return n == 15;
			if ((p3 >= 300 && p3 <= 305) || p2 == 36 || p2 == 38 || p2 == 39)
				return n >= 14;	/* Diners Club */
			return p4 >= 3528 && p4 <= 3589 && n >= 16; /* JCB */
		case '6':				/* Discover, UnionPay, Maestro */
			return n >= 13;
		default:
			return false;
	}
}

/* Digits that make a card number (also for JSON integers). */
bool
rd_card_digits(const char *digits, int n)
{
	return n >= 13 && n <= 19 && rd_card_issuer(digits, n) && rd_luhn(digits, n);
}

/*
 * A run of digits that is no card as a whole may hold cards among its
 * space-separated pieces: "4111 1111 1111 1111 123" (a CVC after it), two
 * cards one space apart.  Consecutive pieces, the longest that is a card
 * from each piece on; the run's own ends must stand alone.
 */
static void
rd_card_pieces(RdScan *sc, int from, int to)
{
	const char *s = sc->s;
	int			starts[64],
				ends[64],
				np = 0,
				p,
				k = from;

	while (k < to && np < 64)
	{
		starts[np] = k;
		while (k < to && s[k] != ' ')
			k++;
		ends[np++] = k;
		k++;
	}
	for (p = 0; p < np; p++)
	{
		char		digits[20];
		int			nd = 0,
					q,
					best = -1;

		for (q = p; q < np && nd <= 19; q++)
		{
			for (k = starts[q]; k < ends[q]; k++)
				if (IS_DIGIT(s[k]) && nd++ < 20)
					digits[nd - 1] = s[k];
			if (nd <= 19 && rd_card_digits(digits, nd) &&
				(p > 0 || rd_alone_start(s, sc->len, starts[p])) &&
				(q < np - 1 || rd_alone_end(s, sc->len, ends[q])))
				best = q;
		}
		if (best >= 0)
		{
			rd_add(sc, starts[p], ends[best], RD_DET_CARD);
			p = best;
		}
	}
}

static void
rd_cards(RdScan *sc)
{
	const char *s = sc->s;
	int			i = 0;

	while (i < sc->len)
	{
		char		digits[20];
		int			nd = 0;
		int			j = i;

		if (!IS_DIGIT(s[i]))
		{
			i++;
			continue;
		}
		/* the whole run: digits, one space or dash between two of them */
		while (j < sc->len)
		{
			if (IS_DIGIT(s[j]))
			{
				if (nd < 20)
					digits[nd] = s[j];
				nd++;
				j++;
			}
			else if ((s[j] == ' ' || s[j] == '-') && j + 1 < sc->len && IS_DIGIT(s[j + 1]))
				j++;
			else
				break;
		}
		if (rd_card_digits(digits, nd) && rd_alone(s, sc->len, i, j))
			rd_add(sc, i, j, RD_DET_CARD);
		else if (nd > 13 && memchr(s + i, ' ', j - i) != NULL)
			rd_card_pieces(sc, i, j);
		i = j;
	}
}

/* ---------- IBAN ---------- */

static bool
rd_mod97(const char *c, int n)
{
	int			rem = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		char		ch = c[(i + 4) % n];

		if (IS_DIGIT(ch))
			rem = (rem * 10 + (ch - '0')) % 97;
		else
			rem = (rem * 100 + (ch - 'A' + 10)) % 97;
	}
	return rem == 1;
}

static void
rd_ibans(RdScan *sc)
{
	const char *s = sc->s;
	int			i;

	for (i = 0; i + 15 <= sc->len; i++)
	{
		char		chars[35];
		int			ends[35];	/* end of the run after each char */
		int			n = 0;
		int			j;

		if (!IS_UPPER(s[i]) || !IS_UPPER(s[i + 1]) || !IS_DIGIT(s[i + 2]) || !IS_DIGIT(s[i + 3]) ||
			(i > 0 && IS_ALNUM(s[i - 1])))
			continue;
		j = i;
		while (j < sc->len && n < 35)
		{
			if (IS_UPPER(s[j]) || IS_DIGIT(s[j]))
			{
				chars[n] = s[j];
				ends[n++] = ++j;
			}
			else if (s[j] == ' ' && n % 4 == 0 && j + 1 < sc->len &&
					 (IS_UPPER(s[j + 1]) || IS_DIGIT(s[j + 1])))
				j++;
			else
				break;
		}
		/* the longest prefix that validates and ends the token */
		for (; n >= 15; n--)
		{
			if (n > 34 || (ends[n - 1] < sc->len && IS_ALNUM(s[ends[n - 1]])))
				continue;
			if (rd_mod97(chars, n))
			{
				rd_add(sc, i, ends[n - 1], RD_DET_IBAN);
				i = ends[n - 1] - 1;
				break;
			}
		}
	}
}

/* ---------- US social security numbers: AAA-GG-SSSS ---------- */

static void
rd_ssns(RdScan *sc)
{
	const char *s = sc->s;
	int			i;

	for (i = 0; i + 11 <= sc->len; i++)
	{
		const char *p = s + i;
		int			k;
		bool		shape = true;

		for (k = 0; k < 11 && shape; k++)
			shape = (k == 3 || k == 6) ? p[k] == '-' : IS_DIGIT(p[k]);
		if (!shape || !rd_alone(s, sc->len, i, i + 11))
			continue;
		if ((p[0] == '0' && p[1] == '0' && p[2] == '0') ||
			(p[0] == '6' && p[1] == '6' && p[2] == '6') || p[0] == '9' ||
			(p[4] == '0' && p[5] == '0') ||
			(p[7] == '0' && p[8] == '0' && p[9] == '0' && p[10] == '0'))
			continue;
		rd_add(sc, i, i + 11, RD_DET_SSN);
		i += 10;
	}
}

/* ---------- phone numbers in international form: +CC ... ---------- */

static void
rd_phones(RdScan *sc)
{
	const char *s = sc->s;
	int			i;

	for (i = 0; i < sc->len; i++)
	{
		int			j,
					start = i,
					last = -1,
					nd = 0,
					seps = 0;
		int			groups[16];
		int			ng = 0;

		if (s[i] != '+' || i + 1 >= sc->len || !IS_DIGIT(s[i + 1]) || s[i + 1] == '0' ||
			(i > 0 && (IS_ALNUM(s[i - 1]) || s[i - 1] == '+')))
			continue;
		for (j = i + 1; j < sc->len; j++)
		{
			char		c = s[j];

			if (IS_DIGIT(c))
			{
				if (seps > 0 || ng == 0)
				{
					if (ng < 16)
						groups[ng] = 0;
					ng++;
				}
				if (ng <= 16)
					groups[ng - 1]++;
				nd++;
				seps = 0;
				last = j;
			}
			else if ((c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') && seps < 2)
				seps++;
			else
				break;
		}
		i = last;
		/* without separators, 10 digits at least: +20240115 is a date */
		if (nd < (ng == 1 ? 10 : 8) || nd > 15 || (last + 1 < sc->len && IS_ALNUM(s[last + 1])))
			continue;
		/* an expanded ISO-8601 date (+2026-12-01) is not a phone number */
		if (ng == 3 && groups[0] == 4 && groups[1] == 2 && groups[2] == 2)
			continue;
		rd_add(sc, start, last + 1, RD_DET_PHONE);
	}
}

/* ---------- IP addresses ---------- */

/* Parse a dotted quad at s; its length, or 0. */
static int
rd_parse_ipv4(const char *s, int len)
{
	int			i = 0,
				part;

	for (part = 0; part < 4; part++)
	{
		int			v = 0,
					nd = 0;

		if (part > 0)
		{
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
		while (i < len && IS_DIGIT(s[i]) && nd < 4)
		{
			v = v * 10 + (s[i] - '0');
			nd++;
			i++;
		}
		if (nd == 0 || nd > 3 || v > 255 || (nd > 1 && s[i - nd] == '0'))
			return 0;
	}
	return i;
}

static void
rd_ipv4s(RdScan *sc)
{
	const char *s = sc->s;
	int			i;

	for (i = 0; i < sc->len; i++)
	{
		int			n;

		if (!IS_DIGIT(s[i]) || (i > 0 && (IS_ALNUM(s[i - 1]) || s[i - 1] == '.')))
			continue;
		n = rd_parse_ipv4(s + i, sc->len - i);
		if (n == 0)
			continue;
		/* not glued to more: 1.2.3.4.5, 1.2.3.4a */
		if (!rd_alone_end(s, sc->len, i + n))
			continue;
		rd_add(sc, i, i + n, RD_DET_IPV4);
		i += n - 1;
	}
}

/* Is s[0..len) an IPv6 address (RFC 4291 text forms, an IPv4 tail allowed)? */
static bool
rd_valid_ipv6(const char *s, int len)
{
	int			groups = 0,
				i = 0;
	bool		compressed = false;
	int			hexdigits = 0;

	if (len >= 2 && s[0] == ':' && s[1] == ':')
	{
		compressed = true;
		i = 2;
		if (i == len)
			return false;		/* "::" alone */
	}
	else if (len > 0 && s[0] == ':')
		return false;
	while (i < len)
	{
		int			nd = 0;
		int			j = i;

		while (j < len && IS_HEX(s[j]) && nd < 5)
		{
			j++;
			nd++;
		}
		if (j < len && s[j] == '.')
		{
			/* an IPv4 tail, worth two groups, and the end */
			if (rd_parse_ipv4(s + i, len - i) != len - i)
				return false;
			groups += 2;
			hexdigits++;
			i = len;
			break;
		}
		if (nd == 0 || nd > 4)
			return false;
		hexdigits += nd;
		groups++;
		i = j;
		if (i == len)
			break;
		if (s[i] != ':')
			return false;
		i++;
		if (i < len && s[i] == ':')
		{
			if (compressed)
				return false;
			compressed = true;
			i++;
			if (i == len)
				break;
		}
		else if (i == len)
			return false;		/* a trailing single ':' */
	}
	/* "A::B", a[::2]: too little to be an address, but ::1 is one */
	if (hexdigits < 4 && !(len == 3 && memcmp(s, "::1", 3) == 0))
		return false;
	return compressed ? groups < 8 : groups == 8;
}

static void
rd_ipv6s(RdScan *sc)
{
	const char *s = sc->s;
	int			i;

	if (!rd_has(s, sc->len, ':'))
		return;
	for (i = 0; i < sc->len; i++)
	{
		int			j = i,
					colons = 0;

		if (!(IS_HEX(s[i]) || s[i] == ':') ||
			(i > 0 && (IS_ALNUM(s[i - 1]) || s[i - 1] == ':' || s[i - 1] == '.')))
			continue;
		while (j < sc->len && (IS_HEX(s[j]) || s[j] == ':' || s[j] == '.'))
			colons += s[j++] == ':';
		/* a sentence may end right after it */
		while (j > i && s[j - 1] == '.')
			j--;
		if (colons >= 2 && (j == sc->len || !IS_ALNUM(s[j])) && rd_valid_ipv6(s + i, j - i))
			rd_add(sc, i, j, RD_DET_IPV6);
		i = j > i ? j - 1 : i;
	}
}

/* ---------- e-mail addresses ---------- */

#define IS_HIGH(c)		((unsigned char) (c) >= 0x80)
#define IS_LOCAL(c)		(IS_ALNUM(c) || IS_HIGH(c) || (c) == '.' || (c) == '_' || (c) == '%' || (c) == '+' || (c) == '-')

static void
rd_emails(RdScan *sc)
{
	const char *s = sc->s;
	int			at = -1;

	while ((at = rd_find(s, sc->len, at + 1, "@")) >= 0)
	{
		int			start = at,
					end = at + 1,
					lastdot = -1,
					k;
		bool		tld = true,
					puny;

		while (start > 0 && IS_LOCAL(s[start - 1]))
			start--;
		while (start < at && s[start] == '.')
			start++;
		if (start == at)
			continue;
		while (end < sc->len && (IS_ALNUM(s[end]) || IS_HIGH(s[end]) || s[end] == '-' || s[end] == '.'))
		{
			if (s[end] == '.')
				lastdot = end;
			end++;
		}
		/* a sentence's full stop, a dangling dash */
		while (end > at + 1 && (s[end - 1] == '.' || s[end - 1] == '-'))
			end--;
		if (lastdot >= end - 1)
		{
			lastdot = -1;
			for (k = at + 1; k < end; k++)
				if (s[k] == '.')
					lastdot = k;
		}
		if (lastdot <= at + 1 || end - lastdot - 1 < 2 || s[at + 1] == '.' || s[at + 1] == '-')
			continue;
		/* letters, an internationalized TLD, or its punycode (xn--) */
		puny = end - lastdot - 1 > 4 && pg_strncasecmp(s + lastdot + 1, "xn--", 4) == 0;
		for (k = lastdot + 1; k < end && tld && !puny; k++)
			tld = IS_UPPER(s[k]) || IS_LOWER(s[k]) || IS_HIGH(s[k]);
		if (tld && (end == sc->len || s[end] != '@'))
			rd_add(sc, start, end, RD_DET_EMAIL);
		at = end - 1;
	}
}

/* ---------- credentials in URLs: scheme://user:password@host ---------- */

static void
rd_url_credentials(RdScan *sc)
{
	const char *s = sc->s;
	int			p = -1;

	while ((p = rd_find(s, sc->len, p + 1, "://")) >= 0)
	{
		int			k = p,
					u = p + 3,
					colon = -1,
					at = -1;

		while (k > 0 && (IS_ALNUM(s[k - 1]) || s[k - 1] == '+' || s[k - 1] == '.' || s[k - 1] == '-'))
			k--;
		if (k == p || !(IS_UPPER(s[k]) || IS_LOWER(s[k])))
			continue;

		/* the authority ends at / ? # or a space; userinfo ends at its last @ */
		while (u < sc->len && s[u] != '/' && s[u] != '?' && s[u] != '#' &&
			   s[u] != '[' && s[u] != ']' && s[u] != '"' && s[u] != ' ' && s[u] != '\t' &&
			   s[u] != '\n' && s[u] != '\r')
		{
			if (s[u] == ':' && colon < 0)
				colon = u;
			if (s[u] == '@')
				at = u;
			u++;
		}
		if (at < 0 || colon < 0 || colon > at || colon + 1 == at)
			continue;
		u = at;
		if (u + 1 >= sc->len || !(IS_ALNUM(s[u + 1]) || s[u + 1] == '['))
			continue;
		rd_add(sc, p + 3, u, RD_DET_URL_CREDENTIALS);
		p = u;
	}
}

/* ---------- JSON text ---------- */

/* Numbers jsonb may refuse (numeric's range): a long text or a big exponent. */
static LC_JSON_ACTION
rd_json_scalar(void *state, char *token, JsonTokenType type)
{
	if (type == JSON_TOKEN_NUMBER && token != NULL)
	{
		const char *e = strpbrk(token, "eE");

		if (strlen(token) > 1000 || (e != NULL && (strlen(e + 1) > 4 || labs(atol(e + 1)) > 1000)))
			*(bool *) state = true;
	}
	LC_JSON_DONE;
}

/*
 * What s[0..len) is as JSON: RD_JSON_NO (not JSON of the kind asked for:
 * an object, a container, or any value), RD_JSON_YES (jsonb can hold it),
 * or RD_JSON_UNUSABLE (valid JSON that jsonb refuses: \u0000, a lone
 * surrogate, a number out of numeric's range).  The parser returns error
 * codes and never raises, so a string that only looks like JSON stays a
 * string, and one jsonb would refuse is known before it is converted.
 */
int
rd_json_kind(char *s, int len, int what)
{
	JsonSemAction sem;
	bool		unsafe = false;
	int			i = 0;

	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	if (i == len)
		return RD_JSON_NO;
	if (what != RD_JSON_ANY && s[i] != '{' && (what == RD_JSON_OBJECT || s[i] != '['))
		return RD_JSON_NO;
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &unsafe;
	sem.scalar = rd_json_scalar;
	if (pg_parse_json(lc_compat_json_lexer(s, len, false), &sem) != JSON_SUCCESS)
		return RD_JSON_NO;
	if (unsafe)
		return RD_JSON_UNUSABLE;
	if (pg_parse_json(lc_compat_json_lexer(s, len, true), &nullSemAction) != JSON_SUCCESS)
		return RD_JSON_UNUSABLE;
	return RD_JSON_YES;
}

/* ---------- JSON Web Tokens ---------- */

/* Does the base64url text decode to a JSON object? */
static bool
rd_jwt_header(const char *b, int n)
{
	char		std[1024];
	char		dec[1024];
	int			i,
				len;

	if (n < 4 || n > 1000)
		return false;
	for (i = 0; i < n; i++)
		std[i] = b[i] == '-' ? '+' : b[i] == '_' ? '/' : b[i];
	while (i % 4 != 0)
		std[i++] = '=';
	len = lc_compat_b64_decode(std, i, dec, sizeof(dec));
	if (len < 2)
		return false;
	return rd_json_kind(dec, len, RD_JSON_OBJECT) == RD_JSON_YES;
}

static int
rd_b64url_run(const char *s, int len, int i)
{
	while (i < len && IS_B64URL(s[i]))
		i++;
	return i;
}

static void
rd_jwts(RdScan *sc)
{
	const char *s = sc->s;
	int			p = -1;

	while ((p = rd_find(s, sc->len, p + 1, "eyJ")) >= 0)
	{
		int			ends[5];
		int			nseg = 0,
					j = p;

		if (p > 0 && (IS_B64URL(s[p - 1]) || s[p - 1] == '.'))
			continue;
		while (nseg < 5)
		{
			j = rd_b64url_run(s, sc->len, j);
			ends[nseg++] = j;
			if (j < sc->len && s[j] == '.')
				j++;
			else
				break;
		}
		/* three segments (JWS, the signature may be empty) or five (JWE) */
		if ((nseg != 3 && nseg != 5) || ends[1] == ends[0] + 1 ||
			(j < sc->len && (IS_B64URL(s[j]) || s[j] == '.')))
			continue;
		if (!rd_jwt_header(s + p, ends[0] - p))
			continue;
		rd_add(sc, p, ends[nseg - 1], RD_DET_JWT);
		p = ends[nseg - 1] - 1;
	}
}

/* ---------- Authorization credentials: Bearer <token>, Basic <base64> ---------- */

static bool
rd_word_at(const char *s, int len, int i, const char *word)
{
	int			n = strlen(word);

	return i + n <= len && pg_strncasecmp(s + i, word, n) == 0 &&
		(i == 0 || !IS_ALNUM(s[i - 1]));
}

static void
rd_auth_headers(RdScan *sc)
{
	const char *s = sc->s;
	int			i;

	for (i = 0; i < sc->len; i++)
	{
		bool		basic;
		int			t,
					e,
					k;
		bool		symbol = false;

		if (s[i] != 'b' && s[i] != 'B')
			continue;
		if (rd_word_at(s, sc->len, i, "bearer "))
			basic = false, t = i + 7;
		else if (rd_word_at(s, sc->len, i, "basic "))
			basic = true, t = i + 6;
		else
			continue;
		while (t < sc->len && s[t] == ' ')
			t++;
		for (e = t; e < sc->len; e++)
		{
			char		c = s[e];

			if (IS_ALNUM(c))
				continue;
			if (c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=' || c == '-')
				symbol = true;
			else
				break;
		}
		while (e > t && s[e - 1] == '.')
			e--;
		if (e - t < 8)
			continue;
		if (basic)
		{
			char		dec[256];
			int			n;

			if ((e - t) % 4 != 0 || e - t > 340)
				continue;
			n = lc_compat_b64_decode(s + t, e - t, dec, sizeof(dec));
			if (n < 2 || memchr(dec, ':', n) == NULL)
				continue;
		}
		else
		{
			for (k = t; k < e && !symbol; k++)
				symbol = IS_DIGIT(s[k]);
			if (!symbol)
				continue;		/* a word: "bearer authentication" */
		}
		rd_add(sc, t, e, RD_DET_AUTH_HEADER);
		i = e - 1;
	}
}

/* ---------- PEM private key blocks ---------- */

static void
rd_private_keys(RdScan *sc)
{
	const char *s = sc->s;
	int			p = -1;

	while ((p = rd_find(s, sc->len, p + 1, "-----BEGIN ")) >= 0)
	{
		int			eol = p + 11,
					end;
		int			key;

		while (eol < sc->len && s[eol] != '\n' && eol - p < 80)
			eol++;
		key = rd_find(s, eol, p, "PRIVATE KEY");
		if (key < 0)
			continue;
		end = rd_find(s, sc->len, eol, "-----END ");
		if (end >= 0)
		{
			int			close = rd_find(s, sc->len, end + 9, "-----");

			end = close >= 0 ? close + 5 : sc->len;
		}
		else
			end = sc->len;		/* cut short: still secret */
		rd_add(sc, p, end, RD_DET_PEM);
		p = end - 1;
	}
}

/* ---------- AWS access key ids ---------- */

static void
rd_aws_keys(RdScan *sc)
{
	static const char *const prefixes[] = {
		"AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "AROA",
		"APKA", "ASCA"
	};
	const char *s = sc->s;
	int			i;

	for (i = 0; i + 20 <= sc->len; i++)
	{
		int			k;
		bool		ok = false;

		if (s[i] != 'A' || (i > 0 && IS_ALNUM(s[i - 1])))
			continue;
		for (k = 0; k < lengthof(prefixes) && !ok; k++)
			ok = memcmp(s + i, prefixes[k], 4) == 0;
		for (k = 4; k < 20 && ok; k++)
			ok = IS_UPPER(s[i + k]) || IS_DIGIT(s[i + k]);
		if (!ok || (i + 20 < sc->len && IS_ALNUM(s[i + 20])))
			continue;
		rd_add(sc, i, i + 20, RD_DET_AWS_KEY);
		i += 19;
	}
}

/* ---------- all of them ---------- */

static int
rd_span_cmp(const void *a, const void *b)
{
	const RdSpan *x = a;
	const RdSpan *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end)
		return x->end > y->end ? -1 : 1;
	return (int) x->detector - (int) y->detector;
}

/*
 * The matches of the enabled detectors in s, in order and without
 * overlaps, in *spans (palloc'd when there are any).
 */
int
rd_detect(const char *s, int len, const bool *on, RdSpan **spans)
{
	RdScan		sc = {s, len, NULL, 0, 0};
	RdSpan	   *sp;
	int			i,
				kept,
				last_end,
				ndigit = 0,
				ncolon = 0;
	bool		at = false,
				scheme = false,
				dash5 = false,
				eyj = false,
				bword = false,
				aws = false,
				iban = false,
				plus_digit = false,
				digit_dash_digit = false,
				digit_dot_digit = false;

	/*
	 * One pass for the anchors every detector needs; a detector runs only
	 * when its anchor is there (most strings are timestamps, ids, words).
	 */
	for (i = 0; i < len; i++)
	{
		char		c = s[i];
		char		n1 = i + 1 < len ? s[i + 1] : '\0';
		char		n2 = i + 2 < len ? s[i + 2] : '\0';

		if (IS_DIGIT(c))
		{
			ndigit++;
			digit_dash_digit |= n1 == '-' && IS_DIGIT(n2);
			digit_dot_digit |= n1 == '.' && IS_DIGIT(n2);
			continue;
		}
		if (IS_UPPER(c))
		{
			aws |= c == 'A' && IS_UPPER(n1) && IS_UPPER(n2);
			iban |= IS_UPPER(n1) && IS_DIGIT(n2) && i + 3 < len && IS_DIGIT(s[i + 3]);
			bword |= c == 'B' && (n1 == 'e' || n1 == 'a' || n1 == 'E' || n1 == 'A');
			continue;
		}
		switch (c)
		{
			case '@':
				at = true;
				break;
			case ':':
				ncolon++;
				scheme |= n1 == '/' && n2 == '/';
				break;
			case '+':
				plus_digit |= IS_DIGIT(n1);
				break;
			case '-':
				dash5 |= i + 4 < len && memcmp(s + i, "-----", 5) == 0;
				break;
			case 'e':
				eyj |= n1 == 'y' && n2 == 'J';
				break;
			case 'b':
				bword |= n1 == 'e' || n1 == 'a' || n1 == 'E' || n1 == 'A';
				break;
		}
	}
	if (on[RD_DET_PEM] && dash5)
		rd_private_keys(&sc);
	if (on[RD_DET_JWT] && eyj)
		rd_jwts(&sc);
	if (on[RD_DET_URL_CREDENTIALS] && scheme && at)
		rd_url_credentials(&sc);
	if (on[RD_DET_AUTH_HEADER] && bword)
		rd_auth_headers(&sc);
	if (on[RD_DET_EMAIL] && at)
		rd_emails(&sc);
	if (on[RD_DET_AWS_KEY] && aws)
		rd_aws_keys(&sc);
	if (on[RD_DET_IBAN] && iban)
		rd_ibans(&sc);
	if (on[RD_DET_CARD] && ndigit >= 13)
		rd_cards(&sc);
	if (on[RD_DET_SSN] && digit_dash_digit && ndigit >= 9)
		rd_ssns(&sc);
	if (on[RD_DET_PHONE] && plus_digit && ndigit >= 8)
		rd_phones(&sc);
	if (on[RD_DET_IPV4] && digit_dot_digit && ndigit >= 4)
		rd_ipv4s(&sc);
	if (on[RD_DET_IPV6] && ncolon >= 2)
		rd_ipv6s(&sc);
	*spans = sp = sc.spans;
	if (sc.n <= 1)
		return sc.n;
	qsort(sp, sc.n, sizeof(RdSpan), rd_span_cmp);
	kept = 0;
	last_end = -1;
	for (i = 0; i < sc.n; i++)
	{
		if (sp[i].start < last_end)
			continue;
		sp[kept++] = sp[i];
		last_end = sp[i].end;
	}
	return kept;
}
