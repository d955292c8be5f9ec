"""Settings: defaults < TOML file < ``CONNECT_*`` environment < command-line flags (DESIGN.md 6).

Secrets are held in ``Secret`` so that no repr, log line or report can print them by accident.
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from etl.core.database_urls import is_database_url, redacted_url
from etl.core.errors import UsageError
from etl.core.models import Origin
from etl.core.store_urls import is_store_url, store_url_problem
from etl.settings.check import check_config, check_mapping
from etl.settings.events import EventsSettings, load_events
from etl.settings.options import (
    DELIMITERS,
    ColumnMapping,
    Conventions,
    ReadOptions,
    date_format_problem,
    writes_offset,
)
from etl.settings.secret import Secret as Secret  # re-exported: Settings users import it here
from etl.settings.secret_files import SECRET_SETTINGS, secret_from_files

DEFAULT_API_URL = "https://miraklconnect.com/api"
DEFAULT_TOKEN_URL = "https://auth.mirakl.net/oauth/token"
DEFAULT_CONFIG = Path("etl.toml")
ENVIRONMENT = {
    "CONNECT_API_URL": "api_url",
    "CONNECT_TOKEN_URL": "token_url",
    "CONNECT_CLIENT_ID": "client_id",
    "CONNECT_CLIENT_SECRET": "client_secret",
    "CONNECT_TOKEN": "token",
    "CONNECT_CHANNEL_ID": "channel_id",
    "CONNECT_STORE_ID": "store_id",
    "CONNECT_STATE_URL": "state_url",
}


@dataclass(frozen=True)
class ExportFormat:
    """How one kind of export is written, and the user's column mapping for it."""

    read: ReadOptions = field(default_factory=ReadOptions)
    conventions: Conventions = field(default_factory=Conventions)
    mapping: ColumnMapping = field(default_factory=ColumnMapping)


@dataclass(frozen=True)
class MappingRule:
    glob: str
    source: ExportFormat


@dataclass(frozen=True)
class Settings:
    inbox: Path = Path("inbox")
    outbox: Path = Path("outbox")
    state: Path | None = None  # default: <outbox>/.state/ledger.sqlite3
    api_url: str = DEFAULT_API_URL
    token_url: str = DEFAULT_TOKEN_URL
    client_id: str = ""
    client_secret: Secret = field(default_factory=lambda: Secret(""))
    token: Secret = field(default_factory=lambda: Secret(""))
    channel_id: str = ""
    store_id: str = ""
    timeout: float = 30.0  # seconds per read; a call's whole answer gets a few (client.py)
    max_attempts: int = 6
    requests_per_second: float = 20.0
    settle_seconds: float = 2.0
    polling: bool = False
    ledger_timeout: float = 10.0  # seconds to wait for a ledger another process is writing
    action_flush_seconds: float = 300.0  # watch: order action log flush (at least 60)
    action_poll_seconds: float = 300.0  # tracked action polling per id (at least 60)
    rescan_seconds: float = 30.0
    default_source: ExportFormat = field(default_factory=ExportFormat)
    mapping_rules: tuple[MappingRule, ...] = ()
    target_name: str = ""  # names the target instead of the URL and credential (the sandbox)
    fresh_ledger: bool = False  # adopt a ledger that is new or older than the outbox knew
    allow_insecure: bool = False  # http:// to a host that is not loopback ([connect])
    # apprise URLs hold tokens and passwords: Secrets, so that no repr or log line shows them.
    alert_urls: tuple[Secret, ...] = ()
    alert_api_down_minutes: float = 15.0
    # [events]: the queue Connect publishes its order action events to (etl events); None: none.
    events: EventsSettings | None = None
    tenant: str = ""  # the seller served ([tenants.<name>] in etl.toml); '' without tenants
    # The ledger in a PostgreSQL database many workers share ([state] state_url, --state,
    # CONNECT_STATE_URL); a Secret, for the URL may hold a password. Empty: the SQLite file.
    state_url: Secret = field(default_factory=lambda: Secret(""))
    # How long a worker's claim on a file holds without renewal (it renews every third of
    # it): a worker that died has its file taken over by another after at most this long.
    lease_seconds: float = 30.0
    # An inbox on an object store (--inbox s3://bucket/prefix/, [paths] inbox): objects are
    # staged in a folder under the outbox and ``inbox`` is unused. Endpoint and region for
    # S3-compatible stores ([inbox]); credentials come from the AWS chain, never from here.
    inbox_url: str = ""
    inbox_endpoint_url: str = ""
    inbox_region: str = ""
    # Each run's report folder is uploaded there after the run ([report] url).
    report_url: str = ""

    def __post_init__(self) -> None:
        # Here, not in load_settings: a Settings built in Python, or changed with replace(),
        # must not send the secret in clear either.
        for name in URL_SETTINGS:
            problem = url_problem(name, getattr(self, name), self.allow_insecure)
            if problem is not None:
                raise UsageError(problem)
        for name, what in (("inbox_url", "the inbox URL"), ("report_url", "[report] url")):
            url = getattr(self, name)
            problem = store_url_problem(url, what) if url else None
            if url and not is_store_url(url):
                problem = f"{what} {url!r} is not a URL (s3://bucket/prefix/)"
            if problem is not None:
                raise UsageError(problem)
        endpoint = urlsplit(self.inbox_endpoint_url)
        if self.inbox_endpoint_url and (endpoint.username or endpoint.password):
            raise UsageError(
                "[inbox] endpoint_url must not hold credentials (user:secret@); the AWS chain "
                "gives them: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws/credentials"
            )
        if self.state_url and not is_database_url(self.state_url.reveal()):
            raise UsageError(
                f"the state URL {redacted_url(self.state_url.reveal())} is not a PostgreSQL "
                "URL (postgresql://user@host:5432/database); a ledger file is given as a path"
            )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Settings as the command line builds them: defaults < ``path`` (``./etl.toml`` when
        None and present) < secret files < ``CONNECT_*`` variables (``environ``, default
        ``os.environ``) < ``overrides`` (``inbox="drop"``, ``timeout=10``...), each checked as
        strictly as a flag: an unknown name or a value out of range is a UsageError."""
        config = None if path is None else Path(path)
        return load_settings(
            config, checked_overrides(overrides), None if environ is None else dict(environ)
        )

    def require_credentials(self) -> None:
        """UsageError unless the settings can authenticate to Connect (before anything is
        claimed or sent)."""
        if not self.token and not (self.client_id and self.client_secret):
            raise UsageError(
                "no Connect credentials: set CONNECT_CLIENT_ID and CONNECT_CLIENT_SECRET "
                "(or CONNECT_TOKEN), the secret in a file (CONNECT_CLIENT_SECRET_FILE, "
                "systemd credentials, /run/secrets: README, Secrets), or [connect] in the "
                "config file; --sandbox runs a local demo"
            )

    @property
    def target(self) -> str:
        """The API deliveries go to, as the ledger knows it (DESIGN.md section 9): the base URL
        and the credential, for an order accepted by one target says nothing about another.
        A static token is named by a digest of it, never by its value."""
        if self.target_name:
            return self.target_name
        if self.token:
            digest = hashlib.sha256(self.token.reveal().encode()).hexdigest()[:12]
            credential = f"token {digest}"
        else:
            credential = f"client {self.client_id}"
        return f"{normalized_url(self.api_url)} ({credential})"

    @property
    def state_key(self) -> str:
        """Whose claims, send budget and leader these are in a shared state: the tenant, or
        "default" for the one seller a configuration without [tenants] serves."""
        return self.tenant or "default"

    @property
    def shared_state(self) -> bool:
        """The state is in a database many workers share: claims and budgets are its."""
        return bool(self.state_url)

    @property
    def state_where(self) -> str:
        """The ledger as messages name it: the file, or the URL without its password."""
        if self.state_url:
            return redacted_url(self.state_url.reveal())
        return str(self.ledger_path)

    @property
    def ledger_path(self) -> Path:
        return self.state or self.outbox / ".state" / "ledger.sqlite3"

    @property
    def default_origin(self) -> Origin | None:
        if self.channel_id and self.store_id:
            return Origin(self.channel_id, self.store_id)
        return None

    def source_for(self, path: Path) -> ExportFormat:
        """The first mapping rule whose glob matches the file name, else the default."""
        for rule in self.mapping_rules:
            if fnmatch.fnmatch(path.name, rule.glob):
                return rule.source
        return self.default_source


URL_SETTINGS = {
    "api_url": "api_url (CONNECT_API_URL)",
    "token_url": "token_url (CONNECT_TOKEN_URL)",
}


def url_problem(name: str, url: str, allow_insecure: bool = False) -> str | None:
    """Why the URL setting ``name`` must not be used, or None. The message never repeats a
    URL holding credentials: it would go to the terminal, then to reports and the ledger."""
    label = URL_SETTINGS[name]
    if "@" in url:
        # user:password@host, whatever the password holds ('/' included, which ends the host
        # for a URL parser and would leave the rest in the path).
        return (
            f"{label} holds a user name or password (user:password@host): remove them; "
            "credentials come from CONNECT_CLIENT_ID and CONNECT_CLIENT_SECRET, or "
            "CONNECT_TOKEN, never from a URL"
        )
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return f"{label} {url} has a port that is not a number"
    if scheme not in ("http", "https") or not parts.hostname:
        return f"{label} {url} is not a URL like https://miraklconnect.com/api"
    if scheme == "http" and not allow_insecure and not is_loopback(parts.hostname):
        return (
            f"{label} {url} is not HTTPS: the credentials and the orders would cross the "
            "network in clear; use https://, or set allow_insecure = true in [connect] for a "
            "test server you trust (loopback addresses are always allowed)"
        )
    return None


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: traffic that never leaves this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_shared_secret_file(
    path: Path,
    key: str,
    section: str = "connect",
    instead: str = "CONNECT_CLIENT_SECRET or CONNECT_TOKEN",
) -> None:
    """A config file that holds a secret must be its owner's alone: readable by others, the
    secret is theirs too; writable by others, they choose where it is sent."""
    mode = path.stat().st_mode
    if mode & 0o077:
        raise UsageError(
            f"config file {path} holds [{section}] {key} and others can "
            f"{'read' if mode & 0o044 else 'write'} it (mode {mode & 0o777:04o}): run "
            f"`chmod 600 {path}`, or keep the secret out of it ({instead} in the environment)"
        )


def normalized_url(url: str) -> str:
    """One spelling per base URL: scheme and host in lower case, no default port, no trailing
    slash (``HTTPS://Connect.example:443/api/`` is ``https://connect.example/api``)."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    default_port = {"https": 443, "http": 80}.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, default_port) else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))


@dataclass(frozen=True)
class NumberRange:
    """The values a numeric setting takes; ``text`` says them to the user."""

    text: str
    low: float
    high: float
    open_low: bool = False  # the low end itself is refused
    whole: bool = False

    def parse(self, raw: Any) -> float | None:
        """``raw`` as a number within the range, or None (nan and infinities never are)."""
        if isinstance(raw, bool):
            return None
        try:
            value = float(raw)
        except (TypeError, ValueError):
            return None
        above_low = self.low < value if self.open_low else self.low <= value
        if not (above_low and value <= self.high) or (self.whole and not value.is_integer()):
            return None
        return value


SECONDS_UP_TO_AN_HOUR = NumberRange("a number of seconds from 0 to 3600", 0, 3600)
NUMBER_RANGES = {
    "timeout": NumberRange("a number of seconds above 0 and at most 600", 0, 600, open_low=True),
    "max_attempts": NumberRange("a whole number from 1 to 100", 1, 100, whole=True),
    "requests_per_second": NumberRange(
        "a number above 0 and at most 30 (upsertOrders' documented maximum per second)",
        0,
        30,
        open_low=True,
    ),
    "settle_seconds": SECONDS_UP_TO_AN_HOUR,
    "ledger_timeout": SECONDS_UP_TO_AN_HOUR,
    "lease_seconds": NumberRange("a number of seconds from 3 to 3600", 3, 3600),
    "rescan_seconds": NumberRange(
        "a number of seconds above 0 and at most 3600", 0, 3600, open_low=True
    ),
    "action_flush_seconds": NumberRange(
        "a number of seconds from 0 to 86400; below 60 counts as 60", 0, 86400
    ),
    "action_poll_seconds": NumberRange(
        "a number of seconds from 0 to 86400; below 60 counts as 60", 0, 86400
    ),
    # Fractions are allowed: a test waits a second, not a minute.
    "alert_api_down_minutes": NumberRange(
        "a number of minutes above 0 and at most 10080 (a week)", 0, 10080, open_low=True
    ),
}
NUMBERS_IN_CONNECT_OR_WATCH = (
    "timeout",
    "max_attempts",
    "requests_per_second",
    "settle_seconds",
    "rescan_seconds",
    "ledger_timeout",
)


def checked_number(name: str, raw: Any, where: str) -> float:
    """``raw`` as the numeric setting ``name`` takes it; a UsageError saying ``where`` it was
    set and what is allowed otherwise."""
    number_range = NUMBER_RANGES[name]
    value = number_range.parse(raw)
    if value is None:
        raise UsageError(f"{where} must be {number_range.text} (got {_shown(raw)})")
    return int(value) if number_range.whole else value


def _shown(raw: Any) -> str:
    """A value as the user wrote it: TOML's true, 1e+09 rather than 1000000000.0."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float):
        return f"{raw:g}"
    return str(raw)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise UsageError(f"{what} {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{what} {path} is not valid TOML: {error}") from None


def _conventions(table: dict[str, Any], base: Conventions, where: str) -> Conventions:
    decimal_comma = table.get("decimal_comma", base.decimal_comma)
    if not isinstance(decimal_comma, bool):
        raise UsageError(f"{where}: decimal_comma must be true or false")
    zone = base.assume_timezone
    if table.get("assume_timezone"):
        try:
            zone = ZoneInfo(str(table["assume_timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(
                f"{where}: assume_timezone '{table['assume_timezone']}' is not a known timezone "
                "(use a name like Europe/Paris or UTC)"
            ) from None
    date_format = table.get("date_format", base.date_format)
    if date_format is not None:
        date_format = checked_date_format(date_format, zone, f"{where}: [read] date_format")
    return Conventions(decimal_comma=decimal_comma, assume_timezone=zone, date_format=date_format)


def checked_date_format(raw: Any, zone: tzinfo | None, where: str) -> str:
    """A date format (strptime's %d.%m.%Y %H:%M) that can read an export's date-times: it names
    the day, and either its own offset (%z) or the zone to assume. UsageError otherwise."""
    if not isinstance(raw, str) or not raw:
        raise UsageError(f'{where} must be a date format like "%d.%m.%Y %H:%M"')
    problem = date_format_problem(raw)
    if problem is None and zone is None and not writes_offset(raw):
        problem = (
            "writes no offset (%z): set assume_timezone to the zone the export writes its "
            "times in (e.g. Europe/Berlin)"
        )
    if problem is not None:
        raise UsageError(f"{where} '{raw}' {problem}")
    return raw


def _read_options(table: dict[str, Any], base: ReadOptions, where: str) -> ReadOptions:
    delimiter = table.get("delimiter", base.delimiter) or None
    if delimiter is not None:
        delimiter = {"tab": "\t", "\\t": "\t"}.get(delimiter, delimiter)
        if delimiter not in DELIMITERS:
            raise UsageError(f"{where}: delimiter must be one of , ; | tab")
    encoding = str(table.get("encoding", base.encoding))
    sheet = table.get("sheet", base.sheet)
    if sheet is not None and (not isinstance(sheet, str) or not sheet):
        raise UsageError(f'{where}: sheet must be the name of a sheet of the workbook ("Orders")')
    return ReadOptions(encoding=encoding, delimiter=delimiter, sheet=sheet)


def load_mapping_file(path: Path, base: ExportFormat) -> ExportFormat:
    """A mapping file: renames, constants, ignored columns and read conventions (README)."""
    data = read_toml(path, "mapping file")
    check_mapping(data, path)
    where = f"mapping file {path}"
    columns = data.get("columns", {})
    constants = data.get("constants", {})
    ignore = data.get("ignore", [])
    renames: dict[str, tuple[str, ...]] = {}
    for name, target in columns.items() if isinstance(columns, dict) else []:
        targets = [target] if isinstance(target, str) else target
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise UsageError(f'{where}: [columns] "{name}" must be a path or a list of paths')
        renames[str(name)] = tuple(targets)
    if not isinstance(columns, dict):
        raise UsageError(f'{where}: [columns] maps export column names to paths: "Name" = "path"')
    if not isinstance(constants, dict):
        raise UsageError(f'{where}: [constants] sets paths to values: "path" = "value"')
    if not isinstance(ignore, list):
        raise UsageError(f"{where}: ignore is a list of column names")
    read_table = data.get("read", {})
    conventions = _conventions(read_table, base.conventions, where)
    return ExportFormat(
        read=_read_options(read_table, base.read, where),
        conventions=conventions,
        mapping=ColumnMapping(
            renames=renames,
            constants={k: _constant_text(v) for k, v in constants.items()},
            ignore=frozenset(str(c) for c in ignore),
            formats=_formats(data.get("formats", {}), renames, conventions, where),
            values=_values(data.get("values", {}), renames, where),
        ),
    )


def _values(
    table: Any, renames: dict[str, tuple[str, ...]], where: str
) -> dict[str, tuple[tuple[str, str], ...]]:
    """[values."Column"]: the export's words for the values Connect takes, per column of the
    export (as [formats]); each entry's value as a constant's text (true, 1, "SHIPPED")."""
    if not isinstance(table, dict):
        raise UsageError(f'{where}: [values."Column"] maps a column\'s values: Name = "VALUE"')
    targets = {target for paths in renames.values() for target in paths}
    values: dict[str, tuple[tuple[str, str], ...]] = {}
    for name, entries in table.items():
        label = f'[values."{name}"]'
        if name in targets and name not in renames:
            raise UsageError(f"{where}: {_by_export_column('values', name, renames)}")
        if not isinstance(entries, dict):
            raise UsageError(f'{where}: {label} maps the column\'s values: Versendet = "SHIPPED"')
        if "" in entries:
            raise UsageError(
                f"{where}: {label}: an empty cell means the field is absent; it cannot be mapped"
            )
        for word, value in entries.items():
            if not isinstance(value, str | bool | int | float):
                raise UsageError(f"{where}: {label} {word} must be a text, a number, true or false")
        values[name] = tuple((word, _constant_text(value)) for word, value in entries.items())
    return values


def _by_export_column(table_name: str, key: str, renames: dict[str, tuple[str, ...]]) -> str:
    """The message when [formats] or [values] names a field that a renamed column fills: they
    are keyed by the column's name in the export (one column may fill several fields)."""
    sources = [name for name, targets in renames.items() if key in targets]
    return (
        f'[{table_name}] "{key}": that field is filled by the column "{sources[0]}" ([columns]); '
        f'name the column as the export does: [{table_name}] "{sources[0]}" = ...'
    )


def _formats(
    table: Any, renames: dict[str, tuple[str, ...]], conventions: Conventions, where: str
) -> dict[str, str]:
    """[formats]: a date format per column of the export (README, mapping files)."""
    if not isinstance(table, dict):
        raise UsageError(f'{where}: [formats] gives date formats to columns: "Name" = "%d.%m.%Y"')
    targets = {target for paths in renames.values() for target in paths}
    zone = conventions.assume_timezone  # the mapping file's, else the config file's
    formats: dict[str, str] = {}
    for name, raw in table.items():
        if name in targets and name not in renames:
            raise UsageError(f"{where}: {_by_export_column('formats', name, renames)}")
        formats[name] = checked_date_format(raw, zone, f'{where}: [formats] "{name}"')
    return formats


def _constant_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


CREDENTIALS_AND_URLS = ("api_url", "token_url", "client_id", "client_secret", "token")


def _loaded(key: str, value: str) -> str:
    """A value as read from a file or the environment. Credentials and URLs lose surrounding
    whitespace: one read from a file written on Windows ends in a carriage return, which no
    header can carry (and requests' refusal would print the token). Ids of the data are kept
    as they are."""
    return value.strip() if key in CREDENTIALS_AND_URLS else value


FLAG_NAMES = {"settle_seconds": "--settle", "rescan_seconds": "--rescan"}
# What Python callers may set by keyword (``Settings.load``); the rest come from files.
PATH_SETTINGS = frozenset({"inbox", "outbox", "state"})
SECRET_FIELDS = frozenset({"client_secret", "token"})
TEXT_SETTINGS = frozenset(
    {"api_url", "token_url", "client_id", "channel_id", "store_id", "target_name"}
)
FLAG_SETTINGS = frozenset({"polling", "fresh_ledger", "allow_insecure"})
KEYWORD_SETTINGS = (
    PATH_SETTINGS | SECRET_FIELDS | TEXT_SETTINGS | FLAG_SETTINGS | frozenset(NUMBER_RANGES)
)


def checked_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword settings as ``load_settings`` takes them: paths as ``Path``, secrets as
    ``Secret``; a name that is no setting, or a value of the wrong type, is a UsageError
    naming it (with the setting it most likely meant)."""
    import difflib

    checked: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in overrides.items():
        if name not in KEYWORD_SETTINGS:
            known = sorted(KEYWORD_SETTINGS | {f.name for f in fields(Settings)})
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{name} is not a setting{hint}")
        elif value is None:
            continue
        elif name in PATH_SETTINGS and isinstance(value, str | os.PathLike):
            checked[name] = Path(value)
        elif name in SECRET_FIELDS and isinstance(value, str | Secret):
            checked[name] = value if isinstance(value, Secret) else Secret(value.strip())
        elif name in TEXT_SETTINGS and isinstance(value, str):
            checked[name] = _loaded(name, value)
        elif name in FLAG_SETTINGS and isinstance(value, bool):
            checked[name] = value
        elif name in NUMBER_RANGES and not isinstance(value, bool | str):
            checked[name] = value  # its range is checked by load_settings
        else:
            shown = "" if name in SECRET_FIELDS else f" {value!r}"  # never a secret's value
            problems.append(f"{name} cannot be {type(value).__name__}{shown}")
    if problems:
        raise UsageError("; ".join(problems))
    return checked


def load_settings(
    config: Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Settings from the config file (explicit, or ./etl.toml if present), env and flags."""
    return load_settings_with_origins(config, overrides, environ)[0]


def load_settings_with_origins(
    config: Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> tuple[Settings, dict[str, str]]:
    """``load_settings``, and where each setting that is not a default came from: ``flag
    --inbox``, ``env CONNECT_API_URL``, ``file etl.toml [connect]``, a secret file's path."""
    environ = dict(os.environ) if environ is None else environ
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    base_dir = Path(".")
    default_source = ExportFormat()
    rules: list[MappingRule] = []
    path = config if config is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    if path is not None:
        data = read_toml(path, "config file")
        check_config(data, path)
        base_dir = path.parent

        def found(key: str, table_name: str) -> None:
            origins[key] = f"file {path} [{table_name}]"

        for key in ("inbox", "outbox", "state"):
            if key in data.get("paths", {}):
                raw = str(data["paths"][key])
                if key == "inbox" and is_store_url(raw):
                    values["inbox_url"] = raw
                    found("inbox_url", "paths")
                    continue
                values[key] = base_dir / raw
                found(key, "paths")
        for key, name in (
            ("endpoint_url", "inbox_endpoint_url"),
            ("region", "inbox_region"),
        ):
            if key in data.get("inbox", {}):
                values[name] = str(data["inbox"][key])
                found(name, "inbox")
        if "url" in data.get("report", {}):
            values["report_url"] = str(data["report"]["url"])
            found("report_url", "report")
        state_table = data.get("state", {})
        if "state_url" in state_table:
            url = str(state_table["state_url"])
            if urlsplit(url).password:
                refuse_shared_secret_file(path, "state_url", "state", "CONNECT_STATE_URL")
            values["state_url"] = Secret(url.strip())
            found("state_url", "state")
        if "lease_seconds" in state_table:
            where = f"config file {path}: [state] lease_seconds"
            values["lease_seconds"] = checked_number(
                "lease_seconds", state_table["lease_seconds"], where
            )
            found("lease_seconds", "state")
        connect = data.get("connect", {})
        for key in ("api_url", "token_url", "client_id", "channel_id", "store_id"):
            if key in connect:
                values[key] = _loaded(key, str(connect[key]))
                found(key, "connect")
        for key in ("client_secret", "token"):
            if key in connect:
                refuse_shared_secret_file(path, key)
                values[key] = Secret(_loaded(key, str(connect[key])))
                found(key, "connect")
        allow_insecure = connect.get("allow_insecure", False)
        if not isinstance(allow_insecure, bool):
            raise UsageError(f"config file {path}: [connect] allow_insecure must be true or false")
        values["allow_insecure"] = allow_insecure
        if "allow_insecure" in connect:
            found("allow_insecure", "connect")
        watch = data.get("watch", {})
        for key in NUMBERS_IN_CONNECT_OR_WATCH:
            for table_name, table in (("connect", connect), ("watch", watch)):
                if key in table:
                    where = f"config file {path}: [{table_name}] {key}"
                    values[key] = checked_number(key, table[key], where)
                    found(key, table_name)
                    break
        for key, name in (
            ("flush_seconds", "action_flush_seconds"),
            ("poll_seconds", "action_poll_seconds"),
        ):
            if key in data.get("actions", {}):
                where = f"config file {path}: [actions] {key}"
                number = checked_number(name, data["actions"][key], where)
                values[name] = max(60.0, number)  # the documented maximum: once a minute
                found(name, "actions")
        polling = watch.get("polling", False)
        if not isinstance(polling, bool):
            raise UsageError(f"config file {path}: [watch] polling must be true or false")
        values["polling"] = polling
        if "polling" in watch:
            found("polling", "watch")
        alerts = data.get("alerts", {})
        if "urls" in alerts:
            # Alert URLs carry tokens and passwords (a webhook's token, an SMTP login).
            refuse_shared_secret_file(path, "urls", "alerts", "CONNECT_ALERT_URLS")
            values["alert_urls"] = urls_setting(
                alerts["urls"], f"config file {path}: [alerts] urls"
            )
            found("alert_urls", "alerts")
        if "api_down_minutes" in alerts:
            where = f"config file {path}: [alerts] api_down_minutes"
            number = checked_number("alert_api_down_minutes", alerts["api_down_minutes"], where)
            values["alert_api_down_minutes"] = number
            found("alert_api_down_minutes", "alerts")
        if "events" in data:
            values["events"] = load_events(data["events"], path, environ)
            found("events", "events")
        read_table = data.get("read", {})
        default_source = ExportFormat(
            read=_read_options(read_table, ReadOptions(), f"config file {path}"),
            conventions=_conventions(read_table, Conventions(), f"config file {path}"),
        )
        for rule in data.get("mappings", []):
            if "glob" not in rule or "file" not in rule:
                raise UsageError(f"config file {path}: each [[mappings]] needs glob and file")
            source = load_mapping_file(base_dir / rule["file"], default_source)
            rules.append(MappingRule(glob=str(rule["glob"]), source=source))
    for key, (variable, _) in SECRET_SETTINGS.items():
        # Files beat etl.toml, the plain variable beats files (etl/settings/secret_files.py).
        secret = None if environ.get(variable) else secret_from_files(key, environ)
        if secret is not None:
            values[key] = Secret(secret.value)
            origins[key] = secret.origin
    for variable, key in ENVIRONMENT.items():
        if environ.get(variable):
            value = _loaded(key, environ[variable])
            hidden = key in ("client_secret", "token", "state_url")
            values[key] = Secret(value) if hidden else value
            origins[key] = f"env {variable}"
    if environ.get("CONNECT_ALERT_URLS", "").strip():
        # Space-separated: no apprise URL holds a bare space (it would be %20).
        values["alert_urls"] = tuple(Secret(url) for url in environ["CONNECT_ALERT_URLS"].split())
        origins["alert_urls"] = "env CONNECT_ALERT_URLS"
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = checked_number(key, value, key) if key in NUMBER_RANGES else value
            flag = {**FLAG_NAMES, "state_url": "--state", "inbox_url": "--inbox"}.get(key)
            origins[key] = "flag " + (flag or "--" + key.replace("_", "-"))
    if overrides and overrides.get("inbox") is not None:
        values.pop("inbox_url", None)  # --inbox DIR beats an s3:// inbox of etl.toml
        origins.pop("inbox_url", None)
    settings = Settings(default_source=default_source, mapping_rules=tuple(rules))
    return replace(settings, **values), origins


def urls_setting(raw: object, where: str) -> tuple[Secret, ...]:
    """``[alerts] urls`` checked: a list of strings, each kept as a Secret."""
    if not isinstance(raw, list) or not all(isinstance(url, str) for url in raw):
        raise UsageError(f'{where} must be a list of apprise URLs, e.g. urls = ["mailto://..."]')
    return tuple(Secret(url.strip()) for url in raw if url.strip())
