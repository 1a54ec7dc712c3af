"""Every download from the Hugging Face Hub goes through `hub_call`, which turns a failure into one line that
says what happened and the way out.

The cases, from huggingface_hub's own exception types and the connection error under them:

- offline mode (`HF_HUB_OFFLINE=1`) and the file not in the cache: the variable is set, the file was never
  downloaded here;
- the endpoint does not answer (name not resolved, connection refused or timed out, TLS or proxy failure):
  the endpoint (`HF_ENDPOINT` where set), the reason, and the ways out. Checked first, once per process, by
  one HEAD request with a PROBE_S timeout (`unreachable`), so that a machine without network hears it at
  once instead of after huggingface_hub's back-off; a file already in the cache is then used from there
  (`from_the_cache`);
- 401 / 403: a gated or private repo (log in, or a token);
- 404: only then "not found", of the repo, its revision or the file in it, with the setting to check.

Transient answers (429, 5xx) keep huggingface_hub's retries; its retry warnings are said once
(`quiet_retries`). Anything else is not the Hub's doing and is raised as it was.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .errors import UserError, first_line

PROBE_S = 3.0  # seconds the endpoint has to answer the first request of a process
_reasons: dict[str, str | None] = {}  # endpoint -> why it did not answer (None: it answered)


def endpoint() -> str:
    """The Hub's address as huggingface_hub uses it (`HF_ENDPOINT`, else https://huggingface.co)."""
    return os.environ.get("HF_ENDPOINT", "").rstrip("/") or "https://huggingface.co"


def offline() -> bool:
    """Whether `HF_HUB_OFFLINE` is set: in the environment, or as huggingface_hub or datasets hold it."""
    from huggingface_hub import constants

    held = [getattr(sys.modules.get("datasets.config"), "HF_HUB_OFFLINE", False), constants.HF_HUB_OFFLINE]
    return any(held) or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def _why(err: BaseException) -> str:
    """A connection failure in a few words."""
    reason = getattr(err, "reason", err)
    if isinstance(reason, socket.gaierror):
        return "its name does not resolve"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"no answer within {PROBE_S:.0f} s"
    if isinstance(reason, ssl.SSLError):
        return f"TLS failed: {first_line(reason)}"
    if isinstance(reason, OSError) and "proxy" in str(reason).lower():
        return f"the proxy failed: {first_line(reason)}"
    return first_line(reason) if isinstance(reason, BaseException) else str(reason)


def unreachable() -> str | None:
    """Why the endpoint does not answer, or None where it answers anything (any HTTP status will do);
    asked once per process and endpoint, through the proxy settings urllib and huggingface_hub share."""
    url = endpoint()
    if url not in _reasons:
        try:
            urllib.request.urlopen(urllib.request.Request(url + "/", method="HEAD"), timeout=PROBE_S).close()
            _reasons[url] = None
        except urllib.error.HTTPError:
            _reasons[url] = None
        except (urllib.error.URLError, OSError, ValueError) as err:
            _reasons[url] = _why(err)
    return _reasons[url]


def _chain(err: BaseException) -> list[BaseException]:
    """`err` and the exceptions it was raised from (transformers wraps huggingface_hub's in OSError)."""
    out: list[BaseException] = []
    while err is not None and err not in out:
        out.append(err)
        err = err.__cause__ or err.__context__
    return out


def _status(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


@dataclass(frozen=True)
class Wanted:
    """What a download is for, as the lines name it: `what` (e.g. "dataset") `repo`, set by `setting`; the
    file in it (`filename`, set by `file_setting`), and the local way out (`local`)."""

    what: str
    repo: str
    setting: str
    local: str
    filename: str | None = None
    file_setting: str | None = None
    revision_setting: str | None = None

    @property
    def thing(self) -> str:
        return f"{self.filename} of {self.repo}" if self.filename else self.repo


def explain(err: BaseException, wanted: Wanted) -> str | None:
    """The one line for a Hub failure in `err`'s chain (None: not the Hub's)."""
    from huggingface_hub import errors

    w, chain = wanted, _chain(err)

    def has(kind: type) -> BaseException | None:
        return next((e for e in chain if isinstance(e, kind)), None)

    if offline() and (has(errors.LocalEntryNotFoundError) or has(errors.OfflineModeIsEnabled)
                      or has(OSError)) and not has(errors.HfHubHTTPError):
        return offline_line(w)
    if has(errors.GatedRepoError) or _status(has(errors.HfHubHTTPError) or err) in (401, 403):
        return (f"the {w.what} {w.repo} is gated or private and this machine may not read it: accept its terms "
                f"on the Hub, then log in (`hf auth login`) or set HF_TOKEN; or check {w.setting}")
    if has(errors.RevisionNotFoundError):
        return f"the {w.what} {w.repo} has no such revision: check {w.revision_setting or 'its revision'}"
    if has(errors.RepositoryNotFoundError):
        return f"the {w.what} repo {w.repo} was not found on the Hub ({endpoint()}): check {w.setting}"
    if has(errors.RemoteEntryNotFoundError):
        return (f"the {w.what} repo {w.repo} holds no file {w.filename or '(the one asked for)'}: check "
                f"{w.file_setting or w.setting}")
    http = has(errors.HfHubHTTPError)
    if http is not None and _status(http):
        return (f"the Hub ({endpoint()}) answered {_status(http)} for the {w.what} {w.thing}, after retries: try "
                f"again later, or use a local copy ({w.local})")
    if has(errors.LocalEntryNotFoundError) or has(ConnectionError) or any("httpx" in type(e).__module__
                                                                           for e in chain):
        return no_answer(w, first_line(chain[-1]))
    return None


def offline_line(wanted: Wanted) -> str:
    return (f"HF_HUB_OFFLINE=1 is set and the {wanted.what} {wanted.thing} was never downloaded here: unset "
            f"HF_HUB_OFFLINE on a machine that reaches the Hub, or use a local copy ({wanted.local})")


def no_answer(wanted: Wanted, reason: str) -> str:
    named = "HF_ENDPOINT " if os.environ.get("HF_ENDPOINT") else ""
    return (f"the Hub does not answer at {named}{endpoint()} ({reason}) and the {wanted.what} {wanted.thing} is not "
            f"in the cache: check the network or proxy (HTTPS_PROXY), point HF_ENDPOINT at a mirror, or use a "
            f"local copy ({wanted.local})")


def hub_call(load: Callable[..., Any], wanted: Wanted) -> Any:
    """`load()` (a download: hf_hub_download, from_pretrained), its failures as one line (see the module).
    Where the endpoint does not answer, `load()` from the cache, or that line."""
    if not offline():
        reason = unreachable()
        if reason is not None:
            try:
                with from_the_cache():
                    found = load()
            except Exception:  # noqa: BLE001 - not cached: the network is the problem, say so
                raise UserError(no_answer(wanted, reason)) from None
            print(f"note: the Hub does not answer at {endpoint()} ({reason}): using the cached {wanted.what} "
                  f"{wanted.repo}", file=sys.stderr)  # stdout may be infer.py --json's
            return found
    with quiet_retries():
        try:
            return load()
        except Exception as err:
            line = explain(err, wanted)
            if line is None:
                raise
            raise UserError(line) from None


@contextlib.contextmanager
def from_the_cache() -> Iterator[None]:
    """huggingface_hub (and transformers through it) in offline mode for the calls inside: each answers from
    the cache at once, none retries a request (transformers asks for files such as adapter_config.json
    even when told local_files_only)."""
    from huggingface_hub import constants

    libraries = [constants, *(m for m in (sys.modules.get("datasets.config"),) if m is not None)]
    before = [m.HF_HUB_OFFLINE for m in libraries]
    for module in libraries:
        module.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        for module, value in zip(libraries, before):
            module.HF_HUB_OFFLINE = value


class _OnceFilter(logging.Filter):
    """huggingface_hub's retry warnings: the first said in our words, the rest dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.said = False

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "Retry" not in text and "thrown while requesting" not in text:
            return True
        if not self.said and "Retry" in text:
            self.said = True
            record.msg, record.args = "the Hub did not answer that request; retrying, with pauses", ()
            return True
        return False


class quiet_retries:
    """A context in which huggingface_hub's retries are announced once."""

    def __enter__(self) -> "quiet_retries":
        self.logger, self.filter = logging.getLogger("huggingface_hub.utils._http"), _OnceFilter()
        self.logger.addFilter(self.filter)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.logger.removeFilter(self.filter)
