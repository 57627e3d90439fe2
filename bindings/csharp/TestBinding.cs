// Tests the C# binding against the emulator: real publishes, progress, cancel and the error paths.
// Run from the repository root after `cargo build --workspace`: bash bindings/csharp/run-test.sh
// Starts $TABLEAU_EMULATOR_BIN (default target/debug/tableau-emulator) itself; prints one line per
// test and then "N passed, M failed". Exit code 0 only when none failed. Prints no configuration.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using TableauPublisher;

internal static class TestBinding
{
    private const string SamplePath = "tests/fixtures/sample.hyper";
    private static string url;
    private static string spool;
    private static string dataDir;
    private static byte[] sample;
    private static string sampleSha;

    private static int Main()
    {
        sample = File.ReadAllBytes(SamplePath);
        sampleSha = Sha256Hex(sample);
        spool = Path.Combine(Path.GetTempPath(), "tp-csharp-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(spool);

        string emulator = Environment.GetEnvironmentVariable("TABLEAU_EMULATOR_BIN");
        if (string.IsNullOrEmpty(emulator)) emulator = Path.Combine("target", "debug", "tableau-emulator");
        dataDir = Path.Combine(Path.GetTempPath(), "tp-csharp-data-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dataDir);
        var start = new ProcessStartInfo(emulator, "--listen 127.0.0.1:0 --quiet --exit-on-stdin-eof --data-dir \"" + dataDir + "\"")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        };
        Process emu;
        try
        {
            emu = Process.Start(start);
        }
        catch (Exception e)
        {
            Console.WriteLine("FAIL setup: cannot start the emulator " + emulator + " (set TABLEAU_EMULATOR_BIN, or run cargo build --workspace): " + e.Message);
            Console.WriteLine("0 passed, 1 failed");
            return 1;
        }
        int passed = 0, failed = 0;
        try
        {
            url = (emu.StandardOutput.ReadLine() ?? "").Trim();
            if (!url.StartsWith("http://", StringComparison.Ordinal))
                throw new Exception("the emulator printed no URL");

            var tests = new List<KeyValuePair<string, Action>>
            {
                Test("publish_in_chunks_after_preflight", PublishInChunksAfterPreflight),
                Test("feed_file_publishes_in_place", FeedFilePublishesInPlace),
                Test("feed_file_non_ascii_path", FeedFileNonAsciiPath),
                Test("errors_state_and_dispose", ErrorsStateAndDispose),
                Test("argument_validation", ArgumentValidation),
                Test("server_refusal_conflict", ServerRefusalConflict),
                Test("progress_phases_and_bytes", ProgressPhasesAndBytes),
                Test("csv_rows_built_before_sign_in", CsvRowsBuiltBeforeSignIn),
                Test("cancel_then_publish_again", CancelThenPublishAgain),
                Test("throwing_delegate_cancels", ThrowingDelegateCancels),
                Test("reentrant_call_refused", ReentrantCallRefused),
                Test("log_lines_without_secrets", LogLinesWithoutSecrets),
                Test("cancel_from_another_thread_mid_upload", CancelFromAnotherThreadMidUpload),
                Test("cancel_before_the_call_is_used_up", CancelBeforeTheCallIsUsedUp),
                Test("leaked_publisher_is_freed", LeakedPublisherIsFreed),
                Test("versions", Versions),
            };
            foreach (var t in tests)
            {
                try
                {
                    t.Value();
                    passed++;
                    Console.WriteLine("PASS " + t.Key);
                }
                catch (Exception e)
                {
                    failed++;
                    Console.WriteLine("FAIL " + t.Key + ": " + e.GetType().Name + ": " + e.Message);
                }
            }
        }
        catch (Exception e)
        {
            failed++;
            Console.WriteLine("FAIL setup: " + e.GetType().Name + ": " + e.Message);
        }
        finally
        {
            emu.StandardInput.Close(); // --exit-on-stdin-eof
            if (!emu.WaitForExit(30000))
            {
                emu.Kill();
                failed++;
                Console.WriteLine("FAIL teardown: the emulator did not exit when its stdin closed");
            }
            try { Directory.Delete(spool, true); } catch (Exception) { }
            try { Directory.Delete(dataDir, true); } catch (Exception) { }
        }
        Console.WriteLine(passed + " passed, " + failed + " failed");
        return failed == 0 ? 0 : 1;
    }

    private static KeyValuePair<string, Action> Test(string name, Action body)
    {
        return new KeyValuePair<string, Action>(name, body);
    }

    // ---- the tests -------------------------------------------------------------------------

    private static void PublishInChunksAfterPreflight()
    {
        string result;
        using (var p = new Publisher(Config("cs-chunks", "overwrite", null)))
        {
            p.Preflight();
            for (int i = 0; i < sample.Length; i += 10000)
                p.Feed(sample, i, Math.Min(10000, sample.Length - i));
            result = p.Publish();
        }
        var r = (Dictionary<string, object>)Json.Parse(result);
        Equal(sampleSha, r["sha256"], "result sha256");
        Equal((double)sample.Length, r["bytes"], "result bytes");
        Equal("cs-chunks", r["datasource_name"], "result name");
        Equal(sampleSha, StoredSha("cs-chunks"), "sha256 the emulator holds");
    }

    private static void FeedFilePublishesInPlace()
    {
        string full = Path.GetFullPath(SamplePath);
        string result;
        using (var p = new Publisher(Config("cs-file", "overwrite", null)))
        {
            p.FeedFile(full);
            result = p.Publish();
        }
        var r = (Dictionary<string, object>)Json.Parse(result);
        Equal("cs-file", r["datasource_name"], "result name");
        Equal(sampleSha, r["sha256"], "result sha256");
        Equal(sampleSha, StoredSha("cs-file"), "sha256 the emulator holds");
        True(File.Exists(full), "the input file still exists");
        Equal(sampleSha, Sha256Hex(File.ReadAllBytes(full)), "the input file is unchanged");
    }

    private static void FeedFileNonAsciiPath()
    {
        // The path crosses as UTF-8, not the ANSI code page .NET Framework/Mono would use by default.
        string dir = Path.Combine(spool, "Données été €");
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "Übersicht 数据.hyper");
        File.WriteAllBytes(path, sample);
        using (var p = new Publisher(Config("cs-Ünïcode €", "overwrite", null)))
        {
            p.FeedFile(path);
            var r = (Dictionary<string, object>)Json.Parse(p.Publish());
            Equal("cs-Ünïcode €", r["datasource_name"], "result name (UTF-8 both ways)");
        }
        True(File.Exists(path), "the input file still exists");
        Equal(sampleSha, StoredSha("cs-Ünïcode €"), "sha256 the emulator holds");
        using (var p = new Publisher(Config("cs-missing", "overwrite", null)))
        {
            var e = Throws<PublisherException>(() => p.FeedFile(Path.Combine(dir, "nicht da é.hyper")));
            True(e.Message.Contains("nicht da é.hyper"), "the message names the missing file, decoded as UTF-8: " + e.Message);
        }
    }

    private static void ErrorsStateAndDispose()
    {
        var bad = Throws<PublisherException>(() => new Publisher(Config("cs-bad", "overwrite", "\"chunk_sise\": 1")));
        Equal(Status.Config, bad.Status, "status of an unknown key");
        True(bad.Message.Contains("chunk_sise"), "the message names the key: " + bad.Message);
        // The key comes back through tp_last_error(NULL): non-ASCII must survive the round trip.
        var bad2 = Throws<PublisherException>(() => new Publisher(Config("cs-bad", "overwrite", "\"chunk_größe\": 1")));
        Equal(Status.Config, bad2.Status, "status of an unknown non-ASCII key");
        True(bad2.Message.Contains("chunk_größe"), "the message names the key in UTF-8: " + bad2.Message);

        var p = new Publisher(Config("cs-state", "overwrite", null));
        p.Feed(sample);
        p.Publish();
        var state = Throws<PublisherException>(() => p.Feed(new byte[] { 1, 2, 3 }));
        Equal(Status.State, state.Status, "status of feeding after a publish");
        True(state.Message.Length > 0, "a state error has a message");
        Equal(Status.State, Throws<PublisherException>(() => p.Publish()).Status, "status of publishing twice");
        p.Dispose();
        p.Dispose(); // twice is fine
        Throws<ObjectDisposedException>(() => p.Feed(new byte[] { 1 }));
        Throws<ObjectDisposedException>(() => p.Feed(new byte[] { 1 }, 0, 1));
        Throws<ObjectDisposedException>(() => p.FeedFile(SamplePath));
        Throws<ObjectDisposedException>(() => p.Preflight());
        Throws<ObjectDisposedException>(() => p.Publish());
        Throws<ObjectDisposedException>(() => p.Publish(pr => true));
    }

    private static void ArgumentValidation()
    {
        using (var p = new Publisher(Config("cs-args", "overwrite", null)))
        {
            var buf = new byte[10];
            Throws<ArgumentNullException>(() => p.Feed(null));
            Throws<ArgumentNullException>(() => p.Feed(null, 0, 0));
            Throws<ArgumentOutOfRangeException>(() => p.Feed(buf, -1, 1));
            Throws<ArgumentOutOfRangeException>(() => p.Feed(buf, 0, -1));
            Throws<ArgumentOutOfRangeException>(() => p.Feed(buf, 11, 0));
            Throws<ArgumentOutOfRangeException>(() => p.Feed(buf, 5, 6));
            Throws<ArgumentOutOfRangeException>(() => p.Feed(buf, int.MaxValue, 2));
            Throws<ArgumentNullException>(() => p.FeedFile(null));
            Throws<ArgumentException>(() => p.FeedFile("a\0b"));
            Throws<ArgumentNullException>(() => p.Publish(null));
            p.Feed(buf, 10, 0); // empty pieces are fine, at either end
            p.Feed(new byte[0]);
            // Only the given range is spooled: the publish must carry exactly the sample's bytes.
            var padded = new byte[sample.Length + 7];
            Buffer.BlockCopy(sample, 0, padded, 3, sample.Length);
            padded[0] = padded[1] = padded[2] = 0xEE;
            p.Feed(padded, 3, sample.Length);
            var r = (Dictionary<string, object>)Json.Parse(p.Publish());
            Equal(sampleSha, r["sha256"], "sha256 of the ranged feed");
        }
        Throws<ArgumentNullException>(() => new Publisher(null));
    }

    private static void ServerRefusalConflict()
    {
        using (var p = new Publisher(Config("cs-exists", "overwrite", null)))
        {
            p.Feed(sample);
            p.Publish();
        }
        // The library finds the existing data source itself (preflight and before the commit).
        using (var p = new Publisher(Config("cs-exists", "create_new", null)))
        {
            var pre = Throws<PublisherException>(() => p.Preflight());
            Equal(Status.Conflict, pre.Status, "preflight status for create_new on an existing name");
            p.Feed(sample);
            var e = Throws<PublisherException>(() => p.Publish());
            Equal(Status.Conflict, e.Status, "publish status for create_new on an existing name");
            Equal(8, (int)e.Status, "Status.Conflict is TP_ERR_CONFLICT (8)");
            True(e.Message.Contains("cs-exists"), "the message names the data source: " + e.Message);
        }
        // Tableau itself refuses the commit with 409: its error code reaches the message.
        Control("POST", "/_emulator/faults", "{\"method\":\"POST\",\"path_contains\":\"/datasources?\"," +
            "\"action\":{\"kind\":\"error\",\"status\":409,\"code\":\"409005\",\"summary\":\"Conflict\"," +
            "\"detail\":\"A data source named cs-raced already exists in the project.\"}}");
        try
        {
            using (var p = new Publisher(Config("cs-raced", "create_new", null)))
            {
                p.Feed(sample);
                var e = Throws<PublisherException>(() => p.Publish());
                Equal(Status.Conflict, e.Status, "status when Tableau answers 409");
                True(Regex.IsMatch(e.Message, @"\b409005\b"), "the message carries Tableau's error code: " + e.Message);
            }
        }
        finally
        {
            Control("DELETE", "/_emulator/faults", "");
        }
        // A refused sign-in: Tableau's code, and never the secret that was sent.
        using (var p = new Publisher(Config("cs-auth", "overwrite", null).Replace("\"ci-secret\"", "\"wrong-secret-x\"")))
        {
            var e = Throws<PublisherException>(() => p.Preflight());
            Equal(Status.Auth, e.Status, "status of a refused sign-in");
            True(Regex.IsMatch(e.Message, @"\b401\d{3}\b"), "the message carries Tableau's error code: " + e.Message);
            True(!e.Message.Contains("wrong-secret-x") && !e.Message.Contains("ci-secret"), "the message holds no secret");
        }
    }

    private static void ProgressPhasesAndBytes()
    {
        var seen = new List<Progress>();
        string result;
        using (var p = new Publisher(Config("cs-progress", "overwrite", null)))
        {
            p.Feed(sample);
            result = p.Publish(pr => { seen.Add(pr); return true; });
        }
        True(seen.Count > 0, "progress was reported");
        Equal(Phase.SigningIn, seen[0].Phase, "first phase");
        Equal(Phase.SigningOut, seen[seen.Count - 1].Phase, "last phase");
        for (int i = 1; i < seen.Count; i++)
            True(seen[i].Phase >= seen[i - 1].Phase, "phases in order: " + seen[i - 1] + " then " + seen[i]);
        var uploads = seen.FindAll(pr => pr.Phase == Phase.Uploading);
        True(uploads.Count > 0, "the Uploading phase was reported");
        var last = uploads[uploads.Count - 1];
        Equal((ulong)sample.Length, last.BytesSent, "last BytesSent");
        Equal((ulong)sample.Length, last.BytesTotal, "last BytesTotal");
        foreach (var pr in uploads) Equal((ulong)sample.Length, pr.BytesTotal, "BytesTotal in " + pr);
        var r = (Dictionary<string, object>)Json.Parse(result);
        Equal(sampleSha, r["sha256"], "result sha256");
    }

    /// A host holding rows (an SSIS DataTable written as CSV) feeds them with file_type csv:
    /// the extract is built before signing in, and Tableau's Hyper API reads the rows back.
    private static void CsvRowsBuiltBeforeSignIn()
    {
        if (!HyperApiAvailable()) return;
        var csv = new StringBuilder("id,city,amount,day\n");
        string[] cities = { "\"Paris, France\"", "Zürich", "", "\"say \"\"hi\"\"\"" };
        for (int i = 0; i < 1000; i++)
            csv.Append(i.ToString(CultureInfo.InvariantCulture)).Append(',').Append(cities[i % 4]).Append(',')
               .Append((i % 97).ToString(CultureInfo.InvariantCulture)).Append('.')
               .Append((i % 100).ToString("00", CultureInfo.InvariantCulture))
               .Append(",2026-").Append((i % 12 + 1).ToString("00", CultureInfo.InvariantCulture))
               .Append('-').Append((i % 28 + 1).ToString("00", CultureInfo.InvariantCulture)).Append('\n');
        byte[] data = new UTF8Encoding(false).GetBytes(csv.ToString());
        string csvPath = Path.Combine(spool, "rows.csv");
        File.WriteAllBytes(csvPath, data);
        var seen = new List<Phase>();
        using (var p = new Publisher(Config("cs-csv", "overwrite", "\"file_type\":\"csv\"")))
        {
            for (int i = 0; i < data.Length; i += 4096)
                p.Feed(data, i, Math.Min(4096, data.Length - i));
            p.Publish(pr => { seen.Add(pr.Phase); return true; });
        }
        Equal(Phase.BuildingExtract, seen[0], "first phase");
        int signIn = seen.IndexOf(Phase.SigningIn);
        True(signIn > 0, "signed in after the build");
        True(seen.LastIndexOf(Phase.BuildingExtract) < signIn, "the build is over before signing in");
        string stored = null;
        foreach (string f in Directory.GetFiles(Path.Combine(dataDir, "datasources")))
            if (Path.GetFileName(f).StartsWith(StoredId("cs-csv"), StringComparison.Ordinal)) stored = f;
        True(stored != null, "the emulator stored the published file");
        var check = new ProcessStartInfo("python3", "tests/rows/hyper_check.py check-csv \"" + stored + "\" \"" + csvPath + "\"")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
        };
        string report;
        using (var py = Process.Start(check))
        {
            report = py.StandardOutput.ReadToEnd();
            py.WaitForExit();
            Equal(0, py.ExitCode, "hyper_check.py ran");
        }
        var r = (Dictionary<string, object>)Json.Parse(report);
        Equal(1000.0, r["rows"], "rows read back by Tableau's Hyper API");
        Equal(0, ((List<object>)r["mismatches"]).Count, "mismatches: " + report);
    }

    /// Whether python3 has Tableau's Hyper API; without it the test fails unless told to skip.
    private static bool HyperApiAvailable()
    {
        var probe = new ProcessStartInfo("python3", "-c \"import tableauhyperapi\"") { UseShellExecute = false };
        int code;
        try
        {
            using (var py = Process.Start(probe)) { py.WaitForExit(); code = py.ExitCode; }
        }
        catch (Exception) { code = -1; }
        if (code == 0) return true;
        if (Environment.GetEnvironmentVariable("TP_SKIP_HYPERD_TESTS") == "1")
        {
            Console.WriteLine("SKIP csv_rows_built_before_sign_in: no tableauhyperapi (TP_SKIP_HYPERD_TESTS=1)");
            return false;
        }
        throw new Exception("this test needs Tableau's hyperd: pip install -r tests/rows/requirements.txt (or set TP_SKIP_HYPERD_TESTS=1)");
    }

    private static string StoredId(string name)
    {
        string body;
        using (var web = new WebClient())
        {
            web.Encoding = Encoding.UTF8;
            body = web.DownloadString(url + "/_emulator/datasources");
        }
        foreach (object o in (List<object>)Json.Parse(body))
        {
            var d = (Dictionary<string, object>)o;
            if ((string)d["name"] == name) return (string)d["id"];
        }
        throw new Exception("the emulator holds no data source named " + name);
    }

    private static void CancelThenPublishAgain()
    {
        using (var p = new Publisher(Config("cs-cancel", "overwrite", null)))
        {
            p.Feed(sample);
            int calls = 0;
            var e = Throws<PublisherException>(() => p.Publish(pr => { calls++; return pr.Phase != Phase.Uploading; }));
            Equal(Status.Cancelled, e.Status, "status after returning false");
            True(e.InnerException == null, "no inner exception when the delegate returned false");
            // The library's own message (read before the callback is unregistered, which clears it).
            True(e.Message.Contains("cancelled") && e.Message.Contains("kept at"), "the message says cancelled and where the data is: " + e.Message);
            True(calls > 0, "the delegate ran");
            // The callback is unregistered: a preflight reports to nobody, and the spool was kept.
            p.Preflight();
            var r = (Dictionary<string, object>)Json.Parse(p.Publish());
            Equal((double)sample.Length, r["bytes"], "bytes of the publish after a cancel");
            Equal(sampleSha, r["sha256"], "sha256 of the publish after a cancel");
        }
        Equal(sampleSha, StoredSha("cs-cancel"), "sha256 the emulator holds");
    }

    private static void ThrowingDelegateCancels()
    {
        using (var p = new Publisher(Config("cs-throw", "overwrite", null)))
        {
            p.Feed(sample);
            var boom = new ApplicationException("host says stop");
            var e = Throws<PublisherException>(() => p.Publish(pr =>
            {
                if (pr.Phase == Phase.Uploading) throw boom;
                return true;
            }));
            Equal(Status.Cancelled, e.Status, "status after the delegate threw");
            True(ReferenceEquals(boom, e.InnerException), "the delegate's exception is the InnerException");
            True(e.Message.Contains("cancelled") && e.Message.Contains("kept at"), "the message says cancelled and where the data is: " + e.Message);
            var r = (Dictionary<string, object>)Json.Parse(p.Publish(pr => true));
            Equal(sampleSha, r["sha256"], "publish after the throwing delegate");
        }
    }

    private static void ReentrantCallRefused()
    {
        // Calling into the same handle from the delegate would alias the handle inside the
        // library; the binding refuses it, and the refusal cancels the publish.
        using (var p = new Publisher(Config("cs-reentrant", "overwrite", null)))
        {
            p.Feed(sample);
            var e = Throws<PublisherException>(() => p.Publish(pr => { p.Feed(new byte[] { 1 }); return true; }));
            Equal(Status.Cancelled, e.Status, "status after a reentrant call");
            True(e.InnerException is InvalidOperationException, "the refusal is the InnerException, not " + e.InnerException);
            // Dispose from inside the delegate is allowed: the publish completes, and tp_free
            // runs only when Publish returns.
            var r = (Dictionary<string, object>)Json.Parse(p.Publish(pr => { p.Dispose(); return true; }));
            Equal(sampleSha, r["sha256"], "publish during which the Publisher was disposed");
            Throws<ObjectDisposedException>(() => p.Publish());
        }
    }

    private static void LogLinesWithoutSecrets()
    {
        var lines = new List<KeyValuePair<LogLevel, string>>();
        Action<LogLevel, string> collect = (level, line) => lines.Add(new KeyValuePair<LogLevel, string>(level, line));
        string result;
        using (var p = new Publisher(Config("cs-log", "overwrite", null)))
        {
            p.Preflight(collect);
            True(lines.Exists(l => l.Key == LogLevel.Info && l.Value.Contains("preflight passed")), "the preflight's line");
            p.Feed(sample);
            // The session expires as the publish is sent: signed in again, and logged so.
            Control("POST", "/_emulator/faults", "{\"method\":\"POST\",\"path_contains\":\"/datasources?\",\"action\":{\"kind\":\"expire_token\"}}");
            try
            {
                result = p.Publish(null, collect);
            }
            finally
            {
                Control("DELETE", "/_emulator/faults", "");
            }
        }
        var r = (Dictionary<string, object>)Json.Parse(result);
        Equal(2.0, r["sign_ins"], "signed in again after the expiry");
        True(lines.Exists(l => l.Key == LogLevel.Warn && l.Value.Contains("during Publish Data Source; signing in again")),
            "the re-authentication is logged with its reason: " + string.Join(" | ", lines.ConvertAll(l => l.Value).ToArray()));
        True(lines.Exists(l => l.Key == LogLevel.Info && l.Value.Contains("published data source \"cs-log\"")), "the publish is logged");
        True(!lines.Exists(l => l.Value.Contains("ci-secret")), "no line holds the secret");
        // A logger that throws changes nothing; a failure ends with an Error line.
        var seen = new List<KeyValuePair<LogLevel, string>>();
        using (var p = new Publisher(Config("cs-log", "create_new", null)))
        {
            p.Feed(sample);
            var e = Throws<PublisherException>(() => p.Publish(null, (level, line) =>
            {
                seen.Add(new KeyValuePair<LogLevel, string>(level, line));
                throw new ApplicationException("a broken logger");
            }));
            Equal(Status.Conflict, e.Status, "status of the clash");
            True(e.InnerException == null, "a throwing logger is no inner exception");
            var last = seen[seen.Count - 1];
            Equal(LogLevel.Error, last.Key, "the last line is the error");
            Equal(e.Message, last.Value, "the error line is the message");
            True(last.Value.Contains("tabpub resume "), "with the resume command: " + last.Value);
        }
    }

    private static void CancelFromAnotherThreadMidUpload()
    {
        using (var p = new Publisher(Config("cs-cancel-thread", "overwrite", null)))
        {
            p.Feed(sample);
            // The emulator reads the upload at 16 KiB/s: 8 s for the sample, unless cancelled.
            Control("POST", "/_emulator/faults", "{\"method\":\"POST\",\"path_contains\":\"/datasources?\",\"action\":{\"kind\":\"slow_body\",\"bytes_per_sec\":16384}}");
            var uploading = new System.Threading.ManualResetEvent(false);
            long cancelledAt = 0;
            var button = new System.Threading.Thread(() =>
            {
                uploading.WaitOne(60000);
                System.Threading.Thread.Sleep(300);
                System.Threading.Interlocked.Exchange(ref cancelledAt, Stopwatch.GetTimestamp());
                p.Cancel();
            });
            button.Start();
            var lines = new List<string>();
            PublisherException e;
            long returnedAt;
            try
            {
                e = Throws<PublisherException>(() => p.Publish(pr =>
                {
                    if (pr.Phase == Phase.Uploading) uploading.Set();
                    return true;
                }, (level, line) => lines.Add(level + ": " + line)));
                returnedAt = Stopwatch.GetTimestamp();
            }
            finally
            {
                uploading.Set();
                button.Join();
                Control("DELETE", "/_emulator/faults", "");
            }
            double ms = (returnedAt - System.Threading.Interlocked.Read(ref cancelledAt)) * 1000.0 / Stopwatch.Frequency;
            Equal(Status.Cancelled, e.Status, "status after Cancel() from another thread");
            True(ms < 1000.0, "returned within a second of Cancel(): " + ms + " ms");
            True(e.Message.Contains("tabpub resume "), "the data is kept, with the resume command: " + e.Message);
            True(lines.Exists(l => l.StartsWith("Warn: cancelled by the host while uploading")), "the cancel is logged");
            var r = (Dictionary<string, object>)Json.Parse(p.Publish());
            Equal(sampleSha, r["sha256"], "publish after the cancel");
        }
        Equal(sampleSha, StoredSha("cs-cancel-thread"), "sha256 the emulator holds");
    }

    private static void CancelBeforeTheCallIsUsedUp()
    {
        var p = new Publisher(Config("cs-cancel-early", "overwrite", null));
        p.Feed(sample);
        p.Cancel();
        Equal(Status.Cancelled, Throws<PublisherException>(() => p.Preflight()).Status, "a cancel before the preflight stops it");
        p.Preflight(); // used up
        p.Cancel();
        Equal(Status.Cancelled, Throws<PublisherException>(() => p.Publish()).Status, "a cancel before the publish stops it");
        var r = (Dictionary<string, object>)Json.Parse(p.Publish());
        Equal(sampleSha, r["sha256"], "the publish after the cancelled one");
        p.Dispose();
        p.Cancel(); // disposed: nothing to cancel, no exception
    }

    private static void LeakedPublisherIsFreed()
    {
        string dir = Path.Combine(spool, "leak");
        Directory.CreateDirectory(dir);
        LeakOne(dir);
        True(SpoolFiles(dir) > 0, "the leaked publisher has a spool file");
        for (int i = 0; i < 50 && SpoolFiles(dir) > 0; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            System.Threading.Thread.Sleep(20);
        }
        Equal(0, SpoolFiles(dir), "spool files left after the leaked publisher was collected (tp_free ran)");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void LeakOne(string dir)
    {
        var p = new Publisher(Config("cs-leak", "overwrite", null, dir));
        p.Feed(sample);
    }

    private static void Versions()
    {
        True(!string.IsNullOrEmpty(Publisher.Version), "Version is non-empty");
        True(Regex.IsMatch(Publisher.Version, @"^\d+\.\d+\.\d+"), "Version looks like x.y.z: " + Publisher.Version);
        Equal(HeaderAbiVersion(), Publisher.AbiVersion, "AbiVersion equals TP_ABI_VERSION in include/tableau_publisher.h");
        Equal(Publisher.RequiredAbiVersion, Publisher.AbiVersion, "AbiVersion equals the binding's RequiredAbiVersion");
    }

    // ---- helpers ---------------------------------------------------------------------------

    private static string Config(string name, string mode, string extra, string spoolDir = null)
    {
        var sb = new StringBuilder();
        sb.Append("{\"server_url\":").Append(Json.Quote(url));
        sb.Append(",\"site\":\"\"");
        sb.Append(",\"auth\":{\"method\":\"pat\",\"token_name\":\"ci\",\"token_secret\":\"ci-secret\"}");
        sb.Append(",\"project\":\"Finance/Quarterly\"");
        sb.Append(",\"datasource_name\":").Append(Json.Quote(name));
        sb.Append(",\"mode\":").Append(Json.Quote(mode));
        sb.Append(",\"spool_dir\":").Append(Json.Quote(spoolDir ?? spool));
        if (extra != null) sb.Append(',').Append(extra);
        return sb.Append('}').ToString();
    }

    private static string StoredSha(string name)
    {
        string body;
        using (var web = new WebClient())
        {
            web.Encoding = Encoding.UTF8;
            body = web.DownloadString(url + "/_emulator/datasources");
        }
        string found = null;
        foreach (object o in (List<object>)Json.Parse(body))
        {
            var d = (Dictionary<string, object>)o;
            if ((string)d["name"] == name) found = (string)d["sha256"];
        }
        if (found == null) throw new Exception("the emulator holds no data source named " + name);
        return found;
    }

    private static void Control(string method, string path, string body)
    {
        using (var web = new WebClient())
        {
            web.Headers[HttpRequestHeader.ContentType] = "application/json";
            web.UploadString(url + path, method, body);
        }
    }

    private static uint HeaderAbiVersion()
    {
        var m = Regex.Match(File.ReadAllText("include/tableau_publisher.h"), @"#define\s+TP_ABI_VERSION\s+(\d+)");
        if (!m.Success) throw new Exception("TP_ABI_VERSION not found in the header");
        return uint.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private static int SpoolFiles(string dir)
    {
        int n = 0;
        foreach (string f in Directory.GetFiles(dir, "*", SearchOption.AllDirectories))
            if (Path.GetFileName(f).Contains(".spool")) n++;
        return n;
    }

    private static string Sha256Hex(byte[] data)
    {
        using (var sha = SHA256.Create())
        {
            var sb = new StringBuilder();
            foreach (byte b in sha.ComputeHash(data)) sb.Append(b.ToString("x2", CultureInfo.InvariantCulture));
            return sb.ToString();
        }
    }

    private static void True(bool condition, string what)
    {
        if (!condition) throw new Exception("expected: " + what);
    }

    private static void Equal<T>(T expected, object actual, string what)
    {
        if (!object.Equals(expected, actual))
            throw new Exception(what + ": expected <" + expected + "> but got <" + actual + ">");
    }

    private static E Throws<E>(Action action) where E : Exception
    {
        try
        {
            action();
        }
        catch (E e)
        {
            return e;
        }
        catch (Exception e)
        {
            throw new Exception("expected " + typeof(E).Name + " but got " + e.GetType().Name + ": " + e.Message);
        }
        throw new Exception("expected " + typeof(E).Name + " but nothing was thrown");
    }
}

/// <summary>A minimal JSON reader (objects, arrays, strings, numbers as double, true/false/null) and quoting.</summary>
internal sealed class Json
{
    private readonly string s;
    private int i;

    private Json(string s)
    {
        this.s = s;
    }

    public static object Parse(string text)
    {
        var j = new Json(text);
        object v = j.Value();
        j.Ws();
        if (j.i != text.Length) throw new FormatException("trailing characters in JSON at " + j.i);
        return v;
    }

    public static string Quote(string v)
    {
        var sb = new StringBuilder("\"");
        foreach (char c in v)
        {
            if (c == '"' || c == '\\') sb.Append('\\').Append(c);
            else if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
            else sb.Append(c);
        }
        return sb.Append('"').ToString();
    }

    private void Ws()
    {
        while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
    }

    private char Next()
    {
        if (i >= s.Length) throw new FormatException("unexpected end of JSON");
        return s[i++];
    }

    private void Expect(char c)
    {
        Ws();
        if (Next() != c) throw new FormatException("expected '" + c + "' in JSON at " + (i - 1));
    }

    private object Value()
    {
        Ws();
        if (i >= s.Length) throw new FormatException("unexpected end of JSON");
        char c = s[i];
        if (c == '{')
        {
            i++;
            var o = new Dictionary<string, object>();
            Ws();
            if (s[i] == '}') { i++; return o; }
            while (true)
            {
                Ws();
                string key = (string)Value();
                Expect(':');
                o[key] = Value();
                Ws();
                char d = Next();
                if (d == '}') return o;
                if (d != ',') throw new FormatException("expected ',' or '}' in JSON at " + (i - 1));
            }
        }
        if (c == '[')
        {
            i++;
            var a = new List<object>();
            Ws();
            if (s[i] == ']') { i++; return a; }
            while (true)
            {
                a.Add(Value());
                Ws();
                char d = Next();
                if (d == ']') return a;
                if (d != ',') throw new FormatException("expected ',' or ']' in JSON at " + (i - 1));
            }
        }
        if (c == '"')
        {
            i++;
            var sb = new StringBuilder();
            while (true)
            {
                char d = Next();
                if (d == '"') return sb.ToString();
                if (d != '\\') { sb.Append(d); continue; }
                char e = Next();
                switch (e)
                {
                    case 'n': sb.Append('\n'); break;
                    case 't': sb.Append('\t'); break;
                    case 'r': sb.Append('\r'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'u':
                        if (i + 4 > s.Length) throw new FormatException("short \\u escape in JSON");
                        sb.Append((char)int.Parse(s.Substring(i, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        i += 4;
                        break;
                    default: sb.Append(e); break;
                }
            }
        }
        if (string.CompareOrdinal(s, i, "true", 0, 4) == 0) { i += 4; return true; }
        if (string.CompareOrdinal(s, i, "false", 0, 5) == 0) { i += 5; return false; }
        if (string.CompareOrdinal(s, i, "null", 0, 4) == 0) { i += 4; return null; }
        int start = i;
        while (i < s.Length && "+-0123456789.eE".IndexOf(s[i]) >= 0) i++;
        if (start == i) throw new FormatException("unexpected '" + c + "' in JSON at " + i);
        return double.Parse(s.Substring(start, i - start), NumberStyles.Float, CultureInfo.InvariantCulture);
    }
}
