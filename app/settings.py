"""Settings read from STAGEGATE_* environment variables, with embedded defaults."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(f"STAGEGATE_{name}", default)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(_env("DATA_DIR", "data")).resolve())
    database_url: str = ""
    # Migrate an un-migrated database on `serve`; set STAGEGATE_AUTO_MIGRATE=0 to refuse.
    auto_migrate: bool = field(default_factory=lambda: _env("AUTO_MIGRATE", "1") != "0")
    # The in-process evaluation worker; off when workers run as their own processes.
    inprocess_worker: bool = field(default_factory=lambda: _env("INPROCESS_WORKER", "1") != "0")
    max_page_size: int = 200
    # Exact cache of anonymous public reads (app/readcache.py); 0 turns it off (benchmarks).
    read_cache: bool = field(default_factory=lambda: _env("READ_CACHE", "1") != "0")
    # In-process evaluations at nice 10 with fewer torch threads than cores; 0: full speed.
    worker_yield: bool = field(default_factory=lambda: _env("WORKER_YIELD", "1") != "0")
    # The registry's public address (e.g. https://registry.example.org), used for the
    # absolute links in exported cards; empty: taken from each request.
    public_url: str = field(default_factory=lambda: _env("PUBLIC_URL", "").rstrip("/"))
    # Proxies whose X-Forwarded-For is believed (comma-separated CIDRs or addresses).
    # Empty: the peer address is the client, whatever headers it sends.
    trusted_proxies: str = field(default_factory=lambda: _env("TRUSTED_PROXIES", ""))
    # Web cookies (session, CSRF) carry `Secure`: set STAGEGATE_SECURE_COOKIES=1 behind TLS.
    secure_cookies: bool = field(default_factory=lambda: _env("SECURE_COOKIES", "0") == "1")
    # Where policies/<id>/policy.yaml live; None = the policies/ folder shipped with the code.
    policy_dir: Path | None = field(default_factory=lambda: Path(_env("POLICY_DIR", "")).resolve()
                                    if _env("POLICY_DIR", "") else None)
    # Policy ids every plan is judged against, besides the ones it declares (app/norms).
    mandatory_policies: tuple[str, ...] = field(default_factory=lambda: tuple(
        p.strip() for p in _env("MANDATORY_POLICIES", "").split(",") if p.strip()))
    # Seconds a page or API answer may take before the client gets a 503 problem
    # (app/http.py request_budget_middleware); 0 turns the budget off.
    request_budget_s: float = field(default_factory=lambda: float(
        _env("REQUEST_BUDGET_S", "10")))
    # Seconds `stagegate serve` waits for open requests on shutdown, and again for stuck
    # worker threads, before it exits anyway.
    shutdown_grace_s: float = field(default_factory=lambda: float(
        _env("SHUTDOWN_GRACE_S", "10")))

    # The transparency log (app/transparency/): its origin line, which is also its key's
    # name (empty: the public address's host and path + "/log", else "stagegate.local/log");
    # its Ed25519 key file (empty: log.key in the data folder, made on first use); and the
    # seconds between signed checkpoints while there are new leaves.
    log_origin: str = field(default_factory=lambda: _env("LOG_ORIGIN", ""))
    log_key_file: str = field(default_factory=lambda: _env("LOG_KEY_FILE", ""))
    log_checkpoint_s: float = field(default_factory=lambda: float(_env("LOG_CHECKPOINT_S", "5")))

    # Where checkpoint files live: empty = <data>/blobs; `s3://BUCKET/PREFIX` = an
    # S3-compatible bucket (endpoint and credentials from the usual AWS_* variables); the
    # seconds a presigned download URL is valid; and the endpoint presigned URLs name,
    # where clients reach the bucket elsewhere than the registry does (empty: the same).
    blob_url: str = field(default_factory=lambda: _env("BLOB_URL", "").rstrip("/"))
    blob_url_ttl_s: int = field(default_factory=lambda: int(_env("BLOB_URL_TTL_S", "300")))
    blob_presign_endpoint: str = field(default_factory=lambda: _env("BLOB_PRESIGN_ENDPOINT", ""))

    def __post_init__(self) -> None:
        if self.blob_url and not (self.blob_url.startswith("s3://")
                                  and self.blob_url[5:].split("/", 1)[0]):
            raise ValueError(f"STAGEGATE_BLOB_URL: {self.blob_url!r} is not s3://BUCKET[/PREFIX]")
        if not 1 <= self.blob_url_ttl_s <= 7 * 24 * 3600:
            raise ValueError("STAGEGATE_BLOB_URL_TTL_S: give 1 to 604800 seconds (S3's limit)")
        if not self.database_url:
            url = _env("DATABASE_URL", "") or f"sqlite:///{self.data_dir / 'stagegate.db'}"
            object.__setattr__(self, "database_url", url)
        try:
            self.trusted_networks  # noqa: B018 (a bad setting fails at start, not per request)
        except ValueError as exc:
            raise ValueError(f"STAGEGATE_TRUSTED_PROXIES: {exc}") from None

    @cached_property
    def trusted_networks(self) -> tuple:
        return tuple(ipaddress.ip_network(part.strip(), strict=False)
                     for part in self.trusted_proxies.split(",") if part.strip())

    @property
    def log_origin_line(self) -> str:
        if self.log_origin:
            return self.log_origin
        if self.public_url:
            return self.public_url.split("://", 1)[-1] + "/log"
        return "stagegate.local/log"

    @property
    def log_key_path(self) -> Path:
        return Path(self.log_key_file) if self.log_key_file else self.data_dir / "log.key"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def secret_key(self) -> bytes:
        """Key material for token hashing; generated on first use, kept in the data folder."""
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # O_EXCL: two processes starting at once must not each write a different key.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32))
            except FileExistsError:
                pass
        return bytes.fromhex(path.read_text().strip())


_settings: Settings | None = None


def get_settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = Settings()
    return _settings


def configure(settings: Settings) -> Settings:
    """Replace the process settings (tests, CLI options)."""
    global _settings
    _settings = settings
    return settings
