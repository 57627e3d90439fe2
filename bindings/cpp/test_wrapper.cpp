// Tests the C++ wrapper against the emulator.
// Usage: test_wrapper SERVER_URL SPOOL_DIR INPUT SHA256 [ARROW_STREAM]
// With ARROW_STREAM (an Arrow IPC stream file, as an Arrow engine writes one) it also publishes
// those rows as "Arrow from C++": recognised by content, built into a .hyper before sign-in.
// Compiled and run by tests/c_abi.rs with -Wall -Wextra -Werror.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tableau_publisher.hpp"

static int passed = 0, failed = 0;
#define CHECK(cond, what)                                                       \
    do {                                                                        \
        if (cond) {                                                             \
            passed++;                                                           \
        } else {                                                                \
            failed++;                                                           \
            std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, what); \
        }                                                                       \
    } while (0)

static std::string config(const std::string &url, const std::string &spool, const std::string &name,
                          const std::string &mode = "create_new") {
    return "{\"server_url\":\"" + url + "\",\"site\":\"\",\"auth\":{\"method\":\"pat\",\"token_name\":\"ci\","
           "\"token_secret\":\"ci-secret\"},\"project\":\"Finance/Quarterly\",\"datasource_name\":\"" + name +
           "\",\"mode\":\"" + mode + "\",\"spool_dir\":\"" + spool + "\"}";
}

using Lines = std::vector<std::pair<tp_log_level, std::string>>;

static int count(const Lines &lines, tp_log_level level, const std::string &part) {
    int n = 0;
    for (const auto &l : lines)
        if (l.first == level && l.second.find(part) != std::string::npos) n++;
    return n;
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) return 2;
    const std::string url = argv[1], spool = argv[2], input = argv[3], sha = argv[4];
    std::ifstream in(input, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

    try {
        tableau::Publisher p(config(url, spool, "From C++"));
        Lines lines;
        p.set_log([&lines](tp_log_level level, const std::string &line) { lines.emplace_back(level, line); });
        p.preflight();
        for (size_t i = 0; i < bytes.size(); i += 7000) p.feed(bytes.data() + i, std::min<size_t>(7000, bytes.size() - i));
        tableau::Publisher moved = std::move(p);
        int calls = 0;
        uint64_t sent = 0;
        const std::string result = moved.publish([&](const tp_progress &pr) {
            calls++;
            if (pr.phase == TP_PHASE_UPLOADING) sent = pr.bytes_sent;
            return true;
        });
        CHECK(calls >= 5 && sent == bytes.size(), "progress reported every byte");
        CHECK(result.find(sha) != std::string::npos, "result has the sha256");
        CHECK(count(lines, TP_LOG_INFO, "preflight passed") == 1, "the preflight's log line (set before the move)");
        CHECK(count(lines, TP_LOG_INFO, "signed in to the Default site") == 2, "both sign-ins logged");
        CHECK(count(lines, TP_LOG_INFO, "published data source \"From C++\"") == 1, "the publish logged");
        bool secret = false;
        for (const auto &l : lines) secret = secret || l.second.find("ci-secret") != std::string::npos;
        CHECK(!lines.empty() && !secret, "no log line holds the secret");
        moved.set_log(nullptr);
        try {
            p.feed("x");
            CHECK(false, "moved-from publisher throws");
        } catch (const tableau::Error &e) {
            CHECK(e.status() == TP_ERR_STATE, "moved-from is TP_ERR_STATE");
        }
    } catch (const tableau::Error &e) {
        std::fprintf(stderr, "unexpected: %s\n", e.what());
        failed++;
    }
    try {
        tableau::Publisher cancelled(config(url, spool, "From C++ cancelled"));
        cancelled.feed(bytes);
        // A logger that throws does not stop anything: its exceptions never reach the library.
        cancelled.set_log([](tp_log_level, const std::string &) { throw std::runtime_error("a broken logger"); });
        cancelled.publish([](const tp_progress &pr) -> bool {
            if (pr.phase == TP_PHASE_UPLOADING) throw std::runtime_error("host says stop");
            return true;
        });
        CHECK(false, "cancel throws");
    } catch (const tableau::Error &e) {
        CHECK(e.status() == TP_ERR_CANCELLED, "an exception in the callback cancels");
        CHECK(std::string(e.what()).find("cancelled by the host") != std::string::npos,
              "the error keeps the library's message after the callback is unregistered");
    }
    // Cancel from a second thread mid-upload (tests/c_abi.rs has the emulator read this
    // overwrite publish's body slowly): publish() throws TP_ERR_CANCELLED within a second.
    {
        tableau::Publisher slow(config(url, spool, "From C++ slow", "overwrite"));
        slow.feed(bytes);
        std::atomic<bool> uploading(false);
        std::chrono::steady_clock::time_point cancelled_at;
        std::thread button([&] {
            while (!uploading.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            cancelled_at = std::chrono::steady_clock::now();
            slow.cancel();
        });
        Lines lines;
        slow.set_log([&lines](tp_log_level level, const std::string &line) { lines.emplace_back(level, line); });
        tp_status status = TP_OK;
        std::string message;
        try {
            slow.publish([&](const tp_progress &pr) {
                if (pr.phase == TP_PHASE_UPLOADING) uploading.store(true);
                return true;
            });
        } catch (const tableau::Error &e) {
            status = e.status();
            message = e.what();
        }
        const auto returned = std::chrono::steady_clock::now();
        uploading.store(true);  // in case the publish failed before uploading
        button.join();
        const long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(returned - cancelled_at).count();
        std::printf("cancel_to_return_ms %lld\n", ms);
        CHECK(status == TP_ERR_CANCELLED, "cancel() from another thread throws TP_ERR_CANCELLED");
        CHECK(ms < 1000, "within a second of cancel()");
        CHECK(message.find("tabpub resume ") != std::string::npos, "the data is kept, with the resume command");
        CHECK(count(lines, TP_LOG_WARN, "cancelled by the host while uploading") == 1, "the cancel is logged");
        CHECK(count(lines, TP_LOG_ERROR, "cancelled by the host") == 1, "the final error is logged");
        try {
            const std::string again = slow.publish();
            CHECK(again.find(sha) != std::string::npos, "publish() after the cancel publishes");
        } catch (const tableau::Error &e) {
            std::fprintf(stderr, "unexpected after cancel: %s\n", e.what());
            failed++;
        }
    }
    try {
        tableau::Publisher bad("{\"server_url\":1}");
        CHECK(false, "bad config throws");
    } catch (const tableau::Error &e) {
        CHECK(e.status() == TP_ERR_CONFIG, "bad config is TP_ERR_CONFIG");
    }
    try {
        tableau::Publisher again(config(url, spool, "From C++"));
        again.feed_file(input);
        again.publish();
        CHECK(false, "clash throws");
    } catch (const tableau::Error &e) {
        CHECK(e.status() == TP_ERR_CONFLICT, "clash is TP_ERR_CONFLICT");
        CHECK(std::string(e.what()).find("already exists") != std::string::npos, "clash message");
    }
    if (argc == 6) {
        std::ifstream arrow_in(argv[5], std::ios::binary);
        const std::string arrow((std::istreambuf_iterator<char>(arrow_in)), std::istreambuf_iterator<char>());
        try {
            tableau::Publisher rows(config(url, spool, "Arrow from C++"));
            for (size_t i = 0; i < arrow.size(); i += 65536)
                rows.feed(arrow.data() + i, std::min<size_t>(65536, arrow.size() - i));
            std::vector<tp_phase> phases;
            rows.publish([&](const tp_progress &pr) {
                if (phases.empty() || phases.back() != pr.phase) phases.push_back(pr.phase);
                return true;
            });
            CHECK(!phases.empty() && phases.front() == TP_PHASE_BUILDING_EXTRACT, "the Arrow stream is built first");
            bool signed_in = false, built_after = false;
            for (tp_phase ph : phases) {
                signed_in = signed_in || ph == TP_PHASE_SIGNING_IN;
                built_after = built_after || (signed_in && ph == TP_PHASE_BUILDING_EXTRACT);
            }
            CHECK(signed_in && !built_after, "signed in once the extract was built");
        } catch (const tableau::Error &e) {
            std::fprintf(stderr, "unexpected with the Arrow stream: %s\n", e.what());
            failed++;
        }
    }
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
