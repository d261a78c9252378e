// See fault_proxy.hpp.
#include "labstack/fault_proxy.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace syncstorm::lab {
namespace {

using json = nlohmann::json;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::int64_t non_negative(const json& spec, const char* key) {
  if (!spec.contains(key)) return 0;
  if (!spec[key].is_number() || spec[key].get<double>() < 0)
    throw std::invalid_argument(std::string("fault.") + key + ": found " + spec[key].dump() +
                                "; expected a number >= 0");
  return spec[key].get<std::int64_t>();
}

}  // namespace

void path_faults::set(const std::string& id, const json& spec) {
  if (id.empty() || id == "*") throw std::invalid_argument("id: found \"" + id + "\"; expected a fault id");
  static const char* kinds[] = {"latency", "jitter", "bandwidth", "reset", "blackhole", "http_error"};
  std::string kind = spec.value("kind", "");
  if (std::find(std::begin(kinds), std::end(kinds), kind) == std::end(kinds))
    throw std::invalid_argument("fault.kind: found \"" + kind +
                                "\"; expected latency, jitter, bandwidth, reset, blackhole or http_error");
  std::string dir = spec.value("direction", "both");
  if (dir != "up" && dir != "down" && dir != "both")
    throw std::invalid_argument("fault.direction: found \"" + dir + "\"; expected up, down or both");
  non_negative(spec, "latency_us");
  non_negative(spec, "spread_us");
  if (kind == "bandwidth" && spec.value("rate_bps", 0.0) <= 0)
    throw std::invalid_argument("fault.rate_bps: found " + spec.value("rate_bps", json(0)).dump() +
                                "; expected bits per second > 0");
  double pc = spec.value("percent", 100.0);
  if (pc < 0 || pc > 100)
    throw std::invalid_argument("fault.percent: found " + std::to_string(pc) + "; expected 0..100");
  int status = spec.value("status", 503);
  if (status < 500 || status > 599)
    throw std::invalid_argument("fault.status: found " + std::to_string(status) + "; expected 500..599");
  faults_[id] = spec;
  recompute();
}

std::size_t path_faults::clear(const std::string& id) {
  std::size_t n = 0;
  if (id == "*") {
    n = faults_.size();
    faults_.clear();
  } else {
    n = faults_.erase(id);
  }
  recompute();
  return n;
}

json path_faults::to_json() const {
  json j = json::object();
  for (auto& [id, s] : faults_) j[id] = s;
  return j;
}

void path_faults::recompute() {
  effect_[0] = effect_[1] = {};
  reset_percent_ = http_percent_ = 0;
  http_status_ = 503;
  seed_ = 1;
  for (auto& [id, s] : faults_) {
    std::string kind = s.value("kind", "");
    std::string dir = s.value("direction", "both");
    seed_ = seed_ * 6364136223846793005ULL + s.value("seed", 1ULL);
    for (int d = 0; d < 2; ++d) {
      if (dir == "up" && d != 0) continue;
      if (dir == "down" && d != 1) continue;
      direction_effect& e = effect_[d];
      if (kind == "latency" || kind == "jitter") {
        e.delay_us += s.value("latency_us", std::int64_t{0});
        e.spread_us += s.value("spread_us", std::int64_t{0});
      } else if (kind == "bandwidth") {
        double bps = s.value("rate_bps", 0.0) / 8.0;
        e.rate_Bps = e.rate_Bps == 0 ? bps : std::min(e.rate_Bps, bps);
      } else if (kind == "blackhole") {
        e.blackhole = true;
      }
    }
    if (kind == "reset") reset_percent_ = std::max(reset_percent_, s.value("percent", 100.0));
    if (kind == "http_error") {
      http_percent_ = std::max(http_percent_, s.value("percent", 100.0));
      http_status_ = s.value("status", 503);
    }
  }
}

void token_bucket::configure(double rate_Bps, double burst_bytes, std::int64_t now_us) {
  if (rate_Bps != rate_) tokens_ = std::min(tokens_, burst_bytes);
  if (rate_ == 0) tokens_ = burst_bytes;
  rate_ = rate_Bps;
  burst_ = burst_bytes;
  last_us_ = now_us;
}

std::int64_t token_bucket::take(std::size_t n, std::int64_t now_us) {
  if (rate_ <= 0) return 0;
  if (now_us > last_us_) {
    tokens_ = std::min(burst_, tokens_ + rate_ * static_cast<double>(now_us - last_us_) / 1e6);
    last_us_ = now_us;
  }
  tokens_ -= static_cast<double>(n);
  if (tokens_ >= 0) return 0;
  return static_cast<std::int64_t>(-tokens_ / rate_ * 1e6) + 1;
}

bool http_request_tracker::parse_length() {
  body_left_ = 0;
  std::string h = lower(header_);
  auto first_line_end = h.find("\r\n");
  if (first_line_end == std::string::npos) return false;
  // "METHOD target HTTP/1.x"
  const std::string line = h.substr(0, first_line_end);
  if (line.find(" http/1.") == std::string::npos) return false;
  std::size_t pos = first_line_end + 2;
  while (pos < h.size()) {
    auto end = h.find("\r\n", pos);
    if (end == std::string::npos || end == pos) break;
    std::string field = h.substr(pos, end - pos);
    pos = end + 2;
    auto colon = field.find(':');
    if (colon == std::string::npos) return false;
    std::string name = field.substr(0, colon);
    std::string value = field.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
    if (name == "transfer-encoding" && value != "identity") return false;
    if (name == "upgrade") return false;
    if (name == "content-length") {
      if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos || value.size() > 15)
        return false;
      body_left_ = std::stoull(value);
    }
  }
  return true;
}

std::string http_error_response(int status, bool close) {
  std::string reason = status == 500   ? "Internal Server Error"
                       : status == 502 ? "Bad Gateway"
                       : status == 503 ? "Service Unavailable"
                       : status == 504 ? "Gateway Timeout"
                                       : "Server Error";
  std::string body = R"({"error":"injected by syncstorm http_error"})";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nX-Syncstorm-Fault: http_error\r\nConnection: " + (close ? "close" : "keep-alive") + "\r\n\r\n" + body;
}

}  // namespace syncstorm::lab
