// TableauPublisher.cs: thin C# wrapper over the tableau-publisher C ABI (include/tableau_publisher.h),
// for .NET hosts (SSIS script tasks, ETL nodes). Plain C# 7 written for .NET Framework, .NET 6+
// and Mono (compiled and tested with Mono's mcs only); no /unsafe needed. Loads
// libtableau_publisher.so / tableau_publisher.dll.
//
//   using (var p = new TableauPublisher.Publisher(configJson))   // throws PublisherException
//   {
//       p.Feed(buffer, 0, n);                 // as the host produces bytes (or p.FeedFile(path))
//       string resultJson = p.Publish();      // or p.Publish(pr => !token.IsCancellationRequested)
//   }                                         // or p.Publish(progress, (level, line) => log.Add(line))
//   // From another thread (a Cancel button): p.Cancel();
//
// Every failure throws PublisherException with .Status (the tp_status) and the library's message.
using System;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace TableauPublisher
{
    /// <summary>Result of a tp_* call; same numbers as tp_status in the C header.</summary>
    public enum Status
    {
        /// <summary>Success (TP_OK).</summary>
        Ok = 0,
        /// <summary>A NULL pointer, an invalid length or a string that is not UTF-8.</summary>
        InvalidArgument = 1,
        /// <summary>The configuration is invalid or incomplete (also: data that is not a Tableau file).</summary>
        Config = 2,
        /// <summary>The call is not allowed now (e.g. feeding after publishing).</summary>
        State = 3,
        /// <summary>Local file I/O failed.</summary>
        Io = 4,
        /// <summary>Tableau refused the credentials or the session.</summary>
        Auth = 5,
        /// <summary>Tableau says the user may not do this.</summary>
        Permission = 6,
        /// <summary>Site, project or data source not found.</summary>
        NotFound = 7,
        /// <summary>The data source already exists (mode create_new) or another conflict.</summary>
        Conflict = 8,
        /// <summary>Tableau throttled the requests (HTTP 429).</summary>
        RateLimited = 9,
        /// <summary>Tableau failed or answered unexpectedly.</summary>
        Server = 10,
        /// <summary>The server could not be reached or the connection broke.</summary>
        Network = 11,
        /// <summary>A request or the publish job timed out.</summary>
        Timeout = 12,
        /// <summary>The publish was cancelled.</summary>
        Cancelled = 13,
        /// <summary>A bug in the library.</summary>
        Internal = 14,
    }

    /// <summary>What a publish is doing; same numbers as tp_phase in the C header.</summary>
    public enum Phase
    {
        /// <summary>Reading server info and signing in.</summary>
        SigningIn = 1,
        /// <summary>Finding the project and checking the data source.</summary>
        Resolving = 2,
        /// <summary>Sending the file's bytes.</summary>
        Uploading = 3,
        /// <summary>Committing the publish.</summary>
        Committing = 4,
        /// <summary>Waiting for the asynchronous publish job.</summary>
        WaitingForJob = 5,
        /// <summary>Signing out.</summary>
        SigningOut = 6,
        /// <summary>Waiting for another publish with the same credentials to finish with the session.</summary>
        WaitingForSession = 7,
        /// <summary>Building a .hyper from CSV, Parquet or Arrow rows before signing in (bytes read of the input).</summary>
        BuildingExtract = 8,
    }

    /// <summary>How much a log line matters; same numbers as tp_log_level in the C header.</summary>
    public enum LogLevel
    {
        /// <summary>The call failed: the final error message.</summary>
        Error = 1,
        /// <summary>A retry, a wait, a re-authentication or an upload restart, with its reason.</summary>
        Warn = 2,
        /// <summary>A milestone: signed in, published, waiting for a turn at the session.</summary>
        Info = 3,
    }

    /// <summary>One progress report, as passed to the delegate of <see cref="Publisher.Publish(Func{Progress, bool})"/>.</summary>
    public struct Progress
    {
        /// <summary>Creates a report.</summary>
        public Progress(Phase phase, ulong bytesSent, ulong bytesTotal)
        {
            Phase = phase;
            BytesSent = bytesSent;
            BytesTotal = bytesTotal;
        }

        /// <summary>The current phase.</summary>
        public Phase Phase { get; }

        /// <summary>File bytes sent in the current upload pass (restarts from 0 when an upload is restarted).</summary>
        public ulong BytesSent { get; }

        /// <summary>File bytes in all.</summary>
        public ulong BytesTotal { get; }

        /// <summary>For logs: phase and bytes.</summary>
        public override string ToString()
        {
            return Phase + " " + BytesSent + "/" + BytesTotal;
        }
    }

    /// <summary>A tp_* call failed.</summary>
    public class PublisherException : Exception
    {
        /// <summary>Creates an exception for a failed call.</summary>
        public PublisherException(Status status, string message) : this(status, message, null)
        {
        }

        /// <summary>Creates an exception for a failed call, with the exception that caused it.</summary>
        public PublisherException(Status status, string message, Exception innerException)
            : base(message, innerException)
        {
            Status = status;
        }

        /// <summary>The tp_status of the failure.</summary>
        public Status Status { get; }
    }

    /// <summary>Owns a tp_publisher handle; frees it with tp_free, even when the Publisher is leaked.</summary>
    internal sealed class PublisherHandle : SafeHandle
    {
        /// <summary>An invalid handle, for the marshaller of tp_init's out parameter.</summary>
        public PublisherHandle() : base(IntPtr.Zero, true)
        {
        }

        /// <summary>True while no handle is held.</summary>
        public override bool IsInvalid
        {
            get { return handle == IntPtr.Zero; }
        }

        /// <summary>Calls tp_free (which also waits for the deletion of a published spool).</summary>
        protected override bool ReleaseHandle()
        {
            Native.tp_free(handle);
            return true;
        }
    }

    /// <summary>The C functions. Strings are passed as NUL-terminated UTF-8 byte arrays and read back by hand.</summary>
    internal static class Native
    {
        private const string Lib = "tableau_publisher";

        /// <summary>The tp_progress struct: phase (a C enum, int), then two uint64.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct tp_progress
        {
            public int phase;
            public ulong bytes_sent;
            public ulong bytes_total;
        }

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int ProgressCallback(IntPtr userdata, IntPtr progress);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void LogCallback(IntPtr userdata, int level, IntPtr message);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tp_init(byte[] configJson, out PublisherHandle handle);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tp_feed_chunk(IntPtr p, IntPtr data, UIntPtr len);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tp_feed_file(IntPtr p, byte[] path);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tp_set_progress_callback(IntPtr p, ProgressCallback callback, IntPtr userdata);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tp_set_log_callback(IntPtr p, LogCallback callback, IntPtr userdata);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tp_cancel(IntPtr p);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tp_preflight(IntPtr p);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tp_finalize_and_publish(IntPtr p);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr tp_last_error(IntPtr p);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr tp_result_json(IntPtr p);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void tp_free(IntPtr p);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr tp_version();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint tp_abi_version();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr tp_status_str(int status);

        /// <summary>NUL-terminated UTF-8; refuses strings with a NUL inside (C would cut them off there).</summary>
        internal static byte[] ToUtf8z(string s, string paramName)
        {
            if (s == null) throw new ArgumentNullException(paramName);
            if (s.IndexOf('\0') >= 0) throw new ArgumentException("must not contain a NUL character", paramName);
            byte[] bytes = new byte[Encoding.UTF8.GetByteCount(s) + 1];
            Encoding.UTF8.GetBytes(s, 0, s.Length, bytes, 0);
            return bytes;
        }

        /// <summary>Copies a NUL-terminated UTF-8 string owned by the library; null for NULL.</summary>
        internal static string FromUtf8z(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            int len = 0;
            while (Marshal.ReadByte(p, len) != 0) len++;
            byte[] bytes = new byte[len];
            Marshal.Copy(p, bytes, 0, len);
            return Encoding.UTF8.GetString(bytes);
        }
    }

    /// <summary>
    /// One publish: feed bytes (or one file), then Publish(). Owns only the native handle.
    /// One call at a time: not for concurrent use, and not from inside the progress delegate;
    /// only <see cref="Cancel"/> may be called from any thread at any time.
    /// </summary>
    public sealed class Publisher : IDisposable
    {
        /// <summary>The C ABI version this binding is written for (TP_ABI_VERSION in the header).</summary>
        public const uint RequiredAbiVersion = 1;

        // Never collected, so the function pointer given to the library always stays valid; the
        // per-call state travels in userdata as a GCHandle.
        private static readonly Native.ProgressCallback Trampoline = OnProgress;
        private static readonly Native.LogCallback LogTrampoline = OnLog;

        private readonly PublisherHandle handle;
        private int busy; // 1 while a call is running: guards against reentrant or concurrent use

        /// <summary>Validates the JSON configuration (no network yet): PublisherException if invalid, InvalidOperationException if the library has another ABI version.</summary>
        public Publisher(string configJson)
        {
            byte[] config = Native.ToUtf8z(configJson, "configJson");
            uint abi = Native.tp_abi_version();
            if (abi != RequiredAbiVersion)
                throw new InvalidOperationException("the loaded tableau_publisher library implements C ABI version " + abi +
                    ", but this binding needs version " + RequiredAbiVersion + "; use the matching library and binding");
            PublisherHandle h;
            int rc = Native.tp_init(config, out h);
            if (rc != 0 || h == null || h.IsInvalid)
            {
                if (h != null) h.Dispose();
                throw Error(rc != 0 ? rc : (int)Status.Internal, Native.FromUtf8z(Native.tp_last_error(IntPtr.Zero)), null);
            }
            handle = h;
        }

        /// <summary>The library version, e.g. "0.1.0".</summary>
        public static string Version
        {
            get { return Native.FromUtf8z(Native.tp_version()); }
        }

        /// <summary>The C ABI version the loaded library implements; must equal <see cref="RequiredAbiVersion"/>.</summary>
        public static uint AbiVersion
        {
            get { return Native.tp_abi_version(); }
        }

        /// <summary>Appends all of <paramref name="data"/> to the spool (copied; the array is not kept).</summary>
        public void Feed(byte[] data)
        {
            if (data == null) throw new ArgumentNullException("data");
            Feed(data, 0, data.Length);
        }

        /// <summary>Appends <paramref name="count"/> bytes of <paramref name="data"/> from <paramref name="offset"/> to the spool.</summary>
        public void Feed(byte[] data, int offset, int count)
        {
            if (data == null) throw new ArgumentNullException("data");
            if (offset < 0 || offset > data.Length) throw new ArgumentOutOfRangeException("offset");
            if (count < 0 || count > data.Length - offset) throw new ArgumentOutOfRangeException("count");
            IntPtr p = Enter();
            try
            {
                GCHandle pin = GCHandle.Alloc(data, GCHandleType.Pinned);
                try
                {
                    IntPtr start = count == 0 ? IntPtr.Zero : IntPtr.Add(pin.AddrOfPinnedObject(), offset);
                    Check(p, Native.tp_feed_chunk(p, start, new UIntPtr((uint)count)));
                }
                finally
                {
                    pin.Free();
                }
            }
            finally
            {
                Leave();
            }
        }

        /// <summary>Uses an existing file as the whole input, published in place (never copied, modified or deleted).</summary>
        public void FeedFile(string path)
        {
            byte[] utf8 = Native.ToUtf8z(path, "path");
            IntPtr p = Enter();
            try
            {
                Check(p, Native.tp_feed_file(p, utf8));
            }
            finally
            {
                Leave();
            }
        }

        /// <summary>Checks server, credentials, site, project and mode now, without data; holds no session.</summary>
        public void Preflight()
        {
            IntPtr p = Enter();
            try
            {
                Check(p, Native.tp_preflight(p));
            }
            finally
            {
                Leave();
            }
        }

        /// <summary>
        /// As <see cref="Preflight()"/>, telling <paramref name="log"/> on this thread what happens
        /// (see <see cref="Publish(Func{Progress, bool}, Action{LogLevel, string})"/>).
        /// </summary>
        public void Preflight(Action<LogLevel, string> log)
        {
            if (log == null) throw new ArgumentNullException("log");
            WithCallbacks(null, log, p => Native.tp_preflight(p));
        }

        /// <summary>
        /// Cancels the Publish or Preflight running on another thread (a Cancel button): it throws
        /// PublisherException with Status.Cancelled within about a second, signing out and keeping
        /// the data (Publish may be called again). Made while nothing runs, it cancels the next
        /// call at once (it is used up by the call it stops). Thread-safe, never blocks; does
        /// nothing once disposed.
        /// </summary>
        public void Cancel()
        {
            if (handle.IsClosed) return;
            bool added = false;
            try
            {
                // Keeps the handle alive for the call, so a Dispose meanwhile cannot free it.
                handle.DangerousAddRef(ref added);
                Native.tp_cancel(handle.DangerousGetHandle());
            }
            catch (ObjectDisposedException)
            {
                // disposed meanwhile: nothing to cancel
            }
            finally
            {
                if (added) handle.DangerousRelease();
            }
        }

        /// <summary>Signs in, uploads, publishes, signs out (blocking); returns tp_result_json's JSON text.</summary>
        public string Publish()
        {
            IntPtr p = Enter();
            try
            {
                Check(p, Native.tp_finalize_and_publish(p));
                return Result(p);
            }
            finally
            {
                Leave();
            }
        }

        /// <summary>
        /// As <see cref="Publish()"/>, reporting progress to <paramref name="progress"/> on this thread.
        /// Returning false cancels (Status.Cancelled, data kept: Publish may be called again);
        /// an exception thrown by the delegate also cancels and becomes the InnerException.
        /// </summary>
        public string Publish(Func<Progress, bool> progress)
        {
            if (progress == null) throw new ArgumentNullException("progress");
            return Publish(progress, null);
        }

        /// <summary>
        /// As <see cref="Publish(Func{Progress, bool})"/> (<paramref name="progress"/> may be null),
        /// also telling <paramref name="log"/> on this thread what a user should see: retries and
        /// waits with their reasons, re-authentications, upload restarts, the sign-in, the publish
        /// and the final error. No line holds a secret. Exceptions thrown by <paramref name="log"/>
        /// are swallowed: a log line never stops a publish.
        /// </summary>
        public string Publish(Func<Progress, bool> progress, Action<LogLevel, string> log)
        {
            if (progress == null && log == null) return Publish();
            string json = null;
            WithCallbacks(progress, log, p =>
            {
                int rc = Native.tp_finalize_and_publish(p);
                if (rc == 0) json = Result(p);
                return rc;
            });
            return json;
        }

        /// <summary>Frees the handle (tp_free). Safe to call twice; later calls throw ObjectDisposedException.</summary>
        public void Dispose()
        {
            handle.Dispose();
        }

        // Runs call(p) with the callbacks registered (the state kept alive through a GCHandle for
        // the whole call), then unregisters them; throws for a non-zero status.
        private void WithCallbacks(Func<Progress, bool> progress, Action<LogLevel, string> log, Func<IntPtr, int> call)
        {
            IntPtr p = Enter();
            try
            {
                var state = new CallbackState(progress, log);
                GCHandle userdata = GCHandle.Alloc(state);
                try
                {
                    PublisherException failure = null;
                    try
                    {
                        IntPtr data = GCHandle.ToIntPtr(userdata);
                        if (progress != null) Check(p, Native.tp_set_progress_callback(p, Trampoline, data));
                        if (log != null) Check(p, Native.tp_set_log_callback(p, LogTrampoline, data));
                        int rc = call(p);
                        // Read the message now: the next call on the handle clears it.
                        if (rc != 0) failure = Error(rc, Native.FromUtf8z(Native.tp_last_error(p)), state.Thrown);
                    }
                    finally
                    {
                        if (progress != null) Native.tp_set_progress_callback(p, null, IntPtr.Zero);
                        if (log != null) Native.tp_set_log_callback(p, null, IntPtr.Zero);
                    }
                    if (failure != null) throw failure;
                }
                finally
                {
                    userdata.Free();
                    GC.KeepAlive(progress);
                    GC.KeepAlive(log);
                }
            }
            finally
            {
                Leave();
            }
        }

        private sealed class CallbackState
        {
            public readonly Func<Progress, bool> Callback;
            public readonly Action<LogLevel, string> Log;
            public Exception Thrown;

            public CallbackState(Func<Progress, bool> callback, Action<LogLevel, string> log)
            {
                Callback = callback;
                Log = log;
            }
        }

        // Called by the library on the thread inside tp_finalize_and_publish. Nothing may escape.
        private static int OnProgress(IntPtr userdata, IntPtr report)
        {
            CallbackState state = null;
            try
            {
                state = (CallbackState)GCHandle.FromIntPtr(userdata).Target;
                var raw = (Native.tp_progress)Marshal.PtrToStructure(report, typeof(Native.tp_progress));
                return state.Callback(new Progress((Phase)raw.phase, raw.bytes_sent, raw.bytes_total)) ? 0 : 1;
            }
            catch (Exception e)
            {
                if (state != null && state.Thrown == null) state.Thrown = e;
                return 1;
            }
        }

        // Called by the library on the thread inside the call, with a line valid only now.
        private static void OnLog(IntPtr userdata, int level, IntPtr message)
        {
            try
            {
                var state = (CallbackState)GCHandle.FromIntPtr(userdata).Target;
                state.Log((LogLevel)level, Native.FromUtf8z(message) ?? "");
            }
            catch (Exception)
            {
                // swallowed: a log line never stops a publish, and nothing may escape into the library
            }
        }

        // Marks the Publisher busy and keeps the handle alive until Leave (Dispose meanwhile only
        // defers tp_free). Throws ObjectDisposedException after Dispose.
        private IntPtr Enter()
        {
            if (handle.IsClosed) throw new ObjectDisposedException(GetType().FullName);
            if (Interlocked.CompareExchange(ref busy, 1, 0) != 0)
                throw new InvalidOperationException("this Publisher is already in a call (from another thread, or from its progress delegate); a handle serves one call at a time");
            bool added = false;
            try
            {
                handle.DangerousAddRef(ref added);
            }
            finally
            {
                if (!added) Interlocked.Exchange(ref busy, 0);
            }
            return handle.DangerousGetHandle();
        }

        private void Leave()
        {
            handle.DangerousRelease();
            Interlocked.Exchange(ref busy, 0);
        }

        private static void Check(IntPtr p, int rc)
        {
            if (rc != 0) throw Error(rc, Native.FromUtf8z(Native.tp_last_error(p)), null);
        }

        private static string Result(IntPtr p)
        {
            string json = Native.FromUtf8z(Native.tp_result_json(p));
            if (json == null) throw Error((int)Status.Internal, "tp_result_json returned NULL after a successful publish", null);
            return json;
        }

        private static PublisherException Error(int rc, string message, Exception inner)
        {
            if (string.IsNullOrEmpty(message)) message = Native.FromUtf8z(Native.tp_status_str(rc));
            return new PublisherException((Status)rc, message, inner);
        }
    }
}
