"""Secret redaction for anything ctui writes: env variables, URLs, free text (logs, patches).

Three layers: a variable whose *name* looks secret loses its value; a URL loses its
`user:password@`; and values that *look* like well-known tokens (AWS keys, GitHub tokens,
private-key blocks, JWTs, ...) are replaced wherever they appear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

REDACTED = "<redacted>"

#: parts of a variable name that mark its value as secret
SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|(?<![A-Z])PASS(?![A-Z])|KEY|CREDENTIAL|AUTH|"
    r"PRIVATE|SESSION|COOKIE|SIGNATURE|(?<![A-Z])DSN(?![A-Z])|CERT_PASS|SALT",
    re.IGNORECASE,
)

# scheme://user[:pass]@host → the userinfo goes; scp-like `git@host:path` is not a secret.
_URL_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/\s@:]*(?::[^/\s@]*)?)@"
)
# query parameters that carry credentials (?token=..., &X-Amz-Signature=...)
_URL_SECRET_QUERY = re.compile(
    r"(?P<key>[?&](?:[A-Za-z0-9_\-]*(?:token|secret|password|passwd|signature|key|auth|sig|"
    r"credential)[A-Za-z0-9_\-]*))=(?P<value>[^&#\s]+)",
    re.IGNORECASE,
)

# Well-known token shapes. Ordered longest-first where shapes overlap.
_TOKEN_PATTERNS = [
    re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?-----END (?:[A-Z0-9]+ )*"
        r"PRIVATE KEY(?: BLOCK)?-----",
        re.DOTALL,
    ),
    re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b"),  # AWS key id
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}"),  # GitLab
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),  # Slack
    re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}"),  # OpenAI / Anthropic style
    re.compile(r"\bhf_[A-Za-z0-9]{30,}"),  # Hugging Face
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"),  # Google API key
    re.compile(r"\bnpm_[A-Za-z0-9]{36}"),
    re.compile(r"\bpypi-[A-Za-z0-9_\-]{50,}"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),  # JWT
]
# `Authorization: Bearer xyz`, `password = "xyz"`, `aws_secret_access_key=xyz` in free text
_ASSIGNMENT = re.compile(
    r"(?P<key>\b(?:bearer|basic)\s+|"
    r"\b[A-Za-z0-9_\-]*(?:password|passwd|secret|token|api_key|apikey|access_key|private_key)"
    r"[A-Za-z0-9_\-]*[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<value>[^\s\"',;]{4,})",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    """True when a variable name suggests its value is a credential."""
    return bool(SECRET_NAME.search(name))


def strip_url_credentials(url: str) -> str:
    """`https://user:tok@host/x?token=t` → `https://host/x?token=<redacted>`.

    Works on a single URL or on text that contains URLs; other text is left as is.
    """
    out = _URL_USERINFO.sub(lambda m: m.group("scheme"), url)
    return _URL_SECRET_QUERY.sub(lambda m: f"{m.group('key')}={REDACTED}", out)


def redact_text(text: str) -> str:
    """Replace credentials anywhere in `text`: URL userinfo, token shapes, `password=...`."""
    if not text:
        return text
    out = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    out = _URL_SECRET_QUERY.sub(lambda m: f"{m.group('key')}={REDACTED}", out)
    for pattern in _TOKEN_PATTERNS:
        out = pattern.sub(REDACTED, out)
    return _ASSIGNMENT.sub(_redact_assignment, out)


def _redact_assignment(m: re.Match[str]) -> str:
    if m.group("value") == REDACTED or m.group("value").startswith("<redacted"):
        return m.group(0)
    return f"{m.group('key')}{REDACTED}"


def redact_env(mapping: Mapping[str, str]) -> dict[str, str]:
    """A copy of `mapping` safe to store: secret-named values replaced, the rest scrubbed."""
    out: dict[str, str] = {}
    for name, value in mapping.items():
        if is_secret_name(name):
            out[name] = REDACTED
        else:
            out[name] = redact_text(strip_url_credentials(str(value)))
    return out


def redact_bytes(data: bytes) -> tuple[bytes, int]:
    """Redact token shapes in bytes (a patch); returns the new bytes and how many were hit.

    Decodes as latin-1 so any byte sequence round-trips unchanged where nothing matched.
    """
    text = data.decode("latin-1")
    redacted = redact_text(text)
    if redacted == text:
        return data, 0
    return redacted.encode("latin-1", errors="replace"), redacted.count(REDACTED) - text.count(
        REDACTED
    )
