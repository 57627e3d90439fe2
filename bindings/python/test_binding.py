"""Tests the Python binding against the emulator: a real publish and the error paths.
Run from the repository root after `cargo build`: python3 bindings/python/test_binding.py"""
import gc
import hashlib
import os
import subprocess
import sys
import tempfile
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
        cls.emu = subprocess.Popen([EMULATOR, "--listen", "127.0.0.1:0", "--quiet", "--exit-on-stdin-eof"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        cls.url = cls.emu.stdout.readline().decode().strip()
        cls.spool = tempfile.mkdtemp()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stdin.close()
        cls.emu.wait(timeout=30)
        cls.emu.stdout.close()

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

    def test_version(self):
        self.assertRegex(tp.version(), r"^\d+\.\d+\.\d+")


if __name__ == "__main__":
    unittest.main()
