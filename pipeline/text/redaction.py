"""Remove personal data and secrets from ticket text before it leaves the tenant boundary.

Two audiences: the LLM prompt (``redact_pii``, or a :class:`Redactor` per prompt: contact
details, card numbers and secrets, and the ticket's requester by name and e-mail) and our own
logs (``redact_secrets_only``: credentials must never be written down, while emails in logs
are still useful for support). Matches are replaced by typed placeholders so the model still
knows *what* was there ("the user's [PHONE]", "[REQUESTER] cannot log in") without seeing it;
a :class:`Redactor` counts what it replaced by kind (never the values) for the metrics and
``ai-agents explain``.

The requester is named exactly by SDP's payload (``requester.name``, ``requester.email_id``):
the e-mail is replaced wherever it appears (any case), the full name as written or as "Last,
First" (any case, any spacing), and each part of the name of three letters or more where it
stands capitalised as a word ("John", "SMITH"), unless the part is also a common English word
("Will", "May", "Bill") that a ticket uses as one.

False positives cost more than they seem: an IP address rewritten as ``[PHONE]`` breaks the
asset cross-reference, and a ticket number rewritten as ``[CARD]`` breaks similar-ticket
links. So phone and card candidates that overlap an IP address or a date are left alone, card
numbers must carry a real issuer prefix and pass the Luhn check, and bare digit runs only count
as phone numbers after a word such as "phone" or "call".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from pipeline.text.ticket_text import iter_ip_mentions

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CARD = "[CARD]"
SECRET = "[SECRET]"
REQUESTER = "[REQUESTER]"
REQUESTER_EMAIL = "[REQUESTER_EMAIL]"
# The kinds a Redactor counts (the ai_agents_redactions_total{kind} label values).
KINDS = ("secret", "email", "card", "phone", "requester_name", "requester_email")
# Name parts that are also everyday words: replaced only as part of the full name.
# fmt: off
_COMMON_WORDS = frozenset({
    "will", "may", "june", "april", "august", "bill", "mark", "grant", "rich", "rose", "frank",
    "joy", "hope", "guy", "page", "long", "young", "king", "lane", "hill", "dean", "case", "cook",
    "price", "chase", "hunter", "baker", "summer", "wade", "bob", "art", "ray", "max", "pat",
    "sue", "don", "jack", "gene", "sky", "drew", "new", "best", "brown", "green", "white",
    "black", "gray", "grey", "can", "miles", "ford", "dell", "apple",
})
# fmt: on

_PRIVATE_KEY_RE = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|.*\Z)",
    re.DOTALL,
)
# Well-known token formats are secrets wherever they appear, whatever label precedes them.
_TOKEN_RES = [
    re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16}\b"),
    re.compile(r"(?<![\w-])sk-(?:or-v1-|proj-|ant-[a-z0-9]+-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{30,}\b"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
]
_AUTH_SCHEME_RE = re.compile(
    r"(?P<keep>\b(?:Bearer|Zoho-oauthtoken|(?<=Authorization: )Basic)\s+)"
    r"(?P<value>[A-Za-z0-9\-._~+/]{8,}=*)",
    re.IGNORECASE,
)
_URL_CREDENTIALS_RE = re.compile(r"(?P<keep>://[^/\s:@]+:)(?P<value>[^/\s@]+)(?=@)")

_SECRET_KEYS = (
    r"(?:[A-Za-z0-9]+[_\-.]){0,4}"  # bounded: unbounded nesting is quadratic on "1-1-1-..."
    r"(?:password|passwd|passphrase|pwd|pw|pass|secret|client[_\-]?secret|api[_\-]?key|apikey"
    r"|access[_\-]?key(?:[_\-]?id)?|secret[_\-]?(?:access[_\-]?)?key|private[_\-]?key"
    r"|(?:access|refresh|auth|api|session|bearer|id)[_\-]?token|token|sas|shared[_\-]?key"
    r"|pin|otp)"
)
# "password=x" and JSON '"password": x' assign a value; "password: x", "password is x" and
# "reset to x" also occur in prose ("password: expired"), so those need a secret-looking value.
_STRICT_ASSIGN_RE = re.compile(
    rf"(?P<keep>\b{_SECRET_KEYS}(?:[\"'][ \t]*:|[\"']?[ \t]*(?:=|:=|=>))[ \t]*)"
    r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|(?!\[)[^\s\"'<;,&]+)",
    re.IGNORECASE,
)
_LOOSE_ASSIGN_RE = re.compile(
    rf"(?P<keep>\b{_SECRET_KEYS}[\"']?(?:[ \t]*:[ \t]*"
    r"|[ \t]+(?:(?:is|was|has been)[ \t]+)?(?:set|changed|reset|updated)[ \t]+to[ \t]+"
    r"|[ \t]+(?:is|was|to)[ \t]+)"
    r"(?:(?:now|temporarily|the)[ \t]+)?)"
    r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|(?!\[)[^\s\"'<]+)",
    re.IGNORECASE,
)

_EMAIL_RE = re.compile(
    r"(?<![\w.+%'-])[A-Za-z0-9](?:[A-Za-z0-9._%+'-]*[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}\b",
)

_CARD_RE = re.compile(r"(?<![\d.\-/])\d(?:[ \-]?\d){12,18}(?!\d|[.\-]\d)")
_CARD_PREFIX_LENGTHS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("34", (15,)),
    ("37", (15,)),  # American Express
    ("4", (13, 16, 19)),  # Visa
    ("51", (16,)),
    ("52", (16,)),
    ("53", (16,)),
    ("54", (16,)),
    ("55", (16,)),  # Mastercard
    ("2", (16,)),  # Mastercard 2-series, narrowed by _card_issuer_ok
    ("6011", (16, 19)),
    ("65", (16, 19)),
    ("644", (16, 19)),  # Discover
    ("35", (16, 17, 18, 19)),  # JCB
    ("36", (14,)),
    ("38", (14,)),
    ("30", (14,)),  # Diners Club
    ("62", (16, 17, 18, 19)),  # UnionPay
)

_PHONE_SEP = r"[ \t.\-]?"
_EXTENSION = r"(?:[ \t]*(?:x|ext\.?|extension)[ \t]*\d{1,5})?"
_PHONE_RES = [
    # International: +CC then groups, optional "(0)" trunk prefix.
    re.compile(
        rf"(?<![\w+])\+\d{{1,3}}{_PHONE_SEP}(?:\(0\){_PHONE_SEP})?"
        rf"(?:\(?\d{{1,5}}\)?{_PHONE_SEP}){{1,5}}\d{{2,5}}{_EXTENSION}(?![\d])",
    ),
    # US/NANP with separators or parentheses: (555) 123-4567, 555-123-4567, 1-555-123-4567.
    re.compile(
        rf"(?<![\w.\-/])(?:1{_PHONE_SEP})?(?:\(\d{{3}}\)[ \t]?|\d{{3}}[ \t.\-])"
        rf"\d{{3}}[ \t.\-]\d{{4}}{_EXTENSION}(?![\w]|[.\-/]\d)",
    ),
    # Bare digits only count with a telephone word in front of them.
    re.compile(
        r"(?i:\b(?:phone|tel|telephone|mobile|cell|call|fax|ph|whatsapp|sms)\b\.?"
        r"(?:[ \t]+(?:me|us|him|her|them|back|on|at|number|no\.?|nr\.?|#))*[ \t]*[:#]?[ \t]*)"
        r"(?P<value>\d{7,15})(?!\d)",
    ),
]

_DATE_RES = [
    re.compile(r"\b\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?)?\b"),
    re.compile(r"\b\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}\b"),
    re.compile(r"\b\d{4}/\d{1,2}/\d{1,2}\b"),
]


class Redactor:
    """``redact_pii`` for one prompt, which also replaces the ticket's requester and counts
    every placeholder it put in, by kind (``counts``)."""

    def __init__(
        self, requester_name: str | None = None, requester_email: str | None = None
    ) -> None:
        self.counts: Counter[str] = Counter()
        self._email = _requester_email_re(requester_email)
        self._names = _requester_name_res(requester_name)

    def __call__(self, text: str) -> str:
        counts = self.counts
        text = _redact_secrets(text, counts)
        if self._email is not None:
            text, n = self._email.subn(REQUESTER_EMAIL, text)
            counts.update({"requester_email": n} if n else {})
        for pattern in self._names:
            text, n = pattern.subn(REQUESTER, text)
            counts.update({"requester_name": n} if n else {})
        text, n = _EMAIL_RE.subn(EMAIL, text)
        counts.update({"email": n} if n else {})
        text = _sub_unprotected(_CARD_RE, text, _card_replacement, counts, "card")
        for pattern in _PHONE_RES:
            text = _sub_unprotected(pattern, text, _phone_replacement, counts, "phone")
        return text


def redact_pii(text: str) -> str:
    """Secrets, emails, card numbers and phone numbers replaced by typed placeholders.

    Order matters: secrets go first (a password may look like a phone number), cards before
    phones (a spaced card number contains phone-shaped groups), and IP addresses and dates are
    protected from the numeric patterns.
    """
    return Redactor()(text)


def redact_secrets_only(text: str) -> str:
    """Credentials replaced by ``[SECRET]``; everything else (emails, IPs) kept, for logs."""
    return _redact_secrets(text, None)


# Necessary for any secret pattern above to match, so text matching neither (a log line's
# message, a tenant or ticket id: most of what is redacted) skips the dozen passes. Every
# labelled pattern needs one of these words under the same case folding (``re.IGNORECASE``,
# which also folds "ſ" and the Kelvin sign), every token format one of these prefixes.
_MAYBE_LABELLED = re.compile(r"pw|pass|secret|key|token|sas|pin|otp|bearer|basic|://", re.I)
_MAYBE_TOKEN = re.compile(
    r"-----BEGIN|AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|sk-|gh[pousr]_|github_pat_|xox|AIza|eyJ"
)


def _redact_secrets(text: str, counts: Counter[str] | None) -> str:
    if _MAYBE_LABELLED.search(text) is None and _MAYBE_TOKEN.search(text) is None:
        return text
    return _redact_every_secret(text, counts)


def _redact_every_secret(text: str, counts: Counter[str] | None) -> str:
    found = 0
    text, n = _PRIVATE_KEY_RE.subn(SECRET, text)
    found += n
    for pattern in _TOKEN_RES:
        text, n = pattern.subn(SECRET, text)
        found += n
    for pattern, replace in (
        (_AUTH_SCHEME_RE, _keep_label),
        (_URL_CREDENTIALS_RE, _keep_label),
        (_STRICT_ASSIGN_RE, _keep_label),
        (_LOOSE_ASSIGN_RE, _keep_label_if_secretish),
    ):
        before = text.count(SECRET)
        text = pattern.sub(replace, text)
        found += text.count(SECRET) - before
    if counts is not None and found:
        counts["secret"] += found
    return text


def _requester_email_re(email: str | None) -> re.Pattern[str] | None:
    email = (email or "").strip()
    if "@" not in email or len(email) > 254:
        return None
    return re.compile(rf"(?<![\w.+%'-]){re.escape(email)}(?![\w-]|\.\w)", re.IGNORECASE)


def _requester_name_res(name: str | None) -> list[re.Pattern[str]]:
    """The full name (and "Last, First") in any case, then each uncommon part as a word."""
    parts = [p for p in re.split(r"[\s,]+", (name or "").strip()) if p][:6]
    if not parts or len("".join(parts)) < 3 or len(name or "") > 200:
        return []
    patterns: list[re.Pattern[str]] = []
    if len(parts) > 1:
        full = r"\s+".join(re.escape(p) for p in parts)
        reverse = re.escape(parts[-1]) + r",\s*" + r"\s+".join(re.escape(p) for p in parts[:-1])
        patterns.append(re.compile(rf"\b(?:{full}|{reverse})\b", re.IGNORECASE))
    words = {
        form
        for part in parts
        if len(part) >= 3 and part.isalpha() and part.lower() not in _COMMON_WORDS
        for form in (part[:1].upper() + part[1:].lower(), part.upper(), part)
    }
    if words:
        alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        patterns.append(re.compile(rf"\b(?:{alternatives})\b"))
    return patterns


def luhn_valid(digits: str) -> bool:
    """The checksum every payment card number carries; random digit runs fail it 9 times in 10."""
    if not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _keep_label(match: re.Match[str]) -> str:
    return f"{match['keep']}{SECRET}"


def _keep_label_if_secretish(match: re.Match[str]) -> str:
    """Loose forms ("password is ...") also occur in plain prose: "password is expired"."""
    raw = match["value"]
    trailing = "" if raw[:1] in "\"'" else raw[len(raw.rstrip(".,;)")) :]
    value = raw.strip("\"'")
    if value and _looks_like_secret(value):
        return f"{match['keep']}{SECRET}{trailing}"
    return match.group(0)


def _looks_like_secret(value: str) -> bool:
    core = value.rstrip(".,;:!?)")
    if not core:
        return False
    if len(core) >= 16:
        return True
    has_digit = any(c.isdigit() for c in core)
    has_symbol = any(not c.isalnum() for c in core)
    has_inner_upper = any(c.isupper() for c in core[1:])
    return has_digit or has_symbol or has_inner_upper


def _card_replacement(match: re.Match[str]) -> str | None:
    """The longest run of whole digit groups that is a card; the greedy match may overshoot.

    "4111 1111 1111 1111 2 items" matches 17 digits; the card is the first four groups.
    """
    raw = match.group(0)
    cuts = [m.start() for m in re.finditer(r"[ \-]", raw)] + [len(raw)]
    for cut in reversed(cuts):
        digits = re.sub(r"\D", "", raw[:cut])
        if len(digits) < 13:
            break
        if _is_card(digits):
            return CARD + raw[cut:]
    return None


def _is_card(digits: str) -> bool:
    return _card_issuer_ok(digits) and luhn_valid(digits) and len(set(digits)) > 1


def _card_issuer_ok(digits: str) -> bool:
    for prefix, lengths in _CARD_PREFIX_LENGTHS:
        if digits.startswith(prefix) and len(digits) in lengths:
            if prefix == "2":
                return 2221 <= int(digits[:4]) <= 2720
            return True
    return False


def _phone_replacement(match: re.Match[str]) -> str | None:
    if "value" in match.re.groupindex:
        value = match["value"]
        return match.group(0)[: match.start("value") - match.start()] + PHONE if value else None
    digits = re.sub(r"\D", "", match.group(0))
    return PHONE if 7 <= len(digits) <= 18 else None


def _protected_spans(text: str) -> list[tuple[int, int]]:
    spans = [(m.start, m.end) for m in iter_ip_mentions(text)]
    for pattern in _DATE_RES:
        spans.extend(m.span() for m in pattern.finditer(text))
    return spans


def _sub_unprotected(
    pattern: re.Pattern[str],
    text: str,
    replacement: Callable[[re.Match[str]], str | None],
    counts: Counter[str],
    kind: str,
) -> str:
    """Like ``pattern.sub`` but skips matches touching an IP address or a date (found in
    ``text`` once, and only when the pattern matches at all: most text has no phone number)."""
    found: list[list[tuple[int, int]]] = []

    def replace(match: re.Match[str]) -> str:
        if not found:
            found.append(_protected_spans(text))
        start, end = match.span()
        if any(start < s_end and s_start < end for s_start, s_end in found[0]):
            return match.group(0)
        result = replacement(match)
        if result is None:
            return match.group(0)
        counts[kind] += 1
        return result

    return pattern.sub(replace, text)
