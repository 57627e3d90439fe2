"""Tests the Python binding against the emulator: a real publish and the error paths.
Run from the repository root after `cargo build`: python3 bindings/python/test_binding.py"""
import gc
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import json
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
os.environ.setdefault("TABLEAU_PUBLISHER_LIB", os.path.join(ROOT, "target", "debug", "libtableau_publisher.so"))
EMULATOR = os.environ.get("TABLEAU_EMULATOR_BIN", os.path.join(ROOT, "target", "debug", "tableau-emulator"))
SAMPLE = os.path.join(ROOT, "tests", "fixtures", "sample.hyper")
with open(SAMPLE, "rb") as f:
    SAMPLE_BYTES = f.read()

import tableau_publisher as tp  # noqa: E402


class BindingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.data = tempfile.mkdtemp()
        cls.emu = subprocess.Popen([EMULATOR, "--listen", "127.0.0.1:0", "--quiet", "--exit-on-stdin-eof",
                                    "--data-dir", cls.data],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        cls.url = cls.emu.stdout.readline().decode().strip()
        cls.spool = tempfile.mkdtemp()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stdin.close()
        cls.emu.wait(timeout=30)
        cls.emu.stdout.close()
        shutil.rmtree(cls.data, ignore_errors=True)

    def config(self, **over):
        cfg = {"server_url": self.url, "site": "",
               "auth": {"method": "pat", "token_name": "ci", "token_secret": "ci-secret"},
               "project": "Finance/Quarterly", "datasource_name": "py", "mode": "overwrite",
               "spool_dir": self.spool}
        cfg.update(over)
        return cfg

    def stored(self):
        with urllib.request.urlopen(self.url + "/_emulator/datasources") as r:
            return json.loads(r.read())

    def control(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return r.read()

    def fault(self, method, path_contains, action):
        """Injects a fault on the next matching request; removed when the test ends."""
        self.control("POST", "/_emulator/faults",
                     {"method": method, "path_contains": path_contains, "action": action})
        self.addCleanup(self.control, "DELETE", "/_emulator/faults")

    def test_publish_in_chunks(self):
        data = SAMPLE_BYTES
        with tp.Publisher(self.config(datasource_name="py-chunks")) as p:
            p.preflight()
            for i in range(0, len(data), 10000):
                p.feed(memoryview(data)[i:i + 10000])
            result = p.publish()
        self.assertEqual(result["sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(result["bytes"], len(data))
        stored = [d for d in self.stored() if d["name"] == "py-chunks"]
        self.assertEqual(stored[0]["sha256"], result["sha256"])

    def test_publish_csv_rows_builds_a_hyper_before_signing_in(self):
        """A host holding rows feeds CSV; Tableau's own Hyper API reads the same rows back."""
        try:
            import tableauhyperapi  # noqa: F401
        except ImportError:
            if os.environ.get("TP_SKIP_HYPERD_TESTS") == "1":
                self.skipTest("no tableauhyperapi (TP_SKIP_HYPERD_TESTS=1)")
            raise AssertionError("this test needs Tableau's hyperd: pip install -r tests/rows/requirements.txt "
                                 "(or set TP_SKIP_HYPERD_TESTS=1 to skip it)")
        rows = ["id,city,amount,day"]
        for i in range(1000):
            city = ['"Paris, France"', "Zürich", "", '"say ""hi"""'][i % 4]
            rows.append(f"{i},{city},{i % 97}.{i % 100:02d},2026-{i % 12 + 1:02d}-{i % 28 + 1:02d}")
        data = ("\n".join(rows) + "\n").encode()
        csv_path = os.path.join(self.spool, "rows.csv")
        with open(csv_path, "wb") as f:
            f.write(data)
        seen = []
        with tp.Publisher(self.config(datasource_name="py-csv", file_type="csv")) as p:
            for i in range(0, len(data), 4096):
                p.feed(data[i:i + 4096])
            p.publish(progress=lambda phase, sent, total: seen.append(phase))
        phases = [ph for i, ph in enumerate(seen) if i == 0 or seen[i - 1] != ph]
        self.assertEqual(phases[0], "building_extract", phases)
        self.assertIn("signing_in", phases)
        self.assertNotIn("building_extract", phases[phases.index("signing_in"):], phases)
        [ds] = [d for d in self.stored() if d["name"] == "py-csv"]
        # The emulator's own reading, with hyperd, of what it was sent.
        self.assertEqual([(t["schema"], t["name"], t["rows"]) for t in ds["extract"]["tables"]],
                         [("Extract", "Extract", 1000)], ds.get("extract_error"))
        folder = os.path.join(self.data, "datasources")
        [stored] = [os.path.join(folder, n) for n in os.listdir(folder) if n.startswith(ds["id"])]
        out = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "rows", "hyper_check.py"),
                              "check-csv", stored, csv_path], check=True, capture_output=True)
        report = json.loads(out.stdout)
        self.assertEqual(report["rows"], 1000, report)
        self.assertEqual(report["mismatches"], [], report)

    def test_publish_file_in_place(self):
        with tp.Publisher(self.config(datasource_name="py-file")) as p:
            p.feed_file(SAMPLE)
            result = p.publish()
        self.assertEqual(result["datasource_name"], "py-file")
        self.assertTrue(os.path.exists(SAMPLE))

    def test_errors_carry_status_and_message(self):
        with self.assertRaises(tp.PublisherError) as e:
            tp.Publisher(self.config(chunk_sise=1))
        self.assertEqual(e.exception.status, 2)
        self.assertIn("chunk_sise", str(e.exception))
        p = tp.Publisher(self.config(datasource_name="py-state"))
        p.feed(SAMPLE_BYTES)
        p.publish()
        with self.assertRaises(tp.PublisherError) as e:
            p.feed(b"more")
        self.assertEqual(e.exception.name, "TP_ERR_STATE")
        p.close()
        p.close()  # idempotent
        with self.assertRaises(tp.PublisherError):
            p.feed(b"x")

    def test_failed_init_leaves_nothing_to_clean_up(self):
        seen = []
        old_hook = sys.unraisablehook
        sys.unraisablehook = seen.append  # where an exception in __del__ would go
        try:
            try:
                tp.Publisher(self.config(chunk_sise=1))
            except tp.PublisherError:
                pass
            gc.collect()
        finally:
            sys.unraisablehook = old_hook
        self.assertEqual([str(u.exc_value) for u in seen], [])

    def test_server_refusal(self):
        with tp.Publisher(self.config(project="No/Such/Project")) as p:
            with self.assertRaises(tp.PublisherError) as e:
                p.preflight()
            self.assertEqual(e.exception.name, "TP_ERR_NOT_FOUND")
            p.feed(SAMPLE_BYTES)
            with self.assertRaises(tp.PublisherError) as e:
                p.publish()
        self.assertEqual(e.exception.name, "TP_ERR_NOT_FOUND")
        self.assertNotIn("ci-secret", str(e.exception))

    def test_progress_and_cancel(self):
        seen = []
        with tp.Publisher(self.config(datasource_name="py-progress")) as p:
            p.feed(SAMPLE_BYTES)
            p.publish(progress=lambda phase, sent, total: seen.append((phase, sent, total)))
        self.assertEqual(seen[0][0], "signing_in")
        self.assertEqual(seen[-1][0], "signing_out")
        self.assertIn(("uploading", len(SAMPLE_BYTES), len(SAMPLE_BYTES)), seen)
        with tp.Publisher(self.config(datasource_name="py-cancel")) as p:
            p.feed(SAMPLE_BYTES)
            with self.assertRaises(tp.PublisherError) as e:
                p.publish(progress=lambda phase, sent, total: phase != "uploading")
            self.assertEqual(e.exception.name, "TP_ERR_CANCELLED")
            self.assertIn("cancelled by the host", str(e.exception))

            def stop(phase, sent, total):
                raise RuntimeError("host says stop")
            with self.assertRaises(tp.PublisherError) as e:
                p.publish(progress=stop)
            self.assertEqual(e.exception.name, "TP_ERR_CANCELLED")
            self.assertEqual(p.publish()["bytes"], len(SAMPLE_BYTES))

    def test_log_lines_say_what_happened_without_secrets(self):
        lines = []
        with tp.Publisher(self.config(datasource_name="py-log")) as p:
            p.preflight(log=lambda level, message: lines.append((level, message)))
            self.assertTrue(any(l == "info" and "preflight passed" in m for l, m in lines), lines)
            p.feed(SAMPLE_BYTES)
            # The session expires as the publish is sent: signed in again, and logged so.
            self.fault("POST", "/datasources?", {"kind": "expire_token"})
            result = p.publish(log=lambda level, message: lines.append((level, message)))
        self.assertEqual(result["sign_ins"], 2)
        for level, message in lines:
            self.assertIn(level, ("error", "warn", "info"))
            self.assertIsInstance(message, str)
            self.assertNotIn("ci-secret", message)
        self.assertTrue(any(l == "warn" and "during Publish Data Source; signing in again" in m
                            for l, m in lines), lines)
        self.assertTrue(any(l == "info" and 'published data source "py-log"' in m for l, m in lines), lines)
        # A logger that raises changes nothing; the failure is logged as an error line.
        errors = []

        def broken(level, message):
            errors.append((level, message))
            raise RuntimeError("a broken logger")
        with tp.Publisher(self.config(datasource_name="py-log", mode="create_new")) as p:
            p.feed(SAMPLE_BYTES)
            with self.assertRaises(tp.PublisherError) as e:
                p.publish(log=broken)
        self.assertEqual(e.exception.name, "TP_ERR_CONFLICT")
        self.assertEqual(errors[-1][0], "error")
        self.assertIn("tabpub resume ", errors[-1][1])
        self.assertIn(errors[-1][1], str(e.exception))

    def test_cancel_from_another_thread_mid_upload(self):
        with tp.Publisher(self.config(datasource_name="py-cancel-thread")) as p:
            p.feed(SAMPLE_BYTES)
            # The emulator reads the upload at 16 KiB/s: 8 s for the sample, unless cancelled.
            self.fault("POST", "/datasources?", {"kind": "slow_body", "bytes_per_sec": 16 * 1024})
            uploading = threading.Event()
            cancelled_at = []

            def press_cancel():
                uploading.wait(60)
                time.sleep(0.3)
                cancelled_at.append(time.monotonic())
                p.cancel()
            button = threading.Thread(target=press_cancel)
            button.start()
            lines = []
            try:
                with self.assertRaises(tp.PublisherError) as e:
                    p.publish(progress=lambda phase, sent, total: uploading.set() if phase == "uploading" else None,
                              log=lambda level, message: lines.append((level, message)))
                returned = time.monotonic()
            finally:
                uploading.set()
                button.join()
            self.assertEqual(e.exception.name, "TP_ERR_CANCELLED")
            self.assertLess(returned - cancelled_at[0], 1.0)
            self.assertIn("tabpub resume ", str(e.exception))
            self.assertTrue(any(l == "warn" and "cancelled by the host while uploading" in m for l, m in lines), lines)
            # The data was kept: publishing again works.
            self.assertEqual(p.publish()["sha256"], hashlib.sha256(SAMPLE_BYTES).hexdigest())
        p.cancel()  # closed: a no-op

    def test_cancel_before_the_call_is_used_up_by_it(self):
        with tp.Publisher(self.config(datasource_name="py-cancel-early")) as p:
            p.feed(SAMPLE_BYTES)
            p.cancel()
            with self.assertRaises(tp.PublisherError) as e:
                p.preflight()
            self.assertEqual(e.exception.name, "TP_ERR_CANCELLED")
            p.preflight()
            p.cancel()
            with self.assertRaises(tp.PublisherError) as e:
                p.publish()
            self.assertEqual(e.exception.name, "TP_ERR_CANCELLED")
            self.assertEqual(p.publish()["bytes"], len(SAMPLE_BYTES))

    def test_version(self):
        self.assertRegex(tp.version(), r"^\d+\.\d+\.\d+")


if __name__ == "__main__":
    unittest.main()
