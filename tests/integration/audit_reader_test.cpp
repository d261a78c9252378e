// The audit's readers against the real lab (PostgreSQL, HAProxy, syncd), and run_audit over what
// they read: a known set of append/add/set ops pushed with plain HTTP requests on 3 streams is
// read back identically through the API (global feed and per-stream feed) and straight from
// PostgreSQL, and the audit finds nothing wrong on the correct stack; with syncd's bug modes it
// finds exactly what each bug did: drop-every=5 → lost ids equal to the ids syncd logged as
// dropped, dup-every=3 → duplicates (and no false divergence), dup-apply with a retried push →
// a diverged counter (and no duplicate). Failures of the readers are one-line errors without
// secrets. One lab per bug mode, each brought down at the end of its test, even on failure.
//
// Threading: everything runs on the test's thread (blocking sockets with receive/send timeouts).
#include "core/audit.hpp"
#include "core/net.hpp"
#include "labstack/lab.hpp"
#include "loadgen/audit_reader.hpp"
#include "tests/support/lab_fixture.hpp"
#include "tests/support/test_util.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <tuple>

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using tcp = net::ip::tcp;
namespace sl = syncstorm::lab;
namespace lg = syncstorm::loadgen;
namespace fs = std::filesystem;
using syncstorm::audit_change;
using syncstorm::audit_input;
using syncstorm::audit_op;
using syncstorm::audit_op_state;
using syncstorm::audit_record;
using syncstorm::run_audit;

const std::vector<std::string> streams = {"store-a", "store-b", "store-c"};

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct http_reply {
  int status = 0;
  std::string body;
  std::string error;
};

// One request on a fresh connection, bounded by SO_RCVTIMEO/SO_SNDTIMEO.
http_reply http_post(const std::string& base_url, const std::string& target, const std::string& body) {
  http_reply r;
  try {
    auto u = lg::parse_url(base_url);
    net::io_context io;
    tcp::socket sock(io);
    sock.connect({net::ip::make_address(u.host), u.port});
    timeval tv{10, 0};
    ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, u.host);
    req.set(http::field::connection, "close");
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(sock, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(sock, buf, res);
    r.status = static_cast<int>(res.result_int());
    r.body = res.body();
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  return r;
}

// A small client of protocol v1: keeps its seq, the versions it saw, and every op as the audit
// wants it (acked, or rejected on a conflict).
class client {
 public:
  client(std::string url, std::string name, std::int64_t t0) : url_(std::move(url)), name_(std::move(name)), t0_(t0) {}

  json append(const std::string& stream) { return op(stream, "append", {}, {{"body", {{"n", seq_ + 1}}}}); }
  json add(const std::string& stream, const std::string& key, int delta) {
    return op(stream, "add", key, {{"delta", delta}});
  }
  json set(const std::string& stream, const std::string& key, const json& value,
           std::optional<std::int64_t> base = {}) {
    return op(stream, "set", key, {{"base_version", base.value_or(versions_[stream + "/" + key])}, {"body", value}});
  }

  // Pushes `ops`; records acks and conflicts. Returns the HTTP status (200 expected).
  int push(const json& ops) {
    const std::int64_t sent = now_us() - t0_;
    for (const auto& o : ops) {
      auto& a = ops_.at(index_.at(o["id"].get<std::string>()));
      if (a.first_sent_us < 0) a.first_sent_us = sent;
      if (a.state == audit_op_state::unsent) a.state = audit_op_state::in_doubt;
    }
    auto r = http_post(url_, "/v1/push", json{{"client", name_}, {"ops", ops}}.dump());
    last_reply = r.body;
    if (r.status != 200) return r.status;
    json j = json::parse(r.body);
    const std::int64_t acked = now_us() - t0_;
    for (const auto& id : j["acked"]) {
      auto& a = ops_.at(index_.at(id.get<std::string>()));
      a.state = audit_op_state::acked;
      if (a.acked_us < 0) a.acked_us = acked;
    }
    for (const auto& c : j["conflicts"]) {
      auto& a = ops_.at(index_.at(c["id"].get<std::string>()));
      if (a.state != audit_op_state::acked) a.state = audit_op_state::rejected;
      versions_[a.stream + "/" + a.key] = c["version"].get<std::int64_t>();
    }
    // The versions our own sets produced: the next set of a key bases on it.
    for (const auto& o : ops)
      if (o["kind"] == "set") {
        auto& a = ops_.at(index_.at(o["id"].get<std::string>()));
        if (a.state == audit_op_state::acked) ++versions_[a.stream + "/" + a.key];
      }
    return 200;
  }

  const std::vector<audit_op>& ops() const { return ops_; }
  std::string last_reply;

 private:
  json op(const std::string& stream, const std::string& kind, const std::string& key, const json& extra) {
    const std::int64_t seq = ++seq_;
    audit_op a;
    a.id = name_ + "-" + std::to_string(seq);
    a.client = name_;
    a.stream = stream;
    a.seq = seq;
    a.key = key;
    a.kind = kind == "add" ? 'd' : kind == "set" ? 's' : 'a';
    a.created_us = now_us() - t0_;
    json o = {{"id", a.id}, {"stream", stream}, {"seq", seq}, {"t_us", a.created_us}, {"kind", kind}};
    if (!key.empty()) o["key"] = key;
    for (auto it = extra.begin(); it != extra.end(); ++it) o[it.key()] = it.value();
    if (kind == "add") a.delta = extra["delta"].get<double>();
    if (kind == "set") a.value = extra["body"];
    index_[a.id] = ops_.size();
    ops_.push_back(std::move(a));
    return o;
  }

  std::string url_, name_;
  std::int64_t t0_;
  std::int64_t seq_ = 0;
  std::map<std::string, std::int64_t> versions_;
  std::map<std::string, std::size_t> index_;
  std::vector<audit_op> ops_;
};

// The known workload: per stream one client, 10 batches of 3 appends, 2 adds and 1 set; then
// one stale set per stream (a conflict: rejected, never stored). 183 ops.
std::vector<audit_op> push_workload(const std::string& url, int batches = 10) {
  const std::int64_t t0 = now_us();
  std::vector<audit_op> all;
  for (std::size_t s = 0; s < streams.size(); ++s) {
    client c(url, "term-" + std::to_string(s), t0);
    for (int b = 0; b < batches; ++b) {
      json ops = json::array({c.append(streams[s]), c.add(streams[s], "stock", 1), c.append(streams[s]),
                              c.add(streams[s], "stock", -3 + b), c.set(streams[s], "price", {{"cents", 100 + b}}),
                              c.append(streams[s])});
      EXPECT_EQ(c.push(ops), 200) << c.last_reply;
    }
    EXPECT_EQ(c.push(json::array({c.set(streams[s], "price", {{"cents", 1}}, 0)})), 200) << c.last_reply;
    all.insert(all.end(), c.ops().begin(), c.ops().end());
  }
  return all;
}

lg::audit_source api_source(const sl::lab& l, bool per_stream = false) {
  lg::audit_source src;
  src.http_base = l.lb_http_url();
  src.headers = {{"x-audit-token", "t0ken-never-shown"}};
  src.profile.changes_per_stream = per_stream;
  src.timeout_us = 5'000'000;
  return src;
}

lg::audit_source sql_source(const sl::lab& l) {
  lg::audit_source src;
  src.via_sql = true;
  src.dsn = l.db_dsn();
  src.timeout_us = 5'000'000;
  return src;
}

audit_input input_of(std::vector<audit_op> ops, lg::server_state st) {
  audit_input in;
  in.ops = std::move(ops);
  in.changes = std::move(st.changes);
  in.records = std::move(st.records);
  in.source = std::move(st.source);
  in.run_end_us = now_us();
  return in;
}

std::vector<audit_change> by_order(std::vector<audit_change> v) {
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.order < b.order; });
  return v;
}

void expect_same_changes(const std::vector<audit_change>& a_in, const std::vector<audit_change>& b_in,
                         const char* what) {
  auto a = by_order(a_in), b = by_order(b_in);
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].order, b[i].order) << what << " #" << i;
    EXPECT_EQ(a[i].id, b[i].id) << what << " #" << i;
    EXPECT_EQ(a[i].stream, b[i].stream) << what << " #" << i;
    EXPECT_EQ(a[i].seq, b[i].seq) << what << " #" << i;
    EXPECT_EQ(a[i].kind, b[i].kind) << what << " #" << i;
    EXPECT_EQ(a[i].key, b[i].key) << what << " #" << i;
    EXPECT_DOUBLE_EQ(a[i].delta, b[i].delta) << what << " #" << i;
    EXPECT_EQ(a[i].value, b[i].value) << what << " #" << i << ": " << a[i].value.dump() << " vs " << b[i].value.dump();
  }
}

void expect_same_records(std::vector<audit_record> a, std::vector<audit_record> b, const char* what) {
  auto less = [](const audit_record& x, const audit_record& y) {
    return std::tie(x.stream, x.key) < std::tie(y.stream, y.key);
  };
  std::sort(a.begin(), a.end(), less);
  std::sort(b.begin(), b.end(), less);
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].stream, b[i].stream) << what;
    EXPECT_EQ(a[i].key, b[i].key) << what;
    EXPECT_EQ(a[i].value, b[i].value) << what << " " << a[i].stream << "/" << a[i].key;
    EXPECT_EQ(a[i].version, b[i].version) << what << " " << a[i].stream << "/" << a[i].key;
  }
}

sl::lab_options audit_lab_options(const std::string& id, const std::string& bug, int pods) {
  sl::lab_options o;
  o.id = id;
  o.pods = pods;
  o.bug = bug;
  o.check_interval_ms = 200;
  return o;
}

// A lab for one test, brought down when the test ends (pass, fail or exception).
struct lab_guard : syncstorm::test::scoped_lab {
  lab_guard(const std::string& id, const std::string& bug, int pods) : scoped_lab(audit_lab_options(id, bug, pods)) {}
};

#define NEED_LAB()                                        \
  do {                                                    \
    auto why = syncstorm::test::lab_unavailable_reason(); \
    if (!why.empty()) SYNCSTORM_SKIP_OR_FAIL(why);        \
  } while (0)

}  // namespace

TEST(audit_reader, api_and_sql_read_the_same_data_and_the_correct_stack_passes_the_audit) {
  NEED_LAB();
  lab_guard lab("itaud0", "", 2);
  ASSERT_TRUE(lab.ok()) << "lab up failed: " << lab.error();
  auto ops = push_workload(lab->lb_http_url());
  ASSERT_EQ(ops.size(), 183u);

  auto api = lg::read_server_state(api_source(*lab), streams);
  auto per_stream_src = api_source(*lab, true);
  per_stream_src.page_limit = 7;  // many pages, the last one partly filled
  auto per_stream = lg::read_server_state(per_stream_src, streams);
  EXPECT_GE(per_stream.requests, 3u * (60 / 7 + 2) + 3u);
  auto sql = lg::read_server_state(sql_source(*lab), streams);
  EXPECT_EQ(api.changes.size(), 180u);  // the 3 stale sets were conflicts
  EXPECT_EQ(api.records.size(), 6u);    // stock and price on each stream
  EXPECT_EQ(api.source, "api " + lab->lb_http_url());
  EXPECT_EQ(sql.source.rfind("sql host=", 0), 0u) << sql.source;
  expect_same_changes(api.changes, sql.changes, "api vs sql");
  expect_same_changes(per_stream.changes, sql.changes, "per-stream api vs sql");
  expect_same_records(api.records, sql.records, "api vs sql");
  expect_same_records(per_stream.records, sql.records, "per-stream api vs sql");
  // Only the audited streams: another stream's data is not read.
  auto one = lg::read_server_state(sql_source(*lab), {"store-b"});
  EXPECT_EQ(one.changes.size(), 60u);
  for (const auto& c : one.changes) EXPECT_EQ(c.stream, "store-b");
  EXPECT_TRUE(lg::read_server_state(api_source(*lab), {}).changes.empty());

  for (auto* st : {&api, &sql}) {
    auto r = run_audit(input_of(ops, *st));
    SCOPED_TRACE(r.source);
    EXPECT_EQ(r.acked, 180u);
    EXPECT_EQ(r.present, 180u);
    EXPECT_EQ(r.lost, 0u);
    EXPECT_EQ(r.duplicates, 0u);
    EXPECT_EQ(r.in_doubt, 0u);
    EXPECT_EQ(r.rejected, 3u);
    EXPECT_EQ(r.rejected_present, 0u);
    EXPECT_EQ(r.order_violations, 0u);
    EXPECT_EQ(r.diverged, 0u) << json(r.diverged_keys).dump();
    EXPECT_EQ(r.unknown, 0u);
  }
  // The audit can fail on this data: a record changed behind the server's back diverges.
  auto tampered = sql;
  for (auto& rec : tampered.records)
    if (rec.stream == "store-a" && rec.key == "stock") rec.value = rec.value.get<double>() + 1;
  auto r = run_audit(input_of(ops, tampered));
  EXPECT_EQ(r.diverged, 1u);
  EXPECT_EQ(r.diverged_keys, std::vector<std::string>{"store-a/stock"});
}

TEST(audit_reader, drop_every_5_the_lost_ids_are_exactly_the_ids_syncd_dropped) {
  NEED_LAB();
  lab_guard lab("itaud1", "drop-every=5", 1);
  ASSERT_TRUE(lab.ok()) << "lab up failed: " << lab.error();
  auto ops = push_workload(lab->lb_http_url());

  std::set<std::string> dropped;  // syncd --bug-log: lab_dir/logs/<pod>.bug.log, one id a line
  for (const auto& e : fs::directory_iterator(fs::path(lab->dir()) / "logs")) {
    if (!e.path().string().ends_with(".bug.log")) continue;
    std::ifstream in(e.path());
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) dropped.insert(line);
  }
  ASSERT_EQ(dropped.size(), 36u);  // every 5th of the 180 ops that were not conflicts

  for (auto* src : {"api", "sql"}) {
    auto st = lg::read_server_state(std::string(src) == "api" ? api_source(*lab) : sql_source(*lab), streams);
    auto r = run_audit(input_of(ops, std::move(st)));
    SCOPED_TRACE(src);
    EXPECT_EQ(r.lost, dropped.size());
    EXPECT_EQ(std::set<std::string>(r.lost_ids.begin(), r.lost_ids.end()), dropped);
    EXPECT_TRUE(std::is_sorted(r.lost_ids.begin(), r.lost_ids.end(), [&](const std::string& a, const std::string& b) {
      auto created = [&](const std::string& id) {
        return std::find_if(ops.begin(), ops.end(), [&](const audit_op& o) { return o.id == id; })->created_us;
      };
      return created(a) < created(b);
    }));
    EXPECT_TRUE(r.lost_oldest_age_us.has_value());
    EXPECT_EQ(r.duplicates, 0u);
    EXPECT_EQ(r.diverged, 0u) << json(r.diverged_keys).dump();  // a dropped add was not applied either
    EXPECT_EQ(r.order_violations, 0u);
  }
}

TEST(audit_reader, dup_every_3_duplicates_are_found_without_false_divergence) {
  NEED_LAB();
  lab_guard lab("itaud2", "dup-every=3", 1);
  ASSERT_TRUE(lab.ok()) << "lab up failed: " << lab.error();
  auto ops = push_workload(lab->lb_http_url(), 5);
  for (auto* src : {"api", "sql"}) {
    auto st = lg::read_server_state(std::string(src) == "api" ? api_source(*lab) : sql_source(*lab), streams);
    auto r = run_audit(input_of(ops, std::move(st)));
    SCOPED_TRACE(src);
    // 93 ops through the pod's op counter (per stream 30, then its stale set: k = 31, 62, 93);
    // every 3rd is stored twice, except k = 93, a conflict, which is never stored: 30.
    EXPECT_EQ(r.duplicates, 30u);
    EXPECT_EQ(r.duplicate_ids.size(), r.duplicates);
    EXPECT_EQ(r.lost, 0u);
    EXPECT_EQ(r.diverged, 0u) << json(r.diverged_keys).dump();  // a second copy is not applied twice
  }
}

TEST(audit_reader, dup_apply_a_retried_push_diverges_a_counter_without_a_duplicate) {
  NEED_LAB();
  lab_guard lab("itaud3", "dup-apply", 1);
  ASSERT_TRUE(lab.ok()) << "lab up failed: " << lab.error();
  const std::int64_t t0 = now_us();
  client c(lab->lb_http_url(), "retrier", t0);
  json batch = json::array({c.add("store-a", "stock", 5), c.append("store-a"), c.add("store-b", "cash", 7)});
  ASSERT_EQ(c.push(batch), 200) << c.last_reply;
  ASSERT_EQ(c.push(batch), 200) << c.last_reply;  // the client's retry (its ack was "lost")
  ASSERT_EQ(c.push(json::array({c.add("store-c", "stock", 2)})), 200) << c.last_reply;  // never retried
  for (auto* src : {"api", "sql"}) {
    auto st = lg::read_server_state(std::string(src) == "api" ? api_source(*lab) : sql_source(*lab), streams);
    EXPECT_EQ(st.changes.size(), 4u);
    auto r = run_audit(input_of(c.ops(), std::move(st)));
    SCOPED_TRACE(src);
    EXPECT_EQ(r.diverged, 2u);
    EXPECT_EQ(r.diverged_keys, (std::vector<std::string>{"store-a/stock", "store-b/cash"}));
    EXPECT_EQ(r.duplicates, 0u);
    EXPECT_EQ(r.lost, 0u);
    EXPECT_EQ(r.present, 4u);
  }
}

TEST(audit_reader, reader_failures_are_one_line_errors_without_secrets) {
  const int port = syncstorm::test::free_port();
  lg::audit_source api;
  api.http_base = "http://127.0.0.1:" + std::to_string(port);
  api.headers = {{"authorization", "Bearer s3cr3t-token"}};
  api.timeout_us = 500'000;
  api.retries = 1;
  try {
    lg::read_server_state(api, streams);
    ADD_FAILURE() << "no error from a closed port";
  } catch (const lg::audit_read_error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_EQ(m.find("s3cr3t"), std::string::npos) << m;
    EXPECT_NE(m.find("audit via api: GET /v1/changes?after=0&limit=1000 on " + api.http_base + ": connect:"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("after 2 attempts"), std::string::npos) << m;
  }

  lg::audit_source sql;
  sql.via_sql = true;
  sql.dsn = "postgresql://auditor:hunter2-pw@127.0.0.1:" + std::to_string(port) + "/syncd";
  sql.timeout_us = 1'000'000;
  sql.retries = 0;
  try {
    lg::read_server_state(sql, streams);
    ADD_FAILURE() << "no error from a closed port";
  } catch (const lg::audit_read_error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_EQ(m.find("hunter2"), std::string::npos) << m;
    EXPECT_NE(
        m.find("audit via sql (host=127.0.0.1 port=" + std::to_string(port) + " dbname=syncd user=auditor): connect:"),
        std::string::npos)
        << m;
  }
  EXPECT_EQ(lg::redact_dsn("host=db password=pw1 user=u dbname=x"), "host=db dbname=x user=u");
  sql.dsn = "host='unterminated password=pw2";
  try {
    lg::read_server_state(sql, streams);
    ADD_FAILURE() << "no error from an unparsable DSN";
  } catch (const lg::audit_read_error& e) {
    EXPECT_EQ(std::string(e.what()).find("pw2"), std::string::npos) << e.what();
  }

  {
    // A server that accepts (the kernel's backlog) but never answers: the request times out.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(fd, 8), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    lg::audit_source silent = api;
    silent.http_base = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    silent.timeout_us = 300'000;
    silent.retries = 0;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      lg::read_server_state(silent, streams);
      ADD_FAILURE() << "no error from a silent server";
    } catch (const lg::audit_read_error& e) {
      EXPECT_NE(std::string(e.what()).find("read: timeout"), std::string::npos) << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
    ::close(fd);
  }

  {
    // A 500 whose body is bytes, not text: the error line is one line of valid UTF-8, bounded
    // (such a body once ended a run in std::terminate when report.json was written).
    syncstorm::test::temp_dir d;
    const int bad_port = syncstorm::test::free_port();
    syncstorm::test::python_http_server bad(bad_port, d.path(), "",
                                            "        body = bytes(range(256)) * 4 + '\u00e9'.encode() * 100\n"
                                            "        self.send_response(500)\n"
                                            "        self.send_header('Content-Length', str(len(body)))\n"
                                            "        self.end_headers()\n"
                                            "        self.wfile.write(body)\n");
    lg::audit_source bytes_src = api;
    bytes_src.http_base = "http://127.0.0.1:" + std::to_string(bad_port);
    bytes_src.retries = 0;
    try {
      lg::read_server_state(bytes_src, streams);
      ADD_FAILURE() << "no error from a 500";
    } catch (const lg::audit_read_error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(": HTTP 500: "), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos);
      EXPECT_LT(m.size(), 400u);
      EXPECT_NO_THROW((void)nlohmann::json(m).dump()) << "not valid UTF-8";
    }
  }

  api.http_base = "ftp://nowhere";
  EXPECT_THROW(lg::read_server_state(api, streams), lg::audit_read_error);
}
