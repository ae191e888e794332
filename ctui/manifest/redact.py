"""Secret redaction for everything ctui writes: env variables, URLs, free text (logs,
patches), run documents and their params.

Three layers: a variable (or param) whose *name* looks secret loses its value; a URL loses its
`user:password@`; and values that *look* like well-known tokens (AWS keys, GitHub tokens,
private-key blocks, JWTs, Slack webhooks, ...) or are assigned to a secret-looking name
(`db_password: str = "..."`, `Pwd=...;`, `Authorization: Bearer ...`) are replaced wherever
they appear. `redact_doc` is the one pass a run document takes before ctui writes or sends it
anywhere (the store, `spec.json`, `ctui export`, MLflow params and tags).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "<redacted>"

#: parts of a variable name that mark its value as secret
SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|(?<![A-Z])PASS(?![A-Z])|KEY|CREDENTIAL|AUTH|"
    r"PRIVATE|SESSION|COOKIE|SIGNATURE|(?<![A-Z])DSN(?![A-Z])|CERT_PASS|SALT",
    re.IGNORECASE,
)

#: a param name that marks its value as secret: narrower than `SECRET_NAME` (a param named
#: `key`, `max_tokens` or `session` is an ordinary training knob). Matched on the name's words
#: (`db_password`, `hfToken`, `api-key`).
_SECRET_PARAM_WORDS = {
    "password", "passwd", "passphrase", "pwd", "secret", "secrets", "token",
    "apikey", "credential", "credentials", "creds", "dsn",
}  # fmt: skip
#: names with `token` in them that are a model's vocabulary or a budget, not a credential
_NOT_SECRET = re.compile(
    r"(?:^|[^a-z])(?:pad|eos|bos|unk|sep|cls|mask|special|start|end|stop|image|audio|default|"
    r"max|min|num|n|total)[_\-]?tokens?(?![a-z])|"
    r"tokens?[_\-]?(?:ids?|type|types|count|len|length|limit|size|num|budget|level|dim|"
    r"embed\w*|per\w*)(?![a-z])",
    re.IGNORECASE,
)
_SECRET_PARAM_PAIRS = {
    ("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key"),
    ("signing", "key"), ("auth", "token"), ("client", "secret"), ("webhook", "url"),
}  # fmt: skip

# scheme://user[:pass]@host → the userinfo goes; scp-like `git@host:path` is not a secret.
_URL_USERINFO = re.compile(
    r"(?P<scheme>(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{0,30}://)(?P<userinfo>[^/\s@:]{0,400}(?::[^/\s@]{0,400})?)@"
)
# query parameters that carry credentials (?token=..., &X-Amz-Signature=...)
_URL_SECRET_QUERY = re.compile(
    r"(?P<key>[?&](?:[A-Za-z0-9_\-]{0,40}(?:token|secret|password|passwd|signature|key|auth|sig|"
    r"credential)[A-Za-z0-9_\-]{0,40}))=(?P<value>[^&#\s]+)",
    re.IGNORECASE,
)

# Well-known token shapes, one alternation (a scan per shape cost 30 ms a megabyte each)
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?-----END (?:[A-Z0-9]+ )*"
    r"PRIVATE KEY(?: BLOCK)?-----",
    re.DOTALL,
)
_TOKEN_SHAPES = [
    r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b",  # AWS key id
    r"\bgithub_pat_[A-Za-z0-9_]{20,}",
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",
    r"\bglpat-[A-Za-z0-9_\-]{20,}",  # GitLab
    r"\bxox[abposre]-[A-Za-z0-9\-]{10,}",  # Slack tokens
    r"\bxapp-[0-9]-[A-Za-z0-9\-]{10,}",  # Slack app-level tokens
    r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}",  # OpenAI / Anthropic style
    r"\b[rs]k_live_[A-Za-z0-9]{16,}",  # Stripe
    r"\bhf_[A-Za-z0-9]{30,}",  # Hugging Face
    r"\bAIza[0-9A-Za-z_\-]{35}",  # Google API key
    r"\bya29\.[0-9A-Za-z_\-]{20,}",  # Google OAuth access token
    r"\bnpm_[A-Za-z0-9]{36}",
    r"\bpypi-[A-Za-z0-9_\-]{50,}",
    r"\bdop_v1_[a-f0-9]{64}",  # DigitalOcean
    r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # JWT
]
_TOKEN_PATTERNS = [_PRIVATE_KEY, re.compile("|".join(f"(?:{p})" for p in _TOKEN_SHAPES))]
# webhook URLs are credentials in their path: the host stays, the path goes
_WEBHOOKS = re.compile(
    r"(?P<keep>https://(?:hooks\.slack\.com/(?:services|workflows|triggers)/|"
    r"(?:[a-z0-9\-]+\.)?discord(?:app)?\.com/api/webhooks/|"
    r"[a-z0-9\-]+\.webhook\.office\.com/webhookb2/|outlook\.office\.com/webhook/))"
    r"(?P<value>[A-Za-z0-9_\-/@.]{8,})",
    re.IGNORECASE,
)
# `Authorization: Bearer xyz`, `Bearer xyz` (a token-like word after it)
_AUTH_HEADER = re.compile(
    r"(?P<key>\bAuthorization[\"']?\s*[:=]\s*[\"']?(?:(?:Bearer|Basic|Token|Digest)\s+)?)"
    r"(?P<value>[^\s\"',;]{4,})",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<key>\bBearer\s+)(?P<value>[A-Za-z0-9._~+/\-]{12,}=*)")
# connection strings: `Server=db;Uid=sa;Pwd=hunter2;` (a `pwd` with a `;` beside it only:
# `pwd = os.getcwd()` is code)
_CONN_PWD = re.compile(
    r"(?P<key>(?:(?<=;)\s*|\b)(?:pwd=|password\s*=\s*))(?P<value>[^;\"'\n]{1,200}?)(?=\s*;)|"
    r"(?P<key2>;\s*pwd\s*=\s*)(?P<value2>[^;\"'\s]{1,200})",
    re.IGNORECASE,
)
#: name words that mark an assigned value as secret (`tokens`/`tokenizer` do not)
_KEYWORD = (
    r"(?:password|passwd|passphrase|secret|token(?![a-z])|api_?key|apikey|access_?key|"
    r"private_?key|secret_?key|auth_?token|client_?secret|credentials?)"
)
_ANY_KEYWORD = re.compile(_KEYWORD, re.IGNORECASE)
# `password = "a b c"`, `db_password: str = "x"`, `aws_secret_access_key=xyz`, `--token xyz`,
# `"api_key": "xyz"`, `token => 'x'`
_ASSIGNMENT = re.compile(
    r"(?P<key>(?<![A-Za-z0-9_\-.])[A-Za-z0-9_\-.]{0,40}" + _KEYWORD + r"[A-Za-z0-9_\-]{0,40}[\"']?"
    r"(?:\s*:\s*[A-Za-z_][\w.\[\], |]{0,40}?(?=\s*=))?"  # a type annotation: `: str = `
    r"(?P<op>\s{0,8}(?::=|=>|[:=])\s{0,8}|\s{1,8}(?=[\"']|\S{0,200}[^\s\w])|(?<=[A-Za-z0-9])\s{1,8}(?=\S{8}))"
    r")(?:(?P<q>[\"'])(?P<qvalue>[^\"'\n]{1,500})(?P=q)|(?P<value>[^\s\"',;)}\]]{4,}))",
    re.IGNORECASE,
)
# an unquoted value that is code, not a secret: `password = getpass()`, `token = args.token`,
# `secret = os.environ["X"]`, `password = None`
_CODE_VALUE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?P<call>[(\[].*)?$|^\d{1,6}$")


def is_secret_name(name: str) -> bool:
    """True when a variable name suggests its value is a credential."""
    return bool(SECRET_NAME.search(name))


def is_secret_param(name: str) -> bool:
    """True when a param's name says it holds a credential (`password`, `db_password`,
    `hf_token`, `apiKey`, `aws-access-key`, `credentials`); `max_tokens`, `key`, `keyframes`
    are ordinary params."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name))
    if _NOT_SECRET.search(spaced):
        return False
    words = [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]
    if any(w in _SECRET_PARAM_WORDS for w in words):
        return True
    return any(pair in _SECRET_PARAM_PAIRS for pair in zip(words, words[1:], strict=False))


def strip_url_credentials(url: str) -> str:
    """`https://user:tok@host/x?token=t` → `https://host/x?token=<redacted>`.

    Works on a single URL or on text that contains URLs; other text is left as is.
    """
    out = _URL_USERINFO.sub(lambda m: m.group("scheme"), url)
    return _URL_SECRET_QUERY.sub(lambda m: f"{m.group('key')}={REDACTED}", out)


def redact_text(text: str) -> str:
    """Replace credentials anywhere in `text`: URL userinfo, token shapes, webhook URLs,
    `password = "..."`, connection strings' `Pwd=...;`, `Authorization: Bearer ...`."""
    if not text:
        return text
    low = text.lower()  # each pattern runs only where its anchor word occurs at all
    out = text
    if "://" in text:
        out = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", out)
        out = _WEBHOOKS.sub(lambda m: f"{m.group('keep')}{REDACTED}", out)
    if "?" in text or "&" in text:
        out = _URL_SECRET_QUERY.sub(lambda m: f"{m.group('key')}={REDACTED}", out)
    if "-----begin" in low:
        out = _PRIVATE_KEY.sub(REDACTED, out)
    out = _TOKEN_PATTERNS[1].sub(REDACTED, out)
    if "authorization" in low:
        out = _AUTH_HEADER.sub(_keep_key, out)
    if "bearer" in low:
        out = _BEARER.sub(_keep_key, out)
    if "pwd" in low or "password" in low:
        out = _CONN_PWD.sub(_redact_connection, out)
    if _ANY_KEYWORD.search(out):
        out = _ASSIGNMENT.sub(_redact_assignment, out)
    return out


def _keep_key(m: re.Match[str]) -> str:
    if m.group("value").startswith("<redacted"):
        return m.group(0)
    return f"{m.group('key')}{REDACTED}"


def _redact_connection(m: re.Match[str]) -> str:
    key = m.group("key") if m.group("key") is not None else m.group("key2")
    value = m.group("value") if m.group("value") is not None else m.group("value2")
    if value.startswith("<redacted"):
        return m.group(0)
    return f"{key}{REDACTED}"


def _redact_assignment(m: re.Match[str]) -> str:
    quote = m.group("q")
    value = m.group("qvalue") if quote else m.group("value")
    if value.startswith("<redacted") or not value.strip() or (not quote and value.isdigit()):
        return m.group(0)  # `token_limit=2048` is a number, not a credential
    if _NOT_SECRET.search(m.group("key")):
        return m.group(0)  # `pad_token = "<pad>"`, `token_type: "bpe"`
    op = m.group("op")
    if not quote and (op.strip() == "" or " " in op) and _is_code(value):
        # `password = x` with spaces (code) or `--token x` (a flag, prose): a code expression
        # or a plain word is left; `PASSWORD=x` (shell, env files) is not
        return m.group(0)
    start = m.start("qvalue" if quote else "value") - m.start()
    end = m.end("qvalue" if quote else "value") - m.start()
    whole = m.group(0)
    return f"{whole[:start]}{REDACTED}{whole[end:]}"


def _is_code(value: str) -> bool:
    """`getpass()`, `args.token`, `os.environ[`, `None`, `2048`, a plain word — but not a
    word that mixes letters and digits (`hunter2xx9`: a token)."""
    m = _CODE_VALUE.match(value)
    if m is None:
        return False
    if m.group("call") or "." in value or value.isdigit():
        return True
    mixed = any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
    return not (mixed and len(value) >= 8)


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


def masks_param(name: Any, value: Any) -> bool:
    """Whether a param's value is masked: its name is a secret's and it holds something (not
    None, "" or a boolean)."""
    return is_secret_param(str(name)) and value not in (None, "") and not isinstance(value, bool)


def redact_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A run's params safe to write: a secret-named param's value masked, token shapes in the
    others' string values replaced, numbers and booleans as they are."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if masks_param(name, value):
            out[name] = REDACTED
        elif isinstance(value, str):
            out[name] = redact_text(value)
        else:
            out[name] = value
    return out


def redact_argv(argv: list[str], secrets: list[str]) -> list[str]:
    """`argv` with every occurrence of each secret value masked (values under 4 characters
    only where they are a whole token), then token shapes."""
    values = sorted({s for s in secrets if s and s != REDACTED}, key=len, reverse=True)
    out = []
    for token in argv:
        for value in values:
            # a short value (`pw=1`) only as a whole token: `--epochs 10` keeps its `1`
            if len(value) >= 4 or token == value:
                token = token.replace(value, REDACTED)
        out.append(redact_text(token))
    return out


#: run-document fields of free text (what a job printed, errors that quote a command)
_TEXT_FIELDS = ("error", "manifest_error", "dvc_error", "note", "cause")


def redact_doc(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The one redaction pass of a run document before ctui writes, exports or sends it:
    secret-named params masked (and their values wherever `command` repeats them), credentials
    in free text (`error`, `note`, `log_tail`, `command`, ...) replaced. Idempotent."""
    out = dict(doc)
    params = doc.get("params")
    secrets: list[str] = []
    if isinstance(params, Mapping):
        secrets = [str(v) for k, v in params.items() if masks_param(k, v)]
        out["params"] = redact_params(params)
    command = doc.get("command")
    if isinstance(command, list):
        out["command"] = redact_argv([str(t) for t in command], secrets)
    tail = doc.get("log_tail")
    if isinstance(tail, list):
        out["log_tail"] = [redact_text(str(line)) for line in tail]
    for name in _TEXT_FIELDS:
        value = doc.get(name)
        if isinstance(value, str) and value:
            out[name] = redact_text(value)
    return out
