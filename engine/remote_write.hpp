// `run --prometheus-remote-write URL` (issue #26): the live view's samples pushed once a second
// with the Prometheus remote-write protocol 1.0: a WriteRequest (protobuf, encoded here: four
// small messages, no generated code) compressed with snappy (Debian's libsnappy), POSTed with
// Content-Encoding: snappy, Content-Type: application/x-protobuf and
// X-Prometheus-Remote-Write-Version: 0.1.0. Each series carries the sample's labels plus
// job="syncstorm" and instance (the host name), as a scrape of the endpoint would.
//
// Pushing never holds the run up: a sender thread encodes and posts the newest batch; a batch not
// yet sent when a newer one arrives is replaced (a live view wants the latest values, not a backlog).
// A failed push is counted and the first failure printed once; the run goes on. close() sends
// the final batch (within its timeout) and stops.
#pragma once

#include "reports/openmetrics.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace syncstorm::engine {

struct remote_series {
  std::vector<std::pair<std::string, std::string>> labels;  // sorted by name, __name__ among them
  double value = 0;
  std::int64_t timestamp_ms = 0;
};

// The WriteRequest protobuf (uncompressed) of the series.
std::string encode_write_request(const std::vector<remote_series>& series);
// The live samples as series at timestamp_ms, with `extra` labels (job, instance) added.
std::vector<remote_series> to_remote_series(const std::vector<reports::live_sample>& samples, std::int64_t timestamp_ms,
                                            const std::vector<std::pair<std::string, std::string>>& extra);
// snappy block compression (what remote write's Content-Encoding: snappy means).
std::string snappy_compress(const std::string& raw);
std::string snappy_uncompress(const std::string& compressed);  // empty on a corrupt input

class remote_writer {
 public:
  // Throws std::invalid_argument naming --prometheus-remote-write when the URL is not http(s).
  explicit remote_writer(const std::string& url);
  ~remote_writer();
  remote_writer(const remote_writer&) = delete;
  remote_writer& operator=(const remote_writer&) = delete;

  void push(std::vector<reports::live_sample> samples);
  // Sends what is pending (waiting at most timeout_ms) and stops the sender.
  void close(int timeout_ms = 5000);

  std::uint64_t sent() const;
  std::uint64_t failed() const;
  std::string first_error() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace syncstorm::engine
