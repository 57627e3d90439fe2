// tableau_publisher.hpp: header-only C++17 wrapper over the tableau-publisher C ABI.
//
//   tableau::Publisher p(config_json);   // throws tableau::Error on a bad config
//   p.feed(data, size);                  // as the host produces bytes (or p.feed_file(path))
//   std::string result = p.publish();    // JSON: datasource_id, sha256, ...
//
//   p.set_log([](tp_log_level level, const std::string &line) { ... });  // optional
//   p.cancel();                          // from any thread: the running publish() throws
//
// Move-only; owns the handle and frees it in the destructor. Every failure throws
// tableau::Error carrying the tp_status and the library's message.
#ifndef TABLEAU_PUBLISHER_HPP
#define TABLEAU_PUBLISHER_HPP

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "tableau_publisher.h"

namespace tableau {

/// A failed tp_* call.
class Error : public std::runtime_error {
public:
    Error(tp_status status, const std::string &message)
        : std::runtime_error(std::string(tp_status_str(status)) + ": " + message), status_(status) {}
    /// The tp_status of the failure.
    tp_status status() const noexcept { return status_; }

private:
    tp_status status_;
};

/// One publish: feed bytes (or one file), then publish().
class Publisher {
public:
    /// Told each log line of publish() and preflight(), on their thread.
    using LogFunction = std::function<void(tp_log_level, const std::string &)>;

    explicit Publisher(const std::string &config_json) {
        if (tp_abi_version() != TP_ABI_VERSION)
            throw Error(TP_ERR_STATE, "the loaded library implements another ABI version than this header");
        tp_status rc = tp_init(config_json.c_str(), &handle_);
        if (rc != TP_OK) throw Error(rc, tp_last_error(nullptr));
    }
    ~Publisher() { tp_free(handle_); }
    Publisher(const Publisher &) = delete;
    Publisher &operator=(const Publisher &) = delete;
    Publisher(Publisher &&other) noexcept
        : handle_(std::exchange(other.handle_, nullptr)), log_(std::move(other.log_)) {}
    Publisher &operator=(Publisher &&other) noexcept {
        if (this != &other) {
            tp_free(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
            log_ = std::move(other.log_);
        }
        return *this;
    }

    /// Appends bytes to the spool.
    void feed(const void *data, size_t size) {
        check(tp_feed_chunk(live(), static_cast<const uint8_t *>(data), size));
    }
    /// Appends a string's bytes.
    void feed(const std::string &bytes) { feed(bytes.data(), bytes.size()); }
    /// Uses an existing file as the whole input, published in place.
    void feed_file(const std::string &path) { check(tp_feed_file(live(), path.c_str())); }
    /// Checks credentials, site, project and mode now, without data; holds no session.
    void preflight() { check(tp_preflight(live())); }
    /// Sets the function told, during publish() and preflight() and on their thread, what a user
    /// should see (retries and their reasons, re-authentications, upload restarts, sign-in,
    /// publish, the final error); no line holds a secret. An empty function stops logging.
    /// Exceptions it throws are swallowed: a log line never stops a publish.
    void set_log(LogFunction on_log) {
        tp_publisher *p = live();
        if (!on_log) {
            check(tp_set_log_callback(p, nullptr, nullptr));
            log_.reset();
            return;
        }
        // On the heap, so the address the library holds survives moves of this Publisher.
        auto kept = std::make_unique<LogFunction>(std::move(on_log));
        check(tp_set_log_callback(p, &log_trampoline, kept.get()));
        log_ = std::move(kept);
    }
    /// Cancels the publish() or preflight() running on another thread: it throws tableau::Error
    /// with TP_ERR_CANCELLED within about a second, signing out and keeping the data (publish()
    /// may be called again). Made while nothing runs, it cancels the next call at once (it is
    /// used up by the call it stops). Thread-safe; must not race with the destructor.
    void cancel() noexcept {
        if (handle_) tp_cancel(handle_);
    }
    /// Signs in, uploads, publishes, signs out; returns tp_result_json.
    std::string publish() {
        check(tp_finalize_and_publish(live()));
        return tp_result_json(handle_);
    }
    /// As publish(), telling `on_progress` how it goes (on this thread). Returning false, or
    /// throwing, cancels: the publish then throws tableau::Error with TP_ERR_CANCELLED.
    std::string publish(const std::function<bool(const tp_progress &)> &on_progress) {
        check(tp_set_progress_callback(live(), &trampoline, const_cast<void *>(static_cast<const void *>(&on_progress))));
        tp_status rc = tp_finalize_and_publish(handle_);
        // Every call clears the last error: read it before unregistering the callback.
        const std::string message = rc != TP_OK ? tp_last_error(handle_) : "";
        tp_set_progress_callback(handle_, nullptr, nullptr);
        if (rc != TP_OK) throw Error(rc, message);
        return tp_result_json(handle_);
    }

private:
    static void log_trampoline(void *userdata, tp_log_level level, const char *message) {
        try {
            (*static_cast<const LogFunction *>(userdata))(level, message);
        } catch (...) {
            // never let an exception cross into the library
        }
    }
    static int32_t trampoline(void *userdata, const tp_progress *progress) {
        try {
            const auto &f = *static_cast<const std::function<bool(const tp_progress &)> *>(userdata);
            return f(*progress) ? 0 : 1;
        } catch (...) {
            return 1;  // never let an exception cross into the library
        }
    }
    tp_publisher *live() const {
        if (!handle_) throw Error(TP_ERR_STATE, "this Publisher was moved from");
        return handle_;
    }
    void check(tp_status rc) const {
        if (rc != TP_OK) throw Error(rc, tp_last_error(handle_));
    }
    tp_publisher *handle_ = nullptr;
    std::unique_ptr<LogFunction> log_;  // what the library's log callback calls
};

}  // namespace tableau

#endif  // TABLEAU_PUBLISHER_HPP
