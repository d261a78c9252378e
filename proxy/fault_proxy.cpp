// See fault_proxy.hpp.
#include "proxy/fault_proxy.hpp"

#include "core/discarding_parser.hpp"

#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <optional>
#include <stdexcept>

namespace syncstorm::proxy {

namespace beast = boost::beast;
namespace net = boost::asio;
using error_code = boost::system::error_code;

namespace {

using json = nlohmann::json;

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

// Beast's request parser keeping nothing: only where each request ends matters.
struct http_request_tracker::parser final : discarding_parser<true> {
  parser() {
    header_limit(max_header + 1);  // the tracker finds the header's end first (advance())
    body_limit(boost::none);       // a body of any length is framed, not held
    eager(true);
  }
};

// One parser at a time, constructed in place per request: no allocation per request on the relay.
struct http_request_tracker::framing {
  std::optional<http_request_tracker::parser> current;
};

http_request_tracker::http_request_tracker() = default;
http_request_tracker::~http_request_tracker() = default;
http_request_tracker::http_request_tracker(http_request_tracker&&) noexcept = default;
http_request_tracker& http_request_tracker::operator=(http_request_tracker&&) noexcept = default;

void http_request_tracker::start_request() {
  if (!framing_) framing_ = std::make_unique<framing>();
  framing_->current.emplace();  // a Beast parser frames one message and cannot be reset
  header_done_ = false;
  scan_from_ = 0;
}

http_request_tracker::step http_request_tracker::advance(const char* data, std::size_t n, std::uint64_t base) {
  step st;
  error_code ec;
  parser& p = *framing_->current;
  auto take_chunk = [&] {  // pending_ holds [parsed_, parsed_ + size): the chunk's rest appended
    const std::uint64_t from = parsed_ + pending_.size();
    if (from < base + n) pending_.append(data + (from - base), static_cast<std::size_t>(base + n - from));
  };
  auto stop = [&](step::kind k) {
    pending_.clear();  // not parsed any more
    st.outcome = k;
    st.at = parsed_;
    return st;
  };
  if (!header_done_) {
    // The header goes to the parser whole, found here first: Beast parses a start line and
    // fields it is handed piecemeal, and may then call bytes it would take whole an error (a
    // bare LF), which would make the verdict depend on how the reads fell.
    take_chunk();
    const auto eom = pending_.find("\r\n\r\n", scan_from_);
    if (eom == std::string::npos) {
      if (pending_.size() > max_header) return stop(step::unframeable);
      scan_from_ = pending_.size() >= 3 ? pending_.size() - 3 : 0;
      return st;  // need_more
    }
    const std::size_t header = eom + 4;
    if (header > max_header) return stop(step::unframeable);
    const std::size_t used = p.put(net::const_buffer(pending_.data(), header), ec);
    if (ec || used != header) return stop(step::unframeable);
    header_done_ = true;
    parsed_ += used;
    pending_.erase(0, used);
  }
  // The body: parsed from the chunk itself while nothing is pending (the common case: a whole
  // request, or a body, in one read), else after the pending bytes it continues.
  const char* from = nullptr;
  std::size_t len = 0;
  if (pending_.empty() && parsed_ >= base) {
    from = data + (parsed_ - base);
    len = static_cast<std::size_t>(base + n - parsed_);
  } else {
    take_chunk();
    from = pending_.data();
    len = pending_.size();
  }
  std::size_t used = 0;
  while (!p.is_done() && used < len) {
    const std::size_t k = p.put(net::const_buffer(from + used, len - used), ec);
    used += k;
    if (ec == beast::http::error::need_more) {
      ec = {};
      break;
    }
    if (ec) {
      parsed_ += used;
      return stop(step::unframeable);
    }
    if (k == 0) break;
  }
  parsed_ += used;
  st.at = parsed_;
  if (p.is_done()) st.outcome = p.upgrade() ? step::upgraded : step::ended;
  if (st.outcome == step::upgraded) return stop(step::upgraded);
  if (!pending_.empty() && from == pending_.data())
    pending_.erase(0, used);  // the rest: the next request's first bytes, or more of this one
  else if (st.outcome == step::need_more)
    pending_.assign(from + used, len - used);  // the rest of a chunk-size line or trailer
  // (ended in the chunk: the next request is parsed from the chunk too, in this feed())
  return st;
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

}  // namespace syncstorm::proxy
