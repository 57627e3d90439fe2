"""Fixtures: the emulator (target/debug/tableau-emulator) and a harness that runs the tool through
ayx-python-sdk's SdkToolTestService while recording every Designer message and progress value.

Needs `cargo build --workspace --locked` first; hosts/alteryx/run-tests.sh checks that and sets
TABLEAU_PUBLISHER_LIB."""
import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from xml.sax.saxutils import escape

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BACKEND = os.path.dirname(HERE)
ROOT = os.path.abspath(os.path.join(BACKEND, "..", "..", ".."))
sys.path.insert(0, BACKEND)
sys.path.append(os.path.join(ROOT, "bindings", "python"))  # when sync-binding.sh has not run
os.environ.setdefault("TABLEAU_PUBLISHER_LIB", os.path.join(ROOT, "target", "debug", "libtableau_publisher.so"))
EMULATOR = os.environ.get("TABLEAU_EMULATOR_BIN", os.path.join(ROOT, "target", "debug", "tableau-emulator"))
TABPUB = os.path.join(ROOT, "target", "debug", "tabpub")

# The emulator's default seed: PAT "ci" with this secret on the Default site.
PAT_NAME, PAT_SECRET = "ci", "ci-secret"
SECRET_ENV = "TP_ALTERYX_TEST_PAT"
os.environ[SECRET_ENV] = PAT_SECRET


class Emulator:
    """One tableau-emulator process on 127.0.0.1:0 (its URL is the first line it prints)."""

    def __init__(self, *flags):
        if not os.path.exists(EMULATOR):
            raise RuntimeError(f"{EMULATOR} is missing: run cargo build --workspace --locked")
        self.proc = subprocess.Popen([EMULATOR, "--listen", "127.0.0.1:0", "--quiet", "--exit-on-stdin-eof", *flags],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.url = self.proc.stdout.readline().decode().strip()
        if not self.url.startswith("http"):
            raise RuntimeError(f"the emulator printed no URL (got {self.url!r})")

    def get(self, path):
        with urllib.request.urlopen(self.url + path) as r:
            return json.loads(r.read())

    def post(self, path, body):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read())

    def datasources(self, name=None):
        return [d for d in self.get("/_emulator/datasources") if name is None or d["name"] == name]

    def requests(self):
        return self.get("/_emulator/requests")

    def sign_ins(self):
        return sum(1 for r in self.requests() if r["path"].endswith("/auth/signin") and r["status"] == 200)

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def emulator():
    emu = Emulator()
    yield emu
    emu.stop()


@pytest.fixture
def start_emulator():
    """start_emulator(*flags): an emulator of this test's own (stopped after the test)."""
    started = []

    def start(*flags):
        started.append(Emulator(*flags))
        return started[-1]

    yield start
    for emu in started:
        emu.stop()


def element(key, value):
    """<key>value</key>, nested for dicts, one <item> per list entry."""
    if isinstance(value, dict):
        return f"<{key}>" + "".join(element(k, v) for k, v in value.items()) + f"</{key}>"
    if isinstance(value, list):
        return f"<{key}>" + "".join(element("item", v) for v in value) + f"</{key}>"
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{key}>{escape(str(value))}</{key}>"


def config_xml(url, spool_dir, indent=True, **settings):
    """The tool's configuration XML for the emulator; keyword arguments override or add keys
    (None removes one)."""
    config = {
        "server_url": url,
        "site": "",
        "auth": {"method": "pat", "token_name": PAT_NAME, "token_secret_env": SECRET_ENV},
        "project": "Finance/Quarterly",
        "datasource_name": "alteryx",
        "mode": "overwrite",
        "spool_dir": spool_dir,
    }
    config.update(settings)
    body = [element(k, v) for k, v in config.items() if v is not None]
    sep = "\n  " if indent else ""
    return "<Configuration>" + sep + sep.join(body) + ("\n" if indent else "") + "</Configuration>"


class ToolRun:
    """PublishToTableau run by SdkToolTestService, with every message and progress value kept.

    The service's own io_stream holds only the last call's messages and cannot show progress, so
    the control queue is drained here instead (the same queue Designer reads)."""

    def __init__(self, config, schema=None):
        from ayx_plugins import PublishToTableau
        import pyarrow as pa

        self.messages = []  # (kind, text) in order: kind is INFO, WARN or ERROR
        self.progress = []
        self.phase_of_message = []  # "init", "batch N" or "complete", per message
        self._phase = "init"
        self.service = _RecordingService(self, PublishToTableau, {"Input": schema or pa.schema([])}, {}, config)
        self.service._flush_and_save_streams()  # what __init__ said
        self.plugin = self.service.plugin

    def batch(self, table, index=0):
        from ayx_python_sdk.core import Anchor
        self._phase = f"batch {index}"
        self.service.run_on_record_batch(table, Anchor("Input", "1"))

    def complete(self):
        from ayx_python_sdk.core import Anchor
        self._phase = "complete"
        self.service.run_on_incoming_connection_complete(Anchor("Input", "1"))
        self.service.run_on_complete()

    def run(self, tables, between=None):
        for i, t in enumerate(tables):
            if between and i:
                between(i)
            self.batch(t, i)
        if between:
            between(len(tables))
        self.complete()
        return self

    def of(self, kind):
        return [text for k, text in self.messages if k == kind]

    @property
    def errors(self):
        return self.of("ERROR")

    def all_text(self):
        return "\n".join(text for _, text in self.messages)

    def record(self, kind, text):
        self.messages.append((kind, text))
        self.phase_of_message.append(self._phase)


def _recording_service_class():
    from ayx_python_sdk.core.testing import SdkToolTestService

    class RecordingService(SdkToolTestService):
        KINDS = {1: "INFO", 2: "WARN", 3: "ERROR"}

        def __init__(self, run, *args):
            self._run = run
            super().__init__(*args)

        def _flush_and_save_streams(self):
            ctrl_out = self.service.driver.ctrl_io.ctrl_out
            while not ctrl_out.empty():
                item = ctrl_out.get_nowait()
                payload = item.WhichOneof("payload")
                if payload == "output_message":
                    m = item.output_message
                    self._run.record(self.KINDS.get(m.message_type, str(m.message_type)), m.message)
                elif payload == "update_progress":
                    self._run.progress.append(item.update_progress.value)
            pending = self.service.driver.record_io.pending_writes
            while not pending.empty():
                pending.get_nowait()  # the tool has no output anchor

    return RecordingService


def _RecordingService(run, *args):
    return _recording_service_class()(run, *args)


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
