// Tests the C++ wrapper against the emulator. Usage: test_wrapper SERVER_URL SPOOL_DIR INPUT SHA256
// Compiled and run by tests/c_abi.rs with -Wall -Wextra -Werror.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
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

static std::string config(const std::string &url, const std::string &spool, const std::string &name) {
    return "{\"server_url\":\"" + url + "\",\"site\":\"\",\"auth\":{\"method\":\"pat\",\"token_name\":\"ci\","
           "\"token_secret\":\"ci-secret\"},\"project\":\"Finance/Quarterly\",\"datasource_name\":\"" + name +
           "\",\"mode\":\"create_new\",\"spool_dir\":\"" + spool + "\"}";
}

int main(int argc, char **argv) {
    if (argc != 5) return 2;
    const std::string url = argv[1], spool = argv[2], input = argv[3], sha = argv[4];
    std::ifstream in(input, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

    try {
        tableau::Publisher p(config(url, spool, "From C++"));
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
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
