"""Publish to Tableau: an Alteryx output tool that builds a .hyper extract from its input records
and publishes it with libtableau_publisher, signing in only when the data is complete.

Designer's own "Publish to Tableau Server" tool signs in when the workflow starts, so an upstream
that runs for hours outlives the session (401002) and the upload fails. This tool:

    __init__            reads the configuration XML (config_xml) and validates it with the
                        library (no network); bad settings are reported at once, before any record.
                        With <preflight>true</preflight> (and not in Designer's update-only
                        mode) it also checks credentials, site, project and mode now, then signs out.
    on_record_batch     appends each batch to the extract (extract_builder: Parquet + COPY).
    on_complete         closes the extract, hands it to the library and publishes: signs in now.

Each failure is reported once, with provider.io.error and the library's message (which names
the key and the fix, or the kept spool and the `tabpub resume` command); no message carries a
secret. Progress: publish_progress.
"""
import inspect
import os
import shutil
import tempfile
import time
from urllib.parse import urlsplit, urlunsplit

from ayx_python_sdk.core import Anchor, PluginV2
from ayx_python_sdk.providers.amp_provider.amp_provider_v2 import AMPProviderV2

from . import config_xml
from .arrow_to_hyper import UnsupportedSchema
from .extract_builder import ExtractBuilder, ExtractError
from .publish_progress import EXTRACT_CLOSED, ProgressBar

try:  # the copy packaged next to this module (sync-binding.sh)
    from . import tableau_publisher as tp
except ImportError:  # bindings/python on sys.path
    import tableau_publisher as tp

FEED_CHUNK = 8 * 1024 * 1024
EXTRACT_NAME = "extract.hyper"


class PublishToTableau(PluginV2):
    """The Publish to Tableau tool (one input anchor, no output)."""

    def __init__(self, provider: AMPProviderV2):
        self.provider = provider
        self.failed = False  # a failure was reported: ignore the rest of the run
        self.publisher = None
        self.settings = None
        self.config = None
        self.builder = None
        self.staging_dir = None
        self.staging_dir_kept = False  # the built extract is the only copy: never delete it
        self.progress = ProgressBar(provider.io.update_progress)
        try:
            self._configure()
        except Exception as e:  # a bug of this tool: still one clear message
            self._fail(f"internal error while reading the configuration: {e!r}")

    # --- Designer's callbacks ---------------------------------------------------------------------
    def on_record_batch(self, batch, anchor: Anchor) -> None:
        if self.failed:
            return
        try:
            if self.builder is None:
                self._start_extract()
            self.builder.append(batch)
        except (UnsupportedSchema, ExtractError) as e:
            self._fail(str(e))
        except Exception as e:
            self._fail(f"internal error while building the extract: {e!r}")
        if self.failed:
            self._discard_extract()

    def on_incoming_connection_complete(self, anchor: Anchor) -> None:
        pass  # on_complete follows

    def on_complete(self) -> None:
        if self.failed:
            self._close()
            return
        try:
            if self.builder is None or self.builder.rows == 0:  # never replace a data source with nothing
                self.provider.io.warn(
                    "no records arrived, so nothing was published; the data source on the server is unchanged")
                return
            built = self._finish_extract()
            if built is not None and self._spool(built):
                self._publish()
        except Exception as e:
            self._fail(f"internal error while publishing: {e!r}")
        finally:
            self._close()

    # --- configuration ----------------------------------------------------------------------------
    def _configure(self):
        try:
            tp.library()
        except (OSError, AttributeError) as e:  # not found, or one older than the binding
            return self._fail(f"cannot load the tableau-publisher library ({e}); reinstall the tool, "
                              f"or set TABLEAU_PUBLISHER_LIB to the library's path")
        try:
            self.config, self.settings = config_xml.convert(self.provider.tool_config)
            self.publisher = tp.Publisher(self.config)  # validates: every problem at once, no network
        except config_xml.ConfigXmlError as e:
            return self._fail(str(e))
        except tp.PublisherError as e:
            return self._fail(str(e))
        self.provider.io.info(f"will publish {self._target()}; signs in when the data is complete")
        if self.settings.preflight and not _update_only(self.provider):
            try:
                self.publisher.preflight(**self._log_argument(self.publisher.preflight, []))
            except tp.PublisherError as e:
                return self._fail(f"preflight: {str(e)}")
            self.provider.io.info("preflight passed: credentials, site, project and mode are fine (signed out again)")

    def _target(self):
        c = self.config
        project = c.get("project_id") or c.get("project")
        if isinstance(project, list):
            project = "/".join(project)
        site = c.get("site") or "Default"
        return (f"\"{c.get('datasource_name')}\" ({c.get('mode')}) to project {project} on "
                f"{_without_credentials(c.get('server_url', ''))}, site {site}")

    # --- the extract ------------------------------------------------------------------------------
    def _start_extract(self):
        base = self.config.get("spool_dir") or _designer_temp_dir(self.provider) or tempfile.gettempdir()
        self.staging_dir = tempfile.mkdtemp(prefix="tableau-publisher-alteryx-", dir=base)
        self.builder = ExtractBuilder(os.path.join(self.staging_dir, EXTRACT_NAME), self.staging_dir,
                                      database_version=self.settings.hyper_database_version)

    def _finish_extract(self):
        try:
            built = self.builder.finish()
        except ExtractError as e:
            self._fail(str(e))
            return None
        self.progress.set(EXTRACT_CLOSED)
        self.provider.io.info(
            f"extract built: {built.rows} rows, {built.columns} columns, {_size(built.bytes)} "
            f"in {built.seconds:.1f} s of work ({built.rows / max(built.seconds, 1e-9):,.0f} rows/s)")
        return built

    def _spool(self, built):
        """Hands the .hyper to the library's spool: journaled from the start of the publish, so a
        failure (or a crash) keeps it with a manifest and `tabpub resume` can publish it."""
        done = 0
        try:
            with open(built.path, "rb", buffering=0) as f:
                buffer = bytearray(FEED_CHUNK)
                view = memoryview(buffer)
                while True:
                    n = f.readinto(buffer)
                    if not n:
                        break
                    self.publisher.feed(view[:n])
                    done += n
                    self.progress.spooling(done, built.bytes)
        except (OSError, tp.PublisherError) as e:
            reason = str(e)
            self.staging_dir_kept = True
            self._fail(f"could not hand the extract to the publisher ({reason}); the extract is kept at "
                       f"{built.path}; publish it with: tabpub publish --config CONFIG.json --input {built.path}")
            return False
        self._discard_extract()  # the spool holds the bytes now
        return True

    def _discard_extract(self):
        if self.builder is not None:
            self.builder.abort()
        if self.staging_dir and not self.staging_dir_kept:
            shutil.rmtree(self.staging_dir, ignore_errors=True)
            self.staging_dir = None

    # --- the publish ------------------------------------------------------------------------------
    def _publish(self):
        started = time.monotonic()
        held = []  # the library's "error" log lines: its final error, which the exception carries
        try:
            result = self.publisher.publish(progress=self.progress.publish,
                                            **self._log_argument(self.publisher.publish, held))
        except tp.PublisherError as e:
            return self._fail(str(e))  # the one error, with the kept spool
        for message in held:  # logged as errors, yet the publish succeeded
            self.provider.io.warn(message)
        self.progress.set(1.0)
        self.provider.io.info(
            f"published {self._target()} in {time.monotonic() - started:.1f} s: "
            f"{_size(result.get('bytes', 0))}, data source id {result.get('datasource_id')}, "
            f"sha256 {result.get('sha256')}, {_counts(result)}")

    def _log_argument(self, method, held):
        """{"log": ...} for a binding whose method takes log= (tp_set_log_callback), else {}."""
        if not _accepts_log(method):
            return {}
        return {"log": lambda level, message: self._library_log(level, message, held)}

    def _library_log(self, level, message, held):
        """What the library tells as it works (sign-in, retries, re-authentication) as Designer
        messages. Its "error" is the failure publish() then raises, reported once by _fail."""
        if level == "error":
            held.append(message)
        elif level == "warn":
            self.provider.io.warn(message)
        else:
            self.provider.io.info(message)

    # --- endings ----------------------------------------------------------------------------------
    def _fail(self, message):
        """Reports a failure (once per run) and stops the tool's work."""
        if not self.failed:
            self.failed = True
            self.provider.io.error(message)

    def _close(self):
        self._discard_extract()
        if self.publisher is not None:
            self.publisher.close()
            self.publisher = None


def _accepts_log(method):
    """Whether this binding's method takes log= (added with tp_set_log_callback)."""
    try:
        return "log" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _update_only(provider):
    """Designer's update-only mode (configuring, not running); the test harness never sets it."""
    try:
        return bool(provider.environment.update_only)
    except RuntimeError:
        return False


def _designer_temp_dir(provider):
    try:
        d = provider.environment.temp_dir
    except (RuntimeError, AttributeError):
        return None
    return d if d and os.path.isdir(d) else None


def _without_credentials(url):
    try:
        parts = urlsplit(url)
    except ValueError:
        return "the configured server"
    if parts.username or parts.password:
        parts = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else ""))
    return urlunsplit(parts)


def _size(n):
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024


def _counts(result):
    parts = []
    for key, word in (("sign_ins", "sign-ins"), ("upload_sessions", "upload sessions"),
                      ("retries", "retries"), ("http_requests", "requests")):
        if key in result:
            parts.append(f"{word} {result[key]}")
    return ", ".join(parts) if parts else "done"
