"""Fidelity check: drive the Rust Tableau emulator with Tableau's own Python client (TSC).

Run from the repository root:

    pip install -r tests/tsc/requirements.txt
    cargo build -p tableau-emulator
    python3 tests/tsc/test_tsc_fidelity.py

TABLEAU_EMULATOR_BIN overrides the emulator binary (default target/debug/tableau-emulator).
"""

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.request

import tableauserverclient as TSC
from tableauserverclient.server.endpoint.exceptions import ServerResponseError

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("TABLEAU_EMULATOR_BIN", os.path.join(ROOT, "target", "debug", "tableau-emulator"))
SAMPLE = os.path.join(ROOT, "tests", "fixtures", "sample.hyper")
BIG_RANDOM_BYTES = 70 * 1024 * 1024


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            h.update(block)
    return h.hexdigest()


class TscFidelity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest(f"emulator binary not found at {BIN}; run cargo build -p tableau-emulator")
        cls.tmp = tempfile.mkdtemp(prefix="tsc-fidelity-")
        cls.stderr = open(os.path.join(cls.tmp, "emulator.log"), "w+")
        cls.proc = subprocess.Popen(
            [BIN, "--listen", "127.0.0.1:0", "--exit-on-stdin-eof"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=cls.stderr,
            text=True,
        )
        cls.url = cls.proc.stdout.readline().strip()
        if not cls.url.startswith("http://127.0.0.1:"):
            cls.proc.kill()
            raise RuntimeError(f"unexpected first line from the emulator: {cls.url!r}")

        # A >64 MiB .hyper: the sample's first bytes, then pseudo-random data.
        cls.big = os.path.join(cls.tmp, "big.hyper")
        with open(SAMPLE, "rb") as f:
            head = f.read(4096)
        rng = random.Random(20250312)
        with open(cls.big, "wb") as f:
            f.write(head)
            left = BIG_RANDOM_BYTES
            while left:
                n = min(left, 8 * 1024 * 1024)
                f.write(rng.randbytes(n))
                left -= n

    @classmethod
    def tearDownClass(cls):
        try:
            cls.proc.stdin.close()
            cls.proc.wait(timeout=20)
        except Exception:
            cls.proc.kill()
        cls.stderr.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def emulator_datasources(self):
        with urllib.request.urlopen(f"{self.url}/_emulator/datasources") as r:
            return json.loads(r.read())

    def emulator_requests(self):
        with urllib.request.urlopen(f"{self.url}/_emulator/requests") as r:
            return json.loads(r.read())

    def stored(self, ds_id):
        matches = [d for d in self.emulator_datasources() if d["id"] == ds_id]
        self.assertEqual(len(matches), 1, f"data source {ds_id} not stored")
        return matches[0]

    def assert_stored_file(self, ds_id, path):
        d = self.stored(ds_id)
        self.assertEqual(d["size"], os.path.getsize(path))
        self.assertEqual(d["sha256"], sha256_of(path))
        return d

    def show_log_on_failure(self):
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()[-4000:]

    def test_publish_with_pat(self):
        try:
            self._publish_with_pat()
        except Exception:
            sys.stderr.write("--- emulator log tail ---\n" + self.show_log_on_failure() + "\n")
            raise

    def _publish_with_pat(self):
        server = TSC.Server(self.url, use_server_version=True)
        auth = TSC.PersonalAccessTokenAuth("ci", "ci-secret", site_id="")
        with server.auth.sign_in(auth):
            # TSC 0.42 signs in at 2.4, then reads serverInfo and switches versions.
            self.assertEqual(server.version, "3.25")
            self.assertTrue(server.site_id)
            self.assertTrue(server.user_id)

            # Find the project "default" (filter, percent-encoded by TSC for API >= 3.7).
            found = [p for p in server.projects.filter(name="default")]
            self.assertEqual(len(found), 1)
            project = found[0]
            self.assertEqual(project.name, "default")
            self.assertIsNone(project.parent_id)
            all_projects = list(TSC.Pager(server.projects))
            self.assertEqual(sorted(p.name for p in all_projects), ["Finance", "Quarterly", "default"])

            # Small file: single request.
            item = TSC.DatasourceItem(project.id, name="Sample")
            small = server.datasources.publish(item, SAMPLE, TSC.Server.PublishMode.CreateNew)
            self.assertTrue(small.id)
            self.assertEqual(small.name, "Sample")
            self.assertEqual(small.project_id, project.id)
            self.assertEqual(small.project_name, "default")
            d = self.assert_stored_file(small.id, SAMPLE)
            self.assertEqual(d["file_type"], "hyper")
            self.assertEqual([h["op"] for h in d["history"]], ["create"])

            # Large file: chunked upload, synchronous commit.
            item = TSC.DatasourceItem(project.id, name="Big")
            before = len(self.emulator_requests())
            big = server.datasources.publish(item, self.big, TSC.Server.PublishMode.CreateNew)
            self.assert_stored_file(big.id, self.big)
            new = self.emulator_requests()[before:]
            appends = [r for r in new if r["method"] == "PUT" and "/fileUploads/" in r["path"]]
            self.assertGreaterEqual(len(appends), 2, "TSC should have uploaded in chunks")
            self.assertTrue(all(r["status"] == 200 for r in appends))
            commits = [r for r in new if r["method"] == "POST" and r["path"].endswith("/datasources")]
            self.assertEqual(len(commits), 1)
            self.assertIn("uploadSessionId=", commits[0]["query"])
            self.assertEqual(commits[0]["status"], 201)

            # Large file: chunked upload, asynchronous commit.
            item = TSC.DatasourceItem(project.id, name="BigAsync")
            job = server.datasources.publish(item, self.big, TSC.Server.PublishMode.CreateNew, as_job=True)
            self.assertIsInstance(job, TSC.JobItem)
            self.assertEqual(job.type, "PublishDatasource")
            self.assertIsNone(job.completed_at)
            job = server.jobs.wait_for_job(job, timeout=60)
            self.assertEqual(job.finish_code, TSC.JobItem.FinishCode.Success)
            self.assertIsNotNone(job.completed_at)
            self.assertTrue(job.datasource_id)
            self.assert_stored_file(job.datasource_id, self.big)
            got = server.datasources.get_by_id(job.datasource_id)
            self.assertEqual(got.name, "BigAsync")

            # Overwrite: same id, new content.
            item = TSC.DatasourceItem(project.id, name="Big")
            over = server.datasources.publish(item, SAMPLE, TSC.Server.PublishMode.Overwrite)
            self.assertEqual(over.id, big.id)
            d = self.assert_stored_file(big.id, SAMPLE)
            self.assertEqual([h["op"] for h in d["history"]], ["create", "overwrite"])

            # CreateNew on an existing name.
            item = TSC.DatasourceItem(project.id, name="Sample")
            with self.assertRaises(ServerResponseError) as ctx:
                server.datasources.publish(item, SAMPLE, TSC.Server.PublishMode.CreateNew)
            self.assertEqual(ctx.exception.code, "403007")

            # Listing through TSC.
            names = sorted(ds.name for ds in TSC.Pager(server.datasources))
            self.assertEqual(names, ["Big", "BigAsync", "Sample"])
            listed = [ds for ds in server.datasources.filter(name="Sample", project_name="default")]
            self.assertEqual([ds.id for ds in listed], [small.id])
        # Signed out: the token no longer works.
        self.assertFalse(server.is_signed_in())

    def test_password_sign_in_on_site_qa(self):
        server = TSC.Server(self.url, use_server_version=True)
        with server.auth.sign_in(TSC.TableauAuth("admin", "admin-pass", site_id="qa")):
            projects, pagination = server.projects.get()
            self.assertEqual(pagination.total_available, 3)
            by_name = {p.name: p for p in projects}
            self.assertEqual(set(by_name), {"default", "Finance", "Quarterly"})
            self.assertIsNone(by_name["Finance"].parent_id)
            self.assertEqual(by_name["Quarterly"].parent_id, by_name["Finance"].id)
            self.assertEqual(by_name["default"].content_permissions, "ManagedByOwner")

    def test_bad_credentials(self):
        server = TSC.Server(self.url, use_server_version=True)
        with self.assertRaises(Exception) as ctx:
            server.auth.sign_in(TSC.TableauAuth("admin", "wrong", site_id="qa"))
        self.assertIn("401001", str(ctx.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
