// See remote_write.hpp.
#include "engine/remote_write.hpp"

#include "loadgen/http_client.hpp"

#include <snappy.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

namespace syncstorm::engine {
namespace {

void varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

// A length-delimited field (wire type 2).
void bytes_field(std::string& out, unsigned field, std::string_view data) {
  varint(out, (field << 3) | 2);
  varint(out, data.size());
  out.append(data);
}

std::string label_message(const std::string& name, const std::string& value) {
  std::string m;
  bytes_field(m, 1, name);
  bytes_field(m, 2, value);
  return m;
}

std::string sample_message(double value, std::int64_t timestamp_ms) {
  std::string m;
  varint(m, (1 << 3) | 1);  // double: fixed64, little-endian
  std::uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  for (int i = 0; i < 8; ++i) m += static_cast<char>((bits >> (8 * i)) & 0xff);
  varint(m, (2 << 3) | 0);  // int64: varint (two's complement)
  varint(m, static_cast<std::uint64_t>(timestamp_ms));
  return m;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

}  // namespace

std::string encode_write_request(const std::vector<remote_series>& series) {
  std::string out;
  for (const auto& s : series) {
    std::string ts;
    for (const auto& [k, v] : s.labels) bytes_field(ts, 1, label_message(k, v));
    bytes_field(ts, 2, sample_message(s.value, s.timestamp_ms));
    bytes_field(out, 1, ts);
  }
  return out;
}

std::vector<remote_series> to_remote_series(const std::vector<reports::live_sample>& samples, std::int64_t timestamp_ms,
                                            const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<remote_series> out;
  out.reserve(samples.size());
  for (const auto& s : samples) {
    remote_series r;
    r.labels.emplace_back("__name__", s.name);
    for (const auto& l : s.labels) r.labels.push_back(l);
    for (const auto& l : extra) r.labels.push_back(l);
    std::sort(r.labels.begin(), r.labels.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    r.value = s.value;
    r.timestamp_ms = timestamp_ms;
    out.push_back(std::move(r));
  }
  return out;
}

std::string snappy_compress(const std::string& raw) {
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

std::string snappy_uncompress(const std::string& compressed) {
  std::string out;
  if (!snappy::Uncompress(compressed.data(), compressed.size(), &out)) return {};
  return out;
}

struct remote_writer::impl {
  loadgen::http_site site;
  std::string instance = host_name();
  std::mutex mu;
  std::condition_variable cv;
  // The newest batch not yet sent: its samples and when they were taken (encoded and compressed
  // on the sender thread, not on the caller's).
  std::optional<std::pair<std::vector<reports::live_sample>, std::int64_t>> pending;
  bool closing = false, busy = false;
  std::uint64_t sent = 0, failed = 0;
  std::string first_error;
  std::thread sender;

  void run() {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return closing || pending; });
      if (!pending) return;  // closing with nothing left
      auto [samples, at_ms] = std::move(*pending);
      pending.reset();
      busy = true;
      lock.unlock();
      const std::string body = snappy_compress(
          encode_write_request(to_remote_series(samples, at_ms, {{"job", "syncstorm"}, {"instance", instance}})));
      // Resolved on the sender thread (a slow resolver never holds the run up), again after a
      // failure (the receiver may come up later, or move).
      const loadgen::http_reply r = loadgen::polling_request(site, "POST", "", body, 5'000'000);
      lock.lock();
      busy = false;
      if (!r.failed) {
        ++sent;
      } else {
        ++failed;
        if (first_error.empty()) {
          first_error = r.error.empty() ? "HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 200) : r.error;
          std::cerr << "\nremote write: " << first_error << " (the run goes on; later failures are counted)\n";
        }
      }
      cv.notify_all();
    }
  }
};

remote_writer::remote_writer(const std::string& url) : impl_(std::make_unique<impl>()) {
  impl_->site = loadgen::http_site::make(url,
                                         {{"Content-Type", "application/x-protobuf"},
                                          {"Content-Encoding", "snappy"},
                                          {"X-Prometheus-Remote-Write-Version", "0.1.0"}},
                                         {}, "--prometheus-remote-write");
  impl_->sender = std::thread([this] { impl_->run(); });
}

remote_writer::~remote_writer() { close(0); }

void remote_writer::push(std::vector<reports::live_sample> samples) {
  const auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  std::lock_guard lock(impl_->mu);
  if (impl_->closing) return;
  impl_->pending.emplace(std::move(samples), now_ms);
  impl_->cv.notify_all();
}

void remote_writer::close(int timeout_ms) {
  auto& i = *impl_;
  {
    std::unique_lock lock(i.mu);
    if (timeout_ms > 0)
      i.cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !i.pending && !i.busy; });
    i.closing = true;
    i.pending.reset();
    i.cv.notify_all();
  }
  if (i.sender.joinable()) i.sender.join();
}

std::uint64_t remote_writer::sent() const {
  std::lock_guard lock(impl_->mu);
  return impl_->sent;
}
std::uint64_t remote_writer::failed() const {
  std::lock_guard lock(impl_->mu);
  return impl_->failed;
}
std::string remote_writer::first_error() const {
  std::lock_guard lock(impl_->mu);
  return impl_->first_error;
}

}  // namespace syncstorm::engine
