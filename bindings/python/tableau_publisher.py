"""Python binding for the tableau-publisher C ABI (ctypes; no compilation needed).

    from tableau_publisher import Publisher
    with Publisher(config) as p:          # config: dict or JSON string, as for tp_init
        for chunk in produce():
            p.feed(chunk)
        result = p.publish()              # dict from tp_result_json

Errors raise PublisherError with .status (the tp_status number) and the library's message.
The library is found via $TABLEAU_PUBLISHER_LIB, else next to this file, else the system path.
"""
import ctypes
import ctypes.util
import json
import os
import sys

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
          5: "waiting_for_job", 6: "signing_out", 7: "waiting_for_session"}


class _Progress(ctypes.Structure):
    _fields_ = [("phase", ctypes.c_int), ("bytes_sent", ctypes.c_uint64), ("bytes_total", ctypes.c_uint64)]


_PROGRESS_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.POINTER(_Progress))


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

    def __init__(self, config):
        lib = library()
        text = config if isinstance(config, str) else json.dumps(config)
        handle = ctypes.c_void_p()
        rc = lib.tp_init(text.encode("utf-8"), ctypes.byref(handle))
        if rc:
            raise PublisherError(rc, lib.tp_last_error(None).decode("utf-8", "replace"))
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

    def preflight(self):
        """Checks credentials, site, project and mode now, without data; holds no session."""
        self._check(library().tp_preflight(self._live()))

    def publish(self, progress=None):
        """Signs in, uploads, publishes, signs out; returns the result as a dict.

        progress(phase, bytes_sent, bytes_total) is called on this thread as the publish goes;
        returning False (or raising) cancels it with TP_ERR_CANCELLED, keeping the data, as in
        the C++ and C# bindings. Any other return value (None included) goes on."""
        handle = self._live()
        lib = library()
        callback = None
        if progress is not None:
            def on_progress(_userdata, report):
                r = report.contents
                try:
                    return 1 if progress(PHASES.get(r.phase, r.phase), r.bytes_sent, r.bytes_total) is False else 0
                except BaseException:  # never let an exception unwind into the library
                    return 1
            callback = _PROGRESS_CALLBACK(on_progress)  # kept alive for the whole call
            self._check(lib.tp_set_progress_callback(handle, callback, None))
        try:
            self._check(lib.tp_finalize_and_publish(handle))
        finally:
            if callback is not None:
                lib.tp_set_progress_callback(handle, _PROGRESS_CALLBACK(), None)
        return json.loads(lib.tp_result_json(handle).decode("utf-8"))

    def close(self):
        """Frees the handle; safe to call twice."""
        if self._handle is not None:
            library().tp_free(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
