"""Python binding for the tableau-publisher C ABI (ctypes; no compilation needed).

    from tableau_publisher import Publisher
    with Publisher(config) as p:          # config: dict or JSON string, as for tp_init
        for chunk in produce():
            p.feed(chunk)
        result = p.publish()              # dict from tp_result_json
                                          # publish(progress=fn, log=fn); p.cancel() from any thread

Errors raise PublisherError with .status (the tp_status number) and the library's message.
The library is found via $TABLEAU_PUBLISHER_LIB, else next to this file, else the system path.
"""
import ctypes
import ctypes.util
import json
import os
import sys
import threading

ABI_VERSION = 1

STATUS_NAMES = [
    "TP_OK", "TP_ERR_INVALID_ARGUMENT", "TP_ERR_CONFIG", "TP_ERR_STATE", "TP_ERR_IO",
    "TP_ERR_AUTH", "TP_ERR_PERMISSION", "TP_ERR_NOT_FOUND", "TP_ERR_CONFLICT",
    "TP_ERR_RATE_LIMITED", "TP_ERR_SERVER", "TP_ERR_NETWORK", "TP_ERR_TIMEOUT",
    "TP_ERR_CANCELLED", "TP_ERR_INTERNAL",
]


class PublisherError(Exception):
    """A tp_* call failed: .status is the tp_status number, .name its name."""

    def __init__(self, status, message):
        self.status = status
        self.name = STATUS_NAMES[status] if 0 <= status < len(STATUS_NAMES) else f"status {status}"
        super().__init__(f"{self.name}: {message}")


PHASES = {1: "signing_in", 2: "resolving", 3: "uploading", 4: "committing",
          5: "waiting_for_job", 6: "signing_out", 7: "waiting_for_session",
          8: "building_extract"}


LOG_LEVELS = {1: "error", 2: "warn", 3: "info"}


class _Progress(ctypes.Structure):
    _fields_ = [("phase", ctypes.c_int), ("bytes_sent", ctypes.c_uint64), ("bytes_total", ctypes.c_uint64)]


_PROGRESS_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.POINTER(_Progress))
_LOG_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)


def _library_name():
    if sys.platform == "win32":
        return "tableau_publisher.dll"
    if sys.platform == "darwin":
        return "libtableau_publisher.dylib"
    return "libtableau_publisher.so"


def _load():
    path = os.environ.get("TABLEAU_PUBLISHER_LIB")
    if not path:
        local = os.path.join(os.path.dirname(os.path.abspath(__file__)), _library_name())
        path = local if os.path.exists(local) else ctypes.util.find_library("tableau_publisher")
    if not path:
        raise OSError("libtableau_publisher not found; set TABLEAU_PUBLISHER_LIB to its path")
    lib = ctypes.CDLL(path)
    handle = ctypes.c_void_p
    lib.tp_init.argtypes = [ctypes.c_char_p, ctypes.POINTER(handle)]
    lib.tp_init.restype = ctypes.c_int
    lib.tp_feed_chunk.argtypes = [handle, ctypes.c_char_p, ctypes.c_size_t]
    lib.tp_feed_chunk.restype = ctypes.c_int
    lib.tp_feed_file.argtypes = [handle, ctypes.c_char_p]
    lib.tp_feed_file.restype = ctypes.c_int
    lib.tp_finalize_and_publish.argtypes = [handle]
    lib.tp_finalize_and_publish.restype = ctypes.c_int
    lib.tp_last_error.argtypes = [handle]
    lib.tp_last_error.restype = ctypes.c_char_p
    lib.tp_result_json.argtypes = [handle]
    lib.tp_result_json.restype = ctypes.c_char_p
    lib.tp_free.argtypes = [handle]
    lib.tp_free.restype = None
    lib.tp_set_progress_callback.argtypes = [handle, _PROGRESS_CALLBACK, ctypes.c_void_p]
    lib.tp_set_progress_callback.restype = ctypes.c_int
    lib.tp_set_log_callback.argtypes = [handle, _LOG_CALLBACK, ctypes.c_void_p]
    lib.tp_set_log_callback.restype = ctypes.c_int
    lib.tp_cancel.argtypes = [handle]
    lib.tp_cancel.restype = ctypes.c_int
    lib.tp_preflight.argtypes = [handle]
    lib.tp_preflight.restype = ctypes.c_int
    lib.tp_version.argtypes = []
    lib.tp_version.restype = ctypes.c_char_p
    lib.tp_abi_version.argtypes = []
    lib.tp_abi_version.restype = ctypes.c_uint32
    if lib.tp_abi_version() != ABI_VERSION:
        raise OSError(f"{path} implements ABI {lib.tp_abi_version()}, this binding needs {ABI_VERSION}")
    return lib


_lib = None


def library():
    """The loaded C library (loaded on first use)."""
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


def version():
    """The library's version string."""
    return library().tp_version().decode()


class Publisher:
    """One publish: feed bytes (or one file), then publish(). Owns nothing but the handle."""

    _handle = None  # so close() (and __del__) work even when __init__ raised
    _lock = None

    def __init__(self, config):
        lib = library()
        text = config if isinstance(config, str) else json.dumps(config)
        handle = ctypes.c_void_p()
        rc = lib.tp_init(text.encode("utf-8"), ctypes.byref(handle))
        if rc:
            raise PublisherError(rc, lib.tp_last_error(None).decode("utf-8", "replace"))
        self._lock = threading.Lock()  # cancel() and close() never overlap
        self._handle = handle

    def _check(self, rc):
        if rc:
            raise PublisherError(rc, library().tp_last_error(self._handle).decode("utf-8", "replace"))

    def _live(self):
        if self._handle is None:
            raise PublisherError(3, "the publisher is closed")
        return self._handle

    def feed(self, data):
        """Appends bytes (bytes, bytearray or memoryview) to the spool."""
        data = bytes(data)
        self._check(library().tp_feed_chunk(self._live(), data, len(data)))

    def feed_file(self, path):
        """Uses an existing file as the whole input, published in place."""
        self._check(library().tp_feed_file(self._live(), os.fsencode(path)))

    def preflight(self, log=None):
        """Checks credentials, site, project and mode now, without data; holds no session.

        log(level, message) is told what happens, as for publish()."""
        handle = self._live()
        lib = library()
        log_callback = self._set_log(handle, log)
        try:
            self._check(lib.tp_preflight(handle))
        finally:
            if log_callback is not None:
                lib.tp_set_log_callback(handle, _LOG_CALLBACK(), None)

    def cancel(self):
        """Cancels the publish() or preflight() running on another thread: it raises
        PublisherError TP_ERR_CANCELLED within about a second, signing out and keeping the data
        (publish() may be called again). Made while nothing runs, it cancels the next call at
        once (it is used up by the call it stops). Thread-safe; a no-op once closed."""
        with self._lock:
            if self._handle is not None:
                library().tp_cancel(self._handle)

    @staticmethod
    def _set_log(handle, log):
        """Registers log (or nothing); returns the ctypes callback to keep alive for the call."""
        if log is None:
            return None

        def on_log(_userdata, level, message):
            try:
                log(LOG_LEVELS.get(level, str(level)), (message or b"").decode("utf-8", "replace"))
            except BaseException:  # never let an exception unwind into the library
                pass
        callback = _LOG_CALLBACK(on_log)
        rc = library().tp_set_log_callback(handle, callback, None)
        if rc:
            raise PublisherError(rc, library().tp_last_error(handle).decode("utf-8", "replace"))
        return callback

    def publish(self, progress=None, log=None):
        """Signs in, uploads, publishes, signs out; returns the result as a dict.

        progress(phase, bytes_sent, bytes_total) is called on this thread as the publish goes;
        returning False (or raising) cancels it with TP_ERR_CANCELLED, keeping the data, as in
        the C++ and C# bindings. Any other return value (None included) goes on.

        log(level, message) is called on this thread with what a user should see: level is
        "error", "warn" or "info", message a str (retries and their reasons, re-authentications,
        upload restarts, sign-in, publish, the final error); no message holds a secret.
        Exceptions it raises are swallowed."""
        handle = self._live()
        lib = library()
        callback = log_callback = None
        try:
            log_callback = self._set_log(handle, log)  # kept alive for the whole call
            if progress is not None:
                def on_progress(_userdata, report):
                    r = report.contents
                    try:
                        return 1 if progress(PHASES.get(r.phase, r.phase), r.bytes_sent, r.bytes_total) is False else 0
                    except BaseException:  # never let an exception unwind into the library
                        return 1
                callback = _PROGRESS_CALLBACK(on_progress)  # kept alive for the whole call
                self._check(lib.tp_set_progress_callback(handle, callback, None))
            self._check(lib.tp_finalize_and_publish(handle))
        finally:
            if callback is not None:
                lib.tp_set_progress_callback(handle, _PROGRESS_CALLBACK(), None)
            if log_callback is not None:
                lib.tp_set_log_callback(handle, _LOG_CALLBACK(), None)
        return json.loads(lib.tp_result_json(handle).decode("utf-8"))

    def close(self):
        """Frees the handle; safe to call twice."""
        if self._handle is not None:
            with self._lock:
                if self._handle is not None:
                    library().tp_free(self._handle)
                    self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
